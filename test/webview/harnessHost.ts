/**
 * Browser side of the webview test harness: stands in for VS Code. It defines `acquireVsCodeApi`, runs the real
 * host sessions (extension/host/webviewSession.ts) against a fake AnalysisSource that answers from a run recorded
 * from the real engine (or synthetic GPT-2-small shapes for the benchmark), and counts the bytes sent to the page.
 */
import type { AblationMode, AblationSummary, EngineEvents, EngineRequests, HeadRankingSummary, HeadRef, HeadScoresAnswer, HeadSelector, Prediction, QkBreakdown, RunSummary, Thumbnails } from '../../extension/common/engineProtocol';
import { AttentionStore } from '../../extension/engine/analyses/attentionStore';
import { cursorSummary } from '../../extension/engine/analyses/cursorSummary';
import { badges, scoreText } from '../../extension/engine/analyses/headFinder';
import { HeadlightError } from '../../extension/common/errors';
import { halfTable } from '../../extension/common/half';
import { selectorHeads } from '../../extension/common/heads';
import { valueWeighted } from '../../extension/common/valueWeighted';
import { f32ToF16Bits as floatToHalf } from '../fixtures/half';
import type { Channel } from '../../extension/common/rpc';
import type { Span, Token } from '../../extension/common/tokens';
import type { AnalysisSource, CurrentAnalysis } from '../../extension/host/analysisSource';
import { PanelSession, SidebarSession } from '../../extension/host/webviewSession';
import { HeadExperiments } from '../../extension/host/headExperiments';
import { Comparisons } from '../../extension/host/comparison';
import { Rollout } from '../../extension/engine/analyses/rollout';
import type { ScoreResult } from '../../extension/common/engineProtocol';
import { LensAnswers, type LensFixture } from './harnessLens';
import { Patching } from '../../extension/host/patching';
import type { PatchCell, PatchResult } from '../../extension/common/engineProtocol';

/** Activation patching recorded from the real engine (test/webview/recordPatch.ts). */
export interface PatchFixture {
  clean: string;
  corrupt: string;
  otherTokens: Token[];
  otherLogprobs: (number | null)[];
  answer: { id: number; text: string };
  wrong: { id: number; text: string };
  /** The first progress event, before any run: both unpatched metrics. */
  first: { done: number; total: number; metricClean: number; metricCorrupt: number };
  cells: (PatchCell & { done: number; total: number })[];
  result: Omit<PatchResult, 'resid' | 'heads'> & { resid: string; heads: string };
}

type Listener<T> = (e: T) => unknown;
interface Disposable { dispose(): void }

class Emitter<T> {
  private readonly listeners = new Set<Listener<T>>();
  readonly event = (listener: Listener<T>, _this?: unknown, disposables?: Disposable[]): Disposable => {
    this.listeners.add(listener);
    const d = { dispose: () => this.listeners.delete(listener) };
    disposables?.push(d);
    return d;
  };
  fire(e: T): void {
    for (const l of [...this.listeners]) l(e);
  }
}

export interface RunData {
  model: { ref: string; nLayer: number; nHead: number };
  tokens: Token[];
  surprisal: Float32Array;
  /** [L*H] fp16 triangles, made on first use. */
  triangle(l: number, h: number): Uint16Array;
  thumbnails: Thumbnails;
  predictions(i: number): Prediction[];
}

interface Fixture {
  model: { ref: string; nLayer: number; nHead: number };
  run: { tokens: Token[]; surprisal: (number | null)[] };
  triangles: string[];
  thumbnails: { nLayer: number; nHead: number; size: number; data: string };
  predictions: Prediction[][];
}

function b64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function fixtureData(f: Fixture): RunData {
  const tris = f.triangles.map((s) => new Uint16Array(b64(s).buffer));
  return {
    model: f.model,
    tokens: f.run.tokens,
    surprisal: Float32Array.from(f.run.surprisal, (s) => (s === null ? NaN : s)),
    triangle: (l, h) => tris[l * f.model.nHead + h],
    thumbnails: { nLayer: f.thumbnails.nLayer, nHead: f.thumbnails.nHead, size: f.thumbnails.size, data: b64(f.thumbnails.data) },
    predictions: (i) => f.predictions[i] ?? [],
  };
}

