/**
 * Q·K, the first section of the Inside-a-head tab: for the selected head and query token, the query q, every key's
 * element-wise product q⊙k_j, the score q·k_j·scale before the softmax, the weight α_j after it, the value norm
 * ‖v_j·W_O‖ and α_j·‖v_j·W_O‖, as one heatmap whose rows can be sorted by position or by contribution. A hidden
 * table states the same numbers for screen readers. The engine computes them (request `qk`); this draws them.
 */
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import type { QkBreakdown } from '../../extension/common/engineProtocol';
import { selectorLabel } from '../../extension/common/displayNames';
import { fitCanvas, tokenLabel } from '../canvas';
import { el, placeTooltip, toClient, tooltip } from '../dom';
import { diverging, maxAbs, rgbCss } from './colours';
import type { InsideHeadHost, InsideState } from './context';
import { fmt } from './format';

export type QkSort = 'position' | 'score' | 'weight' | 'contribution';

/** Column layout of the Q·K heatmap, in CSS pixels (exposed on the canvas as data attributes for tests). */
export const QK = { labelW: 96, rowH: 14, headerH: 18, gap: 8, numW: 28, maxRows: 64 } as const;
/** The numeric columns right of the products, in order; rotary models add `unrotated` beside `score`. */
export const QK_COLUMNS = ['score', 'weight', 'norm', 'contribution'] as const;
type QkColumn = (typeof QK_COLUMNS)[number] | 'unrotated';

/** The columns a breakdown has: the unrotated score (q·k with the position rotation undone) only for rotary models. */
function columnsOf(b: QkBreakdown): QkColumn[] {
  return b.unrotatedScores ? ['score', 'unrotated', 'weight', 'norm', 'contribution'] : [...QK_COLUMNS];
}

/** "· reads KV head 1 of 4" for models whose query heads share key/value heads; empty otherwise. */
export function kvHeadLabel(b: Pick<QkBreakdown, 'kvHead' | 'nKvHead'>): string {
  return b.kvHead === undefined || b.nKvHead === undefined ? '' : ` · reads KV head ${b.kvHead} of ${b.nKvHead}`;
}

export class QkSection {
  readonly element: HTMLElement;
  private sort: QkSort = 'score';
  private qk: QkBreakdown | undefined;
  private seq = 0;
  private order: number[] = [];
  private readonly title: HTMLElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly tip: HTMLDivElement;
  private readonly table: HTMLElement;
  private readonly note: HTMLElement;

  /** `width`: the tab's width in css px (the heatmap's cells shrink to fit it). */
  constructor(
    private readonly state: InsideState,
    private readonly host: Pick<InsideHeadHost, 'qk' | 'pickToken'>,
    private readonly width: () => number,
  ) {
    this.title = el('h3', { id: 'qk-title' }, 'Q·K');
    const sort = el('vscode-single-select', { 'aria-label': 'Sort the keys by', className: 'qk-sort' }) as HTMLElement & { value: string };
    for (const [value, label] of [['score', 'score q·k (before softmax)'], ['weight', 'weight α (after softmax)'], ['contribution', 'contribution α·‖v·W_O‖'], ['position', 'position']] as const) {
      sort.append(el('vscode-option', { value, selected: value === this.sort }, label));
    }
    sort.addEventListener('change', () => {
      this.sort = (sort.value as QkSort) || 'score';
      this.draw();
    });
    this.canvas = el('canvas', { role: 'img', 'aria-labelledby': 'qk-title', className: 'qk-canvas' }) as HTMLCanvasElement;
    this.tip = tooltip();
    this.table = el('table', { className: 'sr-table', 'aria-label': 'Keys of the selected query' });
    const wrap = el('div', { className: 'qk-wrap' }, this.canvas, this.tip, this.table);
    this.note = el('p', { className: 'hint qk-note' });
    this.canvas.addEventListener('pointermove', (e) => this.hover(e.offsetX, e.offsetY));
    this.canvas.addEventListener('pointerleave', () => (this.tip.hidden = true));
    this.canvas.addEventListener('click', (e) => {
      const r = this.rowAt(e.offsetY);
      if (r !== undefined) this.host.pickToken(r);
    });
    this.element = el('section', { className: 'qk', 'aria-labelledby': 'qk-title' },
      this.title, el('div', { className: 'row' }, el('span', {}, 'Sort keys by'), sort), this.note, wrap);
  }

