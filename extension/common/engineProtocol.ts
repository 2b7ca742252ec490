/**
 * The host <-> engine-process protocol. Answers are small and on demand: a row, a head's triangle, thumbnails,
 * top-k lists — never the whole [L, H, T, T]. Typed arrays cross as binary (structured clone).
 */
import type { Span, Token } from './tokens';

export interface ModelInfo {
  /** What the user picked: 'bundled', a repo id or a folder. */
  ref: string;
  dir: string;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  nPositions: number;
  vocabSize: number;
  fileDtype: string;
  loadMs: number;
  /** config.json's model_type (gpt2, llama, mistral, qwen2, qwen3, gpt_neox). Absent: gpt2. */
  modelType?: string;
  /** Key/value heads (grouped-query attention); absent: nHead. */
  nKvHead?: number;
  /** Per-head width D; absent: nEmbd / nHead. */
  headDim?: number;
  /**
   * The longest window the engine runs: GPT-2's n_positions; for rotary families min(max_position_embeddings, the
   * engine's maxWindow). Absent: nPositions. nPositions reports the same number.
   */
  maxWindow?: number;
  /** The memory plan's estimate of the engine's peak at that window, the budget it was held to, and whether the budget
   * (not the model's context or the window setting) made the window shorter. */
  memory?: { estimateBytes: number; budgetBytes: number; budgetSource: string; limitedByMemory: boolean };
}

/**
 * What a weight means: the attention probability α_ij, or value-weighted attention α_ij·‖v_j·W_O^h‖ (the norm of
 * what key j adds to query i through the head), summed over the selected heads and normalized per row.
 */
export type AttentionMode = 'attention' | 'value-weighted';

/** How an ablated head is taken away: output zero, or its mean output over the window in a plain run. */
export type AblationMode = 'zero' | 'mean';

export interface HeadRef {
  layer: number;
  head: number;
}

/** One query of one head taken apart (`qk`). Element-wise products q ⊙ k_j are left to the viewer. */
export interface QkBreakdown {
  layer: number;
  head: number;
  index: number;
  /** The factor on q·k (1/√d, or over layer+1 for models that scale by layer). */
  scale: number;
  query: Float32Array; // [D]
  keys: Float32Array; // [index+1, D]
  values: Float32Array; // [index+1, D]
  /** q·k_j·scale before the softmax, and after it. */
  scores: Float32Array; // [index+1]
  probs: Float32Array; // [index+1]
  /** The stored attention row (fp16 storage rounds it). */
  attention: Float32Array; // [index+1]
  /** ‖v_j·W_O^h‖ per key. */
  valueNorms: Float32Array; // [index+1]
  /** The KV head this query head reads (grouped-query attention: several query heads share one); absent: `head`. */
  kvHead?: number;
  /** The model's KV heads; absent: as many as query heads. */
  nKvHead?: number;
  /**
   * Rotary models: q·k_j·scale with the position rotation undone (q and k as projected, after any q/k norm), so a
   * viewer can see what position adds. `keys` and `query` are the rotated vectors the scores use.
   */
  unrotatedScores?: Float32Array; // [index+1]
  /**
   * Soft-capped layers (Gemma 2's attn_logit_softcapping): cap·tanh(score/cap), what the softmax reads; `scores`
   * stay the raw q·k_j·scale.
   */
  cappedScores?: Float32Array; // [index+1]
}

export interface AblateParams {
  text: string;
  window?: Span;
  heads: HeadRef[];
  mode: AblationMode;
  /** Position whose predictions to compare (default: the token after the window). */
  at?: number;
  k?: number;
}

/** What the engine's `ablate` returns (in the engine process and the CLI). */
export interface AblationResult {
  tokens: readonly Token[];
  /** Token indices of the window within the text. */
  window: Span;
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
  /** Mean ablation: what the ablated heads output instead, [L, H, D] (each head's mean output in the plain run). */
  headMeans?: Float32Array;
}

