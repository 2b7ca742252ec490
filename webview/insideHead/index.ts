/**
 * "Inside a head", a tab of the attention panel, in three sections (one file each):
 *  - Q·K (qkSection.ts): one query of the selected head taken apart, key by key;
 *  - Ablation (ablationSection.ts): remove chosen heads, re-run, see what changed;
 *  - Which heads matter here (rankingSection.ts): every head ablated alone, ranked by the loss change.
 * This class owns the tab's state (run, selected head and token, visibility, palette) and passes every change to
 * the sections. The engine computes everything; the tab only draws it. Its CSS is media/insideHead.css.
 */
import type { AblationView, RankingView, RunView } from '../../extension/common/webviewProtocol';
import { el, liveRegion } from '../dom';
import type { Palette } from '../theme';
import { AblationSection } from './ablationSection';
import type { InsideHeadHost, InsideState } from './context';
import { QkSection } from './qkSection';
import { RankingSection } from './rankingSection';

export type { InsideHeadHost } from './context';

export class InsideHead {
  readonly element: HTMLElement;
  private readonly state: { -readonly [K in keyof InsideState]: InsideState[K] };
  private readonly qk: QkSection;
  private readonly ablation: AblationSection;
  private readonly ranking: RankingSection;

  constructor(palette: Palette, host: InsideHeadHost) {
    this.state = { run: undefined, layer: 0, head: 0, token: undefined, visible: false, palette };
    const live = liveRegion();
    this.qk = new QkSection(this.state, host, () => this.element.clientWidth);
    this.ablation = new AblationSection(this.state, host, live);
    this.ranking = new RankingSection(this.state, host, () => this.ablation.mode, (l, h) => this.ablation.toggle(l, h));
    this.element = el('div', { className: 'inside' }, this.qk.element, this.ablation.element, this.ranking.element, live);
  }

  setPalette(p: Palette): void {
    this.state.palette = p;
    this.qk.draw();
    this.ablation.render();
    this.ranking.render();
  }

  setRun(run: RunView): void {
    const same = this.state.run?.version === run.version;
    this.state.run = run;
    if (same) return;
    this.qk.clear();
    this.ablation.setRun();
    this.ranking.setRun();
    this.qk.refresh();
  }

  /** The tab was shown or hidden: the Q·K breakdown is fetched only while it is visible. */
  setVisible(visible: boolean): void {
    this.state.visible = visible;
    if (visible) {
      this.qk.refresh();
      this.ablation.followToken();
    }
  }

  setHead(layer: number, head: number): void {
    if (layer === this.state.layer && head === this.state.head) return;
    this.state.layer = layer;
    this.state.head = head;
    this.ablation.setHead();
    this.ranking.render();
    this.qk.refresh();
  }

  setToken(index: number | undefined): void {
    if (index === this.state.token) return;
    this.state.token = index;
    this.qk.refresh();
    this.ablation.render();
    this.ablation.followToken();
  }

  /** Adds or removes a head of the ablation set (ctrl+click in the Heads view). */
  toggleAblate(layer: number, head: number): void {
    this.ablation.toggle(layer, head);
  }

  /** An ablation result arrived (from this tab or the `headlight.ablateHeads` command); undefined: cleared. */
  setAblation(a: AblationView | undefined): void {
    this.ablation.set(a);
  }

  setRankProgress(version: number, done: number, total: number): void {
    this.ranking.setProgress(version, done, total);
  }

  setRanking(r: RankingView): void {
    this.ranking.set(r);
  }
}
