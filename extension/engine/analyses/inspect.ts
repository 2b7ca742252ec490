/**
 * Inside a head: the arithmetic behind one attention row (q·k scores, softmax), value-weighted attention, and the
 * bookkeeping of head ablations (losses, surprisal differences, rankings). Pure functions on typed arrays; the
 * engine (analysis.ts) feeds them what the graph returned. Plain TypeScript, no onnxruntime.
 */
import { HeadlightError } from '../../common/errors';
import type { HeadRef } from '../../common/engineProtocol';

export type { AblationMode, HeadRef } from '../../common/engineProtocol';

const LN2 = Math.log(2);

/** The scale GPT-2 applies to q·k: 1/√d (when scale_attn_weights), divided by layer+1 for some code models. */
export function attentionScale(config: { nEmbd: number; nHead: number; scaleAttnWeights: boolean; scaleAttnByInverseLayerIdx: boolean }, layer: number): number {
  let scale = config.scaleAttnWeights ? 1 / Math.sqrt(config.nEmbd / config.nHead) : 1;
  if (config.scaleAttnByInverseLayerIdx) scale /= layer + 1;
  return scale;
}

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

/** Value-weighted weights α_j·‖v_j W_O‖, normalized to sum to 1 (so they read like attention); zeros stay zeros. */
export function valueWeighted(probs: ArrayLike<number>, norms: ArrayLike<number>): Float32Array {
  const out = new Float32Array(probs.length);
  let sum = 0;
  for (let j = 0; j < probs.length; j++) sum += out[j] = probs[j] * norms[j];
  if (sum > 0) for (let j = 0; j < out.length; j++) out[j] /= sum;
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

/** Validates heads against the model and returns the [L, H] mask with 0 on them. */
export function ablationMask(heads: readonly HeadRef[], nLayer: number, nHead: number): Float32Array {
  const mask = new Float32Array(nLayer * nHead).fill(1); // [L, H]
  for (const { layer, head } of heads) {
    if (!(Number.isInteger(layer) && Number.isInteger(head) && layer >= 0 && layer < nLayer && head >= 0 && head < nHead)) {
      throw new HeadlightError('bad-head', `Head ${layer}.${head} is not in this model (layers 0..${nLayer - 1}, heads 0..${nHead - 1}).`, 'Name heads as LAYER.HEAD, e.g. 5.1.');
    }
    mask[layer * nHead + head] = 0;
  }
  return mask;
}

/** Parses "5.1,5.5" into head references (validated later against the model). */
export function parseHeads(spec: string): HeadRef[] {
  const heads = spec.split(',').map((s) => s.trim()).filter(Boolean);
  if (!heads.length) throw new HeadlightError('usage', `--heads ${spec}: name at least one head as LAYER.HEAD, e.g. 5.1,5.5.`);
  return heads.map((s) => {
    const m = /^(\d+)\.(\d+)$/.exec(s);
    if (!m) throw new HeadlightError('usage', `--heads: "${s}" is not LAYER.HEAD (e.g. 5.1).`);
    return { layer: Number(m[1]), head: Number(m[2]) };
  });
}