/** An ablation as it crosses to the host: surprisal in bits instead of log-probabilities, no tokens. */
export type AblationSummary = Pick<AblationResult, 'heads' | 'mode' | 'window' | 'surprisalDelta' | 'lossBefore' | 'lossAfter' | 'lossDelta' | 'at' | 'predictionsBefore' | 'predictionsAfter'> & {
  /** Surprisal in bits without and with the ablation ([T], NaN first). */
  surprisalBefore: Float32Array;
  surprisalAfter: Float32Array;
};

/** "Which heads matter here": each head ablated alone (the engine's `rankHeads`). */
export interface HeadRanking {
  /** Tokens in the window. */
  tokens: number;
  window: Span;
  mode: AblationMode;
  lossBefore: number;
  /** Loss change (nats) when each head alone is ablated, [L, H]. */
  deltas: Float32Array;
  /** Every head, by |loss change| largest first. */
  ranking: (HeadRef & { lossDelta: number })[];
}

export type HeadRankingSummary = Omit<HeadRanking, 'tokens'>;

/** One head, a layer's mean over heads, or the mean over all layers and heads. */
export type HeadSelector = { layer: number; head: number } | { layer: number; head: 'mean' } | { layer: 'mean'; head: 'mean' };

export interface Source {
  /** Token index within the window. */
  index: number;
  weight: number;
}

export interface Prediction {
  id: number;
  text: string;
  /** Natural-log probability. */
  logprob: number;
}

export interface RunStats {
  /** Tokens computed by the graph in this run (the rest came from the cache). */
  computed: number;
  reused: number;
  /** Wall time of the graph run, ms. */
  graphMs: number;
  totalMs: number;
}

export interface RunSummary {
  /** Increases with every run; queries name the version they expect and fail with `stale-run` otherwise. */
  version: number;
  /** Tokens of the window; offsets in UTF-16 units of the text sent, plus `offsetBase`. */
  tokens: Token[];
  /** Token indices of the window within the text sent. */
  window: Span;
  totalTokens: number;
  /** Surprisal in bits per token (NaN for the first). */
  surprisal: Float32Array;
  stats: RunStats;
}

export interface AnalyzeParams {
  text: string;
  /** Added to every token offset (when `text` is a slice of a larger document). */
  offsetBase?: number;
  window?: Span;
  /** Reuse the cache of the previous run for the unchanged prefix. */
  incremental: boolean;
}

/** Another version of a text scored on a scratch cache (`score`); the current run and its cache are untouched. */
export interface ScoreResult {
  /** Tokens of the window (offsets plus `offsetBase`). */
  tokens: Token[];
  window: Span;
  totalTokens: number;
  /** ln p(token i | tokens before it in the window), [T], NaN first. */
  logprobs: Float32Array;
  /** The model's top-k guesses for each position (made at i−1), [T]; [] for the first. */
  top: Prediction[][];
}

/** Everything a hover shows about one token, in one round trip. */
export interface TokenInfo {
  index: number;
  token: Token;
  /** The token's byte-level BPE piece as in the vocabulary (e.g. "Ġworld"). */
  piece: string;
  surprisal: number;
  /** What the model expected at this position (top-k, made at index−1). */
  predictions: Prediction[];
  sources: Source[];
}

export interface HeadTriangle {
  T: number;
  /** Rows 0..T−1 back to back, row i holding i+1 weights; fp16 bits or fp32. */
  data: Uint16Array | Float32Array;
}

export interface Thumbnails {
  nLayer: number;
  nHead: number;
  /** Pixels per side of each thumbnail. */
  size: number;
  /** [L, H, size, size] intensities 0..255 (max-pooled weights, square-root scaled). */
  data: Uint8Array;
}

/** What the head finder looks for (extension/engine/analyses/headFinder.ts). */
export type HeadRole = 'previous-token' | 'first-token' | 'duplicate-token' | 'local' | 'induction';

export interface HeadScoresAnswer {
  nLayer: number;
  nHead: number;
  /** role -> [L * H] scores in [0, 1] (NaN when the text offers no case). */
  scores: Partial<Record<HeadRole, Float32Array>>;
  /** "layer.head" -> roles whose score reaches the badge threshold, strongest first. */
  badges: Record<string, HeadRole[]>;
}

