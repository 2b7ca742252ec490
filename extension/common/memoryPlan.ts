/**
 * The engine's memory plan, made before any weight is read: from the model's sizes (config.json) and its tensor list
 * (the safetensors headers) alone, an estimate of the engine process's peak resident memory for a window of T tokens,
 * broken down by what holds it. Pure arithmetic, run by the engine before loading (engine/model/memoryPlan.ts adds
 * the machine's free memory) and by the model picker for each model it lists: `planMemory` the estimate, `fitWindow`
 * the longest window under a budget, `checkPlan` the refusal of a model that does not fit.
 *
 * Calibrated against the measured peak RSS of full analyses (bench/memoryPlan.ts) of six families' shapes — GPT-2
 * small, SmolLM2-135M, Pythia-160m, Qwen2.5-0.5B, Gemma 3 270M, TinyStories-33M — at windows of 1,024 and 256 tokens:
 * 0.93–1.02× of each (bench/RESULTS.md).
 */
import { HeadlightError } from './errors';

/** The sizes the plan reads (the engine passes its ModelDims; the host reads them from config.json). */
export interface PlanDims {
  nLayer: number;
  /** Query heads. */
  nHead: number;
  /** Key/value heads (grouped-query attention; = nHead without). */
  nKvHead: number;
  headDim: number;
  nEmbd: number;
  vocabSize: number;
}

/** One tensor the graph reads, as its header says (the engine holds it as fp32 whatever the file's dtype). */
export interface PlannedTensor {
  name: string;
  shape: number[];
  dtype: string;
}

export interface PlanInput {
  dims: PlanDims;
  tensors: PlannedTensor[];
  /** Tokens in the analysed window (T). */
  window: number;
  /** Storage of the attention maps (default fp16). */
  precision?: 'fp16' | 'fp32';
}

/** Bytes by holder; `total` is their sum (the estimated peak RSS). */
export interface MemoryPlan {
  /** Node, V8 and onnxruntime's code and arenas before any model. */
  runtime: number;
  /**
   * Every weight as fp32, resident: onnxruntime maps the external-data file the graph's weights are written to, and
   * of a table that is only gathered (an untied embedding) only the rows read.
   */
  weights: number;
  /**
   * The LM head [V, E] a second time: onnxruntime's pre-packed copies. Its GEMM kernels pack every weight matrix at
   * load; a layer's matrix then stands in for its mapped original, which is released (counted once, in `weights`),
   * but the LM head, read by one Gemm per block of rows and, tied, by the embedding's Gather, is resident about twice.
   */
  packed: number;
  /** The key/value cache: 2 × [L, KVH, T, D] fp32. */
  kvCache: number;
  /** The attention store: the causal half of [L, H, T, T] in the chosen precision. */
  attention: number;
  /** Per-position answers kept: value norms [L, H, T], log-probs and top-k, every layer's residual rows [L+1, T, E]. */
  answers: number;
  /** One chunk's graph run: attention outputs copied out, score and softmax intermediates, LM-head rows, cache feeds. */
  scratch: number;
  total: number;
}

/**
 * Constants measured, not guessed (bench/memoryPlan.ts; bench/RESULTS.md, "Memory plan", 2026-12-03). RUNTIME: Node,
 * V8 and onnxruntime before a model. `packed`, one LM head: onnxruntime packs each Gemm/MatMul weight when the session
 * is created and releases a layer matrix's mapped original, so a layer's matrix is resident about once (in
 * `weights`); the LM head, read by one Gemm per block of rows and, tied, by the embedding's Gather, is resident about
 * twice at the peak. (The earlier fit, 0.35 of every matrix, fell 15–30% short where the embedding is most of the
 * weights: Gemma 3 270M, TinyStories-33M.) CHUNK_COPIES: one chunk's attention probabilities of every layer are
 * alive about four times over (fp32 softmax, the cast, onnxruntime's output and the JavaScript copy).
 */
const RUNTIME = 150 * 2 ** 20;
const CHUNK_COPIES = 4;
/** Rows per graph run of a long window (analyses/graphRunner.ts CHUNK) and per LM-head block (graph LM_ROW_BLOCK). */
const CHUNK = 256;
const LM_ROWS = 256;
const TOP_K = 10;

