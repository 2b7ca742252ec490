/**
 * Every layer × head as a thumbnail of its attention pattern, on one canvas (144 small canvases or <img>s are what
 * makes other tools slow). Click selects a head; shift+click adds it to the compared heads of the text view.
 * Keyboard: arrows move the selected head; shift+Enter toggles comparing it.
 */
import { liveRegion, placeTooltip, toClient, tooltip } from './dom';
import type { HeadRef, Thumbnails } from '../extension/common/engineProtocol';
import type { HeadFinderView } from '../extension/common/webviewProtocol';
import { fitCanvas, pixelCanvas } from './canvas';
import { headBadges, roleLetter, ROLES, scoreLine } from './headRoles';
import type { Palette } from './theme';
import { selectorLabel } from '../extension/common/displayNames';

const LABEL_W = 30;
const LABEL_H = 16;
const GAP = 3;

export interface ModelCallbacks {
  onSelect(layer: number, head: number): void;
  onToggleCompare(layer: number, head: number): void;
  /** Ctrl/⌘+click: add the head to (or remove it from) the heads to ablate. */
  onToggleAblate?(layer: number, head: number): void;
  onPainted?(ms: number): void;
}

export class ModelView {
  readonly element: HTMLDivElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly tip: HTMLDivElement;
  private readonly live: HTMLDivElement;
  private thumbs: Thumbnails | undefined;
  private atlas: HTMLCanvasElement | undefined;
  private selected: HeadRef | undefined;
  /** Compared heads and their hue index. */
  private compare: { layer: number; head: number; hue: number }[] = [];
  private heads: HeadFinderView | undefined;
  private readonly legend: HTMLDivElement;
  private cell = 24;
  private width = 0;

  constructor(
    private palette: Palette,
    private readonly cb: ModelCallbacks,
  ) {
    this.element = document.createElement('div');
    this.element.className = 'model';
    this.canvas = document.createElement('canvas');
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute('role', 'application');
    this.canvas.setAttribute('aria-roledescription', 'grid of attention heads');
    this.canvas.setAttribute('aria-label', 'Model view: one thumbnail per layer and head. Arrow keys move the selected head; shift+Enter compares it in the text view.');
    this.tip = tooltip();
    this.live = liveRegion();
    this.legend = document.createElement('div');
    this.legend.className = 'roles-legend';
    this.legend.hidden = true;
    this.element.append(this.canvas, this.legend, this.tip, this.live);
    this.bind();
    new ResizeObserver(() => {
      const w = Math.floor(this.element.getBoundingClientRect().width);
      if (w > 0 && w !== this.width) {
        this.width = w;
        this.draw();
      }
    }).observe(this.element);
  }

  get canvasElement(): HTMLCanvasElement {
    return this.canvas;
  }

  setPalette(p: Palette): void {
    this.palette = p;
    this.atlas = undefined;
    this.draw();
  }

  setThumbnails(t: Thumbnails | undefined): void {
    this.thumbs = t;
    this.atlas = undefined;
    this.draw();
  }

  setSelection(sel: HeadRef | undefined): void {
    this.selected = sel;
    this.draw();
  }

  setCompare(list: { layer: number; head: number; hue: number }[]): void {
    this.compare = list;
    this.draw();
  }

  /** Head-finder scores of the current run: badges on the thumbnails, a legend, scores in the tooltip. */
  setHeads(heads: HeadFinderView | undefined): void {
    this.heads = heads;
    this.renderLegend();
    this.draw();
  }

  private renderLegend(): void {
    const heads = this.heads;
    this.legend.hidden = !heads;
    if (!heads) return;
    const n = Object.keys(heads.badges).length;
    const items = ROLES.map(({ letter, name, help }) => {
      const item = document.createElement('span');
      item.className = 'role';
      item.title = `${name}: ${help}`;
      const b = document.createElement('span');
      b.className = 'role-badge';
      b.textContent = letter;
      item.append(b, ` ${name}`);
      return item;
    });
    const note = document.createElement('span');
    note.className = 'hint';
    note.textContent = n ? `badge: score ≥ 0.5 (${n} head${n === 1 ? '' : 's'}); hover a head for its scores` : 'no head scores 0.5 or more on this text; hover a head for its scores';
    this.legend.replaceChildren(...items, note);
  }

