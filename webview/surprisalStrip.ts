/**
 * Tokens coloured by surprisal (bits), one cell per token across the width; when tokens outnumber pixels each pixel
 * shows the most surprising token it covers. Hover shows the token, its surprisal and what the model expected.
 */
import { placeTooltip, toClient, tooltip } from './dom';
import type { Prediction } from '../extension/common/engineProtocol';
import type { Token } from '../extension/common/tokens';
import { fitCanvas, tokenLabel } from './canvas';
import type { Palette } from './theme';

/** Surprisal mapped to the top of the scale (bits); more is clipped. */
export const SURPRISAL_MAX_BITS = 16;
const HEIGHT = 18;

export interface StripCallbacks {
  onPick(index: number): void;
  predictions(index: number): Promise<Prediction[]>;
}

export class SurprisalStrip {
  readonly element: HTMLDivElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly tip: HTMLDivElement;
  private tokens: Token[] = [];
  private surprisal: Float32Array = new Float32Array(0);
  private width = 0;
  private hoverSeq = 0;

  constructor(
    private palette: Palette,
    private readonly cb: StripCallbacks,
  ) {
    this.element = document.createElement('div');
    this.element.className = 'strip';
    this.canvas = document.createElement('canvas');
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', 'Surprisal of each token, from low (start of the colour scale) to high.');
    this.tip = tooltip();
    this.element.append(this.canvas, this.tip);
    this.canvas.addEventListener('pointermove', (e) => void this.hover(e.offsetX));
    this.canvas.addEventListener('pointerleave', () => {
      this.hoverSeq++;
      this.tip.hidden = true;
    });
    this.canvas.addEventListener('click', (e) => {
      const i = this.indexAt(e.offsetX);
      if (i !== undefined) this.cb.onPick(i);
    });
    new ResizeObserver(() => {
      const w = Math.floor(this.element.getBoundingClientRect().width);
      if (w > 0 && w !== this.width) {
        this.width = w;
        this.draw();
      }
    }).observe(this.element);
  }

  setPalette(p: Palette): void {
    this.palette = p;
    this.draw();
  }

  setRun(tokens: Token[], surprisal: Float32Array): void {
    this.tokens = tokens;
    this.surprisal = surprisal;
    this.draw();
  }

  private indexAt(x: number): number | undefined {
    const T = this.tokens.length;
    if (!T || this.width < 1) return undefined;
    const i = Math.floor((x / this.width) * T);
    return i >= 0 && i < T ? i : undefined;
  }

  draw(): void {
    if (this.width < 1) return;
    const ctx = fitCanvas(this.canvas, this.width, HEIGHT);
    const p = this.palette;
    ctx.fillStyle = p.background;
    ctx.fillRect(0, 0, this.width, HEIGHT);
    const T = this.tokens.length;
    if (!T) return;
    const dpr = window.devicePixelRatio || 1;
    const px = Math.round(this.width * dpr);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    const lut = p.lut;
    const cols = Math.min(px, T);
    for (let c = 0; c < cols; c++) {
      const i0 = Math.floor((c * T) / cols);
      const i1 = Math.max(i0 + 1, Math.floor(((c + 1) * T) / cols));
      let s = 0;
      for (let i = i0; i < i1; i++) if (this.surprisal[i] > s) s = this.surprisal[i];
      const k = Math.round(Math.min(1, s / SURPRISAL_MAX_BITS) * 255) * 4;
      ctx.fillStyle = `rgb(${lut[k]}, ${lut[k + 1]}, ${lut[k + 2]})`;
      const x0 = Math.round((c * px) / cols);
      const x1 = Math.round(((c + 1) * px) / cols);
      ctx.fillRect(x0, 0, Math.max(1, x1 - x0 - (px / cols > 3 ? 1 : 0)), HEIGHT * dpr);
    }
  }

  private async hover(x: number): Promise<void> {
    const i = this.indexAt(x);
    if (i === undefined) return;
    const seq = ++this.hoverSeq;
    const s = this.surprisal[i];
    const head = `#${i} “${tokenLabel(this.tokens[i].text, 20)}”: ${Number.isNaN(s) ? 'first token, no surprisal' : `${s.toFixed(1)} bits`}`;
    // below the strip at the pointer, kept on screen (fixed, flipped above, clamped); placed again when it grows
    const anchor = toClient(this.canvas, { x, y: 0, width: 1, height: HEIGHT });
    this.tip.textContent = head;
    placeTooltip(this.tip, anchor);
    if (i === 0) return;
    try {
      const preds = await this.cb.predictions(i);
      if (seq !== this.hoverSeq) return;
      const list = preds.map((p) => `“${tokenLabel(p.text, 14)}” ${(Math.exp(p.logprob) * 100).toFixed(1)}%`).join(', ');
      this.tip.textContent = `${head} · expected: ${list}`;
      placeTooltip(this.tip, anchor);
    } catch {
      // a stale run: the next run event redraws
    }
  }
}
