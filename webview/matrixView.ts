/**
 * The selected head's full T×T matrix on canvas: token labels on both axes (when zoomed in enough to read them),
 * wheel zoom and drag pan, a crosshair naming query, key and weight, linear or log colour scale.
 *
 * Pixels come from matrixPixels.ts (a max-pooled mip chain); each frame draws the one level whose cells are at
 * least a device pixel.
 */
import { liveRegion, placeTooltip, toClient, tooltip } from './dom';
import type { HeadMap } from './attention';
import { fitCanvas, tokenLabel } from './canvas';
import { MatrixPixels } from './matrixPixels';
import type { Palette } from './theme';

const LEFT = 78; // css px for query labels
const TOP = 64; // css px for key labels
const PAD = 8;

export interface MatrixCallbacks {
  /** The user picked a query token (click or Enter). */
  onPickToken(index: number): void;
  onPainted?(ms: number): void;
}

export class MatrixView {
  readonly element: HTMLDivElement;
  private readonly base: HTMLCanvasElement;
  private readonly overlay: HTMLCanvasElement;
  private readonly tip: HTMLDivElement;
  private readonly live: HTMLDivElement;
  private map: HeadMap | undefined;
  private labels: string[] = [];
  private log = false;
  /** The head's pixels at every zoom (mip chain). */
  private readonly pixels: MatrixPixels;
  /** Top-left cell of the plot (fractional) and css px per cell. */
  private view = { x: 0, y: 0, scale: 1 };
  private fitted = false;
  /** The crosshair's cell: where the pointer or the arrow keys are (starts on the selected query's diagonal). */
  private cursor: { i: number; j: number } | undefined;
  /** The selected query token: marked by a row line while the crosshair is not in use. */
  private query: number | undefined;
  /** Who shows the crosshair and its tooltip: the pointer over the plot, or the arrow keys; nobody before either. */
  private active: 'pointer' | 'keys' | undefined;
  private width = 0;
  private height = 0;
  private drag: { x: number; y: number; vx: number; vy: number; moved: boolean } | undefined;

  constructor(
    private palette: Palette,
    private readonly cb: MatrixCallbacks,
  ) {
    this.pixels = new MatrixPixels(palette);
    this.element = document.createElement('div');
    this.element.className = 'matrix';
    this.base = document.createElement('canvas');
    this.base.className = 'matrix-base';
    this.base.setAttribute('role', 'img');
    this.overlay = document.createElement('canvas');
    this.overlay.className = 'matrix-overlay';
    this.overlay.tabIndex = 0;
    this.overlay.setAttribute('role', 'application');
    this.overlay.setAttribute('aria-roledescription', 'attention matrix');
    this.overlay.setAttribute('aria-label', 'Head matrix. Arrow keys move the crosshair (up and down: query token; left and right: key token); plus and minus zoom; 0 fits; Enter selects the query token.');
    this.tip = tooltip();
    this.live = liveRegion();
    this.element.append(this.base, this.overlay, this.tip, this.live);
    this.bindEvents();
    new ResizeObserver(() => this.resize()).observe(this.element);
  }

  get head(): HeadMap | undefined {
    return this.map;
  }

  get canvas(): HTMLCanvasElement {
    return this.base;
  }

  get crosshair(): { i: number; j: number } | undefined {
    return this.cursor;
  }

  setPalette(p: Palette): void {
    this.palette = p;
    this.pixels.setPalette(p);
    this.draw();
  }

  setLog(log: boolean): void {
    if (log === this.log) return;
    this.log = log;
    this.rebuild();
  }

  /** Shows a head; keeps zoom and pan when T is unchanged (switching heads compares the same region). */
  setMap(map: HeadMap | undefined, labels: string[]): void {
    const t0 = performance.now();
    if (!map || !this.map || map.T !== this.map.T) this.fitted = false;
    this.map = map;
    this.labels = labels;
    if (this.cursor && map && (this.cursor.i >= map.T || this.cursor.j >= map.T)) this.cursor = undefined;
    if (this.query !== undefined && map && this.query >= map.T) this.query = undefined;
    this.base.setAttribute('aria-label', map ? `Attention matrix of layer ${map.layer}, head ${map.head}: ${map.T} query tokens by ${map.T} key tokens.` : 'No head selected.');
    this.rebuild();
    this.cb.onPainted?.(performance.now() - t0);
  }

  /** Puts the crosshair on a query row (the selected token), keeping its key column when possible. */
  setQuery(i: number | undefined): void {
    if (!this.map || i === undefined) return;
    this.query = i;
    const j = Math.min(this.cursor?.j ?? i, i);
    this.cursor = { i, j };
    this.drawOverlay();
  }

