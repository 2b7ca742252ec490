/**
 * "Which heads matter here", the third section of the Inside-a-head tab: ablate every head alone (the engine does,
 * request `rankHeads`, with progress events and Cancel) and list the heads by the loss change, with a bar each.
 * Click selects a head everywhere; ctrl+click adds it to the ablation above.
 */
import type { AblationMode } from '../../extension/common/engineProtocol';
import type { RankingView } from '../../extension/common/webviewProtocol';
import { el } from '../dom';
import { button } from './button';
import type { InsideHeadHost, InsideState } from './context';
import { signed } from './format';

export class RankingSection {
  readonly element: HTMLElement;
  private ranking: RankingView | undefined;
  private abort: AbortController | undefined;
  private readonly rankBtn: HTMLElement;
  private readonly progress: HTMLProgressElement;
  private readonly progressText: HTMLElement;
  private readonly cancelBtn: HTMLElement;
  private readonly list: HTMLElement;

  /** `mode`: the ablation mode picked in the section above; `toggleAblate`: ctrl+click on a head. */
  constructor(
    private readonly state: InsideState,
    private readonly host: Pick<InsideHeadHost, 'rankHeads' | 'selectHead'>,
    private readonly mode: () => AblationMode,
    private readonly toggleAblate: (layer: number, head: number) => void,
  ) {
    this.rankBtn = button('Rank all heads', 'Ablate every head alone and rank them by the loss change', () => void this.run(), false);
    this.rankBtn.classList.add('rank-heads');
    this.progress = el('progress', { max: '1', value: '0', 'aria-label': 'Heads ranked so far', hidden: true }) as HTMLProgressElement;
    this.progressText = el('span', { className: 'rank-progress', 'aria-live': 'polite' });
    this.cancelBtn = button('Cancel', 'Stop ranking heads', () => this.abort?.abort());
    this.cancelBtn.classList.add('cancel-rank');
    this.cancelBtn.hidden = true;
    this.list = el('ol', { className: 'ranking', 'aria-label': 'Heads by how much removing each alone changes the loss' });
    this.element = el('section', { className: 'rank', 'aria-labelledby': 'rank-title' },
      el('h3', { id: 'rank-title' }, 'Which heads matter here'),
      el('p', { className: 'hint' }, 'Loss change on the analysed text (mean nats per token) when one head alone is removed, with the ablation mode above. Click a head to select it.'),
      el('div', { className: 'row' }, this.rankBtn, this.progress, this.progressText, this.cancelBtn),
      this.list);
  }

  /** A new run: a ranking of another run is dropped. */
  setRun(): void {
    if (this.ranking && this.ranking.version !== this.state.run?.version) this.ranking = undefined;
    this.render();
  }

  setProgress(version: number, done: number, total: number): void {
    if (this.state.run?.version !== version) return;
    const p = this.progress;
    p.hidden = false;
    p.max = Math.max(1, total);
    p.value = done;
    this.progressText.textContent = `${done} / ${total} heads`;
  }

  /** A ranking finished (from this tab or the `headlight.rankHeads` command). */
  set(r: RankingView): void {
    if (this.state.run && r.version !== this.state.run.version) return;
    this.ranking = r;
    this.render();
  }

  private async run(): Promise<void> {
    if (!this.state.run) return;
    this.abort?.abort();
    const controller = new AbortController();
    this.abort = controller;
    const { rankBtn, cancelBtn, progress, progressText } = this;
    (rankBtn as HTMLElement & { disabled: boolean }).disabled = true;
    cancelBtn.hidden = false;
    progress.hidden = false;
    progress.value = 0;
    progressText.textContent = 'Starting…';
    try {
      this.set(await this.host.rankHeads(this.mode(), controller.signal));
      progressText.textContent = 'Done.';
      this.list.scrollIntoView?.({ block: 'nearest' });
    } catch (err) {
      const e = err as { code?: string; message: string };
      progressText.textContent = e.code === 'cancelled' || controller.signal.aborted ? 'Cancelled.' : `Ranking failed: ${e.message}`;
    } finally {
      if (this.abort === controller) this.abort = undefined;
      (rankBtn as HTMLElement & { disabled: boolean }).disabled = false;
      cancelBtn.hidden = true;
      progress.hidden = true;
    }
  }

  /** The list, the selected head outlined; bars scaled to the largest |Δloss|, red for worse, blue for better. */
  render(): void {
    const r = this.ranking;
    const list = this.list;
    if (!r) {
      list.replaceChildren();
      return;
    }
    const { hues } = this.state.palette;
    const max = Math.max(1e-9, ...r.ranking.map((x) => Math.abs(x.lossDelta)));
    list.replaceChildren(...r.ranking.map((x, k) => {
      const bar = el('span', { className: 'bar', 'aria-hidden': 'true' });
      bar.style.width = `${(Math.abs(x.lossDelta) / max) * 100}%`;
      bar.style.background = x.lossDelta >= 0 ? hues[4 % hues.length] : hues[0];
      const selected = x.layer === this.state.layer && x.head === this.state.head;
      const li = el('li', { tabindex: '0', role: 'button', className: selected ? 'selected' : '', 'data-head': `${x.layer}.${x.head}`, 'data-rank': String(k), 'aria-label': `Rank ${k + 1}: layer ${x.layer} head ${x.head}, loss ${signed(x.lossDelta)} nats. Click to select, ctrl+click to add to the ablation.` },
        el('span', {}, `L${x.layer} H${x.head}`), el('span', { className: 'delta' }, signed(x.lossDelta)), bar);
      const activate = (e: MouseEvent | KeyboardEvent) => {
        if (e.ctrlKey || e.metaKey) this.toggleAblate(x.layer, x.head);
        else this.host.selectHead(x.layer, x.head);
      };
      li.addEventListener('click', activate);
      li.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          activate(e);
        }
      });
      return li;
    }));
  }
}
