/**
 * Entry of the sidebar webview: for the editor cursor's token, a layer × head heatmap of where it looks (peak
 * weight on a non-sink token, see extension/host/webviewSession.ts), the selected head's row as a strip, and its
 * top sources. Click a cell (or arrows + Enter) to select that head everywhere.
 */
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import type { HeadRef, HeadSelector } from '../extension/common/engineProtocol';
import { RpcEndpoint } from '../extension/common/rpc';
import type { HeadFinderView, RunView, SidebarFocus, SidebarHostEvents, SidebarHostRequests, SidebarWebviewEvents } from '../extension/common/webviewProtocol';
import { fitCanvas, tokenLabel } from './canvas';
import { el, painted, placeTooltip, toClient } from './dom';
import { headBadges, roleLetter, scoreLine } from './headRoles';
import { formatWeight } from './matrixView';
import { selectorLabel } from '../extension/common/displayNames';
import { readPalette, watchPixelRatio, watchTheme, type Palette } from './theme';
import { connectToHost, type VsCodeApi } from './vscodeApi';
import { SidebarAttribution, type SidebarHeatMode } from './sidebarAttribution';

/** The heatmap's layout in css px: label margins, then H columns × L rows of cells filling the view's width. */
interface HeatGrid {
  x0: number;
  y0: number;
  cellW: number;
  cellH: number;
  font: number;
}

class SidebarApp {
  private palette: Palette = readPalette();
  private run: RunView | undefined;
  private focus: SidebarFocus | undefined;
  private heads: HeadFinderView | undefined;
  private sel: HeadSelector = { layer: 0, head: 0 };
  private grid: HeatGrid = { x0: 28, y0: 14, cellW: 12, cellH: 12, font: 10 };
  private readonly endpoint: RpcEndpoint<SidebarHostRequests, Record<string, never>, SidebarWebviewEvents, SidebarHostEvents>;
  private readonly heading = el('div', { className: 'focus-token', role: 'status', 'aria-live': 'polite' }, 'Waiting for an analysis…');
  private readonly stale = el('vscode-badge', { hidden: true, title: 'The document changed since this analysis.' }, 'stale');
  /** Shown while the row and sources are value-weighted (headlight.attentionMode). */
  private readonly modeBadge = el('vscode-badge', { className: 'mode', hidden: true, title: 'Value-weighted attention: α times the norm of what each source adds through the head, normalized per row (setting headlight.attentionMode), in the heatmap, the strip and the list.' }, 'value-weighted');
  private readonly heat = el('canvas', { tabindex: '0', role: 'application', 'aria-roledescription': 'heatmap of heads', 'aria-label': 'Where the token looks, per layer and head: the peak weight on a token other than the first. Arrow keys move, Enter selects the head.' }) as HTMLCanvasElement;
  private readonly strip = el('canvas', { role: 'img', 'aria-label': "The selected head's weights over the window" }) as HTMLCanvasElement;
  private readonly list = el('ol', { className: 'sources', 'aria-label': 'Top sources of the selected head' });
  private readonly tip = el('div', { className: 'tooltip', hidden: true });
  private readonly selLabel = el('h2', { className: 'sel-label' }, 'Selected head');
  private keyCursor: HeadRef | undefined;
  /** The heatmap's second mode: direct logit attribution at the cursor's token (sidebarAttribution.ts). */
  private readonly attribution: SidebarAttribution;
  private readonly attentionPart: HTMLElement;
  private heatMode: SidebarHeatMode;