/** GPT-2-small shapes with peaky synthetic rows: a few sharp keys per row (previous token, sink, a random one). */
export function syntheticData(T: number, L = 12, H = 12): RunData {
  const cache = new Map<number, Uint16Array>();
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const tokens: Token[] = [];
  let off = 0;
  const words = ['the', ' model', ' looks', ' at', ' tokens', '\n', '  ', 'if', '(', 'x', ')', ' {', ' return', ' 42', ';', '}'];
  for (let i = 0; i < T; i++) {
    const text = words[i % words.length];
    tokens.push({ id: i, text, start: off, end: off + text.length });
    off += text.length;
  }
  const S = Math.min(32, T);
  const thumbs = new Uint8Array(L * H * S * S);
  for (let k = 0; k < thumbs.length; k++) thumbs[k] = Math.floor(rand() * 256);
  return {
    model: { ref: 'synthetic-gpt2-small', nLayer: L, nHead: H },
    tokens,
    surprisal: Float32Array.from({ length: T }, (_, i) => (i === 0 ? NaN : rand() * 14)),
    triangle: (l, h) => {
      const key = l * H + h;
      let tri = cache.get(key);
      if (!tri) {
        tri = new Uint16Array((T * (T + 1)) / 2);
        const half = [floatToHalf(0.5), floatToHalf(0.3), floatToHalf(0.2), floatToHalf(1)];
        for (let i = 0; i < T; i++) {
          const base = (i * (i + 1)) / 2;
          if (i === 0) tri[base] = half[3];
          else {
            tri[base] = half[1]; // sink
            tri[base + Math.max(1, i - ((l * H + h) % 3))] = half[0]; // a previous-token-like key
            tri[base + 1 + Math.floor(rand() * i)] ||= half[2];
          }
        }
        cache.set(key, tri);
      }
      return tri;
    },
    thumbnails: { nLayer: L, nHead: H, size: S, data: thumbs },
    predictions: () => [{ id: 1, text: ' the', logprob: -1 }, { id: 2, text: ' a', logprob: -2 }],
  };
}

/** What "Inside a head" needs, recorded from the real engine (test/webview/recordInside.ts). */
interface InsideFixture {
  text: string;
  qk: Record<string, { scale: number; query: string; keys: string; values: string; scores: string; probs: string; attention: string; valueNorms: string }>;
  valueNorms: string[];
  ablations: { heads: HeadRef[]; mode: AblationMode; window: Span; lossBefore: number; lossAfter: number; lossDelta: number; surprisalBefore: string; surprisalAfter: string; surprisalDelta: string; at: Record<string, { before: Prediction[]; after: Prediction[] }> }[];
  rankings: { mode: AblationMode; window: Span; lossBefore: number; deltas: string; ranking: HeadRankingSummary['ranking'] }[];
}

const f32 = (s: string) => new Float32Array(b64(s).buffer);
const headsKey = (heads: HeadRef[]) => heads.map((h) => `${h.layer}.${h.head}`).sort().join('+');

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new HeadlightError('cancelled', 'rankHeads was cancelled.'));
    }, { once: true });
  });
}

class FakeSource implements AnalysisSource {
  current: CurrentAnalysis | undefined;
  selection: HeadSelector = { layer: 0, head: 0 };
  cursorToken: number | undefined;
  readonly runs = new Emitter<CurrentAnalysis>();
  readonly selections = new Emitter<HeadSelector>();
  readonly cursors = new Emitter<number | undefined>();
  readonly onDidChangeRun = this.runs.event as AnalysisSource['onDidChangeRun'];
  readonly onDidChangeSelection = this.selections.event as AnalysisSource['onDidChangeSelection'];
  readonly onDidChangeCursorToken = this.cursors.event as AnalysisSource['onDidChangeCursorToken'];
  revealed: number[] = [];
  queries: string[] = [];
  data: RunData | undefined;
  /** Head-finder scores the test chooses; otherwise the real scorer runs on the run's triangles (no induction). */
  headScores: HeadScoresAnswer | undefined;
  inside: InsideFixture | undefined;
  /** Pause between the head runs of a ranking (the real engine takes a forward pass per head). */
  rankStepMs = 40;
  readonly rankProgress = new Emitter<EngineEvents['rankProgress']>();
  /** Ablation and ranking requests as the engine got them (text checked against the recording). */
  experiments: { method: string; heads?: HeadRef[]; mode: AblationMode; at?: number }[] = [];
  /** `keepQueries` as the engine got it: on while the panel's Inside-a-head tab is open. */
  keepQueries: boolean[] = [];
  /** What `score` answers (the other version of a comparison), set by the test; the texts it was asked for. */
  scoreAnswer: ScoreResult | undefined;
  scored: string[] = [];
  /** Lens and attribution answers recorded from the real engine (test/webview/harnessLens.ts). */
  lens: LensAnswers | undefined;
  /** Patching recorded from the real engine; its cells stream one per `patchStepMs` as `patchProgress`. */
  patchRec: PatchFixture | undefined;
  patchStepMs = 5;
  readonly patchProgress = new Emitter<EngineEvents['patchProgress']>();

