/**
 * Why this file is long: it owns the panel's state and wires every view part (now also the lens, compare and
 * patching views); each part's drawing lives in its own file.
 *
 * Entry of the attention panel webview: model view (all heads), head matrix, text view with surprisal strip,
 * inside a head, exports. This file owns the panel's state and data and wires the parts: the page and its controls
 * (panelLayout.ts), the head maps (headMaps.ts), the files of an export (exporters.ts). Talks to the host over
 * RpcEndpoint (extension/common/webviewProtocol.ts); says `ready`, then the host replays the current run, selection
 * and cursor.
 */
import type { AttentionMode, HeadSelector, Prediction } from '../extension/common/engineProtocol';
import { RpcEndpoint } from '../extension/common/rpc';
import type { PanelHostEvents, PanelHostRequests, PanelWebviewEvents, RunView, SaveKind } from '../extension/common/webviewProtocol';
import { HeadMaps } from './headMaps';
import { exportFile, textCanvas } from './exporters';
import { MatrixView } from './matrixView';
import { ModelView } from './modelView';
import { SurprisalStrip } from './surprisalStrip';
import { TextView, type HeadWeights } from './textView';
import { readPalette, watchPixelRatio, watchTheme, type Palette } from './theme';
import { connectToHost, loadState } from './vscodeApi';
import { el, painted } from './dom';
import { InsideHead } from './insideHead/index';
import { CompareView } from './compareView';
import type { CompareView as CompareData } from '../extension/common/webviewProtocol';
import { buildPanelLayout, type PanelUi } from './panelLayout';
import { DEFAULTS, type PanelState } from './panelState';
import { modelDisplayName, selectorLabel } from '../extension/common/displayNames';
import { LensStore } from './lensStore';
import { LensGridView } from './lensGrid';
import { CommitmentStrip } from './commitmentStrip';
import { AttributionView } from './attributionView';
import { PatchView } from './patchView';

const MAX_COMPARE = 5;
const THUMB_SIZE = 32;

type Endpoint = RpcEndpoint<PanelHostRequests, Record<string, never>, PanelWebviewEvents, PanelHostEvents>;

class PanelApp {
  private palette: Palette = readPalette();
  private run: RunView | undefined;
  private readonly maps: HeadMaps;
  private readonly predictionCache = new Map<string, Promise<Prediction[]>>();
  private focusToken: number | undefined;
  /** What the editor and the sidebar show (the host's selection): one head or a mean. */
  private hostSelection: HeadSelector = { layer: 'mean', head: 'mean' };
  private lastView: 'model' | 'matrix' | 'text' = 'matrix';
  private readonly endpoint: Endpoint;
  private readonly model: ModelView;
  private readonly matrix: MatrixView;
  private readonly text: TextView;
  private readonly strip: SurprisalStrip;
  private readonly inside: InsideHead;
  private readonly compare: CompareView;
  /** The last comparison the host sent (shown when its run version is the panel's). */
  private comparison: CompareData | undefined;
  /** Rollout rows of the current run by token (the text view's rollout mode). */
  private readonly rolloutRows = new Map<string, Float32Array | 'loading' | 'failed'>();
  /** What the host was last told of the Inside-a-head tab (undefined: nothing yet). */
  private insideOpen: boolean | undefined;
  /** Plain or value-weighted attention (the host's setting `headlight.attentionMode`). */
  private attentionMode: AttentionMode = 'attention';
  private readonly ui: PanelUi;
  /** The logit lens of the run as far as the Logit lens tab computed it (the grid and the commitment strip read it). */
  private readonly lensStore: LensStore;
  private readonly lens: LensGridView;
  private readonly commitment: CommitmentStrip;
  private readonly attribution: AttributionView;
  private readonly patch: PatchView;
  private lensOpen = false;

