/**
 * The panel's Patching view (in the Compare tab), for `Headlight: Patch Activations…`: which version is clean and
 * which corrupted, the metric and its normalization, progress with Cancel, and two heatmaps whose cells stream in
 * as the engine finishes each patched run: residual stream (layers × positions) and heads (layers × heads). Diverging
 * theme colours on the normalized metric (chart blue toward the clean run's metric, red beyond the corrupted one).
 * The clean and corrupted ends come with the engine's first progress event, before any cell, so streamed cells are
 * normalized as they arrive; before that, or when the two ends are equal, the raw metric around 0. A click on a head
 * cell selects that head everywhere. A hidden table carries every value for screen readers.
 */
import type { HeadSelector } from '../extension/common/engineProtocol';
import type { PanelHostEvents, PatchView as PatchData } from '../extension/common/webviewProtocol';
import { fitCanvas, tokenLabel } from './canvas';
import { el, placeTooltip, toClient, tooltip } from './dom';
import { diverging, maxAbs, rgbCss } from './insideHead/colours';
import { normalizedPatch, signed } from './patchScale';
import type { Palette } from './theme';

export interface PatchCallbacks {
  onSelectHead(layer: number, head: number): void;
  onPickToken(index: number): void;
  cancel(): void;
  swap(): void;
}

type Kind = 'resid' | 'heads';

/** One heatmap: `rows` layers × `cols` columns of raw metric values (NaN: pending). */
class PatchHeatmap {
  readonly element: HTMLElement;
  readonly canvas: HTMLCanvasElement;
  readonly table: HTMLTableElement;
  private readonly tip: HTMLDivElement;
  private geom = { x0: 28, y0: 16, cellW: 10, cellH: 10 };
  width = 0;

  constructor(
    readonly kind: Kind,
    private readonly view: PatchView,
  ) {
    this.canvas = el('canvas', { className: `patch-heat patch-${kind}`, role: 'img' }) as HTMLCanvasElement;
    this.tip = tooltip();
    this.table = el('table', { className: 'patch-table' }) as HTMLTableElement; // in a .sr-only div: a table box ignores its overflow
    this.element = el('figure', { className: 'patch-figure' }, el('figcaption', {}, kind === 'resid' ? 'Residual stream: layer × position' : 'Heads: layer × head (click: select the head)'), this.canvas, el('div', { className: 'sr-only' }, this.table), this.tip);
    this.canvas.addEventListener('pointermove', (e) => this.hover(e.offsetX, e.offsetY));
    this.canvas.addEventListener('pointerleave', () => (this.tip.hidden = true));
    this.canvas.addEventListener('click', (e) => {
      const c = this.cellAt(e.offsetX, e.offsetY);
      if (!c) return;
      if (this.kind === 'heads') this.view.cb.onSelectHead(c.row, c.col);
      else this.view.cb.onPickToken(c.col);
    });
  }

  private dims(): { rows: number; cols: number; values: Float32Array } {
    const d = this.view.data;
    if (!d) return { rows: 0, cols: 0, values: new Float32Array(0) };
    return this.kind === 'resid' ? { rows: d.nLayer, cols: d.clean.tokens.length, values: d.resid } : { rows: d.nLayer, cols: d.nHead, values: d.heads };
  }

  cellAt(x: number, y: number): { row: number; col: number } | undefined {
    const { rows, cols } = this.dims();
    const g = this.geom;
    const row = Math.floor((y - g.y0) / g.cellH);
    const col = Math.floor((x - g.x0) / g.cellW);
    return row >= 0 && row < rows && col >= 0 && col < cols ? { row, col } : undefined;
  }

