/**
 * "Inside a head", a tab of the attention panel:
 *  - Q·K: for the selected head and query token, the query q, every key's element-wise product q⊙k_j, the score
 *    q·k_j·scale before the softmax, the weight α_j after it, the value norm ‖v_j·W_O‖ and α_j·‖v_j·W_O‖, as one
 *    heatmap whose rows can be sorted by position or by contribution;
 *  - Ablation: remove chosen heads (zero or mean), re-run, and show each token's surprisal change on the text, the
 *    loss change and the predictions before/after at the selected token;
 *  - Which heads matter here: ablate every head alone and rank them by the loss change (progress, Cancel).
 * The engine computes everything (extension/engine/analyses/engine.ts); this module only draws it.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-radio/index.js';
import '@vscode-elements/elements/dist/vscode-radio-group/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import type { AblationMode, HeadRef, Prediction, QkBreakdown } from '../extension/common/engineProtocol';
import type { AblationView, RankingView, RunView } from '../extension/common/webviewProtocol';
import { fitCanvas, tokenLabel } from './canvas';
import { el, liveRegion, placeTooltip, toClient, tooltip } from './dom';
import type { Palette, Rgb } from './theme';
import { selectorLabel } from '../extension/common/displayNames';

export interface InsideHeadHost {
  qk(layer: number, head: number, index: number): Promise<QkBreakdown>;
  ablate(heads: HeadRef[], mode: AblationMode, at: number | undefined): Promise<AblationView>;
  rankHeads(mode: AblationMode, signal: AbortSignal): Promise<RankingView>;
  selectHead(layer: number, head: number): void;
  pickToken(index: number): void;
  clearAblation(): void;
}

export type QkSort = 'position' | 'score' | 'weight' | 'contribution';

/** Column layout of the Q·K heatmap, in CSS pixels (exposed on the canvas as data attributes for tests). */
export const QK = { labelW: 96, rowH: 14, headerH: 18, gap: 8, numW: 28, maxRows: 64 } as const;
/** The numeric columns right of the products, in order. */
export const QK_COLUMNS = ['score', 'weight', 'norm', 'contribution'] as const;

/** `bg` blended toward `fg` by t in [0, 1]. */
export function blend(bg: Rgb, fg: Rgb, t: number): Rgb {
  const u = Math.max(0, Math.min(1, t));
  return [Math.round(bg[0] + (fg[0] - bg[0]) * u), Math.round(bg[1] + (fg[1] - bg[1]) * u), Math.round(bg[2] + (fg[2] - bg[2]) * u)];
}

/** Diverging colour of v on a symmetric scale ±max: positive toward `pos`, negative toward `neg`. */
function diverging(v: number, max: number, bg: Rgb, pos: Rgb, neg: Rgb): Rgb {
  if (!(max > 0) || !Number.isFinite(v)) return bg;
  return blend(bg, v >= 0 ? pos : neg, Math.abs(v) / max);
}

const css = (c: Rgb) => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
const fmt = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : '–');
const signed = (x: number, d = 3) => `${x > 0 ? '+' : ''}${fmt(x, d)}`;
const pct = (logprob: number) => `${(Math.exp(logprob) * 100).toFixed(1)}%`;

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i]) && Math.abs(a[i]) > m) m = Math.abs(a[i]);
  return m;
}