  zoomBy(factor: number, cx = this.plotW / 2, cy = this.plotH / 2): void {
    if (!this.map) return;
    const { x, y, scale } = this.view;
    const min = this.fitScale;
    const next = Math.min(64, Math.max(min, scale * factor));
    const ax = x + cx / scale;
    const ay = y + cy / scale;
    this.view = { scale: next, x: ax - cx / next, y: ay - cy / next };
    this.clampView();
    this.draw();
  }

  fit(): void {
    this.view = { x: 0, y: 0, scale: this.fitScale };
    this.fitted = true;
    this.draw();
  }

  // ------------------------------------------------------------ pixels

  private get plotW(): number {
    return Math.max(10, this.width - LEFT - PAD);
  }
  private get plotH(): number {
    return Math.max(10, this.height - TOP - PAD);
  }
  private get fitScale(): number {
    return this.map ? Math.min(this.plotW, this.plotH) / this.map.T : 1;
  }

  /** New pixels for the head or the scale; keeps the view unless it was fitted. */
  private rebuild(): void {
    this.pixels.set(this.map, this.log);
    if (!this.fitted) this.fit();
    else this.draw();
  }

  private resize(): void {
    const r = this.element.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) return;
    this.width = Math.floor(r.width);
    this.height = Math.floor(r.height);
    if (this.fitted) this.view.scale = this.fitScale;
    this.draw();
  }

  private clampView(): void {
    if (!this.map) return;
    const T = this.map.T;
    const vw = this.plotW / this.view.scale;
    const vh = this.plotH / this.view.scale;
    this.view.x = Math.min(Math.max(0, this.view.x), Math.max(0, T - vw));
    this.view.y = Math.min(Math.max(0, this.view.y), Math.max(0, T - vh));
    this.fitted = this.view.scale <= this.fitScale + 1e-9;
  }

  draw(): void {
    if (this.width < 1) return;
    const t0 = performance.now();
    const p = this.palette;
    const ctx = fitCanvas(this.base, this.width, this.height);
    ctx.fillStyle = p.background;
    ctx.fillRect(0, 0, this.width, this.height);
    const map = this.map;
    if (!map) {
      ctx.fillStyle = p.muted;
      ctx.font = `${p.fontSize}px ${p.font}`;
      ctx.fillText('Pick a head in the model view.', LEFT, TOP + 20);
      this.drawOverlay();
      return;
    }
    const T = map.T;
    const { x, y, scale } = this.view;
    const dpr = window.devicePixelRatio || 1;
    // the finest level with at most one level pixel per device pixel: nearest sampling then drops no cell
    const k = Math.max(0, Math.min(Math.ceil(Math.log2(Math.max(1, T))), Math.ceil(Math.log2(1 / (scale * dpr)) - 1e-9)));
    const f = 2 ** k;
    const c0 = Math.max(0, Math.floor(x));
    const r0 = Math.max(0, Math.floor(y));
    const c1 = Math.min(T, Math.ceil(x + this.plotW / scale));
    const r1 = Math.min(T, Math.ceil(y + this.plotH / scale));
    ctx.save();
    ctx.beginPath();
    ctx.rect(LEFT, TOP, this.plotW, this.plotH);
    ctx.clip();
    ctx.drawImage(this.pixels.canvas(k), c0 / f, r0 / f, (c1 - c0) / f, (r1 - r0) / f, LEFT + (c0 - x) * scale, TOP + (r0 - y) * scale, (c1 - c0) * scale, (r1 - r0) * scale);
    ctx.restore();
    ctx.strokeStyle = p.border;
    ctx.lineWidth = 1;
    ctx.strokeRect(LEFT - 0.5, TOP - 0.5, Math.min(this.plotW, (T - x) * scale) + 1, Math.min(this.plotH, (T - y) * scale) + 1);
    this.drawAxes(ctx, c0, c1, r0, r1);
    this.drawOverlay();
    this.cb.onPainted?.(performance.now() - t0);
  }

  private drawAxes(ctx: CanvasRenderingContext2D, c0: number, c1: number, r0: number, r1: number): void {
    const p = this.palette;
    const { x, y, scale } = this.view;
    ctx.fillStyle = p.muted;
    ctx.font = `${Math.max(9, p.fontSize - 2)}px ${p.font}`;
    ctx.textBaseline = 'middle';
    ctx.fillText('key →', LEFT, 10);
    ctx.save();
    ctx.translate(10, TOP);
    ctx.rotate(Math.PI / 2);
    ctx.fillText('query →', 0, 0);
    ctx.restore();
    ctx.fillStyle = p.foreground;
    if (scale >= 9) {
      const size = Math.min(12, Math.floor(scale - 1));
      ctx.font = `${size}px ${p.monoFont}`;
      ctx.textAlign = 'right';
      for (let i = r0; i < r1; i++) ctx.fillText(tokenLabel(this.labels[i] ?? '', 9), LEFT - 4, TOP + (i - y + 0.5) * scale);
      ctx.save();
      ctx.translate(LEFT, TOP - 4);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = 'left';
      for (let j = c0; j < c1; j++) ctx.fillText(tokenLabel(this.labels[j] ?? '', 7), 0, (j - x + 0.5) * scale);
      ctx.restore();
    } else {
      const step = niceStep(36 / scale);
      ctx.font = `${Math.max(9, p.fontSize - 3)}px ${p.font}`;
      ctx.textAlign = 'right';
      for (let i = Math.ceil(r0 / step) * step; i < r1; i += step) ctx.fillText(String(i), LEFT - 4, TOP + (i - y + 0.5) * scale);
      ctx.textAlign = 'center';
      for (let j = Math.ceil(c0 / step) * step; j < c1; j += step) ctx.fillText(String(j), LEFT + (j - x + 0.5) * scale, TOP - 10);
    }
    ctx.textAlign = 'left';
  }

  private drawOverlay(): void {
    const ctx = fitCanvas(this.overlay, Math.max(1, this.width), Math.max(1, this.height));
    ctx.clearRect(0, 0, this.width, this.height);
    const map = this.map;
    const c = this.cursor;
    this.overlay.dataset.query = this.query === undefined ? '' : String(this.query);
    this.overlay.dataset.crosshair = this.active && c ? `${c.i},${c.j}` : '';
    if (!map || !this.active || !c) {
      this.tip.hidden = true;
      if (map && this.query !== undefined) this.drawQueryRow(ctx, map.T, this.query);
      return;
    }
    const { x, y, scale } = this.view;
    const cx = LEFT + (c.j - x + 0.5) * scale;
    const cy = TOP + (c.i - y + 0.5) * scale;
    const inside = cx >= LEFT && cx <= LEFT + this.plotW && cy >= TOP && cy <= TOP + this.plotH;
    ctx.strokeStyle = this.palette.focus;
    ctx.lineWidth = 1;
    ctx.setLineDash([3, 3]);
    // the lines stop at the matrix's edge when it is smaller than the plot area
    const right = LEFT + Math.min(this.plotW, (map.T - x) * scale);
    const bottom = TOP + Math.min(this.plotH, (map.T - y) * scale);
    ctx.beginPath();
    if (cy >= TOP && cy <= bottom) {
      ctx.moveTo(LEFT, Math.round(cy) + 0.5);
      ctx.lineTo(right, Math.round(cy) + 0.5);
    }
    if (cx >= LEFT && cx <= right) {
      ctx.moveTo(Math.round(cx) + 0.5, TOP);
      ctx.lineTo(Math.round(cx) + 0.5, bottom);
    }
    ctx.stroke();
    ctx.setLineDash([]);
    if (!inside) {
      this.tip.hidden = true;
      return;
    }
    const s = Math.max(4, scale);
    ctx.lineWidth = 2;
    ctx.strokeRect(cx - s / 2, cy - s / 2, s, s);
    this.tip.textContent = this.describe(c.i, c.j);
    placeTooltip(this.tip, toClient(this.overlay, { x: cx + 8, y: cy - s / 2, width: s / 2, height: s }));
  }

  /** The selected query's row as a dashed line across the matrix (no tooltip: nothing is pointed at). */
  private drawQueryRow(ctx: CanvasRenderingContext2D, T: number, i: number): void {
    const { x, y, scale } = this.view;
    const cy = TOP + (i - y + 0.5) * scale;
    const bottom = TOP + Math.min(this.plotH, (T - y) * scale);
    if (cy < TOP || cy > bottom) return;
    ctx.strokeStyle = this.palette.focus;
    ctx.lineWidth = 1;
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    ctx.moveTo(LEFT, Math.round(cy) + 0.5);
    ctx.lineTo(LEFT + Math.min(this.plotW, (T - x) * scale), Math.round(cy) + 0.5);
    ctx.stroke();
    ctx.setLineDash([]);
  }

  describe(i: number, j: number): string {
    const map = this.map;
    if (!map) return '';
    const q = `query #${i} “${tokenLabel(this.labels[i] ?? '', 16)}”`;
    const k = `key #${j} “${tokenLabel(this.labels[j] ?? '', 16)}”`;
    if (j > i) return `${q} → ${k}: masked (a token cannot see later tokens)`;
    return `${q} → ${k}: ${formatWeight(map.at(i, j))}`;
  }

  // ------------------------------------------------------------ input

  private cellAt(e: { offsetX: number; offsetY: number }): { i: number; j: number } | undefined {
    if (!this.map) return undefined;
    const px = e.offsetX - LEFT;
    const py = e.offsetY - TOP;
    if (px < 0 || py < 0 || px > this.plotW || py > this.plotH) return undefined;
    const j = Math.floor(this.view.x + px / this.view.scale);
    const i = Math.floor(this.view.y + py / this.view.scale);
    return i < this.map.T && j < this.map.T ? { i, j } : undefined;
  }

  private bindEvents(): void {
    const o = this.overlay;
    o.addEventListener('wheel', (e) => {
      e.preventDefault();
      this.zoomBy(Math.pow(1.0015, -e.deltaY), e.offsetX - LEFT, e.offsetY - TOP);
    }, { passive: false });
    o.addEventListener('pointerdown', (e) => {
      o.setPointerCapture(e.pointerId);
      this.drag = { x: e.clientX, y: e.clientY, vx: this.view.x, vy: this.view.y, moved: false };
    });
    o.addEventListener('pointermove', (e) => {
      const d = this.drag;
      if (d && (d.moved || Math.abs(e.clientX - d.x) + Math.abs(e.clientY - d.y) > 3)) {
        d.moved = true;
        this.view.x = d.vx - (e.clientX - d.x) / this.view.scale;
        this.view.y = d.vy - (e.clientY - d.y) / this.view.scale;
        this.clampView();
        this.draw();
        return;
      }
      const cell = this.cellAt(e);
      if (cell) {
        this.cursor = cell;
        this.active = 'pointer';
        this.drawOverlay();
      } else if (this.active === 'pointer') {
        this.active = undefined; // over the labels or the empty part of the plot
        this.drawOverlay();
      }
    });
    o.addEventListener('pointerup', (e) => {
      const d = this.drag;
      this.drag = undefined;
      if (d && !d.moved) {
        const cell = this.cellAt(e);
        if (cell) this.cb.onPickToken(cell.i);
      }
    });
    o.addEventListener('pointerleave', () => {
      if (this.active !== 'pointer') return;
      this.active = undefined;
      this.drawOverlay();
    });
    o.addEventListener('blur', () => {
      if (this.active !== 'keys') return;
      this.active = undefined;
      this.drawOverlay();
    });
    o.addEventListener('keydown', (e) => this.onKey(e));
  }

  private onKey(e: KeyboardEvent): void {
    const map = this.map;
    if (!map) return;
    const c = this.cursor ?? { i: 0, j: 0 };
    let { i, j } = c;
    switch (e.key) {
      case 'ArrowUp': i = Math.max(0, i - 1); j = Math.min(j, i); break;
      case 'ArrowDown': i = Math.min(map.T - 1, i + 1); break;
      case 'ArrowLeft': j = Math.max(0, j - 1); break;
      case 'ArrowRight': j = Math.min(i, j + 1); break;
      case '+': case '=': this.zoomBy(1.5); e.preventDefault(); return;
      case '-': this.zoomBy(1 / 1.5); e.preventDefault(); return;
      case '0': this.fit(); e.preventDefault(); return;
      case 'Enter': this.cb.onPickToken(i); e.preventDefault(); return;
      default: return;
    }
    e.preventDefault();
    this.cursor = { i, j };
    this.active = 'keys';
    this.scrollIntoView(i, j);
    this.drawOverlay();
    this.live.textContent = this.describe(i, j);
    if (i !== c.i) this.cb.onPickToken(i);
  }

  /** Pans so that cell (i, j) is visible. */
  private scrollIntoView(i: number, j: number): void {
    const vw = this.plotW / this.view.scale;
    const vh = this.plotH / this.view.scale;
    let changed = false;
    if (j < this.view.x) { this.view.x = j; changed = true; }
    if (j + 1 > this.view.x + vw) { this.view.x = j + 1 - vw; changed = true; }
    if (i < this.view.y) { this.view.y = i; changed = true; }
    if (i + 1 > this.view.y + vh) { this.view.y = i + 1 - vh; changed = true; }
    if (changed) {
      this.clampView();
      this.draw();
    }
  }
}

export function formatWeight(w: number): string {
  if (w === 0) return '0';
  if (w < 0.001) return w.toExponential(1);
  return w.toFixed(3);
}

function niceStep(raw: number): number {
  const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
  return steps.find((s) => s >= raw) ?? 1000;
}
