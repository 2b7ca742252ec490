/**
 * The Logit lens tab's attribution section: direct logit attribution at the cursor's token (it follows the editor's
 * cursor and the panel's picks), as a layer × head heatmap with the MLPs and the embeddings
 * (attributionHeatmap.ts), and the parts ranked by size with their values. The target is the actual next token (at
 * the window's end the model's top-1); a contrast token from the model's top guesses asks "why this rather than that?".
 */
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import type { Attribution, HeadSelector, TokenLens } from '../extension/common/engineProtocol';
import type { Token } from '../extension/common/tokens';
import { AttributionHeatmap, attributionHues, formatLogit } from './attributionHeatmap';
import { tokenLabel } from './canvas';
import { el } from './dom';
import { rgbCss } from './insideHead/colours';
import type { Palette } from './theme';

/** Parts listed, largest |value| first. */
const RANKED = 12;

export interface AttributionHost {
  attribute(index: number, target: number | undefined, vs: number | undefined, signal: AbortSignal): Promise<Attribution>;
  /** The token's lens (its guesses at the output name the contrast choices and the target's text). */
  lensAt(index: number): Promise<TokenLens>;
  selectHead(layer: number, head: number): void;
}

export class AttributionView {
  readonly element: HTMLElement;
  private readonly heat: AttributionHeatmap;
  private readonly title: HTMLElement;
  private readonly note: HTMLElement;
  private readonly vsSelect: HTMLElement & { value: string };
  private readonly list: HTMLElement;
  private readonly table: HTMLElement;
  private tokens: Token[] = [];
  private index: number | undefined;
  private vs: number | undefined;
  private visible = false;
  private inflight: AbortController | undefined;
  private shown: Attribution | undefined;
  private lens: TokenLens | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private palette: Palette,
    private readonly host: AttributionHost,
  ) {
    this.heat = new AttributionHeatmap(palette, { onSelect: (l, h) => host.selectHead(l, h) });
    this.title = el('h3', { id: 'attribution-title' }, 'Direct logit attribution');
    this.note = el('p', { className: 'hint attribution-note', 'aria-live': 'polite' });
    this.vsSelect = el('vscode-single-select', { 'aria-label': 'Contrast token: why the target rather than this guess', className: 'attribution-vs' }) as HTMLElement & { value: string };
    this.vsSelect.addEventListener('change', () => {
      const v = this.vsSelect.value;
      this.vs = v === '' || v === 'none' ? undefined : Number(v);
      this.fetch();
    });
    this.list = el('ol', { className: 'attribution-list', 'aria-label': 'The largest parts, with their contributions to the logit' });
    this.table = el('table', { className: 'sr-only', 'aria-label': 'Every part of the attribution' });
    const legend = el('span', { className: 'attribution-legend' }, el('span', { className: 'swatch for', 'aria-hidden': 'true' }), 'pushes for ', el('span', { className: 'swatch against', 'aria-hidden': 'true' }), 'against');
    this.element = el('section', { className: 'attribution', 'aria-labelledby': 'attribution-title' },
      el('div', { className: 'attribution-head' }, this.title, el('label', { className: 'attribution-vs-label' }, 'rather than ', this.vsSelect), legend),
      this.note,
      el('div', { className: 'attribution-body' }, this.heat.element, this.list),
      this.table,
    );
    new ResizeObserver(() => this.heat.draw(this.heatWidth())).observe(this.element);
  }

  private heatWidth(): number {
    return Math.max(160, Math.min(420, Math.floor(this.element.clientWidth * 0.5)));
  }

  setPalette(p: Palette): void {
    this.palette = p;
    this.heat.setPalette(p);
    this.renderList();
  }

  setSelection(sel: HeadSelector): void {
    this.heat.setSelection(sel);
  }

  setRun(tokens: Token[]): void {
    this.tokens = tokens;
    this.shown = undefined;
    this.lens = undefined;
    this.vs = undefined;
    this.heat.set(undefined);
    this.renderList();
    if (this.index !== undefined && this.index >= tokens.length) this.index = undefined;
    this.schedule();
  }

  /** The cursor's (or the picked) token; the contrast is dropped (its choices are this token's guesses). */
  setToken(i: number | undefined): void {
    if (i === this.index) return;
    this.index = i;
    this.vs = undefined;
    this.schedule();
  }

  setVisible(visible: boolean): void {
    if (visible === this.visible) return;
    this.visible = visible;
    if (visible) this.schedule();
    else this.inflight?.abort();
  }

  /** Cursor moves come in bursts: the latest wins. */
  private schedule(): void {
    clearTimeout(this.timer);
    if (!this.visible) return;
    this.timer = setTimeout(() => this.fetch(), 40);
  }

  private fetch(): void {
    this.inflight?.abort();
    const i = this.index;
    if (!this.visible) return;
    if (i === undefined || !this.tokens.length) {
      this.note.textContent = 'Put the cursor on a token (in the editor or the panel) to see what writes its next-token logit.';
      this.heat.set(undefined);
      this.shown = undefined;
      this.renderList();
      return;
    }
    const controller = new AbortController();
    this.inflight = controller;
    const vs = this.vs;
    const target = vs === undefined ? undefined : this.shown?.target;
    this.note.textContent = `Computing the attribution at #${i}…`;
    void Promise.all([this.host.attribute(i, target, vs, controller.signal), this.host.lensAt(i).catch(() => undefined)]).then(
      ([a, lens]) => {
        if (controller.signal.aborted || this.index !== i) return;
        this.shown = a;
        this.lens = lens;
        this.heat.set(a);
        this.heat.draw(this.heatWidth());
        this.renderChoices();
        this.renderList();
      },
      (err: { code?: string; message: string }) => {
        if (controller.signal.aborted || err.code === 'cancelled' || err.code === 'stale-run') return;
        this.note.textContent = `The attribution failed: ${err.message}`;
      },
    );
  }

  /** The target's text: the actual next token, or (at the end) the model's top guess from the lens. */
  private textOf(id: number | null): string {
    if (id === null) return '';
    const next = this.index !== undefined ? this.tokens[this.index + 1] : undefined;
    if (next && next.id === id) return next.text;
    const out = this.lens?.top[this.lens.top.length - 1] ?? [];
    return out.find((g) => g.id === id)?.text ?? `id ${id}`;
  }

  private renderChoices(): void {
    const a = this.shown;
    const guesses = (this.lens?.top[this.lens.top.length - 1] ?? []).filter((g) => g.id !== a?.target);
    this.vsSelect.replaceChildren(
      el('vscode-option', { value: 'none', selected: this.vs === undefined }, 'nothing (the logit itself)'),
      ...guesses.map((g) => el('vscode-option', { value: String(g.id), selected: this.vs === g.id }, `“${tokenLabel(g.text, 20)}” (${(Math.exp(g.logprob) * 100).toFixed(1)}%)`)),
    );
  }

  private renderList(): void {
    const a = this.shown;
    if (!a) {
      this.list.replaceChildren();
      this.table.replaceChildren();
      return;
    }
    const tok = this.tokens[a.position];
    const target = `“${tokenLabel(this.textOf(a.target), 20)}”`;
    const last = a.position === this.tokens.length - 1;
    this.title.textContent = `Direct logit attribution at #${a.position} “${tokenLabel(tok?.text ?? '', 16)}” → ${target}${a.vs !== null ? ` rather than “${tokenLabel(this.textOf(a.vs), 20)}”` : ''}`;
    const total = a.vs !== null && a.logitVs !== null ? a.logitTarget - a.logitVs : a.logitTarget;
    this.note.textContent = `${last ? 'The window’s last token: the target is the model’s top guess. ' : 'The target is the actual next token. '}` +
      `${a.vs !== null ? `Logit difference ${formatLogit(total)} (${a.logitTarget.toFixed(2)} vs ${a.logitVs?.toFixed(2)})` : `Logit ${a.logitTarget.toFixed(2)}`}, the sum of the parts below (before any final soft-cap).`;
    const ranked = [...a.parts].sort((x, y) => Math.abs(y.value) - Math.abs(x.value));
    const max = Math.abs(ranked[0]?.value ?? 0) || 1;
    const { pos, neg } = attributionHues(this.palette);
    this.list.replaceChildren(...ranked.slice(0, RANKED).map((part) => {
      const bar = el('span', { className: 'bar', 'aria-hidden': 'true' });
      bar.style.width = `${Math.round((Math.abs(part.value) / max) * 100)}%`;
      bar.style.background = rgbCss(part.value >= 0 ? pos : neg);
      const head = /^L(\d+)H(\d+)$/.exec(part.name);
      const label = head ? `L${head[1]} H${head[2]}` : part.name;
      const item = el(head ? 'button' : 'span', { className: `attribution-part ${part.value >= 0 ? 'for' : 'against'}`, 'aria-label': `${label}: ${formatLogit(part.value)}${head ? '. Select this head.' : ''}` },
        el('span', { className: 'part-name' }, label), el('span', { className: 'part-value' }, formatLogit(part.value)), el('span', { className: 'bar-track' }, bar));
      if (head) item.addEventListener('click', () => this.host.selectHead(Number(head[1]), Number(head[2])));
      return el('li', {}, item);
    }));
    const head = el('tr', {}, el('th', { scope: 'col' }, 'part'), el('th', { scope: 'col' }, 'contribution'));
    this.table.replaceChildren(head, ...ranked.map((p) => el('tr', {}, el('th', { scope: 'row' }, p.name), el('td', {}, formatLogit(p.value)))));
  }
}
