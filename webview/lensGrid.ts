/**
 * The Logit lens tab's grid: layers (rows, the embeddings at the top, the model's output at the bottom) × tokens
 * (columns), each cell coloured by the probability the residual stream entering that layer, read as the model reads
 * its last, gives the actual next token. Zoomed in, each cell shows its top-1 guess; hover shows a cell's top-5; a
 * bar marks the layer where the token's guess settles. Only the tokens in view are computed (`LensStore.want`), in
 * pieces, with progress and a Stop button; nothing is asked while the tab is closed.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import type { Token } from '../extension/common/tokens';
import { fitCanvas, tokenLabel } from './canvas';
import { el, placeTooltip, toClient, tooltip } from './dom';
import { LENS_PIECE, type LensStore } from './lensStore';
import type { Palette } from './theme';

/** Column widths (css px) the zoom steps through; from TEXT_MIN_W on, cells carry their top-1 text. */
const ZOOMS = [4, 8, 14, 24, 40, 64];
export const TEXT_MIN_W = 40;
const CELL_H = 22;
const TOP_MARGIN = 16;
/** Columns of texts to fetch (lensAt, one token each) when zoomed in: at most this many at once. */
const TEXT_FETCH_MAX = 64;

export interface LensGridCallbacks {
  onPick(index: number): void;
}

/** The probability as the cell tooltip and the table say it. */
export function formatProb(logprob: number): string {
  if (!Number.isFinite(logprob)) return '—';
  const p = Math.exp(logprob);
  return p >= 0.001 ? `${(p * 100).toFixed(1)}%` : p.toExponential(1);
}

/** Row l's name: the residual stream entering layer l (l = 0 after the embeddings), the last row the output. */
export function lensRowLabel(l: number, rows: number): string {
  return l === rows - 1 ? 'out' : l === 0 ? 'emb' : `L${l}`;
}

export class LensGridView {
  readonly element: HTMLElement;
  private readonly scroller: HTMLElement;
  private readonly spacer: HTMLElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly tip: HTMLDivElement;
  private readonly progress: HTMLElement;
  private readonly stopBtn: HTMLElement;
  private readonly resumeBtn: HTMLElement;
  private readonly table: HTMLElement;
  private tokens: Token[] = [];
  private zoom = 3;
  private x0 = 34;
  private visible = false;
  private cursor: number | undefined;
  private scrollTimer: ReturnType<typeof setTimeout> | undefined;
  private hoverSeq = 0;
  private textFetch = 0;

  constructor(
    private palette: Palette,
    private readonly store: LensStore,
    private readonly cb: LensGridCallbacks,
  ) {
    const btn = (label: string, aria: string, onClick: () => void) => {
      const b = el('vscode-button', { secondary: true, 'aria-label': aria, title: aria }, label);
      b.addEventListener('click', onClick);
      return b;
    };
    this.progress = el('span', { className: 'lens-progress', 'aria-live': 'polite' });
    this.stopBtn = btn('Stop', 'Stop computing the lens', () => this.store.cancel());
    this.resumeBtn = btn('Compute', 'Compute the lens of the tokens in view', () => this.request());
    this.stopBtn.hidden = true;
    this.resumeBtn.hidden = true;
    const controls = el('div', { className: 'controls lens-controls', role: 'toolbar', 'aria-label': 'Logit lens controls' },
      el('span', { className: 'head-label' }, 'p(next token) read at each layer'),
      btn('+', 'Zoom in (cells show their top guess)', () => this.setZoom(this.zoom + 1)),
      btn('−', 'Zoom out', () => this.setZoom(this.zoom - 1)),
      this.progress, this.stopBtn, this.resumeBtn,
    );
    this.canvas = el('canvas', { className: 'lens-canvas', role: 'img' }) as HTMLCanvasElement;
    this.spacer = el('div', { className: 'lens-spacer' });
    this.scroller = el('div', { className: 'lens-scroll', tabindex: '0', 'aria-label': 'Logit lens grid: scroll sideways for more tokens' }, this.canvas, this.spacer);
    this.tip = tooltip();
    this.table = el('table', { className: 'sr-only lens-table', 'aria-label': 'Logit lens of the tokens in view: top guess and probability of the next token at each layer' });
    this.element = el('section', { className: 'lens-grid', 'aria-label': 'Logit lens' }, controls, this.scroller, this.tip, this.table);
    this.scroller.addEventListener('scroll', () => {
      this.draw();
      clearTimeout(this.scrollTimer);
      this.scrollTimer = setTimeout(() => this.request(), 120); // a fling asks once, for where it stops
    });
    this.canvas.addEventListener('pointermove', (e) => void this.hover(e.offsetX, e.offsetY));
    this.canvas.addEventListener('pointerleave', () => {
      this.hoverSeq++;
      this.tip.hidden = true;
    });
    this.canvas.addEventListener('click', (e) => {
      const hit = this.cellAt(e.offsetX, e.offsetY);
      if (hit) this.cb.onPick(hit.i);
    });
    new ResizeObserver(() => {
      if (!this.visible) return;
      this.draw();
      this.request();
    }).observe(this.scroller);
    store.onChange(() => {
      this.renderProgress();
      if (this.visible) {
        this.draw();
        this.fetchTexts();
      }
    });
  }