  draw(): void {
    const { rows, cols, values } = this.dims();
    const d = this.view.data;
    if (!d || !rows || !cols || this.width < 1) {
      fitCanvas(this.canvas, Math.max(1, this.width), 1);
      return;
    }
    const p = this.view.palette;
    const x0 = 28;
    const y0 = 16;
    const cellW = Math.max(3, Math.min(28, Math.floor((this.width - x0 - 4) / cols)));
    const cellH = Math.max(12, Math.min(cellW, 20)); // rows tall enough to see and to label every layer, however many positions
    this.geom = { x0, y0, cellW, cellH };
    const height = y0 + rows * cellH + 2;
    const ctx = fitCanvas(this.canvas, x0 + cols * cellW + 2, height);
    ctx.clearRect(0, 0, x0 + cols * cellW + 2, height);
    const font = Math.max(9, Math.min(11, p.fontSize - 2));
    ctx.font = `${font}px ${p.font}`;
    ctx.textBaseline = 'middle';
    ctx.fillStyle = p.muted;
    ctx.textAlign = 'right';
    const rowStep = Math.ceil((font + 1) / cellH);
    for (let l = 0; l < rows; l += rowStep) ctx.fillText(`L${l}`, x0 - 4, y0 + (l + 0.5) * cellH);
    ctx.textAlign = 'center';
    const colStep = Math.max(1, Math.ceil((ctx.measureText(String(cols - 1)).width + 4) / cellW));
    for (let c = 0; c < cols; c += colStep) ctx.fillText(String(c), x0 + (c + 0.5) * cellW, y0 / 2);
    const inner = cellW > 6 ? 1 : 0;
    const colour = this.view.colour(values);
    for (let l = 0; l < rows; l++) {
      for (let c = 0; c < cols; c++) {
        const v = values[l * cols + c];
        ctx.fillStyle = Number.isNaN(v) ? p.background : colour(v);
        ctx.fillRect(x0 + c * cellW, y0 + l * cellH, cellW - inner, cellH - inner);
        if (Number.isNaN(v)) {
          ctx.strokeStyle = p.muted; // pending: an outline only
          ctx.globalAlpha = 0.25;
          ctx.strokeRect(x0 + c * cellW + 0.5, y0 + l * cellH + 0.5, cellW - inner - 1, cellH - inner - 1);
          ctx.globalAlpha = 1;
        }
      }
    }
    if (this.kind === 'resid') {
      ctx.strokeStyle = p.foreground; // the metric's position
      ctx.lineWidth = 1;
      ctx.strokeRect(x0 + d.position * cellW + 0.5, y0 - 2, cellW - inner - 1, rows * cellH + 2);
    }
    const sel = this.view.selection;
    if (this.kind === 'heads' && typeof sel.layer === 'number' && typeof sel.head === 'number' && sel.layer < rows && sel.head < cols) {
      ctx.strokeStyle = p.focus;
      ctx.lineWidth = 2;
      ctx.strokeRect(x0 + sel.head * cellW + 1, y0 + sel.layer * cellH + 1, cellW - inner - 2, cellH - inner - 2);
    }
    this.canvas.dataset.grid = JSON.stringify({ x0, y0, cellW, cellH, rows, cols });
    const filled = values.reduce((n, v) => n + (Number.isNaN(v) ? 0 : 1), 0);
    this.canvas.setAttribute('aria-label', `${this.kind === 'resid' ? 'Residual-stream' : 'Head'} patching heatmap, ${rows} layers × ${cols} ${this.kind === 'resid' ? 'positions' : 'heads'}, ${filled} of ${rows * cols} cells computed; the table below lists every value.`);
  }

  describe(row: number, col: number): string {
    const d = this.view.data!;
    const { cols, values } = this.dims();
    const v = values[row * cols + col];
    const what = this.kind === 'resid' ? `L${row}, position ${col} “${tokenLabel(d.clean.tokens[col].text, 14)}”: residual entering layer ${row} patched` : `L${row} H${col}: head output patched at every position`;
    if (Number.isNaN(v)) return `${what}\nnot computed yet`;
    const n = normalizedPatch(v, d.metricClean ?? NaN, d.metricCorrupt ?? NaN);
    return `${what}\nlogit difference ${signed(v, 3)}${Number.isFinite(n) ? ` · normalized ${n.toFixed(3)}` : ''}${this.kind === 'heads' ? '\nClick to select this head everywhere.' : ''}`;
  }

  private hover(x: number, y: number): void {
    const c = this.cellAt(x, y);
    if (!c || !this.view.data) {
      this.tip.hidden = true;
      return;
    }
    this.tip.textContent = this.describe(c.row, c.col);
    const g = this.geom;
    placeTooltip(this.tip, toClient(this.canvas, { x: g.x0 + c.col * g.cellW, y: g.y0 + c.row * g.cellH, width: g.cellW, height: g.cellH }));
  }