  constructor(channel: ReturnType<typeof connectToHost>['channel'], private readonly api: VsCodeApi) {
    this.attribution = new SidebarAttribution(this.palette, {
      attribute: (version, index, signal) => this.endpoint.request('attribute', { version, index }, signal),
      select: (l, h) => this.select(l, h),
    });
    const saved = api.getState() as { heatMode?: SidebarHeatMode } | undefined;
    this.heatMode = saved?.heatMode === 'attribution' ? 'attribution' : 'attention';
    this.endpoint = new RpcEndpoint<SidebarHostRequests, Record<string, never>, SidebarWebviewEvents, SidebarHostEvents>(channel, {}, {
      run: (r) => {
        if (this.run?.version !== r.version) this.heads = undefined;
        this.run = r;
        this.stale.hidden = !r.stale;
      },
      heads: (h) => {
        if (this.run?.version !== h.version) return;
        this.heads = h;
        this.draw();
      },
      selection: (s) => {
        this.sel = s;
        this.draw();
      },
      focus: (f) => {
        this.focus = f;
        this.draw();
      },
      blur: ({ message }) => {
        this.focus = undefined;
        this.heading.textContent = message;
        this.draw();
      },
      stale: ({ version, stale }) => {
        if (this.run?.version === version) this.stale.hidden = !stale;
      },
    });
    const heatWrap = el('div', { className: 'heat' }, this.heat, this.tip);
    const modeSelect = el('vscode-single-select', { className: 'heat-mode', 'aria-label': 'Heatmap: where the token looks, or what writes its next-token logit' },
      el('vscode-option', { value: 'attention', selected: this.heatMode === 'attention' }, 'Where it looks (attention)'),
      el('vscode-option', { value: 'attribution', selected: this.heatMode === 'attribution' }, 'What writes the next token (attribution)'),
    ) as HTMLElement & { value: string };
    modeSelect.addEventListener('change', () => this.setHeatMode(modeSelect.value === 'attribution' ? 'attribution' : 'attention'));
    this.attentionPart = el('div', { className: 'attention-heat' },
      el('p', { className: 'hint' }, 'Peak weight on a token other than the first. Click a cell to select the head. Letters: the head finder’s roles (P previous-token, I induction, S first-token sink, D duplicate-token, L local).'),
      heatWrap);
    document.body.replaceChildren(
      el('div', { className: 'row' }, this.heading, this.modeBadge, this.stale),
      modeSelect,
      this.attentionPart,
      this.attribution.element,
      this.selLabel,
      el('div', { className: 'strip' }, this.strip),
      this.list,
    );
    this.bind();
    this.setHeatMode(this.heatMode);
    watchTheme((p) => {
      this.palette = p;
      this.attribution.setPalette(p);
      this.draw();
    });
    watchPixelRatio(() => this.draw());
    new ResizeObserver(() => this.draw()).observe(document.body);
    this.endpoint.emit('ready', {});
  }

  private setHeatMode(mode: SidebarHeatMode): void {
    this.heatMode = mode;
    this.api.setState({ ...((this.api.getState() as object | undefined) ?? {}), heatMode: mode });
    this.attentionPart.hidden = mode !== 'attention';
    this.attribution.setShown(mode === 'attribution');
    this.draw();
  }

  private get dims(): { L: number; H: number } {
    return { L: this.run?.model.nLayer ?? 0, H: this.run?.model.nHead ?? 0 };
  }

  private select(layer: number, head: number): void {
    this.sel = { layer, head };
    this.endpoint.emit('select', { layer, head });
    this.draw();
  }

  private draw(): void {
    const t0 = performance.now();
    const f = this.focus;
    const run = this.run;
    const width = Math.max(120, document.body.clientWidth - 16);
    const { L, H } = this.dims;
    this.attribution.setSelection(this.sel);
    this.attribution.focus(f && run && f.version === run.version ? f.version : undefined, f?.index, width);
    if (!f || !run || f.version !== run.version || !L) {
      fitCanvas(this.heat, width, 1);
      fitCanvas(this.strip, width, 1);
      this.list.replaceChildren();
      return;
    }
    const tok = run.tokens[f.index];
    this.heading.textContent = `Token #${f.index} “${tokenLabel(tok?.text ?? '', 24)}”`;
    this.drawHeat(f, L, H, width);
    this.drawStrip(f, width);
    this.drawList(f, run);
    painted('sidebar', performance.now() - t0);
  }

  /**
   * Cells as wide as the view allows (labels in a margin sized to their font), at most square and short enough that
   * a tall model still leaves room for the list below.
   */
  private layoutHeat(L: number, H: number, width: number): HeatGrid {
    const font = Math.max(10, Math.min(12, this.palette.fontSize - 1));
    const ctx = this.heat.getContext('2d')!;
    ctx.font = `${font}px ${this.palette.font}`;
    const x0 = Math.ceil(ctx.measureText(`L${L - 1}`).width) + 6;
    const y0 = font + 4;
    const cellW = (width - x0) / H;
    const maxH = Math.max(160, window.innerHeight * 0.45);
    const cellH = Math.max(6, Math.min(cellW, Math.floor(maxH / L)));
    return { x0, y0, cellW, cellH, font };
  }

