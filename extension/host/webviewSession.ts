/**
 * The host's side of the panel and sidebar webviews, with no runtime `vscode` import: it takes an AnalysisSource
 * and a Channel, serves the webview's requests, forwards the source's events and replays state on `ready`. The
 * VS Code wrappers (panel.ts, sidebar.ts) add the WebviewPanel/WebviewView and the save dialog; the webview tests
 * drive these classes directly with a recorded run.
 */
import type { Attribution, AttentionMode, HeadSelector, LensGrid, QkBreakdown, TokenLens } from '../common/engineProtocol';
import { RpcEndpoint, type Channel, type Handlers } from '../common/rpc';
import type { AblationView, HeadFinderView, PanelHostEvents, PanelHostRequests, PanelWebviewEvents, RunView, SaveKind, SidebarFocus, SidebarHostEvents, SidebarHostRequests, SidebarWebviewEvents } from '../common/webviewProtocol';
import type { AnalysisSource, CurrentAnalysis } from './analysisSource';
import type { HeadExperiments } from './headExperiments';
import { compareView, type Comparison, type Comparisons } from './comparison';
import { Patching } from './patching';
import type { PatchView } from '../common/webviewProtocol';

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

abstract class SessionBase<E extends { run: RunView; selection: HeadSelector; stale: { version: number; stale: boolean }; heads: HeadFinderView }> implements Disposable {
  protected ready = false;
  protected stale = false;
  protected readonly disposables: Disposable[] = [];
  /** The head finder's answer for one run version (the engine caches it too; this saves the round trip on replay). */
  private heads: { version: number; answer: Promise<HeadFinderView | undefined> } | undefined;

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
    if (this.ready && cur) {
      this.emit('run', runView(cur, false) as E['run']);
      this.sendHeads();
    }
  }

  /** Asks the engine for the head finder's scores of the current run and sends them once they arrive. */
  protected sendHeads(): void {
    const cur = this.source.current;
    if (!cur) return;
    const version = cur.run.version;
    if (this.heads?.version !== version) {
      const answer = this.source.query('headScores', { version }).then(
        (a): HeadFinderView => ({ ...a, version, scores: Object.fromEntries(Object.entries(a.scores).map(([k, v]) => [k, ownBuffer(v)])) }),
        () => undefined, // stale run or an engine without the head finder: no badges, nothing else breaks
      );
      this.heads = { version, answer };
    }
    void this.heads.answer.then((h) => {
      if (h && this.ready && this.source.current?.run.version === h.version) this.emit('heads', h as E['heads']);
    });
  }

  dispose(): void {
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}

/** Every typed array of a lens grid as its own buffer. */
function ownGrid(g: LensGrid): LensGrid {
  return { ...g, logprob: ownBuffer(g.logprob), top1: ownBuffer(g.top1), topIds: ownBuffer(g.topIds), topLogprob: ownBuffer(g.topLogprob), settles: ownBuffer(g.settles) };
}

function ownLens(t: TokenLens): TokenLens {
  return { ...t, logprob: ownBuffer(t.logprob) };
}

function ownAttribution(a: Attribution): Attribution {
  return { ...a, heads: ownBuffer(a.heads), mlp: ownBuffer(a.mlp), attnBias: a.attnBias && ownBuffer(a.attnBias) };
}

/** Every typed array of a q·k breakdown as its own buffer. */
function ownQk(b: QkBreakdown): QkBreakdown {
  const { query, keys, values, scores, probs, attention, valueNorms } = b;
  return { ...b, query: ownBuffer(query), keys: ownBuffer(keys), values: ownBuffer(values), scores: ownBuffer(scores), probs: ownBuffer(probs), attention: ownBuffer(attention), valueNorms: ownBuffer(valueNorms) };
}

function ownAblation(a: AblationView): AblationView {
  return { ...a, surprisalBefore: ownBuffer(a.surprisalBefore), surprisalAfter: ownBuffer(a.surprisalAfter), surprisalDelta: ownBuffer(a.surprisalDelta) };
}

/** A patching view with its cells as of now, each array its own buffer. */
function ownPatch(v: PatchView): PatchView {
  return { ...v, resid: v.resid.slice(), heads: v.heads.slice() };
}