  /** Letters of a head's roles in the masked (upper-right) corner of its thumbnail, strongest first from the left. */
  private drawBadges(ctx: CanvasRenderingContext2D, x: number, y: number, roles: readonly string[]): void {
    const p = this.palette;
    const size = this.cell >= 30 ? 12 : 10;
    const fit = Math.max(1, Math.floor((this.cell - 2) / (size + 1)));
    const shown = roles.slice(0, fit);
    ctx.font = `bold ${size - 2}px ${p.font}`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    shown.forEach((role, k) => {
      const bx = x + this.cell - (shown.length - k) * (size + 1);
      const by = y + 1;
      ctx.fillStyle = p.badgeBackground;
      ctx.fillRect(bx, by, size, size);
      if (p.highContrast) {
        ctx.strokeStyle = p.border;
        ctx.strokeRect(bx + 0.5, by + 0.5, size - 1, size - 1);
      }
      ctx.fillStyle = p.badgeForeground;
      ctx.fillText(roleLetter(role), bx + size / 2, by + size / 2 + 0.5);
    });
  }

  /** Builds one canvas holding every thumbnail's pixels ([L*S, H*S]) through the colour scale. */
  private buildAtlas(t: Thumbnails): HTMLCanvasElement {
    const { nLayer: L, nHead: H, size: S, data } = t;
    const W = H * S;
    const rgba = new Uint8ClampedArray(L * S * W * 4);
    const lut = this.palette.lut;
    for (let l = 0; l < L; l++) {
      for (let h = 0; h < H; h++) {
        const src = (l * H + h) * S * S;
        for (let y = 0; y < S; y++) {
          let o = ((l * S + y) * W + h * S) * 4;
          for (let x = 0; x < S; x++, o += 4) {
            const v = data[src + y * S + x] * 4;
            rgba[o] = lut[v];
            rgba[o + 1] = lut[v + 1];
            rgba[o + 2] = lut[v + 2];
            rgba[o + 3] = x <= y ? 255 : 0; // above the diagonal: masked, shows the background
          }
        }
      }
    }
    return pixelCanvas(W, L * S, rgba);
  }

  draw(): void {
    const t = this.thumbs;
    if (!t || this.width < 1) return;
    const t0 = performance.now();
    const p = this.palette;
    const { nLayer: L, nHead: H, size: S } = t;
    this.cell = Math.max(14, Math.min(56, Math.floor((this.width - LABEL_W) / H) - GAP));
    const pitch = this.cell + GAP;
    const cssW = LABEL_W + H * pitch;
    const cssH = LABEL_H + L * pitch;
    const ctx = fitCanvas(this.canvas, cssW, cssH);
    ctx.fillStyle = p.background;
    ctx.fillRect(0, 0, cssW, cssH);
    this.atlas ??= this.buildAtlas(t);
    const dpr = window.devicePixelRatio || 1;
    ctx.imageSmoothingEnabled = this.cell * dpr < S; // shrinking: average; growing: keep pixels crisp
    ctx.imageSmoothingQuality = 'high';
    ctx.font = `${Math.max(9, p.fontSize - 3)}px ${p.font}`;
    ctx.fillStyle = p.muted;
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'center';
    const every = this.cell < 20 ? 2 : 1;
    for (let h = 0; h < H; h += every) ctx.fillText(String(h), LABEL_W + h * pitch + this.cell / 2, LABEL_H / 2);
    ctx.textAlign = 'right';
    for (let l = 0; l < L; l++) ctx.fillText(`L${l}`, LABEL_W - 4, LABEL_H + l * pitch + this.cell / 2);
    ctx.strokeStyle = p.border;
    ctx.lineWidth = 1;
    for (let l = 0; l < L; l++) {
      for (let h = 0; h < H; h++) {
        const x = LABEL_W + h * pitch;
        const y = LABEL_H + l * pitch;
        ctx.drawImage(this.atlas, h * S, l * S, S, S, x, y, this.cell, this.cell);
        if (p.highContrast) ctx.strokeRect(x - 0.5, y - 0.5, this.cell + 1, this.cell + 1);
        const roles = headBadges(this.heads, l, h);
        if (roles.length) this.drawBadges(ctx, x, y, roles);
      }
    }
    for (const c of this.compare) {
      const x = LABEL_W + c.head * pitch;
      const y = LABEL_H + c.layer * pitch;
      ctx.fillStyle = p.hues[c.hue % p.hues.length];
      ctx.beginPath();
      ctx.moveTo(x - 1, y - 1);
      ctx.lineTo(x + 9, y - 1);
      ctx.lineTo(x - 1, y + 9);
      ctx.fill();
    }
    if (this.selected && this.selected.layer < L && this.selected.head < H) {
      ctx.strokeStyle = p.focus;
      ctx.lineWidth = 2;
      ctx.strokeRect(LABEL_W + this.selected.head * pitch - 1.5, LABEL_H + this.selected.layer * pitch - 1.5, this.cell + 3, this.cell + 3);
    }
    const ms = performance.now() - t0;
    this.canvas.dataset.painted = String(t0);
    this.cb.onPainted?.(ms);
  }