  /**
   * The layer × head heatmap [L, H]. Cell edges are rounded to device pixels, so every cell is one flat colour with
   * no blended seams at any devicePixelRatio.
   */
  private drawHeat(f: SidebarFocus, L: number, H: number, width: number): void {
    const p = this.palette;
    const dpr = window.devicePixelRatio || 1;
    const g = (this.grid = this.layoutHeat(L, H, width));
    const cssW = Math.floor(width * dpr) / dpr;
    const cssH = Math.ceil((g.y0 + L * g.cellH) * dpr) / dpr;
    const ctx = fitCanvas(this.heat, cssW, cssH);
    ctx.clearRect(0, 0, cssW, cssH); // the view's own background shows through
    this.heat.dataset.grid = JSON.stringify(g);
    ctx.font = `${g.font}px ${p.font}`;
    ctx.fillStyle = p.muted;
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'right';
    const rowStep = Math.ceil((g.font + 1) / g.cellH);
    for (let l = 0; l < L; l += rowStep) ctx.fillText(`L${l}`, g.x0 - 4, g.y0 + (l + 0.5) * g.cellH);
    ctx.textAlign = 'center';
    const colStep = Math.ceil(ctx.measureText(String(H - 1)).width / Math.max(1, g.cellW - 4));
    for (let h = 0; h < H; h += colStep) ctx.fillText(String(h), g.x0 + (h + 0.5) * g.cellW, g.y0 / 2);
    // cells in device pixels: [x(h), x(h+1) - gap) × [y(l), y(l+1) - gap)
    const xs = Array.from({ length: H + 1 }, (_, h) => Math.round((g.x0 + h * g.cellW) * dpr));
    const ys = Array.from({ length: L + 1 }, (_, l) => Math.round((g.y0 + l * g.cellH) * dpr));
    const gap = Math.min(g.cellW, g.cellH) > 8 ? Math.max(1, Math.round(dpr)) : 0;
    const lut = p.lut;
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    for (let l = 0; l < L; l++) {
      for (let h = 0; h < H; h++) {
        const k = Math.round(Math.min(1, f.peak[l * H + h]) * 255) * 4;
        ctx.fillStyle = `rgb(${lut[k]}, ${lut[k + 1]}, ${lut[k + 2]})`;
        ctx.fillRect(xs[h], ys[l], xs[h + 1] - xs[h] - gap, ys[l + 1] - ys[l] - gap);
      }
    }
    ctx.restore();
    const mark = (layer: number, head: number, color: string, w: number) => {
      ctx.strokeStyle = color;
      ctx.lineWidth = w;
      const x = xs[head] / dpr;
      const y = ys[layer] / dpr;
      ctx.strokeRect(x - w / 2, y - w / 2, xs[head + 1] / dpr - x + w - 1, ys[layer + 1] / dpr - y + w - 1);
    };
    if (g.cellH >= 12 && g.cellW >= 12) this.drawBadges(ctx, L, H);
    if (typeof this.sel.layer === 'number' && typeof this.sel.head === 'number') mark(this.sel.layer, this.sel.head, p.focus, 2);
    if (this.keyCursor && document.activeElement === this.heat) mark(this.keyCursor.layer, this.keyCursor.head, p.foreground, 1);
  }

  /** The strongest role's letter in the corner of each badged head's cell. */
  private drawBadges(ctx: CanvasRenderingContext2D, L: number, H: number): void {
    const p = this.palette;
    const g = this.grid;
    const size = Math.min(14, Math.floor(Math.min(g.cellW, g.cellH) / 2), Math.max(10, Math.floor(g.cellH) - 4));
    ctx.font = `bold ${size - 2}px ${p.font}`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    for (let l = 0; l < L; l++) {
      for (let h = 0; h < H; h++) {
        const roles = headBadges(this.heads, l, h);
        if (!roles.length) continue;
        const x = g.x0 + (h + 1) * g.cellW - 1 - size;
        const y = g.y0 + l * g.cellH;
        ctx.fillStyle = p.badgeBackground;
        ctx.fillRect(x, y, size, size);
        ctx.fillStyle = p.badgeForeground;
        ctx.fillText(roleLetter(roles[0]), x + size / 2, y + size / 2 + 0.5);
      }
    }
  }

  private drawStrip(f: SidebarFocus, width: number): void {
    const p = this.palette;
    const sel = f.sel;
    const roles = typeof sel.layer === 'number' && typeof sel.head === 'number' ? headBadges(this.heads, sel.layer, sel.head) : [];
    const vw = f.mode === 'value-weighted';
    this.modeBadge.hidden = !vw;
    this.selLabel.textContent = `${selectorLabel(sel)}${roles.length ? ` (${roles.join(', ')})` : ''}${vw ? ' · value-weighted' : ''}: weights over the window`;
    const n = f.row.length;
    const ctx = fitCanvas(this.strip, width, 16);
    ctx.clearRect(0, 0, width, 16);
    const cols = Math.min(n, Math.round(width * (window.devicePixelRatio || 1)));
    const lut = p.lut;
    for (let c = 0; c < cols; c++) {
      const i0 = Math.floor((c * n) / cols);
      const i1 = Math.max(i0 + 1, Math.floor(((c + 1) * n) / cols));
      let w = 0;
      for (let i = i0; i < i1; i++) if (f.row[i] > w) w = f.row[i]; // max-pool: a sharp source stays visible
      const k = Math.round(Math.sqrt(Math.min(1, w)) * 255) * 4;
      ctx.fillStyle = `rgb(${lut[k]}, ${lut[k + 1]}, ${lut[k + 2]})`;
      ctx.fillRect((c * width) / cols, 0, Math.max(width / cols, 0.5), 16);
    }
  }