const POSITIONS = /(^|\.)wpe\.weight$/;
const EMBEDDING = /(^|\.)(wte|embed_tokens|embed_in)\.weight$/;
const HEAD = /(^|\.)(lm_head|embed_out)\.weight$/;

const tri = (n: number): number => (n * (n + 1)) / 2;
const elements = (shape: number[]): number => shape.reduce((a, d) => a * d, 1);

/** The estimated peak memory of the engine for this model and window. Pure: no I/O. */
export function planMemory(input: PlanInput): MemoryPlan {
  const { dims, tensors, window: T } = input;
  const { nLayer: L, nHead: H, nKvHead: KVH, headDim: D, nEmbd: E, vocabSize: V } = dims;
  const attnBytes = input.precision === 'fp32' ? 4 : 2;
  let weights = 0;
  const untied = tensors.some((t) => HEAD.test(t.name));
  // The LM head [V, E]: the separate head, or (tied) the embedding.
  const head = tensors.find((t) => (untied ? HEAD : EMBEDDING).test(t.name));
  for (const t of tensors) {
    const bytes = elements(t.shape) * 4; // fp32 in the engine, whatever the file holds
    // What is only gathered — position embeddings, and the token embedding when the LM head is a separate matrix —
    // stays in the mapped file: only the rows a window reads become resident (measured: Pythia's untied embed_in).
    const gathered = POSITIONS.test(t.name) || (untied && EMBEDDING.test(t.name));
    weights += gathered ? Math.min(bytes, T * (bytes / t.shape[0])) : bytes;
  }
  const rows = Math.min(CHUNK, T);
  const scratch =
    CHUNK_COPIES * L * H * rows * T * attnBytes + // one chunk's attention probabilities, every layer, as they are copied out
    3 * Math.min(LM_ROWS, rows) * V * 4 + // one LM-head block: logits, log-softmax, top-k
    2 * 2 * L * KVH * T * D * 4 + // the cache fed as past (a copy for long runs) and returned as present
    12 * rows * Math.max(E, H * D) * 4 + // the residual stream and projections of one chunk
    (L + 1) * rows * E * 4; // the chunk's residual rows of every layer, as they are copied out
  const plan = {
    runtime: RUNTIME,
    weights,
    packed: head ? elements(head.shape) * 4 : 0, // the LM head once more
    kvCache: 2 * L * KVH * T * D * 4,
    attention: L * H * tri(T) * attnBytes,
    answers: L * H * T * 4 + T * (1 + 2 * TOP_K) * 4 + (L + 1) * T * E * 4, // + every layer's residual rows (the lens)
    scratch,
  };
  return { ...plan, total: Object.values(plan).reduce((a, b) => a + b, 0) };
}

/** The longest window ≤ `max` (at least `min`) whose plan fits `budget` bytes; undefined when even `min` does not. */
export function fitWindow(input: Omit<PlanInput, 'window'>, budget: number, max: number, min = 64): number | undefined {
  const fits = (T: number) => planMemory({ ...input, window: T }).total <= budget;
  const lo0 = Math.min(min, max);
  if (!fits(lo0)) return undefined;
  if (fits(max)) return max;
  let lo = lo0;
  let hi = max; // fits(lo), !fits(hi): the plan grows with T
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return lo >= 64 ? lo - (lo % 64) : lo; // whole row blocks
}

/** Memory this process may still use: the machine's available memory, and a cgroup's limit minus its usage if set. */
export interface AvailableMemory {
  bytes: number;
  /** Where the figure comes from, for messages. */
  source: string;
}

/**
 * What may still be used, from the machine's free memory (os.freemem: MemAvailable on Linux) and total, and cgroup v2
 * or v1 limits read through `read` (undefined: no such file). Pure: the engine's availableMemory and the host's picker
 * pass the readers.
 */