  private get cellW(): number {
    return ZOOMS[this.zoom];
  }

  setPalette(p: Palette): void {
    this.palette = p;
    this.draw();
  }

  setRun(tokens: Token[]): void {
    this.tokens = tokens;
    this.layout();
    if (this.visible) this.request();
  }

  /** The tab was shown or left: only a shown tab asks the engine for anything. */
  setVisible(visible: boolean): void {
    if (visible === this.visible) return;
    this.visible = visible;
    if (visible) {
      this.layout();
      this.request();
    } else this.store.cancel();
  }

  /** The editor's (or the panel's) token: its column is outlined and scrolled into view. */
  setCursor(i: number | undefined): void {
    this.cursor = i;
    if (i !== undefined && this.visible) {
      const x = i * this.cellW;
      const w = this.scroller.clientWidth - this.x0;
      if (x < this.scroller.scrollLeft || x + this.cellW > this.scroller.scrollLeft + w) this.scroller.scrollLeft = Math.max(0, x - w / 2);
    }
    this.draw();
  }

  setZoom(z: number): void {
    const zoom = Math.max(0, Math.min(ZOOMS.length - 1, z));
    if (zoom === this.zoom) return;
    // the zoom centres the cursor's column when it is in view, else keeps the middle of the view in the middle
    const { start, end } = this.visibleRange();
    const half = (this.scroller.clientWidth - this.x0) / 2;
    const inView = this.cursor !== undefined && this.cursor >= start && this.cursor < end;
    const centre = inView ? this.cursor! + 0.5 : (this.scroller.scrollLeft + half) / this.cellW;
    this.zoom = zoom;
    this.layout();
    this.scroller.scrollLeft = Math.max(0, centre * this.cellW - half);
    this.draw();
    this.request();
  }

  private layout(): void {
    this.spacer.style.width = `${this.x0 + this.tokens.length * this.cellW}px`;
    this.draw();
  }

  /** Tokens whose columns are (at least partly) in view. */
  visibleRange(): { start: number; end: number } {
    const w = Math.max(0, this.scroller.clientWidth - this.x0);
    const start = Math.max(0, Math.floor(this.scroller.scrollLeft / this.cellW));
    const end = Math.min(this.tokens.length, Math.ceil((this.scroller.scrollLeft + w) / this.cellW));
    return { start, end: Math.max(start, end) };
  }

  private request(): void {
    if (!this.visible || !this.tokens.length) return;
    const { start, end } = this.visibleRange();
    this.store.want(start, end);
  }

  private renderProgress(): void {
    const p = this.store.progress;
    const T = this.tokens.length;
    const have = this.store.computed;
    this.stopBtn.hidden = !p.busy;
    this.resumeBtn.hidden = p.busy || !(p.stopped || p.error);
    if (p.error) this.progress.textContent = `The lens failed: ${p.error}`;
    else if (p.busy) this.progress.textContent = `Computing the lens of the tokens in view: ${p.done} of ${p.total} (${LENS_PIECE} at a time)…`;
    else if (p.stopped) this.progress.textContent = `Stopped: ${have} of ${T} tokens computed. Scroll or press Compute to go on.`;
    else this.progress.textContent = have ? `${have} of ${T} tokens computed (those in view are).` : '';
  }

  private rowsShown(): number {
    return this.store.rows || 0;
  }