  setRun(data: RunData, version: number): void {
    this.data = data;
    const summary: RunSummary = {
      version,
      tokens: data.tokens,
      window: { start: 0, end: data.tokens.length },
      totalTokens: data.tokens.length,
      surprisal: data.surprisal,
      stats: { computed: data.tokens.length, reused: 0, graphMs: 1, totalMs: 1 },
    };
    this.current = {
      run: summary,
      model: { ref: data.model.ref, dir: '/tmp/model', nLayer: data.model.nLayer, nHead: data.model.nHead, nEmbd: 32, nPositions: 1024, vocabSize: 50257, fileDtype: 'F32', loadMs: 1 },
      document: { path: '/work/example.js', scheme: 'file', toString: () => 'file:///work/example.js' } as unknown as CurrentAnalysis['document'],
      documentVersion: version,
    };
    this.runs.fire(this.current);
  }

  setSelection(sel: HeadSelector): void {
    this.selection = sel;
    this.selections.fire(sel);
  }

  setCursor(i: number | undefined): void {
    this.cursorToken = i;
    this.cursors.fire(i);
  }

  revealToken(index: number): void {
    this.revealed.push(index);
    this.setCursor(index);
  }

  private rowOf(l: number, h: number, i: number): Float32Array {
    const tri = this.data!.triangle(l, h);
    const table = halfTable();
    const base = (i * (i + 1)) / 2;
    return Float32Array.from({ length: i + 1 }, (_, j) => table[tri[base + j]]);
  }

  private stored: { data: unknown; store: AttentionStore } | undefined;

  /** The run's fp16 triangles in the engine's own AttentionStore, for the engine's own scorers (built once per run). */
  private store(): AttentionStore {
    const data = this.data!;
    if (this.stored?.data === data) return this.stored.store;
    const { nLayer, nHead } = data.model;
    const T = data.tokens.length;
    const store = new AttentionStore(nLayer, nHead, 'fp16', T);
    store.resize(0, T);
    for (let l = 0; l < nLayer; l++) {
      for (let h = 0; h < nHead; h++) {
        const tri = data.triangle(l, h);
        for (let i = 0; i < T; i++) store.writeRow(l, h, i, tri.subarray((i * (i + 1)) / 2, ((i + 1) * (i + 2)) / 2));
      }
    }
    this.stored = { data, store };
    return store;
  }

  /** One head's value-weighted row: α_ij·n_j normalized, with the function the engine uses. */
  private valueWeightedRow(l: number, h: number, i: number): Float32Array {
    return valueWeighted(this.rowOf(l, h, i), this.valueNorms(l, h).subarray(0, i + 1));
  }

  private valueNorms(l: number, h: number): Float32Array {
    if (!this.inside) throw new HeadlightError('not-recorded', 'No inside-a-head recording was given to the harness.');
    return f32(this.inside.valueNorms[l * this.data!.model.nHead + h]);
  }