const STYLE = `
.inside { display: flex; flex-direction: column; gap: 10px; overflow: auto; padding: 4px 2px 12px; min-height: 0; flex: 1; }
.inside section { border-top: 1px solid var(--vscode-panel-border, var(--vscode-contrastBorder, transparent)); padding-top: 6px; }
.inside h3 { font-size: 12px; margin: 0 0 4px; font-weight: 600; }
.inside .row { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 10px; margin: 2px 0 6px; }
.inside .hint { color: var(--vscode-descriptionForeground); font-size: 11px; margin: 2px 0; }
.inside .qk-wrap { position: relative; max-height: 42vh; overflow: auto; }
.inside .qk-wrap canvas { display: block; }
.inside .sr-table { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.inside .heads { display: inline-flex; gap: 4px; flex-wrap: wrap; }
.inside .ablation-text { font-family: var(--vscode-editor-font-family); font-size: var(--vscode-editor-font-size, 13px); white-space: pre-wrap; word-break: break-all; line-height: 1.6; max-height: 220px; overflow: auto; padding: 4px; border: 1px solid var(--vscode-panel-border, var(--vscode-contrastBorder, transparent)); }
.inside .ablation-text .dtok { border-radius: 2px; cursor: pointer; }
.inside .ablation-text .dtok.at { outline: 1px solid var(--vscode-focusBorder); }
.inside .preds { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 8px; font-size: 12px; }
.inside .preds ol { margin: 2px 0; padding-left: 22px; }
.inside .preds .gone { color: var(--vscode-descriptionForeground); text-decoration: line-through; }
.inside .loss { font-variant-numeric: tabular-nums; }
.inside progress { width: 180px; accent-color: var(--vscode-focusBorder); }
.inside .ranking { list-style: none; margin: 4px 0; padding: 0; max-height: 260px; overflow: auto; font-size: 12px; }
.inside .ranking li { display: grid; grid-template-columns: 70px 90px minmax(0, 260px); align-items: center; gap: 6px; padding: 1px 4px; cursor: pointer; border-radius: 2px; }
.inside .ranking li:hover, .inside .ranking li:focus-visible { background: var(--vscode-list-hoverBackground); outline: none; }
.inside .ranking li.selected { outline: 1px solid var(--vscode-focusBorder); }
.inside .ranking .delta { font-variant-numeric: tabular-nums; text-align: right; }
.inside .ranking .bar { height: 8px; border-radius: 1px; }
.inside .error { color: var(--vscode-errorForeground, var(--vscode-charts-red)); }
`;

let styled = false;
/** The module's CSS as a constructed stylesheet (allowed by the webview's CSP, like vscode-elements' own). */
function adoptStyle(): void {
  if (styled) return;
  styled = true;
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(STYLE);
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
}

export class InsideHead {
  readonly element: HTMLElement;
  private run: RunView | undefined;
  private layer = 0;
  private head = 0;
  private token: number | undefined;
  private sort: QkSort = 'score';
  private qk: QkBreakdown | undefined;
  private qkSeq = 0;
  private qkOrder: number[] = [];
  private ablateHeads: HeadRef[] = [];
  private mode: AblationMode = 'zero';
  private ablation: AblationView | undefined;
  private ranking: RankingView | undefined;
  private rankAbort: AbortController | undefined;
  private visible = false;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private ablationSeq = 0;
  private readonly ui: ReturnType<InsideHead['build']>;

  constructor(
    private palette: Palette,
    private readonly host: InsideHeadHost,
  ) {
    adoptStyle();
    this.ui = this.build();
    this.element = this.ui.root;
  }

  // ------------------------------------------------------------ layout