  /** A new run: the shown breakdown belongs to the old one. */
  clear(): void {
    this.qk = undefined;
  }

  /** Fetches the breakdown of the selected head and token while the tab is visible (latest request wins). */
  refresh(): void {
    const { run, visible, layer, head } = this.state;
    if (!visible || !run) return;
    const index = this.state.token ?? run.tokens.length - 1;
    const q = this.qk;
    if (q && q.layer === layer && q.head === head && q.index === index) return;
    const seq = ++this.seq;
    this.note.textContent = `Loading ${selectorLabel({ layer, head })}, query ${index}…`;
    this.host.qk(layer, head, index).then(
      (b) => {
        if (seq !== this.seq) return;
        this.qk = b;
        this.draw();
      },
      (err: Error) => {
        if (seq !== this.seq) return;
        this.qk = undefined;
        this.note.textContent = `Could not take the head apart: ${err.message}`;
        this.note.classList.add('error');
      },
    );
  }

  /** Key indices in display order (at most QK.maxRows). */
  private keyOrder(b: QkBreakdown): number[] {
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

  draw(): void {
    const b = this.qk;
    const { run, palette: p } = this.state;
    const canvas = this.canvas;
    this.note.classList.remove('error');
    if (!b || !run) {
      fitCanvas(canvas, 1, 1);
      return;
    }
    const D = b.query.length;
    const n = b.index + 1;
    const order = this.keyOrder(b);
    this.order = order;
    const columns = columnsOf(b);
    const avail = Math.max(200, (this.width() || 600) - 16);
    const cellW = Math.max(3, Math.min(12, Math.floor((avail - QK.labelW - QK.gap * 2 - QK.numW * columns.length) / D)));
    const numX = QK.labelW + D * cellW + QK.gap;
    const width = numX + QK.numW * columns.length + 4;
    const top = QK.headerH + QK.rowH + 4; // header, then the query row, then the keys
    const height = top + order.length * QK.rowH + 2;
    const ctx = fitCanvas(canvas, width, height);
    Object.assign(canvas.dataset, { cellW: String(cellW), rowH: String(QK.rowH), labelW: String(QK.labelW), top: String(top), queryTop: String(QK.headerH), numX: String(numX), numW: String(QK.numW), columns: columns.join(','), rows: order.join(','), painted: String(performance.now()) });
    ctx.fillStyle = p.background;
    ctx.fillRect(0, 0, width, height);
    ctx.font = `11px ${p.monoFont}`;
    ctx.textBaseline = 'middle';
    ctx.fillStyle = p.muted;
    ctx.fillText(`q⊙k (${D} dims)`, QK.labelW, QK.headerH / 2);
    const header: Record<QkColumn, string> = { score: 's', unrotated: 's₀', weight: 'α', norm: '‖v‖', contribution: 'α‖v‖' };
    columns.forEach((c, k) => ctx.fillText(header[c], numX + k * QK.numW + 2, QK.headerH / 2));

    const bg = p.backgroundRgb;
    const pos = p.huesRgb[1 % p.huesRgb.length]; // orange: positive
    const neg = p.huesRgb[0]; // blue: negative
    // the query vector q [D]
    const qMax = maxAbs(b.query);
    ctx.fillStyle = p.foreground;
    ctx.fillText(`q ${tokenLabel(run.tokens[b.index]?.text ?? '', 9)}`, 2, QK.headerH + QK.rowH / 2);
    for (let d = 0; d < D; d++) {
      ctx.fillStyle = rgbCss(diverging(b.query[d], qMax, bg, pos, neg));
      ctx.fillRect(QK.labelW + d * cellW, QK.headerH, cellW - (cellW > 4 ? 1 : 0), QK.rowH - 1);
    }
    // products q_d·k_jd [rows, D], on one scale over every key shown
    const prods = new Float32Array(order.length * D);
    order.forEach((j, r) => {
      for (let d = 0; d < D; d++) prods[r * D + d] = b.query[d] * b.keys[j * D + d];
    });
    const pMax = maxAbs(prods);
    const un = b.unrotatedScores;
    // scores with and without the rotation share one scale, so the colours say what position adds
    const sMax = Math.max(maxAbs(Array.from(order, (j) => b.scores[j])), un ? maxAbs(Array.from(order, (j) => un[j])) : 0);
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
        ctx.fillStyle = rgbCss(diverging(prods[r * D + d], pMax, bg, pos, neg));
        ctx.fillRect(QK.labelW + d * cellW, y, cellW - (cellW > 4 ? 1 : 0), QK.rowH - 1);
      }
      const colour: Record<QkColumn, () => string> = {
        score: () => rgbCss(diverging(b.scores[j], sMax, bg, pos, neg)),
        unrotated: () => rgbCss(diverging(un![j], sMax, bg, pos, neg)),
        weight: () => seq(b.probs[j]),
        norm: () => seq(nMax > 0 ? b.valueNorms[j] / nMax : 0),
        contribution: () => seq(cMax > 0 ? (b.probs[j] * b.valueNorms[j]) / cMax : 0),
      };
      columns.map((c) => colour[c]()).forEach((c, k) => {
        ctx.fillStyle = c;
        ctx.fillRect(numX + k * QK.numW, y, QK.numW - 2, QK.rowH - 1);
      });
    });
    this.title.textContent = `Q·K — ${selectorLabel({ layer: b.layer, head: b.head })}${kvHeadLabel(b)}, query ${b.index} “${tokenLabel(run.tokens[b.index]?.text ?? '', 16)}”`;
    canvas.setAttribute('aria-label', `Query ${b.index} of layer ${b.layer} head ${b.head}: element-wise products with ${n} keys, scores before and after softmax; the strongest key is ${order[0]}.`);
    this.note.textContent = `score s = q·k × ${fmt(b.scale, 4)} (before softmax), α = softmax(s) (after), ‖v‖ = ‖v·W_O‖ (what the key adds per unit of attention).${un ? ' s₀ = the same score with the position rotation undone: s − s₀ is what position adds.' : ''} Colours: orange > 0, blue < 0.${n > order.length ? ` Showing ${order.length} of ${n} keys.` : ''}`;
    this.renderTable(b, order);
  }

  private renderTable(b: QkBreakdown, order: number[]): void {
    const run = this.state.run!;
    const un = b.unrotatedScores;
    const head = el('tr', {}, ...['key', 'token', 'score', ...(un ? ['score without rotation'] : []), 'weight', 'value norm', 'contribution'].map((h) => el('th', { scope: 'col' }, h)));
    const rows = order.map((j) =>
      el('tr', { 'data-j': String(j) },
        el('td', {}, String(j)), el('td', {}, run.tokens[j]?.text ?? ''), el('td', { className: 'score' }, fmt(b.scores[j], 4)),
        ...(un ? [el('td', { className: 'unrotated' }, fmt(un[j], 4))] : []),
        el('td', { className: 'weight' }, fmt(b.probs[j], 4)), el('td', {}, fmt(b.valueNorms[j], 4)), el('td', {}, fmt(b.probs[j] * b.valueNorms[j], 4))),
    );
    this.table.replaceChildren(head, ...rows);
  }

  private rowAt(y: number): number | undefined {
    const top = Number(this.canvas.dataset.top ?? 0);
    const r = Math.floor((y - top) / QK.rowH);
    return y >= top && r >= 0 && r < this.order.length ? this.order[r] : undefined;
  }

  private hover(x: number, y: number): void {
    const b = this.qk;
    const tip = this.tip;
    const j = this.rowAt(y);
    if (!b || j === undefined) {
      tip.hidden = true;
      return;
    }
    const D = b.query.length;
    const cellW = Number(this.canvas.dataset.cellW);
    const d = Math.floor((x - QK.labelW) / cellW);
    const dim = d >= 0 && d < D ? `\ndim ${d}: q ${fmt(b.query[d])} × k ${fmt(b.keys[j * D + d])} = ${fmt(b.query[d] * b.keys[j * D + d], 4)}` : '';
    const unrotated = b.unrotatedScores ? ` (without rotation ${fmt(b.unrotatedScores[j], 4)})` : '';
    tip.textContent = `key ${j} “${this.state.run?.tokens[j]?.text ?? ''}”\nscore ${fmt(b.scores[j], 4)}${unrotated} · α ${fmt(b.probs[j], 4)} · ‖v‖ ${fmt(b.valueNorms[j])} · α‖v‖ ${fmt(b.probs[j] * b.valueNorms[j], 4)}${dim}`;
    placeTooltip(tip, toClient(this.canvas, { x: x + 12, y: y - QK.rowH / 2, width: 1, height: QK.rowH })); // kept on screen
  }
}