  constructor(
    private readonly api: ReturnType<typeof connectToHost>['api'],
    channel: ReturnType<typeof connectToHost>['channel'],
    private state: PanelState,
  ) {
    this.model = new ModelView(this.palette, {
      onSelect: (l, h) => this.selectHead(l, h, true),
      onToggleCompare: (l, h) => this.toggleCompare(l, h),
      onToggleAblate: (l, h) => this.inside.toggleAblate(l, h),
      onPainted: (ms) => painted('model', ms),
    });
    this.matrix = new MatrixView(this.palette, {
      onPickToken: (i) => this.pickToken(i),
      onPainted: (ms) => painted('matrix', ms),
    });
    this.text = new TextView({ onPoint: (i) => this.point(i), onPick: (i) => this.pickToken(i) });
    this.strip = new SurprisalStrip(this.palette, { onPick: (i) => this.pickToken(i), predictions: (i) => this.predictions(i) });
    this.inside = new InsideHead(this.palette, {
      qk: (layer, head, index) => this.endpoint.request('qk', { version: this.runVersion(), layer, head, index }),
      ablate: (heads, mode, at) => this.endpoint.request('ablate', { version: this.runVersion(), heads, mode, at }),
      rankHeads: (mode, signal) => this.endpoint.request('rankHeads', { version: this.runVersion(), mode }, signal),
      selectHead: (l, h) => void this.selectHead(l, h, true),
      pickToken: (i) => this.pickToken(i),
      clearAblation: () => this.endpoint.emit('clearAblation', {}),
    });
    this.compare = new CompareView(this.palette, { onPick: (i) => this.pickToken(i), stop: () => this.endpoint.emit('stopComparing', {}) });
    this.lensStore = new LensStore({
      lensGrid: (version, start, end, signal) => this.endpoint.request('lensGrid', { version, start, end }, signal),
      lensAt: (version, index, signal) => this.endpoint.request('lensAt', { version, index }, signal),
    });
    this.lens = new LensGridView(this.palette, this.lensStore, { onPick: (i) => this.pickToken(i) });
    this.commitment = new CommitmentStrip(this.palette, this.lensStore, { onPick: (i) => this.pickToken(i) });
    this.attribution = new AttributionView(this.palette, {
      attribute: (index, target, vs, signal) => this.endpoint.request('attribute', { version: this.runVersion(), index, target, vs }, signal),
      lensAt: (index) => this.lensStore.lensAt(index),
      selectHead: (l, h) => void this.selectHead(l, h, true),
    });
    this.patch = new PatchView(this.palette, {
      onSelectHead: (l, h) => void this.selectHead(l, h, true),
      onPickToken: (i) => this.pickToken(i),
      cancel: () => this.endpoint.emit('cancelPatch', {}),
      swap: () => this.endpoint.emit('swapPatch', {}),
    });
    this.maps = new HeadMaps({
      headTriangle: (version, layer, head) => this.endpoint.request('headTriangle', { version, layer, head }),
      valueNorms: (version, layer, head) => this.endpoint.request('valueNorms', { version, layer, head }),
      failed: (layer, head, err) => (this.ui.status.textContent = `Could not load layer ${layer} head ${head}: ${err.message}`),
    });
    this.ui = buildPanelLayout({ model: this.model, matrix: this.matrix, text: this.text, strip: this.strip, inside: this.inside, compare: this.compare, lens: this.lens, commitment: this.commitment, attribution: this.attribution, patch: this.patch }, state, {
      export: (kind) => void this.export(kind),
      setAttentionMode: (mode) => this.endpoint.emit('setAttentionMode', { mode }),
      setOptions: (patch) => {
        Object.assign(this.state, patch);
        this.save();
        if (patch.log !== undefined) this.matrix.setLog(patch.log);
        else this.repaintText();
      },
      selectTab: (index) => {
        this.state.tab = index;
        this.lastView = index === 0 ? 'matrix' : 'text';
        this.showInside();
        this.showLens();
        this.save();
      },
      used: (view) => (this.lastView = view),
    });
    this.lastView = state.tab === 0 ? 'matrix' : 'text';
    this.endpoint = new RpcEndpoint<PanelHostRequests, Record<string, never>, PanelWebviewEvents, PanelHostEvents>(channel, {}, {
      run: (r) => void this.onRun(r),
      selection: (s) => this.onSelection(s),
      cursor: ({ index }) => index !== undefined && this.setToken(index, false),
      stale: ({ version, stale }) => {
        if (this.run && this.run.version === version) {
          this.run.stale = stale;
          this.renderStatus();
        }
      },
      heads: (h) => {
        if (this.run?.version === h.version) this.model.setHeads(h);
      },
      empty: ({ message, hint }) => this.showEmpty(message, hint),
      attentionMode: ({ mode }) => this.setAttentionMode(mode),
      ablation: ({ result }) => this.inside.setAblation(result),
      rankProgress: ({ version, done, total }) => this.inside.setRankProgress(version, done, total),
      ranking: (r) => this.inside.setRanking(r),
      comparison: ({ view }) => this.onComparison(view),
      patch: ({ view }) => this.patch.set(view),
      patchCell: (c) => this.patch.cell(c),
    });
    watchTheme((p) => this.setPalette(p));
    watchPixelRatio(() => this.setPalette(readPalette()));
    this.model.setSelection({ layer: state.layer, head: state.head });
    this.endpoint.emit('ready', {});
    this.showInside(); // the host learns the tab's state, open or not (a recreated page starts afresh)
    this.showLens();
    // a hidden or closing page shows no tab (VS Code drops a hidden panel's page; it says `ready` again when shown)
    document.addEventListener('visibilitychange', () => {
      this.showInside();
      this.showLens();
    });
    window.addEventListener('pagehide', () => this.showInside(false));
  }