  /** The engine's answers that do not name a run version: ablations and rankings, from the recording. */
  private async experiment(method: 'ablate' | 'rankHeads', params: unknown, signal?: AbortSignal): Promise<unknown> {
    const ins = this.inside;
    if (!ins) throw new HeadlightError('not-recorded', 'No inside-a-head recording was given to the harness.');
    const p = params as { text: string; heads?: HeadRef[]; mode: AblationMode; at?: number; progressId?: string };
    if (p.text !== ins.text) throw new HeadlightError('bad-text', `The host sent text that is not the recorded one (${JSON.stringify(p.text.slice(0, 40))}…).`);
    this.experiments.push({ method, heads: p.heads, mode: p.mode, at: p.at });
    if (method === 'ablate') {
      const a = ins.ablations.find((x) => x.mode === p.mode && headsKey(x.heads) === headsKey(p.heads ?? []));
      const T = this.data!.tokens.length;
      const at = p.at ?? T;
      const preds = a?.at[String(at)];
      if (!a || !preds) throw new HeadlightError('not-recorded', `No recorded ablation of ${headsKey(p.heads ?? [])} (${p.mode}) at ${at}.`);
      const summary: AblationSummary = {
        heads: p.heads!, mode: p.mode, window: a.window, surprisalBefore: f32(a.surprisalBefore), surprisalAfter: f32(a.surprisalAfter), surprisalDelta: f32(a.surprisalDelta),
        lossBefore: a.lossBefore, lossAfter: a.lossAfter, lossDelta: a.lossDelta, at, predictionsBefore: preds.before, predictionsAfter: preds.after,
      };
      return summary;
    }
    const r = ins.rankings.find((x) => x.mode === p.mode)!;
    const total = r.ranking.length;
    for (let done = 0; done <= total; done++) {
      if (done > 0) await sleep(this.rankStepMs, signal);
      if (p.progressId) this.rankProgress.fire({ progressId: p.progressId, done, total });
    }
    const summary: HeadRankingSummary = { mode: p.mode, window: r.window, lossBefore: r.lossBefore, deltas: f32(r.deltas), ranking: r.ranking };
    return summary;
  }

  /** The recorded patching, its cells streamed in the engine's order; the texts and tokens must be the recorded ones. */
  private async patch(p: EngineRequests['patch'][0], signal?: AbortSignal): Promise<PatchResult> {
    const rec = this.patchRec;
    if (!rec) throw new HeadlightError('not-recorded', 'No patching recording was given to the harness.');
    const key = (a: string, b: string, x: number, y: number) => `${a}\u0000${b}\u0000${x}\u0000${y}`;
    if (key(p.clean, p.corrupt, p.answer, p.wrong) !== key(rec.clean, rec.corrupt, rec.answer.id, rec.wrong.id)) {
      throw new HeadlightError('not-recorded', `No recorded patching of these texts and tokens (${p.answer} vs ${p.wrong}).`);
    }
    const { metricClean, metricCorrupt } = rec.first;
    if (p.progressId) this.patchProgress.fire({ progressId: p.progressId, ...rec.first });
    for (const { done, total: n, ...cell } of rec.cells) {
      await sleep(this.patchStepMs, signal);
      if (p.progressId) this.patchProgress.fire({ progressId: p.progressId, done, total: n, cell, metricClean, metricCorrupt });
    }
    return { ...rec.result, resid: f32(rec.result.resid), heads: f32(rec.result.heads) };
  }