  draw(): void {
    const p = this.palette;
    const rows = this.rowsShown();
    const width = Math.max(1, this.scroller.clientWidth);
    const height = TOP_MARGIN + Math.max(1, rows) * CELL_H + 2;
    this.spacer.style.height = '1px';
    const ctx = fitCanvas(this.canvas, width, height);
    ctx.clearRect(0, 0, width, height);
    const T = this.tokens.length;
    if (!T || !this.visible) return;
    const { start, end } = this.visibleRange();
    const cw = this.cellW;
    const sx = this.scroller.scrollLeft;
    const lut = p.lut;
    ctx.font = `${Math.min(11, p.fontSize - 2)}px ${p.font}`;
    ctx.textBaseline = 'middle';
    // token indices along the top, every few columns
    ctx.fillStyle = p.muted;
    ctx.textAlign = 'left';
    const every = Math.max(1, Math.ceil(36 / cw));
    for (let i = start - (start % every); i < end; i += every) {
      const x = this.x0 + i * cw - sx;
      if (x >= this.x0) ctx.fillText(cw >= TEXT_MIN_W ? `#${i} ${tokenLabel(this.tokens[i].text, Math.floor(cw / 7) - 3)}` : `#${i}`, x + 1, TOP_MARGIN / 2);
    }
    ctx.save();
    ctx.beginPath();
    ctx.rect(this.x0, 0, width - this.x0, height);
    ctx.clip();
    const textual = cw >= TEXT_MIN_W;
    const mono = `${Math.min(12, p.fontSize - 1)}px ${p.monoFont}`;
    for (let i = start; i < end; i++) {
      const x = this.x0 + i * cw - sx;
      if (!this.store.hasColumn(i)) {
        ctx.strokeStyle = p.border;
        ctx.setLineDash([2, 3]);
        ctx.strokeRect(x + 0.5, TOP_MARGIN + 0.5, cw - 1, Math.max(1, rows) * CELL_H - 1);
        ctx.setLineDash([]);
        continue;
      }
      for (let l = 0; l < rows; l++) {
        const y = TOP_MARGIN + l * CELL_H;
        const lp = this.store.logprobAt(i, l);
        const t = Number.isFinite(lp) ? Math.exp(lp) : 0;
        const k = Math.round(Math.min(1, t) * 255) * 4;
        ctx.fillStyle = `rgb(${lut[k]}, ${lut[k + 1]}, ${lut[k + 2]})`;
        ctx.fillRect(x, y, Math.max(1, cw - (cw > 6 ? 1 : 0)), CELL_H - 1);
        if (textual) {
          const text = this.store.texts.get(this.store.top1(i, l));
          if (text !== undefined) {
            ctx.font = mono;
            ctx.fillStyle = t > 0.5 ? p.background : p.foreground;
            ctx.textAlign = 'left';
            ctx.fillText(tokenLabel(text, Math.max(2, Math.floor((cw - 4) / 7))), x + 2, y + CELL_H / 2);
          }
        }
      }
      // the settle layer: a bar along the top of the row from which the guess is the model's for good
      const s = this.store.settleOf(i);
      if (s !== undefined) {
        ctx.fillStyle = p.focus;
        ctx.fillRect(x, TOP_MARGIN + s * CELL_H - 1, Math.max(1, cw - (cw > 6 ? 1 : 0)), 3);
      }
    }
    if (this.cursor !== undefined && this.cursor >= start && this.cursor < end) {
      ctx.strokeStyle = p.foreground;
      ctx.lineWidth = 1.5;
      ctx.strokeRect(this.x0 + this.cursor * cw - sx + 0.75, TOP_MARGIN + 0.75, cw - 1.5, Math.max(1, rows) * CELL_H - 1.5);
    }
    ctx.restore();
    // row labels in their own margin (drawn last: cells never cover them)
    ctx.font = `${Math.min(11, p.fontSize - 2)}px ${p.font}`;
    ctx.fillStyle = p.muted;
    ctx.textAlign = 'right';
    for (let l = 0; l < rows; l++) ctx.fillText(lensRowLabel(l, rows), this.x0 - 4, TOP_MARGIN + (l + 0.5) * CELL_H);
    this.canvas.dataset.view = JSON.stringify({ x0: this.x0, top: TOP_MARGIN, cellW: cw, cellH: CELL_H, scrollLeft: sx, start, end, rows });
    const have = Array.from({ length: end - start }, (_, k) => start + k).filter((i) => this.store.hasColumn(i)).length;
    this.canvas.setAttribute('aria-label', `Logit lens, tokens ${start}–${Math.max(start, end - 1)} in view (${have} computed): each cell is the probability of the next token read at that layer, from the embeddings (top row) to the output (bottom row).`);
    this.renderTable(start, end, rows);
  }

