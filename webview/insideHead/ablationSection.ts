/**
 * Ablation, the second section of the Inside-a-head tab: choose heads (ctrl+click in the Heads view, "Add", the
 * ranking), remove them (zero or mean output), re-run, and show each token's surprisal change on the text, the loss
 * change and the predictions before/after at the selected token. A shown result follows the selected token.
 */
import '@vscode-elements/elements/dist/vscode-radio/index.js';
import '@vscode-elements/elements/dist/vscode-radio-group/index.js';
import type { AblationMode, HeadRef, Prediction } from '../../extension/common/engineProtocol';
import type { AblationView } from '../../extension/common/webviewProtocol';
import { selectorLabel } from '../../extension/common/displayNames';
import { tokenLabel } from '../canvas';
import { el } from '../dom';
import type { Rgb } from '../theme';
import { button } from './button';
import { diverging, maxAbs, rgbCss } from './colours';
import type { InsideHeadHost, InsideState } from './context';
import { fmt, pct, signed } from './format';

export class AblationSection {
  readonly element: HTMLElement;
  private chosen: HeadRef[] = [];
  private ablationMode: AblationMode = 'zero';
  private shown: AblationView | undefined;
  private seq = 0;
  private followTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly heads: HTMLElement;
  private readonly addSelected: HTMLElement;
  private readonly runBtn: HTMLElement;
  private readonly status: HTMLElement;
  private readonly text: HTMLElement;
  private readonly preds: HTMLElement;

  /** `live`: the tab's screen-reader region (announces the number of chosen heads). */
  constructor(
    private readonly state: InsideState,
    private readonly host: Pick<InsideHeadHost, 'ablate' | 'clearAblation' | 'pickToken'>,
    private readonly live: HTMLElement,
  ) {
    this.heads = el('span', { className: 'heads', role: 'list', 'aria-label': 'Heads to ablate' });
    this.addSelected = button(`Add L${state.layer} H${state.head}`, 'Add the selected head to the heads to ablate', () => this.toggle(this.state.layer, this.state.head, true));
    const modeGroup = el('vscode-radio-group', { 'aria-label': 'Ablation mode', className: 'ablation-mode' },
      el('vscode-radio', { name: 'ablation-mode', value: 'zero', label: 'Zero', checked: true, title: "The head's output becomes 0" }),
      el('vscode-radio', { name: 'ablation-mode', value: 'mean', label: 'Mean', title: "The head's output becomes its mean over the window" }),
    );
    modeGroup.addEventListener('change', (e) => {
      const v = (e.target as HTMLElement & { value?: string }).value;
      if (v === 'zero' || v === 'mean') this.ablationMode = v;
    });
    this.runBtn = button('Run ablation', 'Run the text again without the chosen heads', () => void this.run(), false);
    this.runBtn.classList.add('run-ablation');
    const clearBtn = button('Clear', 'Clear the ablation result (here and in the editor)', () => this.host.clearAblation());
    clearBtn.classList.add('clear-ablation');
    this.status = el('p', { className: 'loss', role: 'status', 'aria-live': 'polite' });
    this.text = el('div', { className: 'ablation-text', role: 'group', 'aria-label': 'Surprisal change per token after the ablation', hidden: true });
    this.preds = el('div', { className: 'preds', hidden: true });
    this.element = el('section', { className: 'ablation', 'aria-labelledby': 'ablation-title' },
      el('h3', { id: 'ablation-title' }, 'Ablate heads'),
      el('p', { className: 'hint' }, 'Ctrl+click (⌘+click) a head in the Heads view to add or remove it.'),
      el('div', { className: 'row' }, this.heads, this.addSelected),
      el('div', { className: 'row' }, modeGroup, this.runBtn, clearBtn),
      this.status, this.text, this.preds);
  }

  /** Zero or mean: the mode picked here (the ranking uses it too). */
  get mode(): AblationMode {
    return this.ablationMode;
  }

  /** A new run: drop a result of another run and heads the model does not have. */
  setRun(): void {
    const run = this.state.run!;
    if (this.shown && this.shown.version !== run.version) this.shown = undefined;
    const { nLayer, nHead } = run.model;
    this.chosen = this.chosen.filter((h) => h.layer < nLayer && h.head < nHead);
    this.renderHeads();
    this.render();
  }

  /** The selected head changed: the "Add" button names it. */
  setHead(): void {
    this.addSelected.textContent = `Add L${this.state.layer} H${this.state.head}`;
  }

  /** Adds or removes a head of the ablation set (ctrl+click in the Heads view, the ranking, "Add selected head"). */
  toggle(layer: number, head: number, addOnly = false): void {
    const k = this.chosen.findIndex((h) => h.layer === layer && h.head === head);
    if (k >= 0) {
      if (addOnly) return;
      this.chosen.splice(k, 1);
    } else this.chosen.push({ layer, head });
    this.chosen.sort((a, b) => a.layer - b.layer || a.head - b.head);
    this.renderHeads();
    this.live.textContent = `${this.chosen.length} head${this.chosen.length === 1 ? '' : 's'} to ablate`;
  }

  /** An ablation result arrived (from this tab or the `headlight.ablateHeads` command); undefined: cleared. */
  set(a: AblationView | undefined): void {
    if (a && this.state.run && a.version !== this.state.run.version) return;
    this.shown = a;
    if (a) {
      this.chosen = a.heads.map((h) => ({ layer: h.layer, head: h.head }));
      this.renderHeads();
    }
    this.render();
  }