  private build() {
    const btn = (label: string, aria: string, onClick: () => void, secondary = true) => {
      const b = el('vscode-button', { secondary, 'aria-label': aria, title: aria }, label);
      b.addEventListener('click', onClick);
      return b;
    };
    // Q·K
    const qkTitle = el('h3', { id: 'qk-title' }, 'Q·K');
    const sort = el('vscode-single-select', { 'aria-label': 'Sort the keys by', className: 'qk-sort' }) as HTMLElement & { value: string };
    for (const [value, label] of [['score', 'score q·k (before softmax)'], ['weight', 'weight α (after softmax)'], ['contribution', 'contribution α·‖v·W_O‖'], ['position', 'position']] as const) {
      sort.append(el('vscode-option', { value, selected: value === this.sort }, label));
    }
    sort.addEventListener('change', () => {
      this.sort = (sort.value as QkSort) || 'score';
      this.drawQk();
    });
    const qkCanvas = el('canvas', { role: 'img', 'aria-labelledby': 'qk-title', className: 'qk-canvas' }) as HTMLCanvasElement;
    const qkTip = tooltip();
    const qkTable = el('table', { className: 'sr-table', 'aria-label': 'Keys of the selected query' });
    const qkWrap = el('div', { className: 'qk-wrap' }, qkCanvas, qkTip, qkTable);
    const qkNote = el('p', { className: 'hint qk-note' });
    qkCanvas.addEventListener('pointermove', (e) => this.qkHover(e.offsetX, e.offsetY));
    qkCanvas.addEventListener('pointerleave', () => (qkTip.hidden = true));
    qkCanvas.addEventListener('click', (e) => {
      const r = this.qkRowAt(e.offsetY);
      if (r !== undefined) this.host.pickToken(r);
    });
    const qkSection = el('section', { className: 'qk', 'aria-labelledby': 'qk-title' },
      qkTitle, el('div', { className: 'row' }, el('span', {}, 'Sort keys by'), sort), qkNote, qkWrap);

    // Ablation
    const heads = el('span', { className: 'heads', role: 'list', 'aria-label': 'Heads to ablate' });
    const addSelected = btn(`Add L${this.layer} H${this.head}`, 'Add the selected head to the heads to ablate', () => this.toggleAblate(this.layer, this.head, true));
    const modeGroup = el('vscode-radio-group', { 'aria-label': 'Ablation mode', className: 'ablation-mode' },
      el('vscode-radio', { name: 'ablation-mode', value: 'zero', label: 'Zero', checked: true, title: "The head's output becomes 0" }),
      el('vscode-radio', { name: 'ablation-mode', value: 'mean', label: 'Mean', title: "The head's output becomes its mean over the window" }),
    );
    modeGroup.addEventListener('change', (e) => {
      const v = (e.target as HTMLElement & { value?: string }).value;
      if (v === 'zero' || v === 'mean') this.mode = v;
    });
    const runBtn = btn('Run ablation', 'Run the text again without the chosen heads', () => void this.runAblation(), false);
    runBtn.classList.add('run-ablation');
    const clearBtn = btn('Clear', 'Clear the ablation result (here and in the editor)', () => this.host.clearAblation());
    clearBtn.classList.add('clear-ablation');
    const ablationStatus = el('p', { className: 'loss', role: 'status', 'aria-live': 'polite' });
    const ablationText = el('div', { className: 'ablation-text', role: 'group', 'aria-label': 'Surprisal change per token after the ablation', hidden: true });
    const preds = el('div', { className: 'preds', hidden: true });
    const ablationSection = el('section', { className: 'ablation', 'aria-labelledby': 'ablation-title' },
      el('h3', { id: 'ablation-title' }, 'Ablate heads'),
      el('p', { className: 'hint' }, 'Ctrl+click (⌘+click) a head in the Heads view to add or remove it.'),
      el('div', { className: 'row' }, heads, addSelected),
      el('div', { className: 'row' }, modeGroup, runBtn, clearBtn),
      ablationStatus, ablationText, preds);

    // Which heads matter here
    const rankBtn = btn('Rank all heads', 'Ablate every head alone and rank them by the loss change', () => void this.runRanking(), false);
    rankBtn.classList.add('rank-heads');
    const progress = el('progress', { max: '1', value: '0', 'aria-label': 'Heads ranked so far', hidden: true }) as HTMLProgressElement;
    const progressText = el('span', { className: 'rank-progress', 'aria-live': 'polite' });
    const cancelBtn = btn('Cancel', 'Stop ranking heads', () => this.rankAbort?.abort());
    cancelBtn.classList.add('cancel-rank');
    cancelBtn.hidden = true;
    const rankingList = el('ol', { className: 'ranking', 'aria-label': 'Heads by how much removing each alone changes the loss' });
    const rankSection = el('section', { className: 'rank', 'aria-labelledby': 'rank-title' },
      el('h3', { id: 'rank-title' }, 'Which heads matter here'),
      el('p', { className: 'hint' }, 'Loss change on the analysed text (mean nats per token) when one head alone is removed, with the ablation mode above. Click a head to select it.'),
      el('div', { className: 'row' }, rankBtn, progress, progressText, cancelBtn),
      rankingList);

    const live = liveRegion();
    const root = el('div', { className: 'inside' }, qkSection, ablationSection, rankSection, live);
    return { root, qkTitle, qkCanvas, qkTip, qkTable, qkNote, heads, addSelected, runBtn, ablationStatus, ablationText, preds, rankBtn, progress, progressText, cancelBtn, rankingList, live };
  }

