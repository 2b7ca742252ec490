/**
 * The attention engine: tokenize, run the graph over a token window, keep what a viewer asks for, and answer
 * queries (rows, maps, top sources, surprisal, predictions). Plain Node; no `vscode`.
 *
 * Incremental: keys and values before an edit never change in a causal model, so `update` keeps the cache for the
 * longest common prefix of token ids and runs only the rest.
 */
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Token } from '../../common/tokens';
import type { QkBreakdown } from '../../common/engineProtocol';
import { HeadlightError } from '../../common/errors';
import type { Gpt2Config, Gpt2Weights } from '../model/checkpointTypes';
import { AttentionStore, type Precision } from './attentionStore';
import { buildGpt2Graph, ROW_BLOCK, TOP_K, type BuiltGraph, type Weight } from '../graph/gpt2Graph';
import { inductionSequence, scoreInduction, scoreText, type HeadScores } from './headFinder';

/** Length of one copy of the induction diagnostic's random sequence. */
const INDUCTION_LENGTH = 40;
import { collectSoon } from '../memory';
import { ModelSession, f32, i64, type Feeds, type Fetched, type SessionOptions } from '../graph/session';
import type { AttentionMode } from '../../common/engineProtocol';
import { ablationMask, attentionScale, meanLoss, qkScores, surprisalDelta, type AblationMode, type HeadRef } from './inspect';

export type { AttentionMode } from '../../common/engineProtocol';

/** What the engine needs of a tokenizer (implemented by Gpt2Tokenizer). */
export interface TextTokenizer {
  encode(text: string): Token[];
  decode(ids: number[]): string;
}

/** A half-open range of token indices into the tokenization of the whole text. */
export interface TokenWindow {
  start: number;
  end: number;
}

export interface AnalyzeOptions {
  /** Which tokens to analyse; default: the whole text when it fits the context, else its first n_positions tokens. */
  window?: TokenWindow;
  signal?: AbortSignal;
  /** Also return the full [T, vocab] logits (a full run; 206 MB at T=1024 for GPT-2, so only for dumps). */
  logits?: boolean;
}

export interface EngineOptions extends SessionOptions {
  /** Storage of attention maps: fp16 (default; half the memory and copy-out time) or fp32 (exact, for dumps). */
  precision?: Precision;
  /** Also able to return full [T, vocab] logits (`analyze(…, {logits: true})`, `forwardLogits`). Costs memory. */
  logits?: boolean;
  /** Only logits (no attention, caches or predictions): the plain forward pass the benchmark compares against. */
  logitsOnly?: boolean;
  /**
   * Hand weights to onnxruntime as external data in a scratch file (default) rather than inside the model bytes:
   * onnxruntime maps the file instead of copying a protobuf, which halved the engine's resident memory after
   * loading GPT-2 small (0.8 GB vs 1.7 GB), and lifts protobuf's 2 GB limit for gpt2-large and gpt2-xl.
   */
  externalData?: boolean;
}

export interface Prediction {
  id: number;
  text: string;
  /** Natural-log probability. */
  logprob: number;
}

export interface Source {
  /** Token index within the window. */
  index: number;
  weight: number;
}

/** Which heads to read: one head, the mean over a layer's heads, or the mean over all layers and heads. */
export type HeadSelector = { layer: number; head: number } | { layer: number; head: 'mean' } | { layer: 'mean'; head: 'mean' };

export interface RunStats {
  /** Tokens computed by the graph in this run (the rest came from the cache). */
  computed: number;
  reused: number;
  /** Wall time of the graph run, ms. */
  graphMs: number;
  totalMs: number;
}

const LN2 = Math.log(2);

/** Runs computing at least this many tokens are followed by a garbage collection. */
const LARGE_RUN = 256;

/**
 * Positions per graph run of a long analysis. At T=1024 on GPT-2 small, four runs of 256 instead of one cut the
 * engine's peak RSS by keeping a quarter of the attention outputs and intermediates alive at once (see README).
 */
const CHUNK = 256;

/** One query's row of one head taken apart (the same shape crosses the engine protocol). */
export type { QkBreakdown } from '../../common/engineProtocol';

export interface AblationSpec {
  heads: HeadRef[];
  mode: AblationMode;
}

export interface AblationResult {
  tokens: readonly Token[];
  window: TokenWindow;
  totalTokens: number;
  heads: HeadRef[];
  mode: AblationMode;
  /** ln p(token i | before) without and with the ablation ([T], NaN first). */
  logprobBefore: Float32Array;
  logprobAfter: Float32Array;
  /** Surprisal after − before, bits ([T], NaN first). */
  surprisalDelta: Float32Array;
  /** Mean loss over the window's predictions, nats. */
  lossBefore: number;
  lossAfter: number;
  lossDelta: number;
  /** Position the predictions are for (default: the token after the window). */
  at: number;
  predictionsBefore: Prediction[];
  predictionsAfter: Prediction[];
}

export interface HeadRanking {
  tokens: number;
  window: TokenWindow;
  mode: AblationMode;
  lossBefore: number;
  /** Loss change (nats) when each head alone is ablated, [L, H]. */
  deltas: Float32Array;
  /** Every head, by |loss change| largest first. */
  ranking: { layer: number; head: number; lossDelta: number }[];
}

/** What a scratch run (no state kept) returns: per-token answers and, for a plain run, each head's mean output. */
interface ScratchResult {
  logprobs: Float32Array; // [T], NaN first
  topLogprob: Float32Array; // [T, K]
  topIds: Int32Array; // [T, K]
  means?: Float32Array; // [L, H, D]
  resid?: Float32Array[]; // [L] × [T, E]: the residual stream entering each layer
}

