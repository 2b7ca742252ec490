/**
 * Value-weighted attention over the stored run: a key's weight α_ij·‖v_j·W_O^h‖, summed over the selected heads and
 * normalized per query row (common/valueWeighted.ts). Rows read the stored maps and value norms; columns need each
 * row's total, cached per layer in the run state until an incremental run invalidates it from its edit onward.
 */
import { addValueWeighted, normalizeRow } from '../../common/valueWeighted';
import type { ModelDims } from '../model/dims';
import type { RunState } from './runState';

/** Value-weighted row i over the heads: Σ_heads α_ij·n_j over Σ_heads Σ_k α_ik·n_k. */
export function valueWeightedRow(state: RunState, dims: ModelDims, heads: readonly [number, number][], i: number): Float32Array {
  const P = dims.nPositions;
  const out = new Float32Array(i + 1); // [i+1]
  const probs = new Float32Array(i + 1); // [i+1]
  let total = 0;
  for (const [l, h] of heads) {
    state.attention.row(l, h, i, probs);
    total += addValueWeighted(probs, state.valueNorms[l].subarray(h * P, h * P + i + 1), out);
  }
  return normalizeRow(out, total);
}

/** Value-weighted column j: each query's normalized value-weighted weight on key j ([T], zeros before j). */
export function valueWeightedColumn(state: RunState, dims: ModelDims, heads: readonly [number, number][], j: number): Float32Array {
  const P = dims.nPositions;
  const T = state.attention.length;
  const num = new Float32Array(T); // [T]
  const den = new Float32Array(T); // [T]
  for (const [l, h] of heads) {
    const sums = rowTotals(state, dims, l);
    const nj = state.valueNorms[l][h * P + j];
    for (let i = j; i < T; i++) {
      num[i] += state.attention.at(l, h, i, j) * nj;
      den[i] += sums[h * P + i];
    }
  }
  for (let i = j; i < T; i++) num[i] = den[i] > 0 ? num[i] / den[i] : 0;
  return num;
}

/** Σ_k α_ik·n_k for rows < T of layer l, every head, [H, n_positions] (cached; computed from vwValid[l] on). */
function rowTotals(state: RunState, dims: ModelDims, l: number): Float32Array {
  const { nHead: H, nPositions: P } = dims;
  const T = state.attention.length;
  const sums = (state.vwSums[l] ??= new Float32Array(H * P)); // [H, n_positions]
  const row = new Float32Array(T);
  for (let h = 0; h < H; h++) {
    const norms = state.valueNorms[l].subarray(h * P, (h + 1) * P);
    for (let i = state.vwValid[l] ?? 0; i < T; i++) {
      state.attention.row(l, h, i, row);
      let s = 0;
      for (let j = 0; j <= i; j++) s += row[j] * norms[j];
      sums[h * P + i] = s;
    }
  }
  state.vwValid[l] = T;
  return sums;
}
