/**
 * Entry of the sidebar webview: for the editor cursor's token, a layer × head heatmap of where it looks (peak
 * weight on a non-sink token, see extension/host/webviewSession.ts), the selected head's row as a strip, and its
 * top sources. Click a cell (or arrows + Enter) to select that head everywhere.
 */
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import type { HeadSelector } from '../extension/common/engineProtocol';
import { RpcEndpoint } from '../extension/common/rpc';
import type { HeadFinderView, RunView, SidebarFocus, SidebarHostEvents, SidebarHostRequests, SidebarWebviewEvents } from '../extension/common/webviewProtocol';
import { fitCanvas, tokenLabel } from './canvas';
import { el, painted } from './dom';
import { headBadges, roleLetter, scoreLine } from './headRoles';
import { formatWeight } from './matrixView';
import { readPalette, watchPixelRatio, watchTheme, type Palette } from './theme';
import { connectToHost } from './vscodeApi';

const LABEL_W = 28;
const LABEL_H = 14;

class SidebarApp {
  private palette: Palette = readPalette();
  private run: RunView | undefined;
  private focus: SidebarFocus | undefined;
  private heads: HeadFinderView | undefined;
  private sel: HeadSelector = { layer: 0, head: 0 };
  private cell = 12;
  private readonly endpoint: RpcEndpoint<SidebarHostRequests, Record<string, never>, SidebarWebviewEvents, SidebarHostEvents>;
  private readonly heading = el('div', { className: 'focus-token', role: 'status', 'aria-live': 'polite' }, 'Waiting for an analysis…');
  private readonly stale = el('vscode-badge', { hidden: true, title: 'The document changed since this analysis.' }, 'stale');
  private readonly heat = el('canvas', { tabindex: '0', role: 'application', 'aria-roledescription': 'heatmap of heads', 'aria-label': 'Where the token looks, per layer and head: the peak weight on a token other than the first. Arrow keys move, Enter selects the head.' }) as HTMLCanvasElement;
  private readonly strip = el('canvas', { role: 'img', 'aria-label': "The selected head's weights over the window" }) as HTMLCanvasElement;
  private readonly list = el('ol', { className: 'sources', 'aria-label': 'Top sources of the selected head' });
  private readonly tip = el('div', { className: 'tooltip', hidden: true });
  private readonly selLabel = el('h2', {}, 'Selected head');
  private keyCursor: { layer: number; head: number } | undefined;

  constructor(channel: ReturnType<typeof connectToHost>['channel']) {
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
    document.body.replaceChildren(
      el('div', { className: 'row' }, this.heading, this.stale),
      el('h2', {}, 'Where it looks, per head'),
      el('p', { className: 'hint' }, 'Peak weight on a token other than the first. Click a cell to select the head. Letters: the head finder’s roles (P previous-token, I induction, S first-token sink, D duplicate-token, L local).'),
      heatWrap,
      this.selLabel,
      el('div', { className: 'strip' }, this.strip),
      this.list,
    );
    this.bind();
    watchTheme((p) => {
      this.palette = p;
      this.draw();
    });
    watchPixelRatio(() => this.draw());
    new ResizeObserver(() => this.draw()).observe(document.body);
    this.endpoint.emit('ready', {});
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
    const p = this.palette;
    const width = Math.max(120, document.body.clientWidth - 16);
    const { L, H } = this.dims;
    if (!f || !run || f.version !== run.version || !L) {
      fitCanvas(this.heat, width, 1);
      fitCanvas(this.strip, width, 1);
      this.list.replaceChildren();
      return;
    }
    const tok = run.tokens[f.index];
    this.heading.textContent = `Token #${f.index} “${tokenLabel(tok?.text ?? '', 24)}”`;
    // heatmap [L, H]
    this.cell = Math.max(6, Math.min(22, Math.floor((width - LABEL_W) / H)));
    const ctx = fitCanvas(this.heat, LABEL_W + H * this.cell, LABEL_H + L * this.cell);
    ctx.clearRect(0, 0, LABEL_W + H * this.cell, LABEL_H + L * this.cell); // the view's own background shows through
    ctx.font = `9px ${p.font}`;
    ctx.fillStyle = p.muted;
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'right';
    for (let l = 0; l < L; l += this.cell < 10 ? 2 : 1) ctx.fillText(`L${l}`, LABEL_W - 3, LABEL_H + (l + 0.5) * this.cell);
    ctx.textAlign = 'center';
    for (let h = 0; h < H; h += this.cell < 12 ? 2 : 1) ctx.fillText(String(h), LABEL_W + (h + 0.5) * this.cell, LABEL_H / 2);
    const lut = p.lut;
    for (let l = 0; l < L; l++) {
      for (let h = 0; h < H; h++) {
        const k = Math.round(Math.min(1, f.peak[l * H + h]) * 255) * 4;
        ctx.fillStyle = `rgb(${lut[k]}, ${lut[k + 1]}, ${lut[k + 2]})`;
        ctx.fillRect(LABEL_W + h * this.cell, LABEL_H + l * this.cell, this.cell - (this.cell > 8 ? 1 : 0), this.cell - (this.cell > 8 ? 1 : 0));
      }
    }
    const mark = (layer: number, head: number, color: string, w: number) => {
      ctx.strokeStyle = color;
      ctx.lineWidth = w;
      ctx.strokeRect(LABEL_W + head * this.cell - w / 2, LABEL_H + layer * this.cell - w / 2, this.cell + w - 1, this.cell + w - 1);
    };
    if (this.cell >= 12) this.drawBadges(ctx, L, H);
    if (typeof this.sel.layer === 'number' && typeof this.sel.head === 'number') mark(this.sel.layer, this.sel.head, p.focus, 2);
    if (this.keyCursor && document.activeElement === this.heat) mark(this.keyCursor.layer, this.keyCursor.head, p.foreground, 1);
    this.drawStrip(f, width);
    this.drawList(f, run);
    painted('sidebar', performance.now() - t0);
  }

  /** The strongest role's letter in the corner of each badged head's cell. */
  private drawBadges(ctx: CanvasRenderingContext2D, L: number, H: number): void {
    const p = this.palette;
    const size = Math.min(10, this.cell - 4);
    ctx.font = `bold ${size - 2}px ${p.font}`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    for (let l = 0; l < L; l++) {
      for (let h = 0; h < H; h++) {
        const roles = headBadges(this.heads, l, h);
        if (!roles.length) continue;
        const x = LABEL_W + (h + 1) * this.cell - 1 - size;
        const y = LABEL_H + l * this.cell;
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
    this.selLabel.textContent = typeof sel.head === 'number' ? `Layer ${sel.layer}, head ${sel.head}${roles.length ? ` (${roles.join(', ')})` : ''}: weights over the window` : 'Mean over heads: weights over the window';
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

  private headAt(e: MouseEvent): { layer: number; head: number } | undefined {
    const { L, H } = this.dims;
    const h = Math.floor((e.offsetX - LABEL_W) / this.cell);
    const l = Math.floor((e.offsetY - LABEL_H) / this.cell);
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
      this.tip.hidden = !hit;
      if (!hit) return;
      this.tip.textContent = this.describe(hit.layer, hit.head);
      this.tip.style.left = `${Math.max(0, Math.min(e.offsetX + 8, document.body.clientWidth - 220))}px`;
      this.tip.style.top = `${e.offsetY + 14}px`;
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

new SidebarApp(connectToHost().channel);