  async query<K extends keyof EngineRequests & string>(method: K, params: EngineRequests[K][0], signal?: AbortSignal): Promise<EngineRequests[K][1]> {
    this.queries.push(method);
    if (method === 'ablate' || method === 'rankHeads') return (await this.experiment(method, params, signal)) as EngineRequests[K][1];
    if (method === 'score') {
      this.scored.push((params as EngineRequests['score'][0]).text);
      if (!this.scoreAnswer) throw new HeadlightError('not-recorded', 'The test gave the harness no score answer.');
      return this.scoreAnswer as EngineRequests[K][1];
    }
    if (method === 'patch') return (await this.patch(params as EngineRequests['patch'][0], signal)) as EngineRequests[K][1];
    if (method === 'keepQueries') {
      this.keepQueries.push((params as EngineRequests['keepQueries'][0]).on);
      return undefined as EngineRequests[K][1];
    }
    const p = params as { version: number; layer?: number; head?: number; index?: number; sel?: HeadSelector };
    const cur = this.current;
    const data = this.data;
    if (!cur || !data || p.version !== cur.run.version) throw new HeadlightError('stale-run', `Run ${p.version} was replaced.`);
    const { nLayer, nHead } = data.model;
    let result: unknown;
    switch (method) {
      case 'headTriangle':
        result = { T: data.tokens.length, data: data.triangle(p.layer!, p.head!).slice() };
        break;
      case 'thumbnails':
        result = { ...data.thumbnails, data: data.thumbnails.data.slice() };
        break;
      case 'predictions':
        result = data.predictions(p.index!);
        break;
      case 'headScores': {
        if (this.headScores) result = this.headScores;
        else {
          const s = scoreText(this.store(), data.tokens.map((t) => t.id));
          result = { nLayer, nHead, scores: s.scores, badges: badges(s) };
        }
        break;
      }
      case 'cursorSummary': {
        const i = p.index!;
        const vw = (params as { mode?: string }).mode === 'value-weighted';
        result = vw ? cursorSummary(this.store(), i, (l, h) => this.valueWeightedRow(l, h, i)) : cursorSummary(this.store(), i);
        break;
      }
      case 'valueNorms':
        result = this.valueNorms(p.layer!, p.head!).slice();
        break;
      case 'rollout':
        // the engine's own rollout over the recorded run's maps (checked against the reference in test/engine)
        result = p.index === undefined ? Float32Array.from(new Rollout(this.store()).matrix()) : Float32Array.from(new Rollout(this.store()).row(p.index));
        break;
      case 'qk': {
        const q = this.inside?.qk[`${p.layer}.${p.head}.${p.index}`];
        if (!q) throw new HeadlightError('not-recorded', `No recorded q·k breakdown of head ${p.layer}.${p.head} at query ${p.index}.`);
        const b: QkBreakdown = { layer: p.layer!, head: p.head!, index: p.index!, scale: q.scale, query: f32(q.query), keys: f32(q.keys), values: f32(q.values), scores: f32(q.scores), probs: f32(q.probs), attention: f32(q.attention), valueNorms: f32(q.valueNorms) };
        result = b;
        break;
      }
      case 'row': {
        const sel = p.sel!;
        const i = p.index!;
        const mode = (params as { mode?: string }).mode;
        if (mode === 'value-weighted' && typeof sel.layer === 'number' && typeof sel.head === 'number') {
          result = this.valueWeightedRow(sel.layer, sel.head, i);
        } else if (typeof sel.layer === 'number' && typeof sel.head === 'number') result = this.rowOf(sel.layer, sel.head, i);
        else {
          const out = new Float32Array(i + 1);
          const heads = selectorHeads(sel, nLayer, nHead);
          for (const [l, h] of heads) this.rowOf(l, h, i).forEach((w, j) => (out[j] += w / heads.length));
          result = out;
        }
        break;
      }
      case 'lensAt':
      case 'lensGrid':
      case 'attribute': {
        if (!this.lens) throw new HeadlightError('not-recorded', 'No lens recording was given to the harness.');
        const q = params as never;
        result = method === 'lensAt' ? this.lens.lensAt(q) : method === 'lensGrid' ? await this.lens.lensGrid(q, signal) : this.lens.attribute(q);
        break;
      }
      default:
        throw new HeadlightError('no-method', `The harness does not serve ${method}.`);
    }
    return result as EngineRequests[K][1];
  }
}

/** Bytes of a message as structured clone carries it (binary as is, strings as UTF-16, numbers as 8). */
function sizeOf(v: unknown): number {
  if (v === null || v === undefined) return 1;
  if (ArrayBuffer.isView(v)) return v.byteLength;
  if (typeof v === 'string') return v.length * 2;
  if (typeof v === 'number' || typeof v === 'boolean') return 8;
  if (Array.isArray(v)) return v.reduce((s: number, x) => s + sizeOf(x), 8);
  if (typeof v === 'object') return Object.entries(v as object).reduce((s, [k, x]) => s + k.length * 2 + sizeOf(x), 8);
  return 8;
}

declare global {
  interface Window {
    acquireVsCodeApi: () => { postMessage(m: unknown): void; getState(): unknown; setState(s: unknown): void };
    harness: Harness;
  }
}