  /**
   * Shows or hides the Inside-a-head tab's content and tells the host when that changes (`insideHead`): the engine
   * fetches queries only while the tab is open. Open: the tab is selected and the page visible.
   */
  private showInside(open = this.state.tab === 2 && document.visibilityState !== 'hidden'): void {
    if (open === this.insideOpen) return;
    this.insideOpen = open;
    this.inside.setVisible(open);
    this.endpoint.emit('insideHead', { open });
  }

  /**
   * The Logit lens tab computes only while it is shown: the grid asks for the tokens in view, the attribution follows
   * the cursor's token. Its index is found by its header (other tabs may come before it).
   */
  private showLens(): void {
    const headers = Array.from(this.ui.tabs.querySelectorAll('vscode-tab-header'));
    const index = headers.findIndex((h) => h.classList.contains('lens-tab-header'));
    const open = this.state.tab === index && document.visibilityState !== 'hidden';
    if (open === this.lensOpen) return;
    this.lensOpen = open;
    this.lens.setVisible(open);
    this.attribution.setVisible(open);
  }

  // ------------------------------------------------------------ layout

  private renderStatus(): void {
    const r = this.run;
    if (!r) return;
    const { layer, head } = this.state;
    const parts = [modelDisplayName(r.model.ref), `${r.model.nLayer}×${r.model.nHead} heads`, `${r.tokens.length} tokens`];
    if (r.totalTokens > r.tokens.length) parts.push(`window ${r.window.start}–${r.window.end} of ${r.totalTokens}`);
    const details = parts.join(' · ');
    const [docName, subtitle] = this.ui.title.children as unknown as [HTMLElement, HTMLElement];
    docName.textContent = r.documentLabel;
    subtitle.replaceChildren(...parts.flatMap((part, k) => [...(k ? [' · '] : []), el('span', {}, part)])); // wraps between parts only
    this.ui.title.title = `${r.documentLabel}\n${details}`;
    this.ui.stale.hidden = !r.stale;
    document.body.classList.toggle('is-stale', r.stale);
    this.ui.headLabel.textContent = `${selectorLabel({ layer, head })}${this.attentionMode === 'value-weighted' ? ' · value-weighted' : ''}`;
    const shown = selectorLabel(this.hostSelection);
    const matrix = selectorLabel({ layer, head });
    this.ui.shown.textContent = `Editor and sidebar: ${shown}${shown === matrix ? '' : ` · head matrix: ${matrix}`}`;
    this.renderLegend();
    this.renderChips();
  }