  // ------------------------------------------------------------ inputs

  setPalette(p: Palette): void {
    this.palette = p;
    this.drawQk();
    this.renderAblation();
    this.renderRanking();
  }

  setRun(run: RunView): void {
    const same = this.run?.version === run.version;
    this.run = run;
    if (same) return;
    this.qk = undefined;
    if (this.ablation && this.ablation.version !== run.version) this.ablation = undefined;
    if (this.ranking && this.ranking.version !== run.version) this.ranking = undefined;
    const { nLayer, nHead } = run.model;
    this.ablateHeads = this.ablateHeads.filter((h) => h.layer < nLayer && h.head < nHead);
    this.renderHeads();
    this.renderAblation();
    this.renderRanking();
    this.refreshQk();
  }

  /** The tab was shown or hidden: the Q·K breakdown is fetched only while it is visible. */
  setVisible(visible: boolean): void {
    this.visible = visible;
    if (visible) {
      this.refreshQk();
      this.followToken();
    }
  }

  setHead(layer: number, head: number): void {
    if (layer === this.layer && head === this.head) return;
    this.layer = layer;
    this.head = head;
    this.ui.addSelected.textContent = `Add L${layer} H${head}`;
    this.renderRanking();
    this.refreshQk();
  }

  setToken(index: number | undefined): void {
    if (index === this.token) return;
    this.token = index;
    this.refreshQk();
    this.renderAblation();
    this.followToken();
  }

  /** The predictions before/after are for the selected token: re-run the shown ablation there (debounced). */
  private followToken(): void {
    clearTimeout(this.refreshTimer);
    const a = this.ablation;
    if (!this.visible || !a || a.version !== this.run?.version || a.at === (this.at() ?? this.run.tokens.length)) return;
    this.refreshTimer = setTimeout(() => void this.runAblation(a.heads, a.mode), 300);
  }

  /** Adds or removes a head of the ablation set (ctrl+click in the Heads view, the ranking, "Add selected head"). */
  toggleAblate(layer: number, head: number, addOnly = false): void {
    const k = this.ablateHeads.findIndex((h) => h.layer === layer && h.head === head);
    if (k >= 0) {
      if (addOnly) return;
      this.ablateHeads.splice(k, 1);
    } else this.ablateHeads.push({ layer, head });
    this.ablateHeads.sort((a, b) => a.layer - b.layer || a.head - b.head);
    this.renderHeads();
    this.ui.live.textContent = `${this.ablateHeads.length} head${this.ablateHeads.length === 1 ? '' : 's'} to ablate`;
  }

  get heads(): HeadRef[] {
    return this.ablateHeads.slice();
  }

  /** An ablation result arrived (from this tab or the `headlight.ablateHeads` command); undefined: cleared. */
  setAblation(a: AblationView | undefined): void {
    if (a && this.run && a.version !== this.run.version) return;
    this.ablation = a;
    if (a) {
      this.ablateHeads = a.heads.map((h) => ({ layer: h.layer, head: h.head }));
      this.renderHeads();
    }
    this.renderAblation();
  }

  setRankProgress(version: number, done: number, total: number): void {
    if (this.run?.version !== version) return;
    const p = this.ui.progress;
    p.hidden = false;
    p.max = Math.max(1, total);
    p.value = done;
    this.ui.progressText.textContent = `${done} / ${total} heads`;
  }

  setRanking(r: RankingView): void {
    if (this.run && r.version !== this.run.version) return;
    this.ranking = r;
    this.renderRanking();
  }

  // ------------------------------------------------------------ Q·K

