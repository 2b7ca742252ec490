/**
 * The arithmetic behind one attention row (q·k scores, softmax) and the bookkeeping of head ablations (head checks,
 * masks, losses, surprisal differences). Pure functions on typed arrays; queryKey.ts and ablation.ts feed them what
 * the graph returned. Plain TypeScript, no onnxruntime.
 */
import { HeadlightError } from '../../common/errors';
import { LN2 } from '../../common/units';
import type { HeadRef } from '../../common/engineProtocol';

export type { AblationMode, HeadRef } from '../../common/engineProtocol';

/**
 * Scores of query q over keys 0..n−1 before the softmax, q·k_j·scale, and after it.
 * query [D], keys [n, D] -> scores [n], probs [n] (softmax in float64, max subtracted).
 */
export function qkScores(query: Float32Array, keys: Float32Array, scale: number): { scores: Float32Array; probs: Float32Array } {
  const D = query.length;
  const n = keys.length / D;
  const scores = new Float32Array(n); // [n]
  for (let j = 0; j < n; j++) {
    let dot = 0;
    for (let c = 0; c < D; c++) dot += query[c] * keys[j * D + c];
    scores[j] = dot * scale;
  }
  let max = -Infinity;
  for (const s of scores) max = Math.max(max, s);
  const exps = new Float64Array(n);
  let sum = 0;
  for (let j = 0; j < n; j++) sum += exps[j] = Math.exp(scores[j] - max);
  const probs = new Float32Array(n); // [n]
  for (let j = 0; j < n; j++) probs[j] = exps[j] / sum;
  return { scores, probs };
}

/** Element-wise products q ⊙ k_j, [n, D]: row j sums to key j's score before scaling. */
export function qkProducts(query: Float32Array, keys: Float32Array): Float32Array {
  const D = query.length;
  const out = new Float32Array(keys.length); // [n, D]
  for (let i = 0; i < keys.length; i++) out[i] = keys[i] * query[i % D];
  return out;
}

/** Mean loss in nats over the window's predictions (tokens 1..T−1; `logprobs[0]` is NaN); NaN for T < 2. */
export function meanLoss(logprobs: Float32Array): number {
  let sum = 0;
  let n = 0;
  for (let i = 1; i < logprobs.length; i++) {
    sum -= logprobs[i];
    n++;
  }
  return n ? sum / n : NaN;
}

/** Surprisal after − before, in bits, per token (NaN for the first). */
export function surprisalDelta(before: Float32Array, after: Float32Array): Float32Array {
  const out = new Float32Array(before.length);
  for (let i = 0; i < out.length; i++) out[i] = (before[i] - after[i]) / LN2; // −ln p after − (−ln p before)
  return out;
}

/** Indices of the k tokens whose surprisal changed most (by absolute value), largest first. */
export function mostAffected(delta: Float32Array, k: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < delta.length; i++) if (!Number.isNaN(delta[i])) idx.push(i);
  idx.sort((a, b) => Math.abs(delta[b]) - Math.abs(delta[a]) || a - b);
  return idx.slice(0, k);
}

/** Throws a clear error unless layer.head exists in a model of nLayer × nHead heads. */
export function checkHead(layer: number, head: number, nLayer: number, nHead: number): void {
  if (!(Number.isInteger(layer) && Number.isInteger(head) && layer >= 0 && layer < nLayer && head >= 0 && head < nHead)) {
    throw new HeadlightError('bad-head', `Head ${layer}.${head} is not in this model (layers 0..${nLayer - 1}, heads 0..${nHead - 1}).`, 'Name heads as LAYER.HEAD, e.g. 5.1.');
  }
}

/** Validates heads against the model and returns the [L, H] mask with 0 on them. */
export function ablationMask(heads: readonly HeadRef[], nLayer: number, nHead: number): Float32Array {
  const mask = new Float32Array(nLayer * nHead).fill(1); // [L, H]
  for (const { layer, head } of heads) {
    checkHead(layer, head, nLayer, nHead);
    mask[layer * nHead + head] = 0;
  }
  return mask;
}