interface Harness {
  source: FakeSource;
  experiments: HeadExperiments;
  /** Compare With…'s state, over the fake source (threshold 2 bits). */
  comparisons: Comparisons;
  /** Activation patching over those comparisons (the current side's text: the recorded clean text). */
  patching: Patching;
  setPatch(f: unknown): void;
  /** Attention modes the panel asked the host to save (the setting). */
  modeWrites: string[];
  /** The recorded inside-a-head answers (parsed JSON of recorded-inside.json). */
  setInside(f: unknown): void;
  /** The recorded lens and attribution answers (parsed JSON of recorded-lens.json). */
  setLens(f: unknown): LensAnswers;
  session: PanelSession | SidebarSession;
  saves: { kind: string; suggestedName: string; data: Uint8Array | string }[];
  /** Every event the webview sent the host, in order (`ready`, `select`, `insideHead`, …). */
  webviewEvents: { name: string; payload: unknown }[];
  bytesToWebview: number;
  messagesToWebview: number;
  state: unknown;
  /** The recorded run (parsed JSON, passed in by the test: the CSP forbids fetch, as in VS Code). */
  fromFixture(f: unknown): RunData;
  synthetic(T: number): RunData;
  setTheme(cls: string): void;
}

const toWebview = new Set<(m: unknown) => void>();
const toHost = new Set<(m: unknown) => void>();
const source = new FakeSource();
const harness: Harness = {
  source,
  experiments: new HeadExperiments({
    source,
    textOf: () => source.inside?.text,
    onRankProgress: (l) => source.rankProgress.event(l),
    attentionMode: 'attention',
    writeAttentionMode: (mode) => {
      harness.modeWrites.push(mode);
      harness.experiments.setAttentionMode(mode); // VS Code: the setting's change event does this
    },
  }),
  comparisons: new Comparisons({ source, threshold: () => 2 }),
  patching: undefined as unknown as Patching,
  setPatch: (f) => (source.patchRec = f as PatchFixture),
  modeWrites: [],
  setInside: (f) => (source.inside = f as InsideFixture),
  setLens: (f) => (source.lens = new LensAnswers(f as LensFixture)),
  session: undefined as unknown as PanelSession,
  saves: [],
  webviewEvents: [],
  bytesToWebview: 0,
  messagesToWebview: 0,
  state: (globalThis as { harnessState?: unknown }).harnessState,
  fromFixture: (f) => fixtureData(f as Fixture),
  synthetic: (T) => syntheticData(T),
  setTheme: (cls) => {
    document.body.classList.remove('vscode-light', 'vscode-dark', 'vscode-high-contrast', 'vscode-high-contrast-light');
    document.body.classList.add(...cls.split(' '));
  },
};
harness.patching = new Patching({ source, comparisons: harness.comparisons, textOf: () => source.patchRec?.clean, onPatchProgress: (l) => source.patchProgress.event(l) });
window.harness = harness;

// The webview's end: VS Code delivers host messages as window `message` events.
window.addEventListener('message', () => undefined);
window.acquireVsCodeApi = () => ({
  postMessage: (m) => {
    const copy = structuredClone(m);
    const wire = copy as { rpc?: string; name?: string; payload?: unknown };
    if (wire.rpc === 'event') harness.webviewEvents.push({ name: wire.name!, payload: wire.payload });
    setTimeout(() => toHost.forEach((l) => l(copy)), 0);
  },
  getState: () => harness.state,
  setState: (s) => (harness.state = structuredClone(s)),
});
const hostChannel: Channel = {
  send: (m) => {
    harness.bytesToWebview += sizeOf(m);
    harness.messagesToWebview++;
    const copy = structuredClone(m);
    setTimeout(() => window.dispatchEvent(new MessageEvent('message', { data: copy })), 0);
  },
  onMessage: (l) => {
    toHost.add(l);
    return () => toHost.delete(l);
  },
};
void toWebview;

const params = new URLSearchParams(location.search);
const kind = params.get('view') ?? 'panel';
// `selection=L.H`: the host's selection before the webview says ready (a panel opened before any run)
const initial = params.get('selection')?.split('.').map(Number);
if (initial?.length === 2 && initial.every(Number.isInteger)) source.selection = { layer: initial[0], head: initial[1] };
harness.session =
  kind === 'sidebar'
    ? new SidebarSession(harness.source, hostChannel, harness.experiments)
    : new PanelSession(harness.source, hostChannel, async (k, suggestedName, data) => {
        harness.saves.push({ kind: k, suggestedName, data });
        return { saved: true, path: `/tmp/${suggestedName}` };
      }, harness.experiments, harness.comparisons);