  private headAt(e: { offsetX: number; offsetY: number }): HeadRef | undefined {
    const t = this.thumbs;
    if (!t) return undefined;
    const pitch = this.cell + GAP;
    const h = Math.floor((e.offsetX - LABEL_W) / pitch);
    const l = Math.floor((e.offsetY - LABEL_H) / pitch);
    if (h < 0 || l < 0 || h >= t.nHead || l >= t.nLayer) return undefined;
    return { layer: l, head: h };
  }

  /** Where a head's thumbnail is, in css px of the canvas (for tests and tooltips). */
  headRect(layer: number, head: number): { x: number; y: number; size: number } {
    const pitch = this.cell + GAP;
    return { x: LABEL_W + head * pitch, y: LABEL_H + layer * pitch, size: this.cell };
  }

  private describe(l: number, h: number): string {
    const roles = headBadges(this.heads, l, h);
    return `${selectorLabel({ layer: l, head: h })}${roles.length ? ` — ${roles.join(', ')}` : ''}`;
  }

  private bind(): void {
    const c = this.canvas;
    c.addEventListener('click', (e) => {
      const hit = this.headAt(e);
      if (!hit) return;
      if ((e.ctrlKey || e.metaKey) && this.cb.onToggleAblate) this.cb.onToggleAblate(hit.layer, hit.head);
      else if (e.shiftKey) this.cb.onToggleCompare(hit.layer, hit.head);
      else this.cb.onSelect(hit.layer, hit.head);
    });
    c.addEventListener('pointermove', (e) => {
      const hit = this.headAt(e);
      if (!hit) {
        this.tip.hidden = true;
        return;
      }
      const scores = scoreLine(this.heads, hit.layer, hit.head);
      this.tip.textContent = `${this.describe(hit.layer, hit.head)} (click: select; shift+click: compare)${scores ? `\n${scores}` : ''}`;
      const r = this.headRect(hit.layer, hit.head);
      placeTooltip(this.tip, toClient(this.canvas, { x: r.x, y: r.y, width: r.size, height: r.size }));
    });
    c.addEventListener('pointerleave', () => (this.tip.hidden = true));
    c.addEventListener('keydown', (e) => {
      const t = this.thumbs;
      if (!t) return;
      const s = this.selected ?? { layer: 0, head: 0 };
      let { layer, head } = s;
      switch (e.key) {
        case 'ArrowUp': layer = Math.max(0, layer - 1); break;
        case 'ArrowDown': layer = Math.min(t.nLayer - 1, layer + 1); break;
        case 'ArrowLeft': head = Math.max(0, head - 1); break;
        case 'ArrowRight': head = Math.min(t.nHead - 1, head + 1); break;
        case 'Enter': case ' ':
          if (e.shiftKey) this.cb.onToggleCompare(layer, head);
          else this.cb.onSelect(layer, head);
          e.preventDefault();
          return;
        default: return;
      }
      e.preventDefault();
      this.live.textContent = this.describe(layer, head);
      this.cb.onSelect(layer, head);
    });
  }
}