  private refreshQk(): void {
    const run = this.run;
    if (!this.visible || !run) return;
    const index = this.token ?? run.tokens.length - 1;
    const q = this.qk;
    if (q && q.layer === this.layer && q.head === this.head && q.index === index) return;
    const seq = ++this.qkSeq;
    const { layer, head } = this;
    this.ui.qkNote.textContent = `Loading ${selectorLabel({ layer, head })}, query ${index}…`;
    this.host.qk(layer, head, index).then(
      (b) => {
        if (seq !== this.qkSeq) return;
        this.qk = b;
        this.drawQk();
      },
      (err: Error) => {
        if (seq !== this.qkSeq) return;
        this.qk = undefined;
        this.ui.qkNote.textContent = `Could not take the head apart: ${err.message}`;
        this.ui.qkNote.classList.add('error');
      },
    );
  }

  /** Key indices in display order (at most QK.maxRows). */
  private order(b: QkBreakdown): number[] {
    const n = b.index + 1;
    const idx = Array.from({ length: n }, (_, j) => j);
    const contribution = (j: number) => b.probs[j] * b.valueNorms[j];
    const key: Record<QkSort, (j: number) => number> = {
      position: (j) => -j,
      score: (j) => b.scores[j],
      weight: (j) => b.probs[j],
      contribution,
    };
    const f = key[this.sort];
    if (this.sort === 'position') idx.sort((a, c) => a - c);
    else idx.sort((a, c) => f(c) - f(a) || a - c);
    return idx.slice(0, QK.maxRows);
  }