  /** The screen readers' table: one row per layer, raw (and normalized) values. */
  renderTable(): void {
    const d = this.view.data;
    const { rows, cols, values } = this.dims();
    if (!d) return this.table.replaceChildren();
    const head = el('tr', {}, el('th', {}, 'layer'), ...Array.from({ length: cols }, (_, c) => el('th', {}, this.kind === 'resid' ? `${c} ${d.clean.tokens[c].text}` : `head ${c}`)));
    const body = Array.from({ length: rows }, (_, l) => el('tr', {}, el('th', {}, `L${l}`), ...Array.from({ length: cols }, (_, c) => el('td', {}, this.cellText(values[l * cols + c])))));
    this.table.replaceChildren(el('caption', {}, this.kind === 'resid' ? 'Residual-stream patching: logit difference per layer and position' : 'Head patching: logit difference per layer and head'), head, ...body);
  }

  cellText(v: number): string {
    const d = this.view.data!;
    if (Number.isNaN(v)) return 'pending';
    const n = normalizedPatch(v, d.metricClean ?? NaN, d.metricCorrupt ?? NaN);
    return Number.isFinite(n) ? `${signed(v, 3)} (normalized ${n.toFixed(3)})` : signed(v, 3);
  }

  /** One streamed cell: its table entry (the canvas is redrawn once per frame). */
  setCellText(row: number, col: number, v: number): void {
    const cell = this.table.rows[row + 1]?.cells[col + 1];
    if (cell) cell.textContent = this.cellText(v);
  }
}

export class PatchView {
  readonly element: HTMLElement;
  data: PatchData | undefined;
  selection: HeadSelector = { layer: 0, head: 0 };
  private readonly sides: HTMLElement;
  private readonly metric: HTMLElement;
  private readonly progress: HTMLElement;
  private readonly cancelButton: HTMLElement;
  private readonly swapButton: HTMLElement;
  private readonly legend: HTMLElement;
  private readonly resid: PatchHeatmap;
  private readonly heads: PatchHeatmap;
  private frame = 0;

  constructor(
    public palette: Palette,
    readonly cb: PatchCallbacks,
  ) {
    this.sides = el('p', { className: 'patch-sides' });
    this.metric = el('p', { className: 'patch-metric' });
    this.progress = el('span', { className: 'patch-progress', role: 'status', 'aria-live': 'polite' });
    this.cancelButton = el('vscode-button', { secondary: true, className: 'patch-cancel', 'aria-label': 'Cancel patching', title: 'Stop after the run in progress (the cells so far stay)' }, 'Cancel');
    this.cancelButton.addEventListener('click', () => this.cb.cancel());
    this.swapButton = el('vscode-button', { secondary: true, className: 'patch-swap', 'aria-label': 'Swap clean and corrupted', title: 'Patch again with the two versions swapped (same tokens, same position)' }, 'Swap clean and corrupted');
    this.swapButton.addEventListener('click', () => this.cb.swap());
    this.legend = el('div', { className: 'patch-legend' });
    this.resid = new PatchHeatmap('resid', this);
    this.heads = new PatchHeatmap('heads', this);
    this.element = el('section', { className: 'patch', 'aria-label': 'Activation patching', hidden: true },
      el('h3', {}, 'Activation patching'), this.sides, this.metric,
      el('div', { className: 'patch-bar' }, this.progress, this.cancelButton, this.swapButton), this.legend,
      el('div', { className: 'patch-maps' }, this.resid.element, this.heads.element));
    new ResizeObserver(() => {
      const w = Math.floor(this.element.getBoundingClientRect().width);
      if (w > 0 && w !== this.resid.width) {
        this.resid.width = w;
        this.heads.width = Math.min(w, 420);
        this.draw();
      }
    }).observe(this.element);
  }

  setPalette(p: Palette): void {
    this.palette = p;
    this.draw();
  }

  setSelection(sel: HeadSelector): void {
    this.selection = sel;
    this.heads.draw();
  }

