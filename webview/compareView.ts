/**
 * The panel's Compare view (Compare With…): the current run against another version of its text. Three strips over
 * the aligned tokens (matched pairs share a column; a changed region takes as many columns as its longer side): this
 * version's surprisal, the other's, and their difference in diverging colours (the theme's chart red where the other
 * version is more surprised, chart blue where less). Changed regions are marked over the strips; below, the tokens
 * whose surprisal moved most, each a button that selects the token.
 */
import type { CompareView as CompareData } from '../extension/common/webviewProtocol';
import { fitCanvas, tokenLabel } from './canvas';
import { el, placeTooltip, toClient, tooltip } from './dom';
import { SURPRISAL_MAX_BITS } from './surprisalStrip';
import type { Palette, Rgb } from './theme';

/** |Δ| at which the difference strip reaches full colour, bits. */
const DELTA_FULL_BITS = 8;
const ROW = 16;
const MOVES = 12;

/** One column of the aligned strips: a token of this version (a), of the other (b), or both when matched. */
export interface Column {
  a: number;
  b: number;
  changed: boolean;
}

/** The aligned columns: matched pairs one each, a changed region max(its two lengths) columns. */
export function alignedColumns(aToB: Int32Array, nA: number, nB: number): Column[] {
  const cols: Column[] = [];
  let ai = 0;
  let bj = 0;
  const gap = (i: number, j: number) => {
    for (let k = 0; k < Math.max(i - ai, j - bj); k++) cols.push({ a: ai + k < i ? ai + k : -1, b: bj + k < j ? bj + k : -1, changed: true });
  };
  for (let i = 0; i < nA; i++) {
    const j = aToB[i];
    if (j < 0) continue;
    gap(i, j);
    cols.push({ a: i, b: j, changed: false });
    ai = i + 1;
    bj = j + 1;
  }
  gap(nA, nB);
  return cols;
}

export interface CompareCallbacks {
  /** Select a token of this version (and move the editor's cursor there). */
  onPick(index: number): void;
  stop(): void;
}

export class CompareView {
  readonly element: HTMLDivElement;
  private readonly summary: HTMLElement;
  private readonly strips: HTMLDivElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly marks: HTMLDivElement;
  private readonly moves: HTMLElement;
  private readonly empty: HTMLElement;
  private readonly tip: HTMLDivElement;
  private data: CompareData | undefined;
  private cols: Column[] = [];
  private width = 0;

  constructor(
    private palette: Palette,
    private readonly cb: CompareCallbacks,
  ) {
    this.element = el('div', { className: 'compare' }) as HTMLDivElement;
    this.empty = el('p', { className: 'compare-empty hint' }, 'Nothing to compare. Run "Headlight: Compare With…" to compare this text with its saved or committed version, another editor, or a copy with one word changed.');
    this.summary = el('div', { className: 'compare-summary', role: 'status' });
    const stop = el('vscode-button', { secondary: true, 'aria-label': 'Stop comparing', title: 'Stop comparing (removes the editor colours too)' }, 'Stop comparing');
    stop.addEventListener('click', () => this.cb.stop());
    this.canvas = document.createElement('canvas');
    this.canvas.setAttribute('role', 'img');
    this.marks = el('div', { className: 'compare-marks', 'aria-hidden': 'true' }) as HTMLDivElement;
    this.strips = el('div', { className: 'compare-strips' }, this.canvas, this.marks) as HTMLDivElement;
    const labels = el('div', { className: 'compare-labels', 'aria-hidden': 'true' }, el('span', {}, 'this'), el('span', {}, 'other'), el('span', {}, 'Δ'));
    this.moves = el('ol', { className: 'compare-moves', 'aria-label': 'Tokens whose surprisal moved most' });
    this.tip = tooltip();
    this.element.append(this.empty, el('div', { className: 'compare-head' }, this.summary, stop), el('div', { className: 'compare-body' }, labels, this.strips), this.moves, this.tip);
    this.canvas.addEventListener('pointermove', (e) => this.hover(e.offsetX));
    this.canvas.addEventListener('pointerleave', () => (this.tip.hidden = true));
    this.canvas.addEventListener('click', (e) => {
      const c = this.columnAt(e.offsetX);
      if (c && c.a >= 0) this.cb.onPick(c.a);
    });
    new ResizeObserver(() => {
      const w = Math.floor(this.strips.getBoundingClientRect().width);
      if (w > 0 && w !== this.width) {
        this.width = w;
        this.draw();
      }
    }).observe(this.strips);
    this.set(undefined);
  }

  setPalette(p: Palette): void {
    this.palette = p;
    this.draw();
  }

  /** Shows a comparison, or the empty message. */
  set(data: CompareData | undefined): void {
    this.data = data;
    this.element.classList.toggle('is-empty', !data);
    this.empty.hidden = !!data;
    if (!data) {
      this.cols = [];
      this.summary.textContent = '';
      this.moves.replaceChildren();
      this.marks.replaceChildren();
      return;
    }
    this.cols = alignedColumns(data.aToB, data.current.tokens.length, data.other.tokens.length);
    const mean = (s: Float32Array) => {
      const v = Array.from(s).filter(Number.isFinite);
      return v.length ? v.reduce((a, x) => a + x, 0) / v.length : NaN;
    };
    const f = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');
    const n = data.regions.length;
    this.summary.textContent = `Compared with ${data.sourceLabel} · ${n} changed region${n === 1 ? '' : 's'} · mean surprisal ${f(mean(data.current.surprisal))} → ${f(mean(data.other.surprisal))} bits`;
    this.canvas.setAttribute('aria-label', `Surprisal of this version and of ${data.sourceLabel} per aligned token, and their difference; ${n} changed regions marked.`);
    this.renderMarks();
    this.renderMoves();
    this.draw();
  }

