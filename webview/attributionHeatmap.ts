/**
 * Direct logit attribution as a heatmap (the panel's Logit lens tab and the sidebar's second mode): layers × heads,
 * then an MLP column (and an attention-bias column for families that have one), with the embeddings' cell above.
 * Diverging theme colours on a scale symmetric around 0: the chart blue pushes the target's logit up ("for"), the
 * chart red pushes it down ("against"). Click a head (or arrows + Enter) to select it everywhere.
 */
import type { Attribution, HeadSelector } from '../extension/common/engineProtocol';
import { fitCanvas } from './canvas';
import { el, placeTooltip, toClient, tooltip } from './dom';
import { diverging, maxAbs, rgbCss } from './insideHead/colours';
import type { Palette, Rgb } from './theme';

export interface AttributionHeatmapCallbacks {
  onSelect(layer: number, head: number): void;
}

/** What a cell is: a head, a layer's MLP or attention bias, or the embeddings. */
export type AttributionCell = { kind: 'head'; layer: number; head: number } | { kind: 'mlp' | 'bias'; layer: number } | { kind: 'embed' };

interface Layout {
  x0: number;
  y0: number;
  cellW: number;
  cellH: number;
  gap: number;
  /** Columns: H heads, then MLP, then bias (when present). */
  cols: number;
}

/** `+1.23` / `−0.40`: a logit contribution. */
export function formatLogit(v: number): string {
  return `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(2)}`;
}

/** The colours of "for" and "against" in this palette (the chart blue and red). */
export function attributionHues(p: Palette): { pos: Rgb; neg: Rgb } {
  return { pos: p.huesRgb[0], neg: p.huesRgb[4 % p.huesRgb.length] };
}

export class AttributionHeatmap {
  readonly element: HTMLElement;
  readonly canvas: HTMLCanvasElement;
  private readonly tip: HTMLDivElement;
  private a: Attribution | undefined;
  private sel: HeadSelector = { layer: 0, head: 0 };
  private key: { layer: number; head: number } | undefined;
  private g: Layout = { x0: 30, y0: 30, cellW: 12, cellH: 12, gap: 8, cols: 1 };
  private width = 240;

  constructor(
    private palette: Palette,
    private readonly cb: AttributionHeatmapCallbacks,
  ) {
    this.canvas = el('canvas', { tabindex: '0', role: 'application', 'aria-roledescription': 'heatmap of logit attribution', className: 'attribution-heat' }) as HTMLCanvasElement;
    this.tip = tooltip();
    this.element = el('div', { className: 'attribution-heat-wrap' }, this.canvas, this.tip);
    this.canvas.addEventListener('click', (e) => {
      const c = this.cellAt(e.offsetX, e.offsetY);
      if (c?.kind === 'head') this.cb.onSelect(c.layer, c.head);
    });
    this.canvas.addEventListener('pointermove', (e) => {
      const c = this.cellAt(e.offsetX, e.offsetY);
      if (!c || !this.a) {
        this.tip.hidden = true;
        return;
      }
      this.tip.textContent = this.describe(c);
      placeTooltip(this.tip, toClient(this.canvas, { x: e.offsetX + 8, y: e.offsetY, width: 1, height: this.g.cellH }));
    });
    this.canvas.addEventListener('pointerleave', () => (this.tip.hidden = true));
    this.canvas.addEventListener('keydown', (e) => this.onKey(e));
  }

  setPalette(p: Palette): void {
    this.palette = p;
    this.draw(this.width);
  }

  set(a: Attribution | undefined): void {
    this.a = a;
    this.draw(this.width);
  }

  setSelection(sel: HeadSelector): void {
    this.sel = sel;
    this.draw(this.width);
  }

  private dims(): { L: number; H: number } {
    const a = this.a;
    if (!a) return { L: 0, H: 0 };
    const L = a.mlp.length;
    return { L, H: L ? a.heads.length / L : 0 };
  }