  private renderLegend(): void {
    const lut = this.palette.lut;
    const stops = [0, 0.25, 0.5, 0.75, 1].map((t) => {
      const k = Math.round(t * 255) * 4;
      return `rgb(${lut[k]}, ${lut[k + 1]}, ${lut[k + 2]}) ${t * 100}%`;
    });
    const bar = el('span', { className: 'legend-bar' });
    bar.style.background = `linear-gradient(to right, ${stops.join(', ')})`;
    this.ui.legend.replaceChildren(el('span', {}, this.state.log ? '10⁻⁴' : '0'), bar, el('span', {}, '1'));
  }

  private renderChips(): void {
    const heads = this.comparedHeads();
    this.ui.chips.replaceChildren(...heads.map((h, k) => {
      const chip = el('span', { className: 'chip', role: 'listitem' });
      const swatch = el('span', { className: 'swatch', 'aria-hidden': 'true' });
      swatch.style.background = this.palette.hues[h.hue % this.palette.hues.length];
      chip.append(swatch, `L${h.layer} H${h.head}`);
      if (k > 0) {
        const x = el('button', { className: 'chip-remove', 'aria-label': `Stop comparing layer ${h.layer} head ${h.head}`, title: 'Remove' }, '×');
        x.addEventListener('click', () => this.toggleCompare(h.layer, h.head));
        chip.append(x);
      }
      return chip;
    }));
    this.model.setCompare(heads.slice(1));
  }

  private showEmpty(message: string, hint?: string): void {
    this.ui.empty.hidden = false;
    this.ui.empty.replaceChildren(el('p', {}, message), ...(hint ? [el('p', { className: 'hint' }, hint)] : []));
    this.ui.main.hidden = !this.run;
  }

  // ------------------------------------------------------------ state

  private save(): void {
    this.api.setState(this.state);
  }

  private setPalette(p: Palette): void {
    this.palette = p;
    this.model.setPalette(p);
    this.matrix.setPalette(p);
    this.strip.setPalette(p);
    this.inside.setPalette(p);
    this.compare.setPalette(p);
    this.lens.setPalette(p);
    this.commitment.setPalette(p);
    this.attribution.setPalette(p);
    this.patch.setPalette(p);
    this.renderStatus();
    this.repaintText();
  }

  private async onRun(run: RunView): Promise<void> {
    const first = !this.run;
    const sameTokens = this.run && this.run.tokens.length === run.tokens.length;
    this.run = run;
    this.maps.reset(run.version, this.attentionMode);
    this.model.setHeads(undefined); // the new run's scores follow in a `heads` event
    this.predictionCache.clear();
    this.rolloutRows.clear();
    if (this.comparison?.version === run.version) this.compare.set(this.comparison);
    this.ui.empty.hidden = true;
    this.ui.main.hidden = false;
    const { nLayer, nHead } = run.model;
    if (this.state.layer >= nLayer || this.state.head >= nHead) {
      this.state.layer = 0;
      this.state.head = 0;
    }
    this.state.compare = this.state.compare.filter(([l, h]) => l < nLayer && h < nHead);
    if (this.state.token !== undefined && this.state.token >= run.tokens.length) this.state.token = run.tokens.length - 1;
    this.focusToken = undefined;
    this.text.setTokens(run.tokens);
    this.strip.setRun(run.tokens, run.surprisal);
    this.lensStore.reset(run.version, run.tokens.length, run.model.ref);
    this.commitment.setRun(run.tokens);
    this.lens.setRun(run.tokens);
    this.attribution.setRun(run.tokens);
    this.lens.setCursor(this.state.token);
    this.attribution.setToken(this.state.token);
    this.inside.setRun(run);
    this.inside.setHead(this.state.layer, this.state.head);
    this.inside.setToken(this.state.token);
    this.renderStatus();
    this.model.setSelection({ layer: this.state.layer, head: this.state.head });
    const version = run.version;
    const thumbs = this.endpoint.request('thumbnails', { version, size: Math.min(THUMB_SIZE, Math.max(1, run.tokens.length)) }).catch(() => undefined);
    const map = this.maps.load(this.state.layer, this.state.head);
    const t = await thumbs;
    if (this.run?.version !== version) return;
    this.model.setThumbnails(t);
    const m = await map;
    if (this.run?.version !== version) return;
    this.matrix.setMap(m, this.labels());
    this.matrix.setQuery(this.state.token);
    if (first || !sameTokens) this.matrix.fit();
    this.repaintText();
  }

