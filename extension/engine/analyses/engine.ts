/**
 * The attention engine's facade: tokenize, run the graph over a token window into the run state, and hand out
 * `Run`s to query. Plain Node; no `vscode`. The work lives beside it, a file per job: runState.ts (what is kept,
 * commit, truncate), kvCache.ts, graphRunner.ts (the graph's inputs), run.ts (queries on a run),
 * valueWeighting.ts, queryKey.ts (Q·K), ablation.ts (ablation and ranking), headFinder.ts, thumbnails.ts,
 * cursorSummary.ts.
 *
 * Incremental: keys and values before an edit never change in a causal model, so `update` keeps the cache for the
 * longest common prefix of token ids and runs only the rest. One run at a time: every job goes through `serialize`.
 */
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AblationMode, AblationResult, HeadRanking, HeadRef, HeadSelector, QkBreakdown, ScoreResult } from '../../common/engineProtocol';
import { HeadlightError } from '../../common/errors';
import { selectorHeads } from '../../common/heads';
import type { Span, Token } from '../../common/tokens';
import type { BuiltGraph } from '../graph/gpt2Graph';
import type { FamilyModel } from '../families/family';
import { ModelSession, type SessionOptions } from '../graph/session';
import { collectSoon } from '../memory';
import type { ModelDims } from '../model/dims';
import { HeadAblation, throwIfAborted } from './ablation';
import { AttentionStore, type Precision } from './attentionStore';
import { CHUNK, GraphRunner } from './graphRunner';
import { inductionSequence, scoreInduction, scoreText, type HeadScores } from './headFinder';
import { checkHead } from './inspect';
import { fillQueries, qkBreakdown } from './queryKey';
import { Run } from './run';
import { scoreResult } from './score';
import { RunState } from './runState';

export { Run, topK } from './run';

/** What the engine needs of a tokenizer (Gpt2Tokenizer for GPT-2's own files, JsonTokenizer for tokenizer.json). */
export interface TextTokenizer {
  encode(text: string): Token[];
  decode(ids: number[]): string;
  /** The vocabulary's own spelling of a token (`Ġthe`, `▁the`, `<0xE2>`), shown beside its text in hovers. */
  piece?(id: number): string;
}

/** A range of token indices into the tokenization of the whole text. */
export type TokenWindow = Span;

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
  /** Also able to return full [T, vocab] logits (`analyze(…, {logits: true})`). Costs memory. */
  logits?: boolean;
  /**
   * Hand weights to onnxruntime as external data in a scratch file (default) rather than inside the model bytes:
   * onnxruntime maps the file instead of copying a protobuf, which halved the engine's resident memory after
   * loading GPT-2 small (0.8 GB vs 1.7 GB), and lifts protobuf's 2 GB limit for gpt2-large and gpt2-xl.
   */
  externalData?: boolean;
}

/** Runs computing at least this many tokens are followed by a garbage collection. */
const LARGE_RUN = 256;

/**
 * Length of one copy of the induction diagnostic's random sequence: 50 random tokens repeated once, the standard
 * probe (and issue #21's definition of the bundled model's induction bar).
 */
const INDUCTION_LENGTH = 50;

export class Gpt2Engine {
  /** The latest run's state (read by `Run`s; a stale run refuses to read it). */
  readonly state: RunState;
  version = 0;
  readonly dims: ModelDims;
  private queue: Promise<unknown> = Promise.resolve();
  /** Fetch queries with every run (while the Inside-a-head view is open); otherwise `qk` fetches them on demand. */
  private queriesKept = false;
  private readonly ablation: HeadAblation;
  private inductionScores: Float32Array | undefined;

  private constructor(
    /** The model's family and sizes (analyses read only `dims`). */
    readonly model: FamilyModel,
    readonly tokenizer: TextTokenizer,
    private readonly runner: GraphRunner,
    readonly precision: Precision,
    readonly hasLogits: boolean,
  ) {
    this.dims = runner.dims;
    this.state = new RunState(this.dims, precision);
    this.ablation = new HeadAblation(runner, (ids) => tokenizer.decode(ids), (job) => this.serialize(job));
  }