export class PanelSession extends SessionBase<PanelHostEvents> {
  private readonly endpoint: RpcEndpoint<Record<string, never>, PanelHostRequests, PanelHostEvents, PanelWebviewEvents>;
  /** What the engine was last told (`keepQueries`). */
  private insideHeadOpen = false;
  /** What the page last said of its Inside-a-head tab (`insideHead`). */
  private pageInsideOpen = false;
  private visible = true;

  constructor(source: AnalysisSource, channel: Channel, private readonly saveFile: SaveFile, private readonly experiments: HeadExperiments, private readonly comparisons?: Comparisons) {
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
        valueNorms: async (p, signal) => ownBuffer(await source.query('valueNorms', p, signal)),
        qk: async (p, signal) => ownQk(await source.query('qk', p, signal)),
        ablate: async (p, signal) => ownAblation(await experiments.ablate(p, signal)),
        rankHeads: async (p, signal) => {
          const r = await experiments.rankHeads(p, signal);
          return { ...r, deltas: ownBuffer(r.deltas) };
        },
        rollout: async (p, signal) => ownBuffer(await source.query('rollout', p, signal)),
        lensAt: async (p, signal) => ownLens(await source.query('lensAt', p, signal)),
        lensGrid: async ({ version, start, end }, signal) => ownGrid(await source.query('lensGrid', { version, start, end }, signal)),
        attribute: async (p, signal) => ownAttribution(await source.query('attribute', p, signal)),
      },
      {
        ready: () => this.replay(),
        select: (sel) => source.setSelection(sel),
        revealToken: ({ index }) => source.revealToken(index),
        setAttentionMode: ({ mode }) => experiments.requestAttentionMode(mode),
        clearAblation: () => experiments.clearAblation(),
        insideHead: ({ open }) => {
          this.pageInsideOpen = open;
          if (this.visible) this.keepQueries(open);
        },
        stopComparing: () => comparisons?.stop(),
        cancelPatch: () => Patching.of(comparisons)?.cancel(),
        swapPatch: () => void Patching.of(comparisons)?.swap().catch(() => undefined), // the view shows the failure
      },
    );
    source.onDidChangeCursorToken((index) => this.ready && this.emit('cursor', { index }), null, this.disposables);
    experiments.onDidChangeAttentionMode((mode) => this.ready && this.emit('attentionMode', { mode }), null, this.disposables);
    experiments.onDidChangeAblation((a) => this.ready && this.emit('ablation', { result: a && ownAblation(a) }), null, this.disposables);
    experiments.onDidRankProgress((p) => this.ready && this.emit('rankProgress', p), null, this.disposables);
    experiments.onDidRank((r) => this.ready && this.emit('ranking', { ...r, deltas: ownBuffer(r.deltas) }), null, this.disposables);
    comparisons?.onDidChange((c) => this.ready && this.sendComparison(c), null, this.disposables);
    const patching = Patching.of(comparisons);
    patching?.onDidChange((v) => this.ready && this.emit('patch', { view: v && ownPatch(v) }), null, this.disposables);
    patching?.onDidCell(({ id, target, layer, index, value, done, total }) => this.ready && this.emit('patchCell', { id, target, layer, index, value, done, total }), null, this.disposables);
  }

  protected override onRun(): void {
    super.onRun();
    const cur = this.source.current;
    if (this.ready && cur && this.comparisons?.forRun(cur)) this.sendComparison(this.comparisons.current);
  }

  /** A comparison goes to the panel only with the run it describes (the `run` event first). */
  private sendComparison(c: Comparison | undefined): void {
    const cur = this.source.current;
    const shown = c && this.comparisons?.forRun(cur);
    this.emit('comparison', { view: shown ? compareView(shown, this.comparisons!.threshold) : undefined });
  }

  protected emit<K extends keyof PanelHostEvents & string>(name: K, payload: PanelHostEvents[K]): void {
    this.endpoint.emit(name, payload);
  }

  /**
   * The engine fetches queries with every run only while the Inside-a-head view is open (otherwise a `qk` request
   * costs one extra run of the window); closing the panel closes the view.
   */
  private keepQueries(on: boolean): void {
    if (on === this.insideHeadOpen) return;
    this.insideHeadOpen = on;
    this.source.query('keepQueries', { on }).catch(() => undefined); // no engine yet: `qk` still works, one run dearer
  }

  /**
   * The panel was hidden or shown (`onDidChangeViewState`). VS Code may drop a hidden panel's page before it can say
   * `insideHead {open: false}`, so hidden means Inside a head is closed: the engine stops fetching queries. Shown
   * again, the page's last word holds until the page says otherwise (a recreated page says `ready`, then its tab).
   */
  setVisible(visible: boolean): void {
    if (visible === this.visible) return;
    this.visible = visible;
    this.keepQueries(visible && this.pageInsideOpen);
  }

  /** Shown when there is no run (or the engine failed). */
  showEmpty(message: string, hint?: string): void {
    if (this.ready) this.emit('empty', { message, hint });
  }

  private replay(): void {
    this.ready = true;
    // the selection and the mode hold without a run: a panel opened before the first run shows them once it comes
    this.emit('attentionMode', { mode: this.experiments.attentionMode });
    this.emit('selection', this.source.selection);
    const cur = this.source.current;
    if (!cur) {
      this.emit('empty', { message: 'Nothing analysed yet.', hint: 'Run "Headlight: Explain Attention" in an editor.' });
      return;
    }
    this.emit('run', runView(cur, this.stale));
    this.emit('cursor', { index: this.source.cursorToken });
    const ablation = this.experiments.lastAblation;
    if (ablation?.version === cur.run.version) this.emit('ablation', { result: ownAblation(ablation) });
    if (this.comparisons?.forRun(cur)) this.sendComparison(this.comparisons.current);
    const patch = Patching.of(this.comparisons)?.current;
    if (patch) this.emit('patch', { view: ownPatch(patch) });
    this.sendHeads();
  }

  override dispose(): void {
    this.keepQueries(false);
    super.dispose();
    this.endpoint.dispose('The panel was closed.');
  }
}