/** The result of one analysis. Queries read the engine's current state; a run replaced by a newer one is stale. */
export class Run {
  constructor(
    private readonly engine: Gpt2Engine,
    readonly version: number,
    /** Tokens of the window, offsets in UTF-16 units of the analysed text. */
    readonly tokens: readonly Token[],
    readonly window: TokenWindow,
    /** Total tokens in the text (the window may cover part of it). */
    readonly totalTokens: number,
    readonly stats: RunStats,
    /** [T, vocab] logits, when asked for with `logits: true`. */
    readonly logits?: Float32Array,
  ) {}

  get length(): number {
    return this.tokens.length;
  }

  get stale(): boolean {
    return this.engine.version !== this.version;
  }

  private get state(): EngineState {
    if (this.stale) throw new HeadlightError('stale-run', 'This analysis was replaced by a newer one.', 'Query the latest run.');
    return this.engine.state;
  }

  /** ln p(token i | tokens before it in the window); NaN for the first token. */
  logprob(i: number): number {
    return i === 0 ? NaN : this.state.nextLogprob[i - 1];
  }

  /** Surprisal of token i in bits: −log₂ p(token i | tokens before it); NaN for the first token. */
  surprisal(i: number): number {
    return -this.logprob(i) / LN2;
  }

  /** All logprobs of the window as a new array (`[T]`, NaN first). */
  logprobs(): Float32Array {
    const out = new Float32Array(this.length);
    for (let i = 0; i < this.length; i++) out[i] = this.logprob(i);
    return out;
  }

  /** The model's top guesses for the token at position i (made at i−1); for i = length, the next token. */
  predictions(i: number, k = 5): Prediction[] {
    if (i <= 0 || i > this.length) return [];
    const s = this.state;
    const base = (i - 1) * TOP_K;
    return Array.from({ length: Math.min(k, TOP_K) }, (_, r) => {
      const id = s.topIds[base + r];
      return { id, text: this.engine.tokenizer.decode([id]), logprob: s.topLogprob[base + r] };
    });
  }

  /**
   * Attention weights of query i over keys 0..i for a head, a layer's mean or the overall mean. `value-weighted`
   * weighs each key by the norm of what it adds, α_ij·‖v_j·W_O^h‖, summed over the selected heads and normalized so
   * the row sums to 1.
   */
  row(sel: HeadSelector, i: number, mode: AttentionMode = 'attention'): Float32Array {
    if (mode === 'value-weighted') return this.engine.valueWeightedRow(this.state, sel, i);
    const store = this.state.attention;
    if (typeof sel.head === 'number') return store.row(sel.layer as number, sel.head, i);
    const layers = sel.layer === 'mean' ? range(store.nLayer) : [sel.layer];
    const out = new Float32Array(i + 1);
    const tmp = new Float32Array(i + 1);
    for (const l of layers) {
      for (let h = 0; h < store.nHead; h++) {
        store.row(l, h, i, tmp);
        for (let j = 0; j <= i; j++) out[j] += tmp[j];
      }
    }
    const n = layers.length * store.nHead;
    for (let j = 0; j <= i; j++) out[j] /= n;
    return out;
  }

  /** Who attends to key j: weights of queries j..T−1 on j, indexed by query (zeros before j). */
  column(sel: HeadSelector, j: number, mode: AttentionMode = 'attention'): Float32Array {
    if (mode === 'value-weighted') return this.engine.valueWeightedColumn(this.state, sel, j);
    const T = this.length;
    const store = this.state.attention;
    const out = new Float32Array(T);
    const heads: [number, number][] = [];
    if (typeof sel.head === 'number') heads.push([sel.layer as number, sel.head]);
    else for (const l of sel.layer === 'mean' ? range(store.nLayer) : [sel.layer]) for (let h = 0; h < store.nHead; h++) heads.push([l, h]);
    for (const [l, h] of heads) for (let i = j; i < T; i++) out[i] += store.at(l, h, i, j);
    for (let i = j; i < T; i++) out[i] /= heads.length;
    return out;
  }

  /** The k keys query i attends to most. */
  topSources(sel: HeadSelector, i: number, k = 5, mode: AttentionMode = 'attention'): Source[] {
    return topK(this.row(sel, i, mode), k);
  }

  /** ‖v_j·W_O^h‖ for every position j of the window: what each token adds through head h per unit of attention. */
  valueNorms(layer: number, head: number): Float32Array {
    const s = this.state;
    this.engine.checkHead(layer, head);
    const P = this.engine.config.nPositions;
    if (!s.vnorm[layer]) return new Float32Array(0); // nothing analysed yet
    return s.vnorm[layer].slice(head * P, head * P + this.length);
  }

  /** One head's full [T, T] map (fp32, zeros above the diagonal). */
  headMap(layer: number, head: number): Float32Array {
    return this.state.attention.map(layer, head);
  }

  /** Direct access to the store (binary answers for webviews, dumps). */
  get attention(): AttentionStore {
    return this.state.attention;
  }
}