/** Where one token looks, per head: for the sidebar's heatmap in one round trip instead of L·H rows. */
export interface CursorSummary {
  index: number;
  /** [L * H]: the largest weight on any token other than the first (the attention sink); 0 for token 0. */
  peak: Float32Array;
  /** [L * H]: the token that gets `peak` (0 for token 0). */
  peakIndex: Int32Array;
  /** [L * H]: the weight on the first token. */
  sink: Float32Array;
}

/** The logit lens of one token (`lensAt`): the residual stream entering each layer read as the model reads its last. */
export interface TokenLens {
  index: number;
  /** The actual next token; null at the window's last position. */
  target: number | null;
  /** [L+1]: ln p(target | layer l's residual); NaN without a target. Row L is the model's output. */
  logprob: Float32Array;
  /** [L+1][K]: each layer's top guesses. */
  top: Prediction[][];
  /** The first layer from which the lens's top-1 equals the model's and stays so (L: only the output has it). */
  settles: number;
}

/** The logit lens of positions start..end−1 of a run (`lensGrid`), layer-major. */
export interface LensGrid {
  start: number;
  end: number;
  /** L + 1. */
  rows: number;
  logprob: Float32Array; // [L+1, n], NaN at the window's last position
  top1: Int32Array; // [L+1, n]
  topIds: Int32Array; // [L+1, n, K]
  topLogprob: Float32Array; // [L+1, n, K]
  settles: Int32Array; // [n]
  /** The lens head's rate: 2·(L+1)·n·E·V FLOP over its time, GFLOP/s. */
  gflops: number;
  ms: number;
}

export interface AttributionPart {
  /** `embed`, `L{l}H{h}`, `L{l} attn bias`, `L{l} mlp` or `final norm bias`. */
  name: string;
  value: number;
}

/** Direct logit attribution at one position (`attribute`). */
export interface Attribution {
  position: number;
  target: number;
  vs: number | null;
  /** The target's logit (before any final soft-cap), and the contrast token's. */
  logitTarget: number;
  logitVs: number | null;
  /** Each part's contribution to logitTarget − logitVs (or to logitTarget); they sum to it. */
  parts: AttributionPart[];
  /** The same values by place, for heatmaps. */
  heads: Float32Array; // [L, H]
  mlp: Float32Array; // [L]
  attnBias: Float32Array | null; // [L]
  embed: number;
  normBias: number | null;
}

export type EngineRequests = {
  /**
   * `maxWindow`: the longest window the host will ask for (headlight.window.tokens); the engine sizes its key/value
   * cache and attention store for min(this, the model's context, what fits the memory budget). Default 8,192.
   */
  load: [{ ref: string; dir: string; threads?: number; maxWindow?: number; memoryBudgetMB?: number }, ModelInfo];
  analyze: [AnalyzeParams, RunSummary];
  // `mode` (default 'attention') picks plain or value-weighted attention.
  row: [{ version: number; sel: HeadSelector; index: number; mode?: AttentionMode }, Float32Array];
  column: [{ version: number; sel: HeadSelector; index: number; mode?: AttentionMode }, Float32Array];
  topSources: [{ version: number; sel: HeadSelector; index: number; k: number; mode?: AttentionMode }, Source[]];
  tokenInfo: [{ version: number; sel: HeadSelector; index: number; k: number; mode?: AttentionMode }, TokenInfo];
  predictions: [{ version: number; index: number; k: number }, Prediction[]];
  headTriangle: [{ version: number; layer: number; head: number }, HeadTriangle];
  thumbnails: [{ version: number; size: number }, Thumbnails];
  headScores: [{ version: number }, HeadScoresAnswer];
  /** Per-head peak/sink of one token's row, plain or value-weighted (the sidebar's heatmap). */
  cursorSummary: [{ version: number; index: number; mode?: AttentionMode }, CursorSummary];
  ping: [Record<string, never>, { pid: number; rssMb: number }];
  /**
   * Query `index` of head layer.head in the run `version`, taken apart. Runs without queries (see `keepQueries`)
   * fetch them with one extra run of the window.
   */
  qk: [{ version: number; layer: number; head: number; index: number }, QkBreakdown];
  /** ‖v_j·W_O^h‖ of head layer.head for every token j of the run `version`, [T]. */
  valueNorms: [{ version: number; layer: number; head: number }, Float32Array];
  /** Fetch queries with every run while on (the Inside-a-head view is open), so `qk` needs no extra run. */
  keepQueries: [{ on: boolean }, void];
  /** Reruns the text with heads ablated (the current run is kept). */
  ablate: [AblateParams, AblationSummary];
  /** Ablates every head alone; progress comes as `rankProgress` events carrying `progressId`. Cancellable. */
  rankHeads: [{ text: string; window?: Span; mode: AblationMode; progressId?: string }, HeadRankingSummary];
  /** The logit lens of one token of the latest run (a one-row scratch run; ≤ 50 ms on GPT-2 small). */
  lensAt: [{ version: number; index: number }, TokenLens];
  /** The lens of tokens start..end−1 (the visible ones); progress comes as `lensProgress` events. Cancellable. */
  lensGrid: [{ version: number; start: number; end: number; progressId?: string }, LensGrid];
  /** Direct logit attribution at `index` onto `target` (default: the next token, or the model's top-1 at the end), against `vs`. */
  attribute: [{ version: number; index: number; target?: number; vs?: number }, Attribution];
  /** Scores another version of a text (compare) on a scratch cache; the current run is kept. */
  score: [{ text: string; window?: Span; offsetBase?: number; k?: number }, ScoreResult];
  /** Attention rollout of the run `version`: row `index` ([index+1]), or the whole [T, T] row-major without one. */
  rollout: [{ version: number; index?: number }, Float32Array];
  /** Activation patching of `corrupt` with `clean`'s activations; cells stream as `patchProgress` events. Cancellable. */
  patch: [PatchParams, PatchResult];
};