/** Debounce for cursor moves: typing and arrow-key repeat produce bursts. */
const SIDEBAR_DEBOUNCE_MS = 40;

export class SidebarSession extends SessionBase<SidebarHostEvents> {
  private readonly endpoint: RpcEndpoint<Record<string, never>, SidebarHostRequests, SidebarHostEvents, SidebarWebviewEvents>;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inflight: AbortController | undefined;
  private visible = true;

  /** `experiments`: the attention mode to show (plain attention without it). */
  constructor(source: AnalysisSource, channel: Channel, private readonly experiments?: HeadExperiments) {
    super(source);
    const requests: Handlers<SidebarHostRequests> = { attribute: async (p, signal) => ownAttribution(await source.query('attribute', p, signal)) };
    this.endpoint = new RpcEndpoint<Record<string, never>, SidebarHostRequests, SidebarHostEvents, SidebarWebviewEvents>(channel, requests, {
      ready: () => {
        this.ready = true;
        const cur = this.source.current;
        this.emit('selection', this.source.selection);
        if (cur) {
          this.emit('run', runView(cur, this.stale));
          this.sendHeads();
        }
        this.schedule();
      },
      select: (sel) => source.setSelection(sel),
      revealToken: ({ index }) => source.revealToken(index),
    });
    source.onDidChangeCursorToken(() => this.schedule(), null, this.disposables);
    source.onDidChangeSelection(() => this.schedule(), null, this.disposables);
    experiments?.onDidChangeAttentionMode(() => this.schedule(), null, this.disposables);
  }

  private get mode(): AttentionMode {
    return this.experiments?.attentionMode ?? 'attention';
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

  /**
   * Two requests per cursor move: the per-head summary (extension/engine/analyses/cursorSummary.ts: peak weight on a token
   * other than the first, its index, the sink weight) and the selected head's row, both in the attention mode.
   */
  private async computeFocus(cur: CurrentAnalysis, index: number, signal: AbortSignal): Promise<SidebarFocus> {
    const version = cur.run.version;
    const sel = this.source.selection;
    const mode = this.mode;
    const [summary, row] = await Promise.all([
      this.source.query('cursorSummary', { version, index, mode }, signal),
      this.source.query('row', { version, sel, index, mode }, signal),
    ]);
    const topSources = Array.from(row.keys())
      .sort((a, b) => row[b] - row[a] || a - b)
      .slice(0, 8)
      .map((i) => ({ index: i, weight: row[i] }));
    return { version, index, peak: ownBuffer(summary.peak), peakIndex: ownBuffer(summary.peakIndex), sink: ownBuffer(summary.sink), sel, mode, row: ownBuffer(row), topSources };
  }

  override dispose(): void {
    super.dispose();
    clearTimeout(this.timer);
    this.inflight?.abort();
    this.endpoint.dispose('The view was closed.');
  }
}