  /** Value of a cell (NaN when it does not exist). */
  value(c: AttributionCell): number {
    const a = this.a;
    if (!a) return NaN;
    const { H } = this.dims();
    if (c.kind === 'head') return a.heads[c.layer * H + c.head];
    if (c.kind === 'mlp') return a.mlp[c.layer];
    if (c.kind === 'bias') return a.attnBias?.[c.layer] ?? NaN;
    return a.embed;
  }

  private layout(width: number): Layout {
    const { L, H } = this.dims();
    const cols = H + 1 + (this.a?.attnBias ? 1 : 0);
    const font = Math.max(10, Math.min(12, this.palette.fontSize - 1));
    const x0 = font * 2.6;
    const gap = 6;
    const cellW = Math.max(6, Math.min(36, (width - x0 - gap) / cols));
    const cellH = Math.max(6, Math.min(cellW, 22, Math.floor(Math.max(140, window.innerHeight * 0.4) / Math.max(1, L + 1))));
    return { x0, y0: font + 4 + cellH + 4, cellW, cellH, gap, cols };
  }

  /** Column x of column c (heads, then the gap, then MLP and bias). */
  private colX(c: number): number {
    const { H } = this.dims();
    return this.g.x0 + c * this.g.cellW + (c >= H ? this.g.gap : 0);
  }

  draw(width: number): void {
    this.width = width;
    const a = this.a;
    const { L, H } = this.dims();
    if (!a || !L) {
      fitCanvas(this.canvas, width, 1);
      return;
    }
    const p = this.palette;
    const g = (this.g = this.layout(width));
    const cssH = g.y0 + L * g.cellH + 2;
    const ctx = fitCanvas(this.canvas, width, cssH);
    ctx.clearRect(0, 0, width, cssH);
    const all = [...a.heads, ...a.mlp, ...(a.attnBias ?? []), a.embed];
    const max = maxAbs(all);
    const { pos, neg } = attributionHues(p);
    const fill = (v: number) => rgbCss(diverging(v, max, p.backgroundRgb, pos, neg));
    const font = Math.max(10, Math.min(12, p.fontSize - 1));
    ctx.font = `${font}px ${p.font}`;
    ctx.textBaseline = 'middle';
    ctx.fillStyle = p.muted;
    ctx.textAlign = 'right';
    const inner = g.cellW > 8 ? 1 : 0;
    // the embeddings' cell, above layer 0
    ctx.fillText('emb', g.x0 - 4, font + 4 + g.cellH / 2);
    ctx.fillStyle = fill(a.embed);
    ctx.fillRect(g.x0, font + 4, g.cellW - inner, g.cellH - inner);
    ctx.fillStyle = p.muted;
    const rowStep = Math.ceil((font + 1) / g.cellH);
    for (let l = 0; l < L; l += rowStep) ctx.fillText(`L${l}`, g.x0 - 4, g.y0 + (l + 0.5) * g.cellH);
    ctx.textAlign = 'center';
    const colStep = Math.ceil(ctx.measureText(String(H - 1)).width / Math.max(1, g.cellW - 2));
    for (let h = 0; h < H; h += colStep) ctx.fillText(String(h), this.colX(h) + g.cellW / 2, font / 2 + 1);
    ctx.fillText('MLP', this.colX(H) + g.cellW / 2, g.y0 - g.cellH / 2 - 2);
    if (a.attnBias) ctx.fillText('bias', this.colX(H + 1) + g.cellW / 2, g.y0 - g.cellH / 2 - 2);
    for (let l = 0; l < L; l++) {
      const y = g.y0 + l * g.cellH;
      for (let h = 0; h < H; h++) {
        ctx.fillStyle = fill(a.heads[l * H + h]);
        ctx.fillRect(this.colX(h), y, g.cellW - inner, g.cellH - inner);
      }
      ctx.fillStyle = fill(a.mlp[l]);
      ctx.fillRect(this.colX(H), y, g.cellW - inner, g.cellH - inner);
      if (a.attnBias) {
        ctx.fillStyle = fill(a.attnBias[l]);
        ctx.fillRect(this.colX(H + 1), y, g.cellW - inner, g.cellH - inner);
      }
    }
    const mark = (layer: number, head: number, color: string, w: number) => {
      ctx.strokeStyle = color;
      ctx.lineWidth = w;
      ctx.strokeRect(this.colX(head) + w / 2, g.y0 + layer * g.cellH + w / 2, g.cellW - inner - w, g.cellH - inner - w);
    };
    if (typeof this.sel.layer === 'number' && typeof this.sel.head === 'number' && this.sel.layer < L && this.sel.head < H) mark(this.sel.layer, this.sel.head, p.focus, 2);
    if (this.key && document.activeElement === this.canvas) mark(this.key.layer, this.key.head, p.foreground, 1);
    this.canvas.dataset.grid = JSON.stringify({ x0: g.x0, y0: g.y0, cellW: g.cellW, cellH: g.cellH, gap: g.gap, embedY: font + 4, H, L });
    const top = [...a.parts].sort((x, y) => Math.abs(y.value) - Math.abs(x.value)).slice(0, 3);
    this.canvas.setAttribute('aria-label', `Direct logit attribution at token ${a.position}, per layer and head, with an MLP column and the embeddings: blue pushes the target up, red pushes it down. Largest: ${top.map((x) => `${x.name} ${formatLogit(x.value)}`).join(', ')}. Arrow keys move, Enter selects the head.`);
  }