  /** Builds the model's graph (any family) and starts an onnxruntime session. The weights may be dropped afterwards. */
  static async create(model: FamilyModel, tokenizer: TextTokenizer, opts: EngineOptions = {}): Promise<Gpt2Engine> {
    const precision = opts.precision ?? 'fp16';
    const graphOpts = { attention: precision, logits: opts.logits } as const;
    const engine = (session: ModelSession, inputs: string[]) => new Gpt2Engine(model, tokenizer, new GraphRunner(model.dims, session, new Set(inputs)), precision, opts.logits ?? false);
    if (!(opts.externalData ?? process.env.HEADLIGHT_EXTERNAL_DATA !== '0')) {
      let graph: BuiltGraph | undefined = await model.build(graphOpts);
      const inputs = graph.inputs;
      const session = await ModelSession.create(graph.bytes, opts);
      graph = undefined; // the model's bytes (as large as the weights) are garbage from here on
      return engine(session, inputs);
    }
    // Weights as external data in a scratch folder, mapped by onnxruntime; the folder goes once the session holds them.
    const dir = await fsp.mkdtemp(join(tmpdir(), 'headlight-model-'));
    try {
      const graph = await model.build({ ...graphOpts, externalDir: dir });
      await fsp.writeFile(join(dir, 'model.onnx'), graph.bytes);
      return engine(await ModelSession.create(join(dir, 'model.onnx'), opts), graph.inputs);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  async dispose(): Promise<void> {
    await this.runner.release();
  }

  /** Chooses the token window: the given one (validated) or the whole text when it fits, else its start. */
  chooseWindow(totalTokens: number, window?: TokenWindow): TokenWindow {
    const n = this.dims.nPositions;
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

  /** Throws a clear error unless layer.head exists in this model. */
  checkHead(layer: number, head: number): void {
    checkHead(layer, head, this.dims.nLayer, this.dims.nHead);
  }

  /** The heads a selector covers, as [layer, head] pairs (a single head is checked against the model). */
  headsOf(sel: HeadSelector): [number, number][] {
    if (typeof sel.head === 'number') this.checkHead(sel.layer as number, sel.head);
    return selectorHeads(sel, this.dims.nLayer, this.dims.nHead);
  }

  /**
   * Runs `job` on the graph runner and the latest run's state, queued behind the engine's other runs: scratch runs
   * that commit nothing (the logit lens and attribution, analyses/lens.ts).
   */
  scratch<T>(job: (runner: GraphRunner, state: RunState) => Promise<T>): Promise<T> {
    return this.serialize(() => job(this.runner, this.state));
  }

  private serialize<T>(job: () => Promise<T>): Promise<T> {
    const next = this.queue.then(job, job);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runText(text: string, opts: AnalyzeOptions, incremental: boolean): Promise<Run> {
    const t0 = performance.now();
    throwIfAborted(opts.signal);
    const all = this.tokenizer.encode(text);
    const window = this.chooseWindow(all.length, opts.window);
    const tokens = all.slice(window.start, window.end);
    const ids = tokens.map((t) => t.id);
    checkVocabulary(tokens, this.dims.vocabSize);
    const T = ids.length;
    const logits = opts.logits ?? false;
    const state = this.state; // its buffers are reused: rows are only written once a run succeeds
    const reuse = incremental && !logits ? state.reusable(ids, window.start) : 0;
    const n = T - reuse;
    let graphMs = 0;
    let logitsData: Float32Array | undefined;
    if (n > 0) {
      if (logits && !this.hasLogits) throw new HeadlightError('no-logits', 'This engine was loaded without full logits.', 'Load it with {logits: true} to ask for them.');
      // Long runs go in chunks of CHUNK positions, each on the cache of the ones before (as an edit would), so that
      // one chunk's outputs and intermediates are alive at a time instead of the whole window's.
      const chunk = logits ? n : CHUNK;
      for (let past = reuse; past < T; past += chunk) {
        // Superseded between chunks: stop here. The state is a valid run of the prefix computed so far (the next
        // update reuses it); older runs are already stale.
        if (past > reuse) throwIfAborted(opts.signal);
        const end = Math.min(T, past + chunk);
        const t1 = performance.now();
        const { feeds, C } = this.runner.feeds(state.cache, ids, past, end);
        const out = await this.runner.run(feeds, state.fetches(end - past, { logits, queries: this.queriesKept }));
        logitsData = logits ? (out.logits.data as Float32Array) : undefined;
        graphMs += performance.now() - t1;
        // A run cancelled before its first chunk is stored leaves the previous state untouched; once one is stored,
        // older runs are stale and a cancellation takes effect at the next chunk.
        if (past === reuse) {
          throwIfAborted(opts.signal);
          this.version++;
          state.windowStart = window.start;
          state.attention.resize(reuse, T); // room for every chunk at once (no regrowth between chunks)
        }
        state.commit(ids, past, end, out, C, this.queriesKept);
      }
      if (n >= LARGE_RUN) collectSoon(); // the run's output copies are garbage now (see memory.ts)
    } else {
      state.truncate(T);
    }
    state.ids = ids;
    state.windowStart = window.start;
    this.version++;
    return new Run(this, this.version, tokens, window, all.length, { computed: n, reused: reuse, graphMs, totalMs: performance.now() - t0 }, logitsData);
  }

  /**
   * Runs `ids` on a scratch state and returns its attention, leaving the current run untouched (diagnostics such
   * as the head finder's induction test).
   */
  probe(ids: number[]): Promise<AttentionStore> {
    return this.serialize(async () => {
      const scratch = new RunState(this.dims, this.precision);
      const { feeds, C } = this.runner.feeds(scratch.cache, ids, 0);
      scratch.commit(ids, 0, ids.length, await this.runner.run(feeds, scratch.fetches(ids.length, {})), C, false);
      return scratch.attention;
    });
  }

  /** Head-finder scores: on the run's text, plus the induction diagnostic (computed once per model). */
  async headScores(run: Run): Promise<HeadScores> {
    const text = scoreText(run.attention, run.tokens.map((t) => t.id));
    if (!this.inductionScores) {
      const n = Math.min(INDUCTION_LENGTH, Math.floor(this.dims.nPositions / 2));
      this.inductionScores = scoreInduction(await this.probe(inductionSequence(n, this.dims.vocabSize)), n);
    }
    return { ...text, scores: { ...text.scores, induction: this.inductionScores } };
  }

  /** While on, every run fetches its queries (the Inside-a-head view is open); off, `qk` fetches them when asked. */
  keepQueries(on: boolean): void {
    this.queriesKept = on;
  }

  /**
   * Query `index` of one head taken apart: q, every key and value it sees, the scores before and after the softmax,
   * the stored row and the value norms. A run made without queries gets them from one extra run of its window.
   */
  async qk(run: Run, layer: number, head: number, index: number): Promise<QkBreakdown> {
    this.checkHead(layer, head);
    if (!(Number.isInteger(index) && index >= 0 && index < run.length)) {
      throw new HeadlightError('bad-index', `Token ${index} is outside the run's ${run.length} tokens.`);
    }
    if (this.state.queriesValid < run.length) {
      await this.serialize(async () => {
        if (!run.stale && this.state.queriesValid < run.length) await fillQueries(this.runner, this.state);
      });
    }
    if (run.stale) throw new HeadlightError('stale-run', 'This analysis was replaced by a newer one.', 'Query the latest run.');
    return qkBreakdown(this.state, this.dims, layer, head, index, run.row({ layer, head }, index));
  }

  /**
   * Takes heads away (zero: their output is 0; mean: their mean output over the window in a plain run) and reruns
   * the window: surprisal per token before and after, the loss change, and the predictions at `at` (default: the
   * token after the window). Leaves the engine's current run untouched.
   */
  async ablate(spec: { heads: HeadRef[]; mode: AblationMode }, text: string, opts: { window?: TokenWindow; signal?: AbortSignal; at?: number; k?: number } = {}): Promise<AblationResult> {
    const { tokens, window, total, ids } = this.windowIds(text, opts.window);
    const outcome = await this.ablation.ablate(spec.heads, spec.mode, ids, opts);
    return { tokens, window, totalTokens: total, ...outcome };
  }

  /** "Which heads matter here": every head ablated alone, ranked by the window's loss change (see ablation.ts). */
  async rankHeads(
    text: string,
    opts: { mode?: AblationMode; window?: TokenWindow; signal?: AbortSignal; onProgress?: (p: { done: number; total: number }) => void } = {},
  ): Promise<HeadRanking> {
    const { window, ids } = this.windowIds(text, opts.window);
    return { window, ...(await this.ablation.rankHeads(ids, opts.mode ?? 'zero', opts)) };
  }

  /** Scores another text on a scratch cache, leaving the current run and its cache alone (see score.ts). */
  async score(text: string, opts: { window?: TokenWindow; signal?: AbortSignal; k?: number } = {}): Promise<ScoreResult> {
    const { tokens, window, total, ids } = this.windowIds(text, opts.window);
    const scratch = ids.length ? await this.ablation.score(ids, opts.signal) : undefined;
    return scoreResult(tokens, window, total, scratch, opts.k ?? 5, (ids) => this.tokenizer.decode(ids));
  }

  private windowIds(text: string, window?: TokenWindow): { tokens: Token[]; window: TokenWindow; total: number; ids: number[] } {
    const all = this.tokenizer.encode(text);
    const w = this.chooseWindow(all.length, window);
    const tokens = all.slice(w.start, w.end);
    return { tokens, window: w, total: all.length, ids: tokens.map((t) => t.id) };
  }
}

/**
 * A token id the embedding has no row for (a tokenizer.json with more tokens than the checkpoint's vocab_size) is
 * refused by name, before onnxruntime's Gather would fail on it with an index error.
 */
function checkVocabulary(tokens: readonly Token[], vocabSize: number): void {
  const bad = tokens.find((t) => !(t.id >= 0 && t.id < vocabSize));
  if (!bad) return;
  throw new HeadlightError(
    'token-out-of-vocabulary',
    `The tokenizer gave ${JSON.stringify(bad.text)} (characters ${bad.start}–${bad.end}) the id ${bad.id}, but the model's embedding has only ${vocabSize} rows.`,
    "The tokenizer files and the checkpoint do not belong together: use the tokenizer that came with the model (its vocab_size in config.json must cover every token id).",
  );
}
