/**
 * The commitment strip, under the surprisal strip: for each token, the layer from which the logit lens's top-1 at
 * that token (its guess for the next token, as in the Logit lens grid's column) is the model's final top-1 and stays
 * so ("decided at layer 7 of 12"), as a colour (strong: decided early, faint: only at the output). It shows what the Logit lens tab computed (the tokens it showed); the rest stay hatched and
 * the label says how many are known.
 */
import { placeTooltip, toClient, tooltip, el } from './dom';
import type { Token } from '../extension/common/tokens';
import { fitCanvas, tokenLabel } from './canvas';
import type { LensStore } from './lensStore';
import type { Palette } from './theme';

const HEIGHT = 12;

export interface CommitmentCallbacks {
  onPick(index: number): void;
}

/** "decided at layer 7 of 12", "decided only at the output (layer 12)". */
export function settleText(settles: number, nLayer: number): string {
  if (settles >= nLayer) return `decided only at the output (layer ${nLayer})`;
  return settles === 0 ? `decided at the embeddings (layer 0 of ${nLayer})` : `decided at layer ${settles} of ${nLayer}`;
}

/** Colour position of a settle layer on the sequential scale: 1 at the embeddings, 0 at the output. */
export function settleT(settles: number, nLayer: number): number {
  return nLayer > 0 ? 1 - Math.min(settles, nLayer) / nLayer : 0;
}

export class CommitmentStrip {
  readonly element: HTMLElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly label: HTMLElement;
  private readonly tip: HTMLDivElement;
  private tokens: Token[] = [];
  private width = 0;

  constructor(
    private palette: Palette,
    private readonly store: LensStore,
    private readonly cb: CommitmentCallbacks,
  ) {
    this.canvas = el('canvas', { role: 'img' }) as HTMLCanvasElement;
    this.label = el('div', { className: 'commitment-label' });
    this.tip = tooltip();
    this.element = el('div', { className: 'commitment' }, this.label, this.canvas, this.tip);
    this.canvas.addEventListener('pointermove', (e) => this.hover(e.offsetX));
    this.canvas.addEventListener('pointerleave', () => (this.tip.hidden = true));
    this.canvas.addEventListener('click', (e) => {
      const i = this.indexAt(e.offsetX);
      if (i !== undefined) this.cb.onPick(i);
    });
    new ResizeObserver(() => {
      const w = Math.floor(this.canvas.parentElement!.getBoundingClientRect().width);
      if (w > 0 && w !== this.width) {
        this.width = w;
        this.draw();
      }
    }).observe(this.element);
    store.onChange(() => this.draw());
  }

  setPalette(p: Palette): void {
    this.palette = p;
    this.draw();
  }

  setRun(tokens: Token[]): void {
    this.tokens = tokens;
    this.draw();
  }

  private get nLayer(): number {
    return Math.max(0, this.store.rows - 1);
  }

  private indexAt(x: number): number | undefined {
    const T = this.tokens.length;
    if (!T || this.width < 1) return undefined;
    const i = Math.floor((x / this.width) * T);
    return i >= 0 && i < T ? i : undefined;
  }

  draw(): void {
    const T = this.tokens.length;
    const known = this.store.computed;
    const L = this.nLayer;
    this.label.textContent = !known
      ? 'Commitment (the layer where the guess made at each token settles): not computed yet. The Logit lens tab computes the tokens it shows.'
      : known < T
        ? `Commitment: the layer where the guess made at each token settles (partial: ${known} of ${T} tokens, the ones the Logit lens tab showed; strong = decided early)`
        : `Commitment: the layer where the guess made at each token settles (strong = decided early, faint = only at the output of ${L} layers)`;
    this.canvas.setAttribute('aria-label', `Commitment strip: ${known} of ${T} tokens computed. ${this.summary()}`);
    if (this.width < 1) return;
    const ctx = fitCanvas(this.canvas, this.width, HEIGHT);
    const p = this.palette;
    ctx.clearRect(0, 0, this.width, HEIGHT);
    if (!T) return;
    const dpr = window.devicePixelRatio || 1;
    const px = Math.round(this.width * dpr);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    const cols = Math.min(px, T);
    const lut = p.lut;
    for (let c = 0; c < cols; c++) {
      const i0 = Math.floor((c * T) / cols);
      const i1 = Math.max(i0 + 1, Math.floor(((c + 1) * T) / cols));
      // the latest decision among the tokens a pixel covers (as the surprisal strip shows the most surprising)
      let s = -1;
      for (let i = i0; i < i1; i++) {
        const v = this.store.settleOf(i);
        if (v !== undefined && v > s) s = v;
      }
      const x0 = Math.round((c * px) / cols);
      const x1 = Math.round(((c + 1) * px) / cols);
      const w = Math.max(1, x1 - x0 - (px / cols > 3 ? 1 : 0));
      if (s < 0) {
        ctx.fillStyle = p.border; // not computed: a thin line in the middle
        ctx.fillRect(x0, Math.round((HEIGHT * dpr) / 2) - 1, w, Math.max(1, Math.round(dpr)));
        continue;
      }
      const k = Math.round(settleT(s, L) * 255) * 4;
      ctx.fillStyle = `rgb(${lut[k]}, ${lut[k + 1]}, ${lut[k + 2]})`;
      ctx.fillRect(x0, 0, w, HEIGHT * dpr);
    }
  }

  /** For screen readers: how many tokens settle early, late, at the output. */
  private summary(): string {
    const L = this.nLayer;
    let early = 0;
    let output = 0;
    let n = 0;
    for (let i = 0; i < this.tokens.length; i++) {
      const s = this.store.settleOf(i);
      if (s === undefined) continue;
      n++;
      if (s >= L) output++;
      else if (s <= L / 2) early++;
    }
    return n ? `${early} decided in the first half of the layers, ${output} only at the output.` : '';
  }

  private hover(x: number): void {
    const i = this.indexAt(x);
    if (i === undefined) return;
    const s = this.store.settleOf(i);
    this.tip.textContent = `#${i} “${tokenLabel(this.tokens[i].text, 20)}”: ${s === undefined ? 'not computed (scroll the Logit lens tab to it)' : `its guess for the next token, ${settleText(s, this.nLayer)}`}`;
    placeTooltip(this.tip, toClient(this.canvas, { x, y: 0, width: 1, height: HEIGHT }));
  }
}