export function topK(values: ArrayLike<number>, k: number): Source[] {
  const idx = Array.from({ length: values.length }, (_, i) => i);
  idx.sort((a, b) => values[b] - values[a] || a - b);
  return idx.slice(0, k).map((index) => ({ index, weight: values[index] }));
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** What the engine keeps between runs: the window's ids, the K/V cache, and the per-position answers. */
interface EngineState {
  ids: number[];
  windowStart: number;
  keys: Float32Array[]; // per layer [H, n_positions, D], head-major as the graph takes it
  values: Float32Array[]; // per layer [H, n_positions, D]
  attention: AttentionStore;
  nextLogprob: Float32Array; // [T]: ln p(ids[i+1] | ids ≤ i); NaN for the last
  topLogprob: Float32Array; // [T, K]
  topIds: Int32Array; // [T, K]
  headMaskKey: string;
  /** Per layer [H, n_positions, D]; valid for positions < queriesValid (fetched only once someone looks inside). */
  queries: Float32Array[];
  queriesValid: number;
  /** Per layer [H, n_positions]: ‖v_j·W_O^h‖. */
  vnorm: Float32Array[];
  /** Per layer [H, n_positions]: Σ_k α_ik·vnorm_k (value-weighted row sums), computed on demand up to vwValid[l]. */
  vwSum: Float32Array[];
  vwValid: number[];
}

export class Gpt2Engine {
  state: EngineState;
  version = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly headMask: Float32Array;
  /** [L, H, D]: what an ablated head outputs instead (zeros: zero ablation). */
  private readonly headMean: Float32Array;
  private headMeanKey = 'zero';
  /** Fetch queries on every run (set by the first `qk` request: only viewers that look inside heads pay for them). */
  private keepQueries = false;
  /** The last plain scratch run, for ablations of the same tokens. */
  private baseline: { key: string; result: ScratchResult } | undefined;
  /** forwardLogits' cache of zeros, per layer [H, n_positions, D] (the benchmark's baseline only). */
  private zeroCache: Float32Array[] | undefined;

  private constructor(
    readonly config: Gpt2Config,
    readonly tokenizer: TextTokenizer,
    private readonly session: ModelSession,
    readonly precision: Precision,
    /** Names of the graph's inputs: feeds are limited to these. */
    private readonly inputs: ReadonlySet<string>,
    readonly hasLogits: boolean,
  ) {
    this.headMask = new Float32Array(config.nLayer * config.nHead).fill(1);
    this.headMean = new Float32Array(config.nLayer * config.nEmbd);
    this.state = this.emptyState();
  }

  /** Builds the graph from weights and starts an onnxruntime session. The weights may be dropped afterwards. */
  static async create(config: Gpt2Config, weights: Gpt2Weights<Weight>, tokenizer: TextTokenizer, opts: EngineOptions = {}): Promise<Gpt2Engine> {
    const precision = opts.precision ?? 'fp16';
    const graphOpts = opts.logitsOnly
      ? ({ attention: 'none', analysis: false, logits: true } as const)
      : ({ attention: precision, logits: opts.logits } as const);
    if (!(opts.externalData ?? process.env.HEADLIGHT_EXTERNAL_DATA !== '0')) {
      let graph: BuiltGraph | undefined = await buildGpt2Graph(config, weights, graphOpts);
      const inputs = new Set(graph.inputs);
      const session = await ModelSession.create(graph.bytes, opts);
      graph = undefined; // the model's bytes (as large as the weights) are garbage from here on
      return new Gpt2Engine(config, tokenizer, session, precision, inputs, (opts.logits || opts.logitsOnly) ?? false);
    }
    // Weights as external data in a scratch folder, mapped by onnxruntime; the folder goes once the session holds them.
    const dir = await fsp.mkdtemp(join(tmpdir(), 'headlight-model-'));
    try {
      const graph = await buildGpt2Graph(config, weights, { ...graphOpts, externalDir: dir });
      await fsp.writeFile(join(dir, 'model.onnx'), graph.bytes);
      const session = await ModelSession.create(join(dir, 'model.onnx'), opts);
      return new Gpt2Engine(config, tokenizer, session, precision, new Set(graph.inputs), (opts.logits || opts.logitsOnly) ?? false);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }

  private emptyState(): EngineState {
    const { nLayer, nHead, nPositions } = this.config;
    return {
      ids: [],
      windowStart: 0,
      keys: [],
      values: [],
      attention: new AttentionStore(nLayer, nHead, this.precision, nPositions),
      nextLogprob: new Float32Array(0),
      topLogprob: new Float32Array(0),
      topIds: new Int32Array(0),
      headMaskKey: '',
      queries: [],
      queriesValid: 0,
      vnorm: [],
      vwSum: [],
      vwValid: [],
    };
  }

  /** Chooses the token window: the given one (validated) or the whole text when it fits, else its start. */
  chooseWindow(totalTokens: number, window?: TokenWindow): TokenWindow {
    const n = this.config.nPositions;
    if (!window) return { start: 0, end: Math.min(totalTokens, n) };
    const { start, end } = window;
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= totalTokens)) {
      throw new HeadlightError('bad-window', `Window ${start}:${end} is outside the text's ${totalTokens} tokens.`, `Pick a window within 0:${totalTokens}.`);
    }
    if (end - start > n) {
      throw new HeadlightError('window-too-long', `Window ${start}:${end} has ${end - start} tokens; the model sees at most ${n}.`, `Pick a window of at most ${n} tokens.`);
    }
    return window;
  }

  /** Analyses text from scratch (the cache is discarded). */
  analyze(text: string, opts: AnalyzeOptions = {}): Promise<Run> {
    return this.serialize(() => this.runText(text, opts, false));
  }

  /** Analyses text, reusing the cached keys/values of the longest unchanged prefix of token ids. */
  update(text: string, opts: AnalyzeOptions = {}): Promise<Run> {
    return this.serialize(() => this.runText(text, opts, true));
  }

  /** Analyses given token ids (no text). */
  analyzeIds(ids: number[], opts: { incremental?: boolean; signal?: AbortSignal } = {}): Promise<Run> {
    const tokens = ids.map((id, i) => ({ id, text: this.tokenizer.decode([id]), start: i, end: i }));
    return this.serialize(() => this.runTokens(tokens, { start: 0, end: ids.length }, ids.length, opts.incremental ?? false, opts.signal));
  }

  /**
   * Sets head multipliers ([L][H], 1 keeps, 0 ablates) for later analyses, and what an ablated head outputs instead:
   * zeros (default) or `means` [L, H, D] (mean ablation, e.g. `ablationMeans`). The cache is not reused across
   * masks or replacements.
   */
  setHeadMask(mask: ArrayLike<number>, means?: Float32Array): void {
    if (mask.length !== this.headMask.length) throw new RangeError(`head mask needs ${this.headMask.length} values`);
    if (means && means.length !== this.headMean.length) throw new RangeError(`head means need ${this.headMean.length} values ([L, H, D]), got ${means.length}`);
    this.headMask.set(Array.from(mask));
    if (means) this.headMean.set(means);
    else this.headMean.fill(0);
    this.headMeanKey = means ? `mean:${hashFloats(means)}` : 'zero';
  }

  /** Each head's mean output over `ids` in a plain run, [L, H, D]: the replacement for mean ablation. */
  ablationMeans(ids: number[]): Promise<Float32Array> {
    return this.serialize(async () => (await this.plainBaseline(ids)).means!);
  }

  private serialize<T>(job: () => Promise<T>): Promise<T> {
    const next = this.queue.then(job, job);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runText(text: string, opts: AnalyzeOptions, incremental: boolean): Promise<Run> {
    const all = this.tokenizer.encode(text);
    const window = this.chooseWindow(all.length, opts.window);
    return this.runTokens(all.slice(window.start, window.end), window, all.length, incremental && !opts.logits, opts.signal, opts.logits);
  }

  private async runTokens(tokens: Token[], window: TokenWindow, totalTokens: number, incremental: boolean, signal?: AbortSignal, logits = false): Promise<Run> {
    const t0 = performance.now();
    throwIfAborted(signal);
    const ids = tokens.map((t) => t.id);
    const T = ids.length;
    const prev = this.state;
    const maskKey = `${this.headMask.join(',')}|${this.headMeanKey}`;

    // How many positions to take from the cache. Position p−1's next-token log-prob depends on token p, so an edit
    // at p recomputes from p−1; a pure truncation computes nothing.
    let reuse = 0;
    if (incremental && prev.windowStart === window.start && prev.headMaskKey === maskKey) {
      let lcp = 0;
      const max = Math.min(prev.ids.length, T);
      while (lcp < max && prev.ids[lcp] === ids[lcp]) lcp++;
      reuse = lcp >= T ? T : Math.max(0, lcp - 1);
    }

    // The previous state's buffers are reused (rows are only written after the run succeeds): a fresh analysis of
    // T=1024 tokens then needs no second 144 MiB store while the old one is still referenced.
    const state = prev;
    const n = T - reuse;
    let graphMs = 0;
    let logitsData: Float32Array | undefined;
    if (n > 0) {
      if (logits && !this.hasLogits) throw new Error('logits need an engine created with {logits: true}');
      // Long runs go in chunks of CHUNK positions, each on the cache of the ones before (as an edit would), so that
      // one chunk's outputs and intermediates are alive at a time instead of the whole window's.
      const chunk = logits ? n : CHUNK;
      for (let past = reuse; past < T; past += chunk) {
        if (past > reuse && signal?.aborted) {
          // Superseded between chunks: stop here. The state is a valid run of the prefix computed so far (the next
          // update reuses it); older runs are already stale.
          this.state = state;
          throwIfAborted(signal);
        }
        const end = Math.min(T, past + chunk);
        const t1 = performance.now();
        const out = await this.runGraph(state, ids, past, end, { logits, queries: this.keepQueries });
        logitsData = logits ? (out.out.logits.data as Float32Array) : undefined;
        graphMs += performance.now() - t1;
        // A run cancelled before its first chunk is stored leaves the previous state untouched; once one is stored,
        // older runs are stale and a cancellation takes effect at the next chunk.
        if (past === reuse) {
          throwIfAborted(signal);
          this.version++;
          state.windowStart = window.start;
          state.headMaskKey = maskKey;
          state.attention.resize(reuse, T); // room for every chunk at once (no regrowth between chunks)
        }
        this.commit(state, ids, past, end, out);
        state.ids = ids.slice(0, end);
      }
      if (n >= LARGE_RUN) collectSoon(); // the run's output copies are garbage now (see memory.ts)
    } else {
      this.truncate(state, T);
    }
    state.ids = ids;
    state.windowStart = window.start;
    state.headMaskKey = maskKey;
    this.state = state;
    this.version++;
    return new Run(this, this.version, tokens, window, totalTokens, { computed: n, reused: reuse, graphMs, totalMs: performance.now() - t0 }, logitsData);
  }

  /**
   * Runs `ids` on a scratch state and returns its attention, leaving the current run untouched (diagnostics such
   * as the head finder's induction test).
   */
  probe(ids: number[]): Promise<AttentionStore> {
    return this.serialize(async () => {
      const scratch = this.emptyState();
      const out = await this.runGraph(scratch, ids, 0, ids.length, {});
      this.commit(scratch, ids, 0, ids.length, out);
      return scratch.attention;
    });
  }

  private inductionCache: Float32Array | undefined;

  /** Head-finder scores: on the run's text, plus the induction diagnostic (computed once per model). */
  async headScores(run: Run): Promise<HeadScores> {
    const text = scoreText(run.attention, run.tokens.map((t) => t.id));
    if (!this.inductionCache) {
      const n = Math.min(INDUCTION_LENGTH, Math.floor(this.config.nPositions / 2));
      this.inductionCache = scoreInduction(await this.probe(inductionSequence(n, this.config.vocabSize)), n);
    }
    return { ...text, scores: { ...text.scores, induction: this.inductionCache } };
  }

  // ------------------------------------------------------------------ inside a head

  /** Throws a clear error unless layer.head exists in this model. */
  checkHead(layer: number, head: number): void {
    ablationMask([{ layer, head }], this.config.nLayer, this.config.nHead);
  }

  /** The heads a selector covers, as [layer, head] pairs. */
  private headsOf(sel: HeadSelector): [number, number][] {
    const { nLayer, nHead } = this.config;
    if (typeof sel.head === 'number') {
      this.checkHead(sel.layer as number, sel.head);
      return [[sel.layer as number, sel.head]];
    }
    const layers = sel.layer === 'mean' ? range(nLayer) : [sel.layer];
    return layers.flatMap((l) => range(nHead).map((h): [number, number] => [l, h]));
  }

  /** Σ_k α_ik·vnorm_k for rows < T of layer l, every head (cached; an incremental run invalidates from its edit). */
  private valueWeightedSums(state: EngineState, l: number): Float32Array {
    const { nHead: H, nPositions: P } = this.config;
    const T = state.attention.length;
    const sums = (state.vwSum[l] ??= new Float32Array(H * P)); // [H, n_positions]
    const from = state.vwValid[l] ?? 0;
    const row = new Float32Array(T);
    for (let h = 0; h < H; h++) {
      const norms = state.vnorm[l].subarray(h * P, (h + 1) * P);
      for (let i = from; i < T; i++) {
        state.attention.row(l, h, i, row);
        let s = 0;
        for (let j = 0; j <= i; j++) s += row[j] * norms[j];
        sums[h * P + i] = s;
      }
    }
    state.vwValid[l] = T;
    return sums;
  }

  /** Value-weighted row i (see `Run.row`): Σ_heads α_ij·vnorm_j over Σ_heads Σ_k α_ik·vnorm_k. */
  valueWeightedRow(state: EngineState, sel: HeadSelector, i: number): Float32Array {
    const P = this.config.nPositions;
    const out = new Float32Array(i + 1);
    const tmp = new Float32Array(i + 1);
    let total = 0;
    for (const [l, h] of this.headsOf(sel)) {
      state.attention.row(l, h, i, tmp);
      const norms = state.vnorm[l];
      for (let j = 0; j <= i; j++) {
        const w = tmp[j] * norms[h * P + j];
        out[j] += w;
        total += w;
      }
    }
    if (total > 0) for (let j = 0; j <= i; j++) out[j] /= total;
    return out;
  }

  /** Value-weighted column j (see `Run.column`): each query's normalized value-weighted weight on key j. */
  valueWeightedColumn(state: EngineState, sel: HeadSelector, j: number): Float32Array {
    const P = this.config.nPositions;
    const T = state.attention.length;
    const num = new Float32Array(T);
    const den = new Float32Array(T);
    for (const [l, h] of this.headsOf(sel)) {
      const sums = this.valueWeightedSums(state, l);
      const nj = state.vnorm[l][h * P + j];
      for (let i = j; i < T; i++) {
        num[i] += state.attention.at(l, h, i, j) * nj;
        den[i] += sums[h * P + i];
      }
    }
    for (let i = j; i < T; i++) num[i] = den[i] > 0 ? num[i] / den[i] : 0;
    return num;
  }

  /**
   * Query i of one head taken apart: q, every key and value it sees, the scores before and after the softmax, the
   * stored row and the value norms. The first call fetches queries for the current run (one extra run of the
   * window) and from then on every run keeps them.
   */
  async qk(run: Run, layer: number, head: number, index: number): Promise<QkBreakdown> {
    this.checkHead(layer, head);
    if (!(Number.isInteger(index) && index >= 0 && index < run.length)) {
      throw new HeadlightError('bad-index', `Token ${index} is outside the run's ${run.length} tokens.`);
    }
    this.keepQueries = true;
    if (this.state.queriesValid < run.length) await this.serialize(() => this.fetchQueries(run));
    if (run.stale) throw new HeadlightError('stale-run', 'This analysis was replaced by a newer one.', 'Query the latest run.');
    const s = this.state;
    const { nHead: H, nEmbd: E, nPositions: P } = this.config;
    const D = E / H;
    const base = head * P * D;
    const query = s.queries[layer].slice(base + index * D, base + (index + 1) * D); // [D]
    const keys = s.keys[layer].slice(base, base + (index + 1) * D); // [i+1, D]
    const values = s.values[layer].slice(base, base + (index + 1) * D); // [i+1, D]
    const scale = attentionScale(this.config, layer);
    const { scores, probs } = qkScores(query, keys, scale);
    const valueNorms = s.vnorm[layer].slice(head * P, head * P + index + 1);
    return { layer, head, index, scale, query, keys, values, scores, probs, attention: run.row({ layer, head }, index), valueNorms };
  }

  /** Recomputes the current run's window from scratch to fill in its queries (state otherwise unchanged). */
  private async fetchQueries(run: Run): Promise<void> {
    if (run.stale || this.state.queriesValid >= run.length) return;
    const { nLayer: L, nHead: H, nEmbd: E, nPositions: P } = this.config;
    const D = E / H;
    const ids = this.state.ids;
    const { feeds } = this.feeds(this.emptyState(), ids, 0);
    const out = await this.session.run(feeds, range(L).map((l) => `present_q_${l}`));
    const n = ids.length;
    for (let l = 0; l < L; l++) {
      const q = out[`present_q_${l}`].data as Float32Array; // [1, H, n, D]
      const dest = (this.state.queries[l] ??= new Float32Array(H * P * D));
      for (let h = 0; h < H; h++) dest.set(q.subarray(h * n * D, (h + 1) * n * D), h * P * D);
    }
    this.state.queriesValid = n;
  }

  /**
   * Runs ids from scratch without touching the engine's state: per-token answers under a head mask and means. Long
   * windows go in chunks of CHUNK positions on a scratch key/value cache, as analyses do, so that one chunk's
   * intermediates are alive at a time (an unchunked ablated run over 1,024 tokens of GPT-2 small peaked at 2.2 GB).
   */
  private async scratchRun(
    ids: number[],
    mask: Float32Array,
    means: Float32Array,
    withMeans: boolean,
    withTop = true,
    from?: { layer: number; resid: Float32Array },
  ): Promise<ScratchResult> {
    const { nLayer: L, nEmbd: E } = this.config;
    const T = ids.length;
    const cache = this.emptyState(); // keys and values of the chunks before (allocated by the first that has more)
    const next = new Float32Array(T); // [T]: ln p(ids[i+1] | ≤ i)
    const topLogprob = new Float32Array(withTop ? T * TOP_K : 0);
    const topIds = new Int32Array(withTop ? T * TOP_K : 0);
    const meansOut = withMeans ? new Float32Array(means.length) : undefined; // [L, H, D]: Σ over chunks of n·mean / T
    const resid = withMeans ? range(L).map(() => new Float32Array(T * E)) : undefined;
    const per = means.length / L; // H·D
    for (let past = 0; past < T; past += CHUNK) {
      const end = Math.min(T, past + CHUNK);
      const n = end - past;
      const chunkFrom = from && { layer: from.layer, resid: from.resid.subarray(past * E, end * E) };
      const { feeds } = this.feeds(cache, ids, past, { mask, means, from: chunkFrom }, end);
      const more = end < T;
      const fetches = [
        'next_logprob',
        ...(withTop ? ['top_logprob', 'top_ids'] : []),
        ...(withMeans ? range(L).flatMap((l) => [`head_out_mean_${l}`, `resid_${l}`]) : []),
        ...(more ? range(L).flatMap((l) => [`present_k_${l}`, `present_v_${l}`]) : []),
      ];
      const out = await this.session.run(feeds, fetches);
      next.set(out.next_logprob.data as Float32Array, past);
      if (withTop) {
        topLogprob.set(out.top_logprob.data as Float32Array, past * TOP_K);
        const ids64 = out.top_ids.data as BigInt64Array;
        for (let i = 0; i < ids64.length; i++) topIds[past * TOP_K + i] = Number(ids64[i]);
      }
      for (let l = 0; withMeans && l < L; l++) {
        const m = out[`head_out_mean_${l}`].data as Float32Array; // [1, H, 1, D]: mean over this chunk's rows
        for (let i = 0; i < per; i++) meansOut![l * per + i] += (m[i] * n) / T;
        resid![l].set(out[`resid_${l}`].data as Float32Array, past * E);
      }
      // The next chunk reads this one's keys and values (layers before `from` compute nothing; their caches stay
      // zero and are never read, but are fed).
      for (let l = 0; more && l < L; l++) this.storeKeysValues(cache, l, out, past, n);
    }
    const logprobs = new Float32Array(T).fill(NaN);
    logprobs.set(next.subarray(0, T - 1), 1);
    return { logprobs, topLogprob, topIds, means: meansOut, resid };
  }

  /** The plain run of ids (no ablation) with its head means, kept for the next ablation of the same tokens. */
  private async plainBaseline(ids: number[]): Promise<ScratchResult> {
    const key = ids.join(',');
    if (this.baseline?.key === key) return this.baseline.result;
    const mask = new Float32Array(this.headMask.length).fill(1);
    const result = await this.scratchRun(ids, mask, new Float32Array(this.headMean.length), true);
    this.baseline = { key, result };
    return result;
  }

  private windowIds(text: string, window?: TokenWindow): { tokens: Token[]; window: TokenWindow; total: number; ids: number[] } {
    const all = this.tokenizer.encode(text);
    const w = this.chooseWindow(all.length, window);
    const tokens = all.slice(w.start, w.end);
    return { tokens, window: w, total: all.length, ids: tokens.map((t) => t.id) };
  }

  private predictionsOf(r: ScratchResult, i: number, k: number): Prediction[] {
    const T = r.logprobs.length;
    if (i <= 0 || i > T) return [];
    const base = (i - 1) * TOP_K;
    return range(Math.min(k, TOP_K)).map((j) => {
      const id = r.topIds[base + j];
      return { id, text: this.tokenizer.decode([id]), logprob: r.topLogprob[base + j] };
    });
  }

  /**
   * Takes heads away (zero: their output is 0; mean: their mean output over the window in a plain run) and reruns
   * the window: surprisal per token before and after, the loss change, and the predictions at `at` (default: the
   * token after the window). Leaves the engine's current run untouched.
   */
  async ablate(spec: AblationSpec, text: string, opts: { window?: TokenWindow; signal?: AbortSignal; at?: number; k?: number } = {}): Promise<AblationResult> {
    const { nLayer: L, nHead: H } = this.config;
    const mask = ablationMask(spec.heads, L, H);
    const { tokens, window, total, ids } = this.windowIds(text, opts.window);
    const T = ids.length;
    const at = opts.at ?? T;
    if (!(Number.isInteger(at) && at >= 0 && at <= T)) throw new HeadlightError('bad-index', `Position ${at} is outside the window's ${T} tokens.`);
    if (T === 0) throw new HeadlightError('empty-text', 'There is no text to ablate heads on.', 'Give some text.');
    return this.serialize(async () => {
      throwIfAborted(opts.signal);
      const before = await this.plainBaseline(ids);
      throwIfAborted(opts.signal);
      const means = spec.mode === 'mean' ? before.means! : new Float32Array(before.means!.length);
      const after = await this.scratchRun(ids, mask, means, false);
      throwIfAborted(opts.signal);
      const lossBefore = meanLoss(before.logprobs);
      const lossAfter = meanLoss(after.logprobs);
      return {
        tokens,
        window,
        totalTokens: total,
        heads: spec.heads,
        mode: spec.mode,
        logprobBefore: before.logprobs,
        logprobAfter: after.logprobs,
        surprisalDelta: surprisalDelta(before.logprobs, after.logprobs),
        lossBefore,
        lossAfter,
        lossDelta: lossAfter - lossBefore,
        at,
        predictionsBefore: this.predictionsOf(before, at, opts.k ?? 5),
        predictionsAfter: this.predictionsOf(after, at, opts.k ?? 5),
      };
    });
  }

  /**
   * "Which heads matter here": ablates each head alone and ranks all heads by how much the window's mean loss
   * changes. One run per head, each queued on its own so analyses can slip in between; `signal` stops between runs.
   * Each run starts at the head's layer on the plain run's residual stream (the layers before are unchanged): on
   * GPT-2 small about (L + 1) / 2 of the L layers per head.
   */
  async rankHeads(
    text: string,
    opts: { mode?: AblationMode; window?: TokenWindow; signal?: AbortSignal; onProgress?: (p: { done: number; total: number }) => void } = {},
  ): Promise<HeadRanking> {
    const { nLayer: L, nHead: H } = this.config;
    const mode = opts.mode ?? 'zero';
    const { window, ids } = this.windowIds(text, opts.window);
    if (ids.length < 2) throw new HeadlightError('empty-text', 'Ranking heads needs at least two tokens of text.', 'Give more text.');
    const before = await this.serialize(async () => {
      throwIfAborted(opts.signal);
      return this.plainBaseline(ids);
    });
    const lossBefore = meanLoss(before.logprobs);
    const means = mode === 'mean' ? before.means! : new Float32Array(before.means!.length);
    const deltas = new Float32Array(L * H); // [L, H]
    const total = L * H;
    opts.onProgress?.({ done: 0, total });
    for (let k = 0; k < total; k++) {
      const mask = new Float32Array(total).fill(1);
      mask[k] = 0;
      // The loss only (no top-k), from the head's own layer: the layers before it are as in the plain run.
      const layer = Math.floor(k / H);
      const after = await this.serialize(async () => {
        throwIfAborted(opts.signal);
        return this.scratchRun(ids, mask, means, false, false, { layer, resid: before.resid![layer] });
      });
      deltas[k] = meanLoss(after.logprobs) - lossBefore;
      opts.onProgress?.({ done: k + 1, total });
    }
    const ranking = range(total)
      .map((k) => ({ layer: Math.floor(k / H), head: k % H, lossDelta: deltas[k] }))
      .sort((a, b) => Math.abs(b.lossDelta) - Math.abs(a.lossDelta) || a.layer - b.layer || a.head - b.head);
    return { tokens: ids.length, window, mode, lossBefore, deltas, ranking };
  }

  /**
   * The benchmark's baseline: the same network run over `ids` from scratch, returning only the [T, V] logits (what a
   * plain forward pass returns), with no attention maps, caches or top-k kept. With `past`, only ids[past..] run, on
   * a cache of `past` positions whose keys and values are zeros (the same work as a real cache; for timing the
   * incremental step of a plain forward pass, which keeps no cache of its own).
   */
  forwardLogits(ids: number[], past = 0): Promise<Float32Array> {
    if (!this.hasLogits) return Promise.reject(new Error('forwardLogits needs an engine created with {logits: true}'));
    return this.serialize(async () => {
      const state = this.emptyState();
      if (past > 0) {
        // Allocated once: a fresh 75 MB cache per call would be timed with the step it stands under.
        const { nLayer: L, nHead: H, nEmbd: E, nPositions } = this.config;
        this.zeroCache ??= Array.from({ length: L }, () => new Float32Array(H * nPositions * (E / H)));
        state.keys = this.zeroCache;
        state.values = this.zeroCache;
      }
      const { feeds } = this.feeds(state, ids, past);
      const out = await this.session.run(feeds, ['logits']);
      return out.logits.data as Float32Array;
    });
  }

  /**
   * Inputs for running ids[past..] on a cache of `past` positions. The cache goes in as `C` slots: none for a fresh
   * run; for a short update the whole capacity buffer as it is (no copy; the mask hides slots past..C−1); for a long
   * one an exact copy of the first `past` slots (so the unused slots cost no attention work).
   */
  private feeds(
    state: EngineState,
    ids: number[],
    past: number,
    ablation?: { mask: Float32Array; means: Float32Array; from?: { layer: number; resid: Float32Array } },
    end = ids.length,
  ): { feeds: Feeds; C: number } {
    const { nLayer: L, nHead: H, nEmbd: E, nPositions } = this.config;
    const D = E / H;
    const n = end - past;
    const s = ablation?.from?.layer ?? 0; // the first layer computed
    const C = past === 0 ? 0 : n <= ROW_BLOCK ? nPositions : past;
    const S = C + n;
    const mask = new Float32Array(n * S).fill(-1e30);
    for (let r = 0; r < n; r++) {
      mask.fill(0, r * S, r * S + past); // the cached keys
      mask.fill(0, r * S + C, r * S + C + r + 1); // the new keys up to the query itself
    }
    const targets = Array.from({ length: n }, (_, r) => ids[past + r + 1] ?? 0);
    const feeds: Feeds = {
      input_ids: i64(ids.slice(past, end), [1, n]),
      position_ids: i64(Array.from({ length: n }, (_, r) => past + r), [1, n]),
      targets: i64(targets, [n, 1]),
      mask: f32(mask, [1, 1, n, S]),
      head_mask: f32(ablation?.mask ?? this.headMask, [L, H]),
      head_mean: f32(ablation?.means ?? this.headMean, [L, H, D]),
      // Every layer computes every new row (see graph.ts); an ablation `from` layer s starts there on the plain run's
      // residual stream, and the layers before it take no rows (compute nothing).
      layer_rows: i64(range(L).map((l) => (s > 0 && l <= s ? 0 : n)), [L]),
      resid_rows: i64(range(L).map((l) => (s > 0 && l === s ? n : 0)), [L]),
      resid_in: f32(s > 0 ? ablation!.from!.resid : new Float32Array(0), [1, s > 0 ? n : 0, E]),
    };
    const slots = (cache: Float32Array | undefined): Float32Array => {
      if (C === 0 || !cache) return new Float32Array(0);
      if (C === nPositions) return cache;
      const out = new Float32Array(H * C * D); // [H, C, D] from [H, n_positions, D]
      for (let h = 0; h < H; h++) out.set(cache.subarray(h * nPositions * D, (h * nPositions + C) * D), h * C * D);
      return out;
    };
    for (let l = 0; l < L; l++) {
      feeds[`past_k_${l}`] = f32(slots(state.keys[l]), [1, H, C, D]);
      feeds[`past_v_${l}`] = f32(slots(state.values[l]), [1, H, C, D]);
    }
    for (const name of Object.keys(feeds)) if (!this.inputs.has(name)) delete feeds[name];
    return { feeds, C };
  }

  /** Runs positions past..end−1 of `ids` on a cache of `past` positions (targets come from `ids`, end included). */
  private async runGraph(state: EngineState, ids: number[], past: number, end: number, opts: { logits?: boolean; queries?: boolean }) {
    const { nLayer: L } = this.config;
    const n = end - past;
    const { feeds, C } = this.feeds(state, ids, past, undefined, end);
    const blocks = Math.ceil(n / ROW_BLOCK);
    const fetches = ['next_logprob', 'top_logprob', 'top_ids', ...(opts.logits ? ['logits'] : [])];
    for (let l = 0; l < L; l++) {
      fetches.push(`present_k_${l}`, `present_v_${l}`, `vnorm_${l}`, ...(opts.queries ? [`present_q_${l}`] : []));
      for (let b = 0; b < blocks; b++) fetches.push(`attn_${l}_${b}`);
    }
    const out = await this.session.run(feeds, fetches);
    return { out, C, blocks, queries: opts.queries ?? false };
  }

  /** Copies layer l's new keys and values (positions past..past+n−1, [1, H, n, D]) into the state's cache. */
  private storeKeysValues(state: EngineState, l: number, out: Fetched, past: number, n: number): void {
    const { nHead: H, nEmbd: E, nPositions } = this.config;
    const D = E / H;
    state.keys[l] ??= new Float32Array(H * nPositions * D);
    state.values[l] ??= new Float32Array(H * nPositions * D);
    const k = out[`present_k_${l}`].data as Float32Array;
    const v = out[`present_v_${l}`].data as Float32Array;
    for (let h = 0; h < H; h++) {
      state.keys[l].set(k.subarray(h * n * D, (h + 1) * n * D), (h * nPositions + past) * D);
      state.values[l].set(v.subarray(h * n * D, (h + 1) * n * D), (h * nPositions + past) * D);
    }
  }

  /** Stores the run of positions past..end−1 (end = ids.length unless a chunk of a longer run). */
  private commit(state: EngineState, ids: number[], past: number, end: number, r: Awaited<ReturnType<Gpt2Engine['runGraph']>>): void {
    const { nLayer: L, nHead: H, nEmbd: E, nPositions } = this.config;
    const D = E / H;
    const { out, C, blocks } = r;
    const T = end;
    const n = T - past; // new positions
    for (let l = 0; l < L; l++) {
      state.vnorm[l] ??= new Float32Array(H * nPositions);
      this.storeKeysValues(state, l, out, past, n);
      const norms = out[`vnorm_${l}`].data as Float32Array; // [1, H, n]
      const q = r.queries ? (out[`present_q_${l}`].data as Float32Array) : undefined; // [1, H, n, D]
      if (q) state.queries[l] ??= new Float32Array(H * nPositions * D);
      for (let h = 0; h < H; h++) {
        state.vnorm[l].set(norms.subarray(h * n, (h + 1) * n), h * nPositions + past);
        if (q) state.queries[l].set(q.subarray(h * n * D, (h + 1) * n * D), (h * nPositions + past) * D);
      }
      state.vwValid[l] = Math.min(state.vwValid[l] ?? 0, past);
    }
    // Queries are whole only if this run brought them and the prefix before it had them.
    state.queriesValid = r.queries && state.queriesValid >= past ? T : Math.min(state.queriesValid, past);
    state.attention.resize(past, T);
    for (let l = 0; l < L; l++) {
      for (let b = 0; b < blocks; b++) {
        const t = out[`attn_${l}_${b}`];
        const [, , R, K] = t.dims; // [1, H, R, K]: rows b·B.., key columns 0..K−1 (cached slots, then new keys)
        const data = t.data as Uint16Array | Float32Array;
        for (let h = 0; h < H; h++) {
          for (let q = 0; q < R; q++) {
            const row = b * ROW_BLOCK + q; // new row; absolute position past + row
            const at = (h * R + q) * K;
            if (C === past) state.attention.writeRow(l, h, past + row, data.subarray(at, at + past + row + 1));
            else state.attention.writeRow(l, h, past + row, data.subarray(at, at + past), data.subarray(at + C, at + C + row + 1));
          }
        }
      }
    }

    state.nextLogprob = growCopy(state.nextLogprob, past, T);
    state.nextLogprob.set(out.next_logprob.data as Float32Array, past);
    if (end === ids.length) state.nextLogprob[T - 1] = NaN; // a chunk's last row had the next chunk's token as target
    state.topLogprob = growCopy(state.topLogprob, past * TOP_K, T * TOP_K);
    state.topLogprob.set(out.top_logprob.data as Float32Array, past * TOP_K);
    state.topIds = growCopy(state.topIds, past * TOP_K, T * TOP_K);
    const topIds = out.top_ids.data as BigInt64Array;
    for (let i = 0; i < topIds.length; i++) state.topIds[past * TOP_K + i] = Number(topIds[i]);
  }

  private truncate(state: EngineState, T: number): void {
    state.attention.resize(T, T);
    state.queriesValid = Math.min(state.queriesValid, T);
    state.vwValid = state.vwValid.map((v) => Math.min(v, T));
    state.nextLogprob = state.nextLogprob.slice(0, T);
    if (T > 0) state.nextLogprob[T - 1] = NaN;
    state.topLogprob = state.topLogprob.slice(0, T * TOP_K);
    state.topIds = state.topIds.slice(0, T * TOP_K);
  }
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new HeadlightError('cancelled', 'The analysis was cancelled.');
}

function growCopy<A extends Float32Array | Int32Array>(a: A, keep: number, size: number): A {
  const next = new (a.constructor as { new (n: number): A })(size);
  next.set(a.subarray(0, Math.min(keep, size)) as never);
  return next;
}

/** FNV-1a over a float array's bytes: a cheap key for "same replacement vectors". */
function hashFloats(a: Float32Array): string {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return (h >>> 0).toString(16);
}