  /** A comparison (or none): shown once the panel has its run; a new one opens the Compare tab. */
  private onComparison(view: CompareData | undefined): void {
    const fresh = view && !this.comparison;
    this.comparison = view;
    if (!view) this.compare.set(undefined);
    else if (this.run?.version === view.version) this.compare.set(view);
    if (fresh && this.state.tab !== 3) {
      (this.ui.tabs as HTMLElement & { selectedIndex: number }).selectedIndex = 3;
      this.state.tab = 3;
      this.lastView = 'text';
      this.showInside();
      this.showLens();
      this.save();
    }
  }

  private onSelection(sel: HeadSelector): void {
    this.hostSelection = sel;
    if (typeof sel.layer !== 'number' || typeof sel.head !== 'number') {
      this.renderStatus(); // a mean: the matrix keeps its head, the status line says what the editor shows
      return;
    }
    this.selectHead(sel.layer, sel.head, false);
  }

  private labels(): string[] {
    return this.run?.tokens.map((t) => t.text) ?? [];
  }

  private async selectHead(layer: number, head: number, fromUser: boolean): Promise<void> {
    const changed = layer !== this.state.layer || head !== this.state.head;
    this.state.layer = layer;
    this.state.head = head;
    this.save();
    this.model.setSelection({ layer, head });
    this.inside.setHead(layer, head);
    this.attribution.setSelection({ layer, head });
    this.patch.setSelection({ layer, head });
    this.renderStatus();
    if (fromUser && changed) this.endpoint.emit('select', { layer, head });
    if (!this.run) return;
    const version = this.run.version;
    const map = await this.maps.load(layer, head);
    if (this.run?.version !== version || this.state.layer !== layer || this.state.head !== head) return;
    this.matrix.setMap(map, this.labels());
    this.matrix.setQuery(this.state.token);
    this.repaintText();
  }

  private toggleCompare(layer: number, head: number): void {
    const k = this.state.compare.findIndex(([l, h]) => l === layer && h === head);
    if (k >= 0) this.state.compare.splice(k, 1);
    else if (!(layer === this.state.layer && head === this.state.head)) {
      this.state.compare.push([layer, head]);
      if (this.state.compare.length > MAX_COMPARE) this.state.compare.shift();
    }
    this.save();
    this.renderChips();
    this.repaintText();
  }

  /** The selected head (hue 0) and the compared ones (hues 1..), without duplicates. */
  private comparedHeads(): { layer: number; head: number; hue: number }[] {
    const out = [{ layer: this.state.layer, head: this.state.head, hue: 0 }];
    for (const [l, h] of this.state.compare) if (!(l === this.state.layer && h === this.state.head)) out.push({ layer: l, head: h, hue: out.length });
    return out;
  }

  private point(i: number | undefined): void {
    this.focusToken = i;
    this.repaintText();
  }

  private pickToken(i: number): void {
    this.setToken(i, true);
  }

  private setToken(i: number, fromUser: boolean): void {
    if (!this.run || i < 0 || i >= this.run.tokens.length) return;
    this.state.token = i;
    this.save();
    this.inside.setToken(i);
    this.lens.setCursor(i);
    this.attribution.setToken(i);
    this.matrix.setQuery(i);
    this.repaintText();
    if (fromUser) this.endpoint.emit('revealToken', { index: i });
  }

  // ------------------------------------------------------------ data

  private runVersion(): number {
    if (!this.run) throw new Error('Nothing is analysed yet.');
    return this.run.version;
  }