export function availableMemoryFrom(free: number, total: number, read: (path: string) => string | undefined): AvailableMemory {
  let best: AvailableMemory = { bytes: free, source: `free memory (of ${formatMB(total)})` };
  const limits: [string, string, string][] = [
    ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory.current', 'cgroup memory.max'],
    ['/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/memory/memory.usage_in_bytes', 'cgroup memory.limit_in_bytes'],
  ];
  for (const [limitPath, usagePath, label] of limits) {
    const limit = Number(read(limitPath)?.trim()); // "max" (no limit) is NaN
    const usage = Number(read(usagePath)?.trim());
    // cgroup v1 writes a page-rounded 2^63 for "no limit".
    if (!Number.isFinite(limit) || limit <= 0 || limit >= 2 ** 60 || !Number.isFinite(usage)) continue;
    const left = Math.max(0, limit - usage);
    if (left < best.bytes) best = { bytes: left, source: `${label} ${formatMB(limit)} less ${formatMB(usage)} in use` };
  }
  return best;
}

/** The share of available memory the engine plans to use when no budget is set. */
export const DEFAULT_BUDGET_SHARE = 0.8;

/** The budget in bytes: `budgetMB` when set (> 0) and smaller than what is available, else 80% of what is available. */
export function memoryBudget(budgetMB: number | undefined, available: AvailableMemory): { bytes: number; source: string } {
  const auto = { bytes: Math.floor(available.bytes * DEFAULT_BUDGET_SHARE), source: `${Math.round(DEFAULT_BUDGET_SHARE * 100)}% of ${available.source}` };
  if (budgetMB === undefined || !(budgetMB > 0)) return auto;
  const set = { bytes: budgetMB * 2 ** 20, source: `headlight.memoryBudgetMB (${budgetMB})` };
  return set.bytes <= available.bytes ? set : { bytes: available.bytes, source: `${available.source}, under headlight.memoryBudgetMB (${budgetMB})` };
}

export function formatMB(bytes: number): string {
  return bytes >= 10 * 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GB` : `${Math.round(bytes / 2 ** 20).toLocaleString('en-US')} MB`;
}

/** One line of what the plan holds, largest first: "weights 498 MB, packed 470 MB, …". */
export function describePlan(plan: MemoryPlan): string {
  const parts = (Object.entries(plan) as [keyof MemoryPlan, number][]).filter(([k, v]) => k !== 'total' && v >= 2 ** 20).sort((a, b) => b[1] - a[1]);
  return parts.map(([k, v]) => `${k} ${formatMB(v)}`).join(', ');
}

/**
 * The window a model runs under a budget: the longest ≤ `maxWindow` that fits. A model that does not fit even a
 * short window is refused with the estimate, the budget, and what would fit.
 */
export function checkPlan(
  input: Omit<PlanInput, 'window'>,
  opts: { maxWindow: number; budget: { bytes: number; source: string }; model: string; fixedWindow?: boolean },
): { window: number; plan: MemoryPlan } {
  const { maxWindow, budget } = opts;
  const full = planMemory({ ...input, window: maxWindow });
  if (full.total <= budget.bytes) return { window: maxWindow, plan: full };
  const fitted = fitWindow(input, budget.bytes, maxWindow);
  if (fitted !== undefined && !opts.fixedWindow) return { window: fitted, plan: planMemory({ ...input, window: fitted }) };
  const minimal = planMemory({ ...input, window: Math.min(64, maxWindow) });
  const perWeightByte = (minimal.weights + minimal.packed) / Math.max(1, minimal.weights); // weights held per fp32 weight byte
  const params = Math.max(0, (budget.bytes - minimal.runtime - (minimal.total - minimal.weights - minimal.packed - minimal.runtime)) / perWeightByte / 4);
  const what = fitted !== undefined
    ? `a window of ${fitted} tokens would fit, but this model's window is fixed at ${maxWindow}`
    : `not even a window of ${Math.min(64, maxWindow)} tokens fits (${formatMB(minimal.total)})`;
  throw new HeadlightError(
    'model-too-big',
    `${opts.model}: needs about ${formatMB(full.total)} for a window of ${maxWindow} tokens (${describePlan(full)}), over the budget of ${formatMB(budget.bytes)} (${budget.source}); ${what}.`,
    `Pick a smaller model (about ${formatParams(params)} parameters or fewer fit), close other programs, or raise headlight.memoryBudgetMB.`,
  );
}

function formatParams(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)} B` : `${Math.round(n / 1e6)} M`;
}
