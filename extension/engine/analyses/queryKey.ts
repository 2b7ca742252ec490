/**
 * Inside a head: one query's row taken apart (q, the keys and values it sees, q·k scores before and after the
 * softmax, the value norms). Queries are an output only runs made while someone looks inside heads fetch; for any
 * other run `fillQueries` recomputes the window once to get them. In rotary models q and k are the rotated vectors
 * (what the softmax sees); the scores without the rotation come beside them. A grouped-query head reads the keys
 * and values of its KV head.
 */
import type { QkBreakdown } from '../../common/engineProtocol';
import { kvHeadOf, rotaryOf, softcap, type ModelDims } from '../model/dims';
import type { GraphRunner } from './graphRunner';
import { KvCache } from './kvCache';
import { qkScores } from './inspect';
import type { RunState } from './runState';

/** Recomputes the state's window from scratch for its queries only (the rest of the state is unchanged). */
export async function fillQueries(runner: GraphRunner, state: RunState): Promise<void> {
  const { nLayer: L } = runner.dims;
  const ids = state.ids;
  const { feeds } = runner.feeds(new KvCache(runner.dims), ids, 0);
  const out = await runner.run(feeds, Array.from({ length: L }, (_, l) => `present_q_${l}`));
  for (let l = 0; l < L; l++) state.storeQueries(l, out[`present_q_${l}`].data as Float32Array, 0, ids.length);
  state.queriesValid = ids.length;
}

/** Query `index` of head layer.head, from a state whose queries cover it; `attention` is the stored row. */
export function qkBreakdown(state: RunState, dims: ModelDims, layer: number, head: number, index: number, attention: Float32Array): QkBreakdown {
  const { headDim: D, nPositions: P } = dims;
  const scale = dims.scales[layer];
  const kvHead = kvHeadOf(dims, head);
  const window = dims.windows[layer];
  const first = window === null ? 0 : Math.max(0, index - window + 1); // keys before `first` are outside the window
  const n = index + 1;
  const query = state.queries[layer].slice((head * P + index) * D, (head * P + n) * D); // [D]
  const keys = state.cache.head('keys', layer, kvHead, n); // [i+1, D]
  const values = state.cache.head('values', layer, kvHead, n); // [i+1, D]
  const cap = dims.softcaps?.[layer] ?? null; // Gemma 2: the softmax sees cap·tanh(s/cap)
  const score = (k: Float32Array) => (cap ? cappedQk(query, k, scale, cap) : qkScores(query, k, scale));
  const { scores, probs: all } = score(keys); // [i+1] each
  const probs = first === 0 ? all : padFront(score(keys.subarray(first * D)).probs, first, 0); // keys outside a sliding window get 0
  const valueNorms = state.valueNorms[layer].slice(head * P, head * P + n); // [i+1]
  const breakdown: QkBreakdown = {
    layer,
    head,
    index,
    scale,
    query,
    keys,
    values,
    scores,
    probs,
    attention,
    valueNorms,
  };
  if (dims.nKvHead !== dims.nHead) Object.assign(breakdown, { kvHead, nKvHead: dims.nKvHead });
  if (cap) breakdown.cappedScores = softmaxInputs(scores, cap);
  const rotary = rotaryOf(dims, layer);
  if (rotary) breakdown.unrotatedScores = unrotatedScores(query, keys, index, scale, rotary);
  return breakdown;
}

/** cap·tanh(s/cap) of each raw score [n] (what the softmax reads on a soft-capped layer). */
function softmaxInputs(scores: Float32Array, cap: number): Float32Array {
  return scores.map((s) => softcap(s, cap));
}

/** Raw scores q·k_j·scale [n] and the softmax of their soft-capped values [n]. */
function cappedQk(query: Float32Array, keys: Float32Array, scale: number, cap: number): { scores: Float32Array; probs: Float32Array } {
  const { scores } = qkScores(query, keys, scale);
  const capped = softmaxInputs(scores, cap);
  let max = -Infinity;
  for (const s of capped) max = Math.max(max, s);
  const exps = Float64Array.from(capped, (s) => Math.exp(s - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return { scores, probs: Float32Array.from(exps, (e) => e / sum) };
}

/** [first + a.length]: `fill` for the keys outside a sliding window, then a. */
function padFront(a: Float32Array, first: number, fill: number): Float32Array {
  if (first === 0) return a;
  const out = new Float32Array(first + a.length).fill(fill);
  out.set(a, first);
  return out;
}

/**
 * q·k_j·scale with the rotation undone. Rotate-half RoPE turns the pair (x_k, x_{k+R/2}) by the angle p·f_k; undo
 * it (rotate q back by i and each k back by j), then take the dot product. query [D] at position i, keys [i+1, D] -> [i+1].
 */
function unrotatedScores(query: Float32Array, keys: Float32Array, i: number, scale: number, rotary: { dims: number; invFreq: Float64Array }): Float32Array {
  const D = query.length;
  const n = keys.length / D;
  const q = unrotate(query, i, rotary); // [D]
  const out = new Float32Array(n); // [n]
  for (let j = 0; j < n; j++) {
    const k = unrotate(keys.subarray(j * D, (j + 1) * D), j, rotary); // [D]
    let dot = 0;
    for (let c = 0; c < D; c++) dot += q[c] * k[c];
    out[j] = dot * scale;
  }
  return out;
}

/** x [D] rotated at position p -> as it was before the rotation (the inverse turn, −p·f_k, on each pair). */
function unrotate(x: Float32Array, p: number, rotary: { dims: number; invFreq: Float64Array }): Float64Array {
  const out = Float64Array.from(x);
  const half = rotary.dims / 2;
  for (let k = 0; k < half; k++) {
    const c = Math.cos(p * rotary.invFreq[k]);
    const s = Math.sin(p * rotary.invFreq[k]);
    const a = x[k];
    const b = x[k + half];
    // forward: a' = a·c − b·s, b' = b·c + a·s; inverse:
    out[k] = a * c + b * s;
    out[k + half] = b * c - a * s;
  }
  return out;
}