  /** Plain or value-weighted: the maps are re-made (value-weighted ones from the triangle and the value norms). */
  private setAttentionMode(mode: AttentionMode): void {
    (this.ui.modeBox as HTMLElement & { checked: boolean }).checked = mode === 'value-weighted';
    document.body.classList.toggle('value-weighted', mode === 'value-weighted');
    if (mode === this.attentionMode) return;
    this.attentionMode = mode;
    this.renderStatus();
    this.maps.reset(this.run?.version, mode);
    if (this.run) void this.selectHead(this.state.layer, this.state.head, false);
  }

  private predictions(i: number): Promise<Prediction[]> {
    const run = this.run;
    if (!run) return Promise.resolve([]);
    const key = `${run.version}:${i}`;
    let p = this.predictionCache.get(key);
    if (!p) {
      p = this.endpoint.request('predictions', { version: run.version, index: i, k: 5 });
      this.predictionCache.set(key, p);
      p.catch(() => this.predictionCache.delete(key));
    }
    return p;
  }

  /** Lights the text for the pointed-at (else the selected) token, over the selected and compared heads. */
  private repaintText(): void {
    const run = this.run;
    if (!run) return;
    const t0 = performance.now();
    const index = this.focusToken ?? this.state.token;
    this.text.setMarks(this.focusToken, this.state.token);
    const heads: HeadWeights[] = [];
    if (index !== undefined && this.state.rollout) {
      const row = this.rolloutRow(run.version, index);
      if (row) heads.push({ weights: row, hue: this.palette.huesRgb[0] });
    } else if (index !== undefined) {
      for (const h of this.comparedHeads()) {
        const map = this.maps.cached(h.layer, h.head);
        if (!map) {
          void this.maps.load(h.layer, h.head).then((m) => m && this.repaintText());
          continue;
        }
        const weights = this.state.reverse ? map.column(index, this.state.dimSink) : map.row(index, this.state.dimSink);
        heads.push({ weights, hue: this.palette.huesRgb[h.hue % this.palette.huesRgb.length] });
      }
    }
    this.text.paint(heads, this.state.threshold);
    painted('text', performance.now() - t0);
  }

  /** Rollout row `index` of run `version`, padded to the run's tokens; undefined (and a repaint later) while it loads. */
  private rolloutRow(version: number, index: number): Float32Array | undefined {
    const key = `${version}:${index}`;
    const cached = this.rolloutRows.get(key);
    if (cached !== undefined) return cached === 'loading' || cached === 'failed' ? undefined : cached;
    this.rolloutRows.set(key, 'loading');
    const T = this.run?.tokens.length ?? 0;
    this.endpoint.request('rollout', { version, index }).then(
      (row) => {
        const padded = new Float32Array(T); // [T]: zeros after the token
        padded.set(row.subarray(0, T));
        this.rolloutRows.set(key, padded);
        if (this.run?.version === version) this.repaintText();
      },
      () => this.rolloutRows.set(key, 'failed'), // a stale run: the next run clears the cache
    );
    return undefined;
  }

  // ------------------------------------------------------------ export

  private async export(kind: SaveKind): Promise<void> {
    const run = this.run;
    if (!run) return;
    const view = this.lastView;
    try {
      const { data, suggestedName } = await exportFile(kind, {
        run, map: this.matrix.head, layer: this.state.layer, head: this.state.head, mode: this.attentionMode, log: this.state.log, palette: this.palette, view,
        canvas: () => (view === 'model' ? this.model.canvasElement : view === 'matrix' ? this.matrix.canvas : textCanvas(this.text.element, this.text.tokenSpans, this.palette)),
      });
      const res = await this.endpoint.request('save', { kind, suggestedName, data });
      this.ui.status.textContent = res.saved ? `Saved ${res.path ?? suggestedName}.` : 'Not saved.';
    } catch (err) {
      this.ui.status.textContent = `Export failed: ${(err as Error).message}`;
    }
  }
}

const { api, channel } = connectToHost();
new PanelApp(api, channel, loadState(api, DEFAULTS));