/** Which activations `patch` replaces: the residual stream entering each layer at each position, each head's output. */
export type PatchTarget = 'resid' | 'heads';

/** Activation patching between two versions of a text of equal token counts (analyses/patching.ts). */
export interface PatchParams {
  /** The run whose activations are copied in, and the one they are copied into. */
  clean: string;
  corrupt: string;
  /** The metric at `at` (default: the last position) is logit(answer) − logit(wrong). */
  answer: number;
  wrong: number;
  at?: number;
  /** The same token window of both texts (default: as `analyze` chooses). */
  window?: Span;
  /** Default both. */
  targets?: PatchTarget[];
  /** Cells stream as `patchProgress` events carrying this id. */
  progressId?: string;
}

/** One finished patched run: the raw metric with layer `layer`'s residual at position `index` (resid) or its head `index` (heads) patched. */
export interface PatchCell {
  target: PatchTarget;
  layer: number;
  index: number;
  value: number;
}

export interface PatchResult {
  window: Span;
  /** Tokens in the window (the same for both texts). */
  tokens: number;
  nLayer: number;
  nHead: number;
  position: number;
  answer: number;
  wrong: number;
  /** logit(answer) − logit(wrong) at `position` in the clean and in the corrupted run. */
  metricClean: number;
  metricCorrupt: number;
  /** Raw metric with the residual entering layer l at position t patched, [L, T] (t > position: the corrupted metric, unaffected); empty if not asked. */
  resid: Float32Array;
  /** Raw metric with head h of layer l patched at every position, [L, H]; empty if not asked. */
  heads: Float32Array;
  /** Cells computed (the heatmaps' cells up to `position`), the patched runs they took (a cell before the first
   * token where the texts differ needs none: both runs are the same computation there) and the time taken. */
  cells: number;
  runs: number;
  ms: number;
}

export type EngineEvents = {
  log: { level: 'info' | 'warn' | 'error'; message: string };
  rankProgress: { progressId: string; done: number; total: number };
  lensProgress: { progressId: string; done: number; total: number };
  /**
   * Progress of a `patch` request. The first event (done 0, before any run) and every later one carry both unpatched
   * metrics, so a view can normalize cells as they stream in; every later event carries the cell its run filled.
   */
  patchProgress: { progressId: string; done: number; total: number; cell?: PatchCell; metricClean: number; metricCorrupt: number };
};
