/**
 * Keys and values of the positions run so far, per layer [KVH, n_positions, D] (KV heads: grouped-query models keep
 * fewer than their query heads; the graph repeats them): head-major, as the graph takes them,
 * so a short update feeds the whole buffer with no copy. A layer's buffers are allocated by the first run that
 * stores into them.
 */
import type { Fetched } from '../graph/session';
import type { ModelDims } from '../model/dims';

export class KvCache {
  readonly keys: Float32Array[] = []; // per layer [KVH, n_positions, D]
  readonly values: Float32Array[] = []; // per layer [KVH, n_positions, D]

  constructor(private readonly dims: ModelDims) {}

  /** Copies layer l's new keys and values (positions past..past+n−1, `present_k_l`/`present_v_l` [1, KVH, n, D]) in. */
  store(l: number, out: Fetched, past: number, n: number): void {
    const { nKvHead: H, headDim: D, nPositions: P } = this.dims;
    const keys = (this.keys[l] ??= new Float32Array(H * P * D));
    const values = (this.values[l] ??= new Float32Array(H * P * D));
    const k = out[`present_k_${l}`].data as Float32Array;
    const v = out[`present_v_${l}`].data as Float32Array;
    for (let h = 0; h < H; h++) {
      keys.set(k.subarray(h * n * D, (h + 1) * n * D), (h * P + past) * D);
      values.set(v.subarray(h * n * D, (h + 1) * n * D), (h * P + past) * D);
    }
  }

  /**
   * Layer l's first C slots as the graph's past_k/past_v [KVH, C, D]: none for C = 0, the whole capacity buffer for
   * C = n_positions (no copy; the mask hides the slots past the valid ones), else an exact copy.
   */
  slots(which: 'keys' | 'values', l: number, C: number): Float32Array {
    const cache = this[which][l];
    const { nKvHead: H, headDim: D, nPositions: P } = this.dims;
    if (C === 0 || !cache) return new Float32Array(0);
    if (C === P) return cache;
    const out = new Float32Array(H * C * D); // [KVH, C, D] from [KVH, n_positions, D]
    for (let h = 0; h < H; h++) out.set(cache.subarray(h * P * D, (h * P + C) * D), h * C * D);
    return out;
  }

  /** KV head h's rows 0..n−1 of layer l, [n, D] (a copy). */
  head(which: 'keys' | 'values', l: number, h: number, n: number): Float32Array {
    const { headDim: D, nPositions: P } = this.dims;
    return this[which][l].slice(h * P * D, (h * P + n) * D);
  }
}