  /** The same numbers for screen readers: per token in view, its settle layer and each layer's top guess and p. */
  private renderTable(start: number, end: number, rows: number): void {
    const head = el('tr', {}, el('th', { scope: 'col' }, 'token'), el('th', { scope: 'col' }, 'settles at'), ...Array.from({ length: rows }, (_, l) => el('th', { scope: 'col' }, lensRowLabel(l, rows))));
    const body: HTMLElement[] = [];
    for (let i = start; i < end && body.length < 200; i++) {
      if (!this.store.hasColumn(i)) continue;
      const cells = Array.from({ length: rows }, (_, l) => el('td', {}, `${this.store.texts.get(this.store.top1(i, l)) ?? `id ${this.store.top1(i, l)}`} · p(next) ${formatProb(this.store.logprobAt(i, l))}`));
      body.push(el('tr', { 'data-i': String(i) }, el('th', { scope: 'row' }, `#${i} ${this.tokens[i]?.text ?? ''}`), el('td', {}, lensRowLabel(this.store.settleOf(i) ?? rows - 1, rows)), ...cells));
    }
    this.table.replaceChildren(head, ...body);
  }

  /** Zoomed in, cells show text: the columns in view whose guesses' texts are unknown are asked (`lensAt`), in turn. */
  private fetchTexts(): void {
    if (!this.visible || this.cellW < TEXT_MIN_W) return;
    const seq = ++this.textFetch;
    const { start, end } = this.visibleRange();
    const missing: number[] = [];
    for (let i = start; i < end && missing.length < TEXT_FETCH_MAX; i++) if (this.store.hasColumn(i) && !this.store.textsKnown(i)) missing.push(i);
    void (async () => {
      for (const i of missing) {
        if (seq !== this.textFetch || this.store.textsKnown(i)) continue;
        try {
          await this.store.lensAt(i);
        } catch {
          return; // a stale run: the next run draws afresh
        }
        if (seq === this.textFetch) this.draw();
      }
    })();
  }

  private cellAt(x: number, y: number): { i: number; l: number } | undefined {
    const rows = this.rowsShown();
    if (x < this.x0 || y < TOP_MARGIN) return undefined;
    const i = Math.floor((x - this.x0 + this.scroller.scrollLeft) / this.cellW);
    const l = Math.floor((y - TOP_MARGIN) / CELL_H);
    return i >= 0 && i < this.tokens.length && l >= 0 && l < Math.max(1, rows) ? { i, l } : undefined;
  }

  /** The cell's tooltip: the token, the next one and its p at this layer, then the cell's top-5 (texts via lensAt). */
  private async hover(x: number, y: number): Promise<void> {
    const hit = this.cellAt(x, y);
    const seq = ++this.hoverSeq;
    if (!hit) {
      this.tip.hidden = true;
      return;
    }
    const { i, l } = hit;
    const rows = this.rowsShown();
    const anchor = toClient(this.canvas, { x: this.x0 + i * this.cellW - this.scroller.scrollLeft, y: TOP_MARGIN + l * CELL_H, width: this.cellW, height: CELL_H });
    const render = () => {
      const next = this.tokens[i + 1];
      const headLine = `#${i} “${tokenLabel(this.tokens[i].text, 16)}” · ${l === rows - 1 ? 'output' : l === 0 ? 'after the embeddings' : `entering layer ${l}`}`;
      if (!this.store.hasColumn(i)) return `${headLine}\nNot computed yet.`;
      const pNext = next ? `p(“${tokenLabel(next.text, 14)}”) = ${formatProb(this.store.logprobAt(i, l))}` : 'last token: no next token';
      const top = this.store.top(i, l).map((g) => `“${g.text === undefined ? `id ${g.id}` : tokenLabel(g.text, 14)}” ${formatProb(g.logprob)}`).join(', ');
      const s = this.store.settleOf(i)!;
      return `${headLine}\n${pNext}\ntop-5: ${top}\nsettles at ${s === rows - 1 ? 'the output' : `layer ${s} of ${rows - 1}`}`;
    };
    this.tip.textContent = render();
    this.tip.classList.add('lens-tip');
    placeTooltip(this.tip, anchor);
    if (this.store.hasColumn(i) && !this.store.textsKnownAt(i, l)) {
      try {
        await this.store.lensAt(i);
      } catch {
        return;
      }
      if (seq !== this.hoverSeq) return;
      this.tip.textContent = render();
      placeTooltip(this.tip, anchor);
    }
  }
}
