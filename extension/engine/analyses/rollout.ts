/**
 * Attention rollout (Abnar & Zuidema 2020): how much each token is "built from" each earlier token once attention is
 * followed through every layer. Per layer the head-mean attention plus the identity (the residual path), each row
 * normalized: Â_l = (mean_h A_lh + I) / 2 (each attention row sums to 1). The rollout is R = Â_{L−1} ··· Â_1 Â_0,
 * so R[i, j] is the share of token j in what token i holds after the last layer. Rows sum to 1.
 *
 * Causal masks bias it toward early tokens: token 0 is in every row's reach and gathers mass layer after layer.
 *
 * Plain float64 accumulation over the run's stored maps. Row i needs only rows ≤ i of every layer (all matrices are
 * lower triangular), and one row is cheap from the left: e_iᵀ Â_{L−1} ··· Â_0, one vector–matrix product per layer,
 * O(L·i²); the whole matrix costs O(L·T³/6). See `rolloutRow` and `rolloutMatrix`.
 */
import type { AttentionStore } from './attentionStore';

/**
 * The rollout of one run. Â_l of every layer is built once (head means summed in float64, kept as float32 packed
 * lower triangles: L·T²/2 values, 25 MB for GPT-2 small at T=1024), so each later row costs O(L·i²) flops instead of
 * re-reading every head's row (321 ms for row 1,023 of GPT-2 small shapes without it, here on 2 shared cores).
 */
export class Rollout {
  private readonly layers: Float32Array[] = [];

  constructor(private readonly store: AttentionStore) {}

  get length(): number {
    return this.store.length;
  }

  /** Â_l's rows 0..T−1 as a packed lower triangle (row i at tri(i), i+1 values). */
  private layer(l: number): Float32Array {
    return (this.layers[l] ??= residualMean(this.store, l, this.store.length));
  }

  /** Row `index`, [index+1]: what token `index` is built from, e_indexᵀ Â_{L−1} ··· Â_0 accumulated in float64. */
  row(index: number): Float64Array {
    if (!(Number.isInteger(index) && index >= 0 && index < this.length)) throw new RangeError(`rollout: token ${index} is outside the run's ${this.length} tokens`);
    const n = index + 1; // rows ≤ index are all that matter
    let r = new Float64Array(n); // [n]
    r[index] = 1;
    for (let l = this.store.nLayer - 1; l >= 0; l--) {
      const a = this.layer(l); // [tri(T)]
      const next = new Float64Array(n); // [n] = r [n] @ Â_l [n, n]
      for (let i = 0; i < n; i++) {
        const ri = r[i];
        if (ri === 0) continue;
        const at = (i * (i + 1)) / 2;
        for (let j = 0; j <= i; j++) next[j] += ri * a[at + j];
      }
      r = next;
    }
    return r;
  }

  /** The whole rollout, [T, T] row-major (zeros above the diagonal), float64: O(L·T³/6). */
  matrix(): Float64Array {
    const T = this.length;
    let R = new Float64Array(T * T); // [T, T]: Â_{l−1} ··· Â_0, starting at the identity
    for (let i = 0; i < T; i++) R[i * T + i] = 1;
    for (let l = 0; l < this.store.nLayer; l++) {
      const a = this.layer(l); // [tri(T)]
      const next = new Float64Array(T * T); // [T, T] = Â_l [T, T] @ R [T, T]
      for (let i = 0; i < T; i++) {
        const at = (i * (i + 1)) / 2;
        const out = next.subarray(i * T, i * T + i + 1);
        for (let k = 0; k <= i; k++) {
          const w = a[at + k];
          if (w === 0) continue;
          const rk = R.subarray(k * T, k * T + k + 1); // row k of R is zero past k
          for (let j = 0; j <= k; j++) out[j] += w * rk[j];
        }
      }
      R = next;
    }
    return R;
  }
}

/** Â_l = (mean_h A_lh + I) / row sum, rows 0..T−1 as a packed lower triangle; sums in float64. */
function residualMean(store: AttentionStore, l: number, T: number): Float32Array {
  const H = store.nHead;
  const acc = new Float64Array(T); // [T]: one row's head sum
  const tmp = new Float32Array(T); // [T]
  const out = new Float32Array((T * (T + 1)) / 2); // [tri(T)]
  for (let i = 0; i < T; i++) {
    acc.fill(0, 0, i + 1);
    for (let h = 0; h < H; h++) {
      const row = store.row(l, h, i, tmp.subarray(0, i + 1)); // [i+1]
      for (let j = 0; j <= i; j++) acc[j] += row[j];
    }
    let sum = 1; // the identity's weight
    for (let j = 0; j <= i; j++) sum += acc[j] / H;
    const at = (i * (i + 1)) / 2;
    for (let j = 0; j <= i; j++) out[at + j] = acc[j] / H / sum;
    out[at + i] = (acc[i] / H + 1) / sum;
  }
  return out;
}
