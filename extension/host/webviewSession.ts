/**
 * The host's side of the panel and sidebar webviews, with no runtime `vscode` import: it takes an AnalysisSource
 * and a Channel, serves the webview's requests, forwards the source's events and replays state on `ready`. The
 * VS Code wrappers (panel.ts, sidebar.ts) add the WebviewPanel/WebviewView and the save dialog; the webview tests
 * drive these classes directly with a recorded run.
 */
import type { HeadSelector } from '../common/engineProtocol';
import { RpcEndpoint, type Channel } from '../common/rpc';
import type { PanelHostEvents, PanelHostRequests, PanelWebviewEvents, RunView, SaveKind, SidebarFocus, SidebarHostEvents, SidebarHostRequests, SidebarWebviewEvents } from '../common/webviewProtocol';
import type { AnalysisSource, CurrentAnalysis } from './analysisSource';

export type SaveFile = (kind: SaveKind, suggestedName: string, data: Uint8Array | string) => Promise<{ saved: boolean; path?: string }>;

interface Disposable {
  dispose(): void;
}

/** A typed array as its own buffer: postMessage ships a view's whole underlying buffer. */
export function ownBuffer<A extends Uint8Array | Uint16Array | Float32Array | Int32Array>(a: A): A {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : (a.slice() as A);
}

export function runView(cur: CurrentAnalysis, stale: boolean): RunView {
  const { run, model } = cur;
  const path = cur.document.path ?? String(cur.document);
  return {
    version: run.version,
    model: { ref: model.ref, nLayer: model.nLayer, nHead: model.nHead },
    documentLabel: path.split('/').pop() || 'untitled',
    tokens: run.tokens,
    window: run.window,
    totalTokens: run.totalTokens,
    surprisal: ownBuffer(run.surprisal),
    stale,
  };
}

abstract class SessionBase<E extends { run: RunView; selection: HeadSelector; stale: { version: number; stale: boolean } }> implements Disposable {
  protected ready = false;
  protected stale = false;
  protected readonly disposables: Disposable[] = [];

  constructor(protected readonly source: AnalysisSource) {
    source.onDidChangeRun(() => this.onRun(), null, this.disposables);
    source.onDidChangeSelection((s) => this.ready && this.emit('selection', s), null, this.disposables);
  }

  protected abstract emit<K extends keyof E & string>(name: K, payload: E[K]): void;

  /** The document changed since the current run (or a new run caught up). */
  setStale(stale: boolean): void {
    if (stale === this.stale) return;
    this.stale = stale;
    const cur = this.source.current;
    if (this.ready && cur) this.emit('stale', { version: cur.run.version, stale } as E['stale']);
  }

  protected onRun(): void {
    this.stale = false;
    const cur = this.source.current;
    if (this.ready && cur) this.emit('run', runView(cur, false) as E['run']);
  }

  dispose(): void {
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}

export class PanelSession extends SessionBase<PanelHostEvents> {
  private readonly endpoint: RpcEndpoint<Record<string, never>, PanelHostRequests, PanelHostEvents, PanelWebviewEvents>;
  private badges: PanelHostEvents['badges'] = {};

  constructor(source: AnalysisSource, channel: Channel, private readonly saveFile: SaveFile) {
    super(source);
    this.endpoint = new RpcEndpoint<Record<string, never>, PanelHostRequests, PanelHostEvents, PanelWebviewEvents>(
      channel,
      {
        headTriangle: async (p, signal) => {
          const tri = await source.query('headTriangle', p, signal);
          return { T: tri.T, data: ownBuffer(tri.data) };
        },
        thumbnails: async (p, signal) => {
          const t = await source.query('thumbnails', p, signal);
          return { ...t, data: ownBuffer(t.data) };
        },
        predictions: (p, signal) => source.query('predictions', p, signal),
        save: ({ kind, suggestedName, data }) => this.saveFile(kind, suggestedName, data),
      },
      {
        ready: () => this.replay(),
        select: (sel) => source.setSelection(sel),
        revealToken: ({ index }) => source.revealToken(index),
      },
    );
    source.onDidChangeCursorToken((index) => this.ready && this.emit('cursor', { index }), null, this.disposables);
  }

  protected emit<K extends keyof PanelHostEvents & string>(name: K, payload: PanelHostEvents[K]): void {
    this.endpoint.emit(name, payload);
  }

  /** Head-finder results, drawn as badges on the thumbnails. */
  setBadges(badges: PanelHostEvents['badges']): void {
    this.badges = badges;
    if (this.ready) this.emit('badges', badges);
  }

  /** Shown when there is no run (or the engine failed). */
  showEmpty(message: string, hint?: string): void {
    if (this.ready) this.emit('empty', { message, hint });
  }

  private replay(): void {
    this.ready = true;
    const cur = this.source.current;
    if (!cur) {
      this.emit('empty', { message: 'Nothing analysed yet.', hint: 'Run "Headlight: Explain Attention" in an editor.' });
      return;
    }
    this.emit('selection', this.source.selection);
    this.emit('run', runView(cur, this.stale));
    this.emit('cursor', { index: this.source.cursorToken });
    if (Object.keys(this.badges).length) this.emit('badges', this.badges);
  }