  /** A new, finished, cancelled or failed request (or none). */
  set(data: PatchData | undefined): void {
    this.data = data;
    this.element.hidden = !data;
    if (!data) return;
    const tok = (t: { text: string }) => `“${tokenLabel(t.text, 16)}”`;
    this.sides.replaceChildren(el('strong', {}, 'Clean: '), `${data.clean.label} · `, el('strong', {}, 'corrupted: '), `${data.corrupt.label}. `,
      `Each cell runs the corrupted version with one activation taken from the clean run.`);
    const ends = data.metricClean !== undefined && data.metricCorrupt !== undefined ? ` Clean ${signed(data.metricClean, 3)}, corrupted ${signed(data.metricCorrupt, 3)}.` : '';
    this.metric.textContent = `Metric after token ${data.position} ${tok(data.clean.tokens[data.position])}: logit(${tok(data.answer)}) − logit(${tok(data.wrong)}).${ends} Normalized: (patched − corrupted) / (clean − corrupted), 1 = clean behaviour restored, 0 = as corrupted.`;
    this.resid.renderTable();
    this.heads.renderTable();
    this.renderProgress();
    this.draw();
  }

  /** A streamed cell of the request shown. */
  cell(c: PanelHostEvents['patchCell']): void {
    const d = this.data;
    if (!d || c.id !== d.id) return;
    const T = d.clean.tokens.length;
    if (c.target === 'resid') d.resid[c.layer * T + c.index] = c.value;
    else d.heads[c.layer * d.nHead + c.index] = c.value;
    d.done = c.done;
    d.total = c.total;
    (c.target === 'resid' ? this.resid : this.heads).setCellText(c.layer, c.index, c.value);
    this.renderProgress();
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.draw();
      });
    }
  }

  private renderProgress(): void {
    const d = this.data!;
    const running = d.state === 'running';
    this.cancelButton.hidden = !running;
    this.swapButton.hidden = running;
    this.progress.textContent =
      d.state === 'running' ? `Patching: ${d.done} of ${d.total || '…'} cells` :
      d.state === 'done' ? `Done: ${d.total} cells, ${d.runs} runs in ${((d.ms ?? 0) / 1000).toFixed(1)} s` :
      d.state === 'cancelled' ? (d.message ?? 'Cancelled.') : `Failed: ${d.message ?? ''}`;
    this.element.dataset.state = d.state;
  }

  /** The fill of a raw value: normalized when both ends are known, else the raw metric around 0. */
  colour(values: Float32Array): (v: number) => string {
    const d = this.data!;
    const p = this.palette;
    const pos = p.huesRgb[0];
    const neg = p.huesRgb[4 % p.huesRgb.length];
    const normalized = Number.isFinite(normalizedPatch(0, d.metricClean ?? NaN, d.metricCorrupt ?? NaN));
    if (normalized) return (v) => rgbCss(diverging(normalizedPatch(v, d.metricClean!, d.metricCorrupt!), 1, p.backgroundRgb, pos, neg));
    const max = Math.max(maxAbs(d.resid), maxAbs(d.heads), maxAbs(values));
    return (v) => rgbCss(diverging(v, max, p.backgroundRgb, pos, neg));
  }

  private renderLegend(): void {
    const d = this.data;
    if (!d) return;
    const normalized = Number.isFinite(normalizedPatch(0, d.metricClean ?? NaN, d.metricCorrupt ?? NaN));
    const p = this.palette;
    const bar = el('span', { className: 'patch-legend-bar' });
    bar.style.background = `linear-gradient(to right, ${rgbCss(p.huesRgb[4 % p.huesRgb.length])}, ${p.background}, ${rgbCss(p.huesRgb[0])})`;
    const max = Math.max(maxAbs(d.resid), maxAbs(d.heads));
    this.legend.replaceChildren(...(normalized
      ? [el('span', {}, '−1'), bar, el('span', {}, '+1 = clean'), el('span', { className: 'hint' }, ' normalized; 0 = corrupted')]
      : [el('span', {}, signed(-max)), bar, el('span', {}, signed(max)), el('span', { className: 'hint' }, d.metricClean === undefined ? ' raw logit difference (normalized once the clean and corrupted metrics are known)' : ' raw logit difference (the clean and corrupted metrics are equal: nothing to normalize)')]));
  }

  draw(): void {
    if (!this.data) return;
    this.renderLegend();
    this.resid.draw();
    this.heads.draw();
  }
}