  private drawList(f: SidebarFocus, run: RunView): void {
    this.list.replaceChildren(...f.topSources.map((s) => {
      const bar = el('span', { className: 'bar', 'aria-hidden': 'true' });
      bar.style.width = `${Math.round(s.weight * 100)}%`;
      const b = el('button', { className: 'source', 'aria-label': `Token ${s.index} ${run.tokens[s.index]?.text ?? ''}, weight ${formatWeight(s.weight)}. Move the cursor there.` },
        el('span', { className: 'tok-text' }, `#${s.index} “${tokenLabel(run.tokens[s.index]?.text ?? '', 18)}”`),
        el('span', { className: 'weight' }, formatWeight(s.weight)),
        el('span', { className: 'bar-track' }, bar));
      b.addEventListener('click', () => this.endpoint.emit('revealToken', { index: s.index }));
      return el('li', {}, b);
    }));
  }

  private headAt(e: MouseEvent): HeadRef | undefined {
    const { L, H } = this.dims;
    const g = this.grid;
    const h = Math.floor((e.offsetX - g.x0) / g.cellW);
    const l = Math.floor((e.offsetY - g.y0) / g.cellH);
    return h >= 0 && l >= 0 && h < H && l < L ? { layer: l, head: h } : undefined;
  }

  private describe(layer: number, head: number): string {
    const f = this.focus;
    const run = this.run;
    if (!f || !run) return '';
    const k = layer * this.dims.H + head;
    const j = f.peakIndex[k];
    const scores = scoreLine(this.heads, layer, head);
    const roles = headBadges(this.heads, layer, head);
    return `L${layer} H${head}${roles.length ? ` (${roles.join(', ')})` : ''}: ${formatWeight(f.peak[k])} on #${j} “${tokenLabel(run.tokens[j]?.text ?? '', 16)}” (first token: ${formatWeight(f.sink[k])})${scores ? `\n${scores}` : ''}`;
  }

  private bind(): void {
    this.heat.addEventListener('click', (e) => {
      const hit = this.headAt(e);
      if (hit) this.select(hit.layer, hit.head);
    });
    this.heat.addEventListener('pointermove', (e) => {
      const hit = this.headAt(e);
      if (!hit) {
        this.tip.hidden = true;
        return;
      }
      this.tip.textContent = this.describe(hit.layer, hit.head);
      const g = this.grid;
      placeTooltip(this.tip, toClient(this.heat, { x: e.offsetX + 8, y: g.y0 + hit.layer * g.cellH, width: 1, height: g.cellH }));
    });
    this.heat.addEventListener('pointerleave', () => (this.tip.hidden = true));
    this.heat.addEventListener('keydown', (e) => {
      const { L, H } = this.dims;
      if (!L) return;
      const c = this.keyCursor ?? (typeof this.sel.layer === 'number' && typeof this.sel.head === 'number' ? { layer: this.sel.layer, head: this.sel.head } : { layer: 0, head: 0 });
      let { layer, head } = c;
      if (e.key === 'ArrowUp') layer = Math.max(0, layer - 1);
      else if (e.key === 'ArrowDown') layer = Math.min(L - 1, layer + 1);
      else if (e.key === 'ArrowLeft') head = Math.max(0, head - 1);
      else if (e.key === 'ArrowRight') head = Math.min(H - 1, head + 1);
      else if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        this.select(layer, head);
        return;
      } else return;
      e.preventDefault();
      this.keyCursor = { layer, head };
      this.heading.textContent = this.describe(layer, head);
      this.draw();
    });
    this.strip.addEventListener('click', (e) => {
      const f = this.focus;
      if (!f) return;
      const i = Math.floor((e.offsetX / this.strip.clientWidth) * f.row.length);
      if (i >= 0 && i < f.row.length) this.endpoint.emit('revealToken', { index: i });
    });
  }
}

const { api, channel } = connectToHost();
new SidebarApp(channel, api);