  override dispose(): void {
    super.dispose();
    this.endpoint.dispose('The panel was closed.');
  }
}

/**
 * The sidebar's summary of where the cursor's token looks, per head.
 *
 * Metric: the largest weight the token puts on any token other than the first. Why this one: in GPT-2 most heads
 * park most of their weight on the first token (the "attention sink") when they have nothing to do, so the raw
 * maximum or the entropy light up nearly every head and say little. The peak over the other tokens picks out the
 * heads that actually single out a token for this position (previous-token heads, induction heads, heads that
 * match a bracket or a name); the tooltip then names the token each head picks and the sink weight it left out.
 */
export function focusMetrics(rows: Float32Array[], T: number): { peak: Float32Array; peakIndex: Int32Array; sink: Float32Array } {
  const n = rows.length;
  const peak = new Float32Array(n);
  const peakIndex = new Int32Array(n).fill(0);
  const sink = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    const row = rows[k];
    sink[k] = row[0] ?? 0;
    let best = -1;
    let bi = 0;
    for (let j = 1; j < Math.min(row.length, T); j++) {
      if (row[j] > best) {
        best = row[j];
        bi = j;
      }
    }
    peak[k] = best < 0 ? 0 : best;
    peakIndex[k] = best < 0 ? 0 : bi;
  }
  return { peak, peakIndex, sink };
}

/** Debounce for cursor moves: typing and arrow-key repeat produce bursts. */
const SIDEBAR_DEBOUNCE_MS = 40;

export class SidebarSession extends SessionBase<SidebarHostEvents> {
  private readonly endpoint: RpcEndpoint<Record<string, never>, SidebarHostRequests, SidebarHostEvents, SidebarWebviewEvents>;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inflight: AbortController | undefined;
  private visible = true;

  constructor(source: AnalysisSource, channel: Channel) {
    super(source);
    this.endpoint = new RpcEndpoint<Record<string, never>, SidebarHostRequests, SidebarHostEvents, SidebarWebviewEvents>(channel, {}, {
      ready: () => {
        this.ready = true;
        const cur = this.source.current;
        this.emit('selection', this.source.selection);
        if (cur) this.emit('run', runView(cur, this.stale));
        this.schedule();
      },
      select: (sel) => source.setSelection(sel),
      revealToken: ({ index }) => source.revealToken(index),
    });
    source.onDidChangeCursorToken(() => this.schedule(), null, this.disposables);
    source.onDidChangeSelection(() => this.schedule(), null, this.disposables);
  }

  protected emit<K extends keyof SidebarHostEvents & string>(name: K, payload: SidebarHostEvents[K]): void {
    this.endpoint.emit(name, payload);
  }

  /** A hidden view does no work; showing it again refreshes. */
  setVisible(visible: boolean): void {
    this.visible = visible;
    if (visible) this.schedule();
  }

  protected override onRun(): void {
    super.onRun();
    this.schedule();
  }

  private schedule(): void {
    if (!this.ready || !this.visible) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.update(), SIDEBAR_DEBOUNCE_MS);
  }

  /** Latest cursor wins: a newer update aborts the queries of the previous one. */
  async update(): Promise<void> {
    this.inflight?.abort();
    const controller = new AbortController();
    this.inflight = controller;
    const cur = this.source.current;
    const index = this.source.cursorToken;
    if (!cur) return this.emit('blur', { message: 'Nothing analysed yet. Run "Headlight: Explain Attention".' });
    if (index === undefined) return this.emit('blur', { message: 'Put the cursor inside the analysed text.' });
    try {
      const focus = await this.computeFocus(cur, index, controller.signal);
      if (!controller.signal.aborted) this.emit('focus', focus);
    } catch (err) {
      if (controller.signal.aborted) return;
      const e = err as { code?: string; message: string };
      if (e.code === 'stale-run' || e.code === 'cancelled') return; // a newer run is on its way
      this.emit('blur', { message: e.message });
    }
  }

  private async computeFocus(cur: CurrentAnalysis, index: number, signal: AbortSignal): Promise<SidebarFocus> {
    const { nLayer, nHead } = cur.model;
    const version = cur.run.version;
    const sels: HeadSelector[] = [];
    for (let l = 0; l < nLayer; l++) for (let h = 0; h < nHead; h++) sels.push({ layer: l, head: h });
    const rows = await Promise.all(sels.map((sel) => this.source.query('row', { version, sel, index }, signal)));
    const sel = this.source.selection;
    const k = typeof sel.layer === 'number' && typeof sel.head === 'number' ? sel.layer * nHead + sel.head : -1;
    const row = k >= 0 ? rows[k] : await this.source.query('row', { version, sel, index }, signal);
    const topSources = Array.from(row.keys())
      .sort((a, b) => row[b] - row[a] || a - b)
      .slice(0, 8)
      .map((i) => ({ index: i, weight: row[i] }));
    return { version, index, ...focusMetrics(rows, index + 1), sel, row: row.slice(), topSources };
  }

  override dispose(): void {
    super.dispose();
    clearTimeout(this.timer);
    this.inflight?.abort();
    this.endpoint.dispose('The view was closed.');
  }
}