  private drawQk(): void {
    const b = this.qk;
    const run = this.run;
    const canvas = this.ui.qkCanvas;
    this.ui.qkNote.classList.remove('error');
    if (!b || !run) {
      fitCanvas(canvas, 1, 1);
      return;
    }
    const p = this.palette;
    const D = b.query.length;
    const n = b.index + 1;
    const order = this.order(b);
    this.qkOrder = order;
    const avail = Math.max(200, (this.element.clientWidth || 600) - 16);
    const cellW = Math.max(3, Math.min(12, Math.floor((avail - QK.labelW - QK.gap * 2 - QK.numW * QK_COLUMNS.length) / D)));
    const numX = QK.labelW + D * cellW + QK.gap;
    const width = numX + QK.numW * QK_COLUMNS.length + 4;
    const top = QK.headerH + QK.rowH + 4; // header, then the query row, then the keys
    const height = top + order.length * QK.rowH + 2;
    const ctx = fitCanvas(canvas, width, height);
    Object.assign(canvas.dataset, { cellW: String(cellW), rowH: String(QK.rowH), labelW: String(QK.labelW), top: String(top), queryTop: String(QK.headerH), numX: String(numX), numW: String(QK.numW), rows: order.join(','), painted: String(performance.now()) });
    ctx.fillStyle = p.background;
    ctx.fillRect(0, 0, width, height);
    ctx.font = `11px ${p.monoFont}`;
    ctx.textBaseline = 'middle';
    ctx.fillStyle = p.muted;
    ctx.fillText(`q⊙k (${D} dims)`, QK.labelW, QK.headerH / 2);
    const heads = ['s', 'α', '‖v‖', 'α‖v‖'];
    heads.forEach((h, c) => ctx.fillText(h, numX + c * QK.numW + 2, QK.headerH / 2));

    const bg = p.backgroundRgb;
    const pos = p.huesRgb[1 % p.huesRgb.length]; // orange: positive
    const neg = p.huesRgb[0]; // blue: negative
    // the query vector
    const qMax = maxAbs(b.query);
    ctx.fillStyle = p.foreground;
    ctx.fillText(`q ${tokenLabel(run.tokens[b.index]?.text ?? '', 9)}`, 2, QK.headerH + QK.rowH / 2);
    for (let d = 0; d < D; d++) {
      ctx.fillStyle = css(diverging(b.query[d], qMax, bg, pos, neg));
      ctx.fillRect(QK.labelW + d * cellW, QK.headerH, cellW - (cellW > 4 ? 1 : 0), QK.rowH - 1);
    }
    // products q_d·k_jd, on one scale over every key shown
    const prods = new Float32Array(order.length * D);
    order.forEach((j, r) => {
      for (let d = 0; d < D; d++) prods[r * D + d] = b.query[d] * b.keys[j * D + d];
    });
    const pMax = maxAbs(prods);
    const sMax = maxAbs(Array.from(order, (j) => b.scores[j]));
    let nMax = 0;
    let cMax = 0;
    for (let j = 0; j < n; j++) {
      nMax = Math.max(nMax, b.valueNorms[j]);
      cMax = Math.max(cMax, b.probs[j] * b.valueNorms[j]);
    }
    const lut = p.lut;
    const seq = (t: number): string => {
      const k = Math.round(Math.max(0, Math.min(1, t)) * 255) * 4;
      return `rgb(${lut[k]}, ${lut[k + 1]}, ${lut[k + 2]})`;
    };
    order.forEach((j, r) => {
      const y = top + r * QK.rowH;
      ctx.fillStyle = j === b.index ? p.foreground : p.muted;
      ctx.fillText(`${j} ${tokenLabel(run.tokens[j]?.text ?? '', 8)}`, 2, y + QK.rowH / 2);
      for (let d = 0; d < D; d++) {
        ctx.fillStyle = css(diverging(prods[r * D + d], pMax, bg, pos, neg));
        ctx.fillRect(QK.labelW + d * cellW, y, cellW - (cellW > 4 ? 1 : 0), QK.rowH - 1);
      }
      const cells = [css(diverging(b.scores[j], sMax, bg, pos, neg)), seq(b.probs[j]), seq(nMax > 0 ? b.valueNorms[j] / nMax : 0), seq(cMax > 0 ? (b.probs[j] * b.valueNorms[j]) / cMax : 0)];
      cells.forEach((c, k) => {
        ctx.fillStyle = c;
        ctx.fillRect(numX + k * QK.numW, y, QK.numW - 2, QK.rowH - 1);
      });
    });
    this.ui.qkTitle.textContent = `Q·K — ${selectorLabel({ layer: b.layer, head: b.head })}, query ${b.index} “${tokenLabel(run.tokens[b.index]?.text ?? '', 16)}”`;
    canvas.setAttribute('aria-label', `Query ${b.index} of layer ${b.layer} head ${b.head}: element-wise products with ${n} keys, scores before and after softmax; the strongest key is ${order[0]}.`);
    this.ui.qkNote.textContent = `score s = q·k × ${fmt(b.scale, 4)} (before softmax), α = softmax(s) (after), ‖v‖ = ‖v·W_O‖ (what the key adds per unit of attention). Colours: orange > 0, blue < 0.${n > order.length ? ` Showing ${order.length} of ${n} keys.` : ''}`;
    this.renderQkTable(b, order);
  }

  private renderQkTable(b: QkBreakdown, order: number[]): void {
    const run = this.run!;
    const head = el('tr', {}, ...['key', 'token', 'score', 'weight', 'value norm', 'contribution'].map((h) => el('th', { scope: 'col' }, h)));
    const rows = order.map((j) =>
      el('tr', { 'data-j': String(j) },
        el('td', {}, String(j)), el('td', {}, run.tokens[j]?.text ?? ''), el('td', { className: 'score' }, fmt(b.scores[j], 4)),
        el('td', { className: 'weight' }, fmt(b.probs[j], 4)), el('td', {}, fmt(b.valueNorms[j], 4)), el('td', {}, fmt(b.probs[j] * b.valueNorms[j], 4))),
    );
    this.ui.qkTable.replaceChildren(head, ...rows);
  }

  private qkRowAt(y: number): number | undefined {
    const top = Number(this.ui.qkCanvas.dataset.top ?? 0);
    const r = Math.floor((y - top) / QK.rowH);
    return y >= top && r >= 0 && r < this.qkOrder.length ? this.qkOrder[r] : undefined;
  }