  cellAt(x: number, y: number): AttributionCell | undefined {
    const { L, H } = this.dims();
    const g = this.g;
    if (!L) return undefined;
    const embedY = g.y0 - g.cellH - 4;
    if (y >= embedY && y < embedY + g.cellH && x >= g.x0 && x < g.x0 + g.cellW) return { kind: 'embed' };
    const l = Math.floor((y - g.y0) / g.cellH);
    if (l < 0 || l >= L) return undefined;
    for (let c = 0; c < g.cols; c++) {
      const cx = this.colX(c);
      if (x >= cx && x < cx + g.cellW) return c < H ? { kind: 'head', layer: l, head: c } : c === H ? { kind: 'mlp', layer: l } : { kind: 'bias', layer: l };
    }
    return undefined;
  }

  describe(c: AttributionCell): string {
    const v = this.value(c);
    const name = c.kind === 'head' ? `L${c.layer} H${c.head}` : c.kind === 'mlp' ? `L${c.layer} MLP` : c.kind === 'bias' ? `L${c.layer} attention bias` : 'embeddings';
    const dir = v > 0 ? 'pushes the target up' : v < 0 ? 'pushes it down' : 'no effect';
    return `${name}: ${formatLogit(v)} logit (${dir})${c.kind === 'head' ? '\nClick to select this head everywhere.' : ''}`;
  }

  private onKey(e: KeyboardEvent): void {
    const { L, H } = this.dims();
    if (!L) return;
    const c = this.key ?? (typeof this.sel.layer === 'number' && typeof this.sel.head === 'number' ? { layer: this.sel.layer, head: this.sel.head } : { layer: 0, head: 0 });
    let { layer, head } = c;
    if (e.key === 'ArrowUp') layer = Math.max(0, layer - 1);
    else if (e.key === 'ArrowDown') layer = Math.min(L - 1, layer + 1);
    else if (e.key === 'ArrowLeft') head = Math.max(0, head - 1);
    else if (e.key === 'ArrowRight') head = Math.min(H - 1, head + 1);
    else if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      this.cb.onSelect(layer, head);
      return;
    } else return;
    e.preventDefault();
    this.key = { layer, head };
    this.canvas.setAttribute('aria-description', this.describe({ kind: 'head', layer, head }));
    this.draw(this.width);
  }
}