  /** The predictions before/after are for the selected token: re-run the shown ablation there (debounced). */
  followToken(): void {
    clearTimeout(this.followTimer);
    const a = this.shown;
    const run = this.state.run;
    if (!this.state.visible || !a || a.version !== run?.version || a.at === (this.at() ?? run.tokens.length)) return;
    this.followTimer = setTimeout(() => void this.run(a.heads, a.mode), 300);
  }

  private renderHeads(): void {
    const chips = this.chosen.map((h) => {
      const x = el('button', { className: 'chip-remove', 'aria-label': `Do not ablate layer ${h.layer} head ${h.head}`, title: 'Remove' }, '×');
      x.addEventListener('click', () => this.toggle(h.layer, h.head));
      return el('span', { className: 'chip ablate-chip', role: 'listitem', 'data-head': `${h.layer}.${h.head}` }, `L${h.layer} H${h.head}`, x);
    });
    this.heads.replaceChildren(...(chips.length ? chips : [el('span', { className: 'hint' }, 'No heads chosen.')]));
    (this.runBtn as HTMLElement & { disabled: boolean }).disabled = chips.length === 0;
  }

  /** Where the predictions are compared: after the selected token (undefined: after the last). */
  private at(): number | undefined {
    return this.state.token === undefined ? undefined : this.state.token + 1;
  }

  /** Runs the ablation (the chosen heads and mode, or those of a shown result to follow the token); latest wins. */
  private async run(heads: HeadRef[] = this.chosen, mode: AblationMode = this.ablationMode): Promise<void> {
    if (!this.state.run || heads.length === 0) return;
    const seq = ++this.seq;
    const following = heads !== this.chosen;
    this.status.classList.remove('error');
    if (!following) this.status.textContent = `Ablating ${heads.map((h) => selectorLabel(h)).join(', ')} (${mode})…`;
    try {
      const result = await this.host.ablate(heads.slice(), mode, this.at());
      if (seq !== this.seq) return;
      this.set(result);
      if (!following) this.status.scrollIntoView?.({ block: 'nearest' });
    } catch (err) {
      if (seq !== this.seq) return;
      this.status.classList.add('error');
      this.status.textContent = `Ablation failed: ${(err as Error).message}`;
    }
  }

  /** The colour of a surprisal change: worse (more surprising) toward red, better toward blue. */
  private deltaColor(delta: number, max: number): Rgb {
    const p = this.state.palette;
    return diverging(delta, max, p.backgroundRgb, p.huesRgb[4 % p.huesRgb.length], p.huesRgb[0]);
  }

  render(): void {
    const a = this.shown;
    const run = this.state.run;
    const { status, text, preds } = this;
    if (!a || !run) {
      text.hidden = true;
      preds.hidden = true;
      if (!status.classList.contains('error')) status.textContent = '';
      return;
    }
    status.classList.remove('error');
    const heads = a.heads.map((h) => selectorLabel(h)).join(', ');
    const max = Math.max(1, maxAbs(a.surprisalDelta));
    let worst = -1;
    a.surprisalDelta.forEach((d, i) => {
      if (Number.isFinite(d) && (worst < 0 || Math.abs(d) > Math.abs(a.surprisalDelta[worst]))) worst = i;
    });
    worst = Math.max(0, worst);
    status.textContent = `Without ${heads} (${a.mode}): loss ${fmt(a.lossBefore)} → ${fmt(a.lossAfter)} nats per token (${signed(a.lossDelta)}). Largest change: token ${worst} “${run.tokens[worst]?.text ?? ''}” ${signed(a.surprisalDelta[worst], 2)} bits.`;
    const spans = run.tokens.map((t, i) => {
      const d = a.surprisalDelta[i];
      const s = el('span', { className: 'dtok', 'data-i': String(i), 'data-delta': Number.isFinite(d) ? d.toFixed(4) : 'NaN', title: `${t.text}: ${fmt(a.surprisalBefore[i], 2)} → ${fmt(a.surprisalAfter[i], 2)} bits (${signed(d, 2)})` }, t.text);
      if (Number.isFinite(d) && d !== 0) s.style.backgroundColor = rgbCss(this.deltaColor(d, max));
      if (a.at - 1 === i) s.classList.add('at');
      s.addEventListener('click', () => this.host.pickToken(i));
      return s;
    });
    text.replaceChildren(...spans);
    text.hidden = false;
    const where = a.at >= 1 ? `after token ${a.at - 1} “${tokenLabel(run.tokens[a.at - 1]?.text ?? '', 16)}”` : 'at the start';
    const list = (ps: Prediction[], other: Prediction[], cls: string) =>
      el('ol', { className: cls }, ...ps.map((p) => el('li', { className: other.some((o) => o.id === p.id) ? '' : 'gone' }, `“${p.text}” ${pct(p.logprob)}`)));
    preds.replaceChildren(
      el('div', {}, el('strong', {}, `Predicted next ${where}, before`), list(a.predictionsBefore, a.predictionsAfter, 'before')),
      el('div', {}, el('strong', {}, 'after the ablation'), list(a.predictionsAfter, a.predictionsBefore, 'after')),
    );
    preds.hidden = a.predictionsBefore.length === 0 && a.predictionsAfter.length === 0;
  }
}