  private qkHover(x: number, y: number): void {
    const b = this.qk;
    const tip = this.ui.qkTip;
    const j = this.qkRowAt(y);
    if (!b || j === undefined) {
      tip.hidden = true;
      return;
    }
    const D = b.query.length;
    const cellW = Number(this.ui.qkCanvas.dataset.cellW);
    const d = Math.floor((x - QK.labelW) / cellW);
    const dim = d >= 0 && d < D ? `\ndim ${d}: q ${fmt(b.query[d])} × k ${fmt(b.keys[j * D + d])} = ${fmt(b.query[d] * b.keys[j * D + d], 4)}` : '';
    tip.textContent = `key ${j} “${this.run?.tokens[j]?.text ?? ''}”\nscore ${fmt(b.scores[j], 4)} · α ${fmt(b.probs[j], 4)} · ‖v‖ ${fmt(b.valueNorms[j])} · α‖v‖ ${fmt(b.probs[j] * b.valueNorms[j], 4)}${dim}`;
    placeTooltip(tip, toClient(this.ui.qkCanvas, { x: x + 12, y: y - QK.rowH / 2, width: 1, height: QK.rowH })); // kept on screen
  }

  // ------------------------------------------------------------ ablation

  private renderHeads(): void {
    const chips = this.ablateHeads.map((h) => {
      const x = el('button', { className: 'chip-remove', 'aria-label': `Do not ablate layer ${h.layer} head ${h.head}`, title: 'Remove' }, '×');
      x.addEventListener('click', () => this.toggleAblate(h.layer, h.head));
      return el('span', { className: 'chip ablate-chip', role: 'listitem', 'data-head': `${h.layer}.${h.head}` }, `L${h.layer} H${h.head}`, x);
    });
    this.ui.heads.replaceChildren(...(chips.length ? chips : [el('span', { className: 'hint' }, 'No heads chosen.')]));
    (this.ui.runBtn as HTMLElement & { disabled: boolean }).disabled = chips.length === 0;
  }

  private at(): number | undefined {
    return this.token === undefined ? undefined : this.token + 1;
  }

  /** Runs the ablation (the chosen heads and mode, or those of a shown result to follow the token); latest wins. */
  private async runAblation(heads: HeadRef[] = this.ablateHeads, mode: AblationMode = this.mode): Promise<void> {
    if (!this.run || heads.length === 0) return;
    const seq = ++this.ablationSeq;
    const following = heads !== this.ablateHeads;
    this.ui.ablationStatus.classList.remove('error');
    if (!following) this.ui.ablationStatus.textContent = `Ablating ${heads.map((h) => selectorLabel(h)).join(', ')} (${mode})…`;
    try {
      const result = await this.host.ablate(heads.slice(), mode, this.at());
      if (seq !== this.ablationSeq) return;
      this.setAblation(result);
      if (!following) this.ui.ablationStatus.scrollIntoView?.({ block: 'nearest' });
    } catch (err) {
      if (seq !== this.ablationSeq) return;
      this.ui.ablationStatus.classList.add('error');
      this.ui.ablationStatus.textContent = `Ablation failed: ${(err as Error).message}`;
    }
  }

  /** The colour of a surprisal change: worse (more surprising) toward red, better toward blue. */
  deltaColor(delta: number, max: number): Rgb {
    const p = this.palette;
    return diverging(delta, max, p.backgroundRgb, p.huesRgb[4 % p.huesRgb.length], p.huesRgb[0]);
  }