  /** The changed regions as boxes over the strips, in % of the width (data-* give the token spans, for tests). */
  private renderMarks(): void {
    const C = this.cols.length || 1;
    const boxes: HTMLElement[] = [];
    for (let k = 0; k < this.cols.length; ) {
      if (!this.cols[k].changed) {
        k++;
        continue;
      }
      const start = k;
      while (k < this.cols.length && this.cols[k].changed) k++;
      const box = el('div', { className: 'compare-region' });
      box.style.left = `${(100 * start) / C}%`;
      box.style.width = `${(100 * (k - start)) / C}%`;
      box.dataset.cols = `${start}:${k}`;
      boxes.push(box);
    }
    this.marks.replaceChildren(...boxes);
  }

  private renderMoves(): void {
    const d = this.data!;
    const moved: { i: number; j: number; delta: number }[] = [];
    d.aToB.forEach((j, i) => {
      const delta = j >= 0 ? d.other.surprisal[j] - d.current.surprisal[i] : NaN;
      if (Number.isFinite(delta)) moved.push({ i, j, delta });
    });
    moved.sort((x, y) => Math.abs(y.delta) - Math.abs(x.delta) || x.i - y.i);
    this.moves.replaceChildren(
      ...moved.slice(0, MOVES).map(({ i, j, delta }) => {
        const over = Math.abs(delta) > d.threshold;
        const b = el('button', { className: `compare-move${over ? (delta > 0 ? ' rose' : ' fell') : ''}`, 'data-i': String(i), 'data-delta': delta.toFixed(3) },
          el('span', { className: 'tokname' }, `“${tokenLabel(d.current.tokens[i].text, 18)}”`),
          ` ${d.current.surprisal[i].toFixed(2)} → ${d.other.surprisal[j].toFixed(2)} bits (${delta > 0 ? '+' : ''}${delta.toFixed(2)})`,
        );
        b.addEventListener('click', () => this.cb.onPick(i));
        return el('li', {}, b);
      }),
    );
  }

  private columnAt(x: number): Column | undefined {
    const C = this.cols.length;
    if (!C || this.width < 1) return undefined;
    return this.cols[Math.floor((x / this.width) * C)];
  }

  draw(): void {
    if (this.width < 1) return;
    const ctx = fitCanvas(this.canvas, this.width, ROW * 3 + 4);
    const p = this.palette;
    ctx.fillStyle = p.background;
    ctx.fillRect(0, 0, this.width, ROW * 3 + 4);
    const d = this.data;
    const C = this.cols.length;
    if (!d || !C) return;
    const lut = p.lut;
    const seq = (bits: number) => {
      const k = Math.round(Math.min(1, Math.max(0, bits) / SURPRISAL_MAX_BITS) * 255) * 4;
      return `rgb(${lut[k]}, ${lut[k + 1]}, ${lut[k + 2]})`;
    };
    const [rose, fell] = [p.huesRgb[4] ?? [241, 76, 76], p.huesRgb[0] ?? [55, 148, 255]];
    const diverging = (delta: number) => mix(p.backgroundRgb, delta > 0 ? rose : fell, Math.min(1, Math.abs(delta) / DELTA_FULL_BITS));
    const w = this.width / C;
    for (let k = 0; k < C; k++) {
      const { a, b } = this.cols[k];
      const x = k * w;
      const cw = Math.max(1, w - (w > 3 ? 1 : 0));
      const sa = a >= 0 ? d.current.surprisal[a] : NaN;
      const sb = b >= 0 ? d.other.surprisal[b] : NaN;
      if (a >= 0 && !Number.isNaN(sa)) {
        ctx.fillStyle = seq(sa);
        ctx.fillRect(x, 0, cw, ROW);
      }
      if (b >= 0 && !Number.isNaN(sb)) {
        ctx.fillStyle = seq(sb);
        ctx.fillRect(x, ROW + 2, cw, ROW);
      }
      if (a >= 0 && b >= 0 && Number.isFinite(sb - sa)) {
        ctx.fillStyle = diverging(sb - sa);
        ctx.fillRect(x, 2 * ROW + 4, cw, ROW);
      }
    }
  }

  private hover(x: number): void {
    const c = this.columnAt(x);
    const d = this.data;
    if (!c || !d) return;
    const f = (s: number) => (Number.isFinite(s) ? `${s.toFixed(2)} bits` : '–');
    const side = (name: string, tokens: CompareData['current']['tokens'], s: Float32Array, i: number) => (i >= 0 ? `${name} “${tokenLabel(tokens[i].text, 16)}” ${f(s[i])}` : `${name}: —`);
    const parts = [side('this', d.current.tokens, d.current.surprisal, c.a), side('other', d.other.tokens, d.other.surprisal, c.b)];
    if (c.a >= 0 && c.b >= 0) parts.push(`Δ ${(d.other.surprisal[c.b] - d.current.surprisal[c.a]).toFixed(2)}`);
    if (c.changed) parts.push('changed');
    this.tip.textContent = parts.join(' · ');
    placeTooltip(this.tip, toClient(this.canvas, { x, y: 0, width: 1, height: ROW * 3 + 4 }));
  }
}

function mix(bg: Rgb, fg: Rgb, t: number): string {
  const c = bg.map((v, k) => Math.round(v + (fg[k] - v) * t));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}