  private renderAblation(): void {
    const a = this.ablation;
    const run = this.run;
    const { ablationStatus, ablationText, preds } = this.ui;
    if (!a || !run) {
      ablationText.hidden = true;
      preds.hidden = true;
      if (!ablationStatus.classList.contains('error')) ablationStatus.textContent = '';
      return;
    }
    ablationStatus.classList.remove('error');
    const heads = a.heads.map((h) => selectorLabel(h)).join(', ');
    const max = Math.max(1, maxAbs(a.surprisalDelta));
    let worst = -1;
    a.surprisalDelta.forEach((d, i) => {
      if (Number.isFinite(d) && (worst < 0 || Math.abs(d) > Math.abs(a.surprisalDelta[worst]))) worst = i;
    });
    worst = Math.max(0, worst);
    ablationStatus.textContent = `Without ${heads} (${a.mode}): loss ${fmt(a.lossBefore)} → ${fmt(a.lossAfter)} nats per token (${signed(a.lossDelta)}). Largest change: token ${worst} “${run.tokens[worst]?.text ?? ''}” ${signed(a.surprisalDelta[worst], 2)} bits.`;
    const spans = run.tokens.map((t, i) => {
      const d = a.surprisalDelta[i];
      const s = el('span', { className: 'dtok', 'data-i': String(i), 'data-delta': Number.isFinite(d) ? d.toFixed(4) : 'NaN', title: `${t.text}: ${fmt(a.surprisalBefore[i], 2)} → ${fmt(a.surprisalAfter[i], 2)} bits (${signed(d, 2)})` }, t.text);
      if (Number.isFinite(d) && d !== 0) s.style.backgroundColor = css(this.deltaColor(d, max));
      if (a.at - 1 === i) s.classList.add('at');
      s.addEventListener('click', () => this.host.pickToken(i));
      return s;
    });
    ablationText.replaceChildren(...spans);
    ablationText.hidden = false;
    const where = a.at >= 1 ? `after token ${a.at - 1} “${tokenLabel(run.tokens[a.at - 1]?.text ?? '', 16)}”` : 'at the start';
    const list = (ps: Prediction[], other: Prediction[], cls: string) =>
      el('ol', { className: cls }, ...ps.map((p) => el('li', { className: other.some((o) => o.id === p.id) ? '' : 'gone' }, `“${p.text}” ${pct(p.logprob)}`)));
    preds.replaceChildren(
      el('div', {}, el('strong', {}, `Predicted next ${where}, before`), list(a.predictionsBefore, a.predictionsAfter, 'before')),
      el('div', {}, el('strong', {}, 'after the ablation'), list(a.predictionsAfter, a.predictionsBefore, 'after')),
    );
    preds.hidden = a.predictionsBefore.length === 0 && a.predictionsAfter.length === 0;
  }

  // ------------------------------------------------------------ ranking

  private async runRanking(): Promise<void> {
    if (!this.run) return;
    this.rankAbort?.abort();
    const controller = new AbortController();
    this.rankAbort = controller;
    const { rankBtn, cancelBtn, progress, progressText } = this.ui;
    (rankBtn as HTMLElement & { disabled: boolean }).disabled = true;
    cancelBtn.hidden = false;
    progress.hidden = false;
    progress.value = 0;
    progressText.textContent = 'Starting…';
    try {
      this.setRanking(await this.host.rankHeads(this.mode, controller.signal));
      progressText.textContent = 'Done.';
      this.ui.rankingList.scrollIntoView?.({ block: 'nearest' });
    } catch (err) {
      const e = err as { code?: string; message: string };
      progressText.textContent = e.code === 'cancelled' || controller.signal.aborted ? 'Cancelled.' : `Ranking failed: ${e.message}`;
    } finally {
      if (this.rankAbort === controller) this.rankAbort = undefined;
      (rankBtn as HTMLElement & { disabled: boolean }).disabled = false;
      cancelBtn.hidden = true;
      progress.hidden = true;
    }
  }

  private renderRanking(): void {
    const r = this.ranking;
    const list = this.ui.rankingList;
    if (!r) {
      list.replaceChildren();
      return;
    }
    const max = Math.max(1e-9, ...r.ranking.map((x) => Math.abs(x.lossDelta)));
    list.replaceChildren(...r.ranking.map((x, k) => {
      const bar = el('span', { className: 'bar', 'aria-hidden': 'true' });
      bar.style.width = `${(Math.abs(x.lossDelta) / max) * 100}%`;
      bar.style.background = x.lossDelta >= 0 ? this.palette.hues[4 % this.palette.hues.length] : this.palette.hues[0];
      const selected = x.layer === this.layer && x.head === this.head;
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
