/**
 * What the engine keeps of the latest run, and its one owner: the window's token ids, the key/value cache, the
 * attention maps and the per-position answers (next-token log-probabilities, top-k predictions, value norms,
 * queries while someone looks inside heads). A run commits into it chunk by chunk; an edit that only shortens the
 * text truncates it.
 */
import type { Prediction } from '../../common/engineProtocol';
import type { Fetched } from '../graph/session';
import { ROW_BLOCK, TOP_K } from '../graph/gpt2Graph';
import type { ModelDims } from '../model/dims';
import { AttentionStore, type Precision } from './attentionStore';
import { KvCache } from './kvCache';

export class RunState {
  ids: number[] = [];
  windowStart = 0;
  readonly cache: KvCache;
  readonly attention: AttentionStore;
  /** [T]: ln p(ids[i+1] | ids ≤ i); NaN for the last. */
  nextLogprob = new Float32Array(0);
  topLogprob = new Float32Array(0); // [T, K]
  topIds = new Int32Array(0); // [T, K]
  /** Per layer [H, n_positions, D]; valid for positions < queriesValid (fetched only while someone looks inside). */
  readonly queries: Float32Array[] = [];
  queriesValid = 0;
  /**
   * Per l = 0…L, [n_positions, E]: the residual stream entering layer l (l = L: entering the final norm), rows <
   * ids.length. Kept from every run so that the logit lens at any token is only its unembedding (GPT-2 small at
   * T = 1,024: 41 MB, 2.6% of the engine's peak), not another pass through the network.
   */
  readonly residuals: Float32Array[] = [];
  /** Per layer [H, n_positions]: ‖v_j·W_O^h‖. */
  readonly valueNorms: Float32Array[] = [];
  /** Per layer [H, n_positions]: Σ_k α_ik·‖v_k·W_O^h‖, filled on demand (valueWeighting.ts) for rows < vwValid[l]. */
  readonly vwSums: Float32Array[] = [];
  vwValid: number[] = [];

  constructor(
    private readonly dims: ModelDims,
    precision: Precision,
  ) {
    this.cache = new KvCache(dims);
    this.attention = new AttentionStore(dims.nLayer, dims.nHead, precision, dims.nPositions);
  }

  /**
   * How many positions of `ids` (a window starting at `windowStart`) can come from this state. Position p−1's
   * next-token log-prob depends on token p, so an edit at p recomputes from p−1; a pure truncation computes nothing.
   */
  reusable(ids: readonly number[], windowStart: number): number {
    if (windowStart !== this.windowStart) return 0;
    const max = Math.min(this.ids.length, ids.length);
    let lcp = 0;
    while (lcp < max && this.ids[lcp] === ids[lcp]) lcp++;
    return lcp >= ids.length ? ids.length : Math.max(0, lcp - 1);
  }

  /** The outputs a run of n new positions commits (attention in row blocks of ROW_BLOCK). */
  fetches(n: number, opts: { logits?: boolean; queries?: boolean }): string[] {
    const blocks = Math.ceil(n / ROW_BLOCK);
    const names = ['next_logprob', 'top_logprob', 'top_ids', 'resid_final', ...(opts.logits ? ['logits'] : [])];
    for (let l = 0; l < this.dims.nLayer; l++) {
      names.push(`present_k_${l}`, `present_v_${l}`, `vnorm_${l}`, `resid_${l}`, ...(opts.queries ? [`present_q_${l}`] : []));
      for (let b = 0; b < blocks; b++) names.push(`attn_${l}_${b}`);
    }
    return names;
  }

  /**
   * Stores a run of positions past..end−1 of `ids` (end < ids.length for a chunk of a longer run), made on C
   * cached slots, with the outputs `fetches` named.
   */
  commit(ids: number[], past: number, end: number, out: Fetched, C: number, queries: boolean): void {
    const { nLayer: L, nHead: H, nPositions: P, nEmbd: E } = this.dims;
    const T = end;
    const n = T - past; // new positions
    for (let l = 0; l <= L; l++) {
      const rows = out[l < L ? `resid_${l}` : 'resid_final'].data as Float32Array; // [1, n, E]
      (this.residuals[l] ??= new Float32Array(P * E)).set(rows.subarray(0, n * E), past * E);
    }
    for (let l = 0; l < L; l++) {
      this.valueNorms[l] ??= new Float32Array(H * P);
      this.cache.store(l, out, past, n);
      const norms = out[`vnorm_${l}`].data as Float32Array; // [1, H, n]
      for (let h = 0; h < H; h++) this.valueNorms[l].set(norms.subarray(h * n, (h + 1) * n), h * P + past);
      if (queries) this.storeQueries(l, out[`present_q_${l}`].data as Float32Array, past, n);
      this.vwValid[l] = Math.min(this.vwValid[l] ?? 0, past);
    }
    // Queries are whole only if this run brought them and the prefix before it had them.
    this.queriesValid = queries && this.queriesValid >= past ? T : Math.min(this.queriesValid, past);
    this.attention.resize(past, T);
    for (let l = 0; l < L; l++) {
      for (let b = 0; b < Math.ceil(n / ROW_BLOCK); b++) {
        const t = out[`attn_${l}_${b}`];
        const [, , R, K] = t.dims; // [1, H, R, K]: rows b·B.., key columns 0..K−1 (cached slots, then new keys)
        const data = t.data as Uint16Array | Float32Array;
        for (let h = 0; h < H; h++) {
          for (let q = 0; q < R; q++) {
            const row = b * ROW_BLOCK + q; // new row; absolute position past + row
            const at = (h * R + q) * K;
            if (C === past) this.attention.writeRow(l, h, past + row, data.subarray(at, at + past + row + 1));
            else this.attention.writeRow(l, h, past + row, data.subarray(at, at + past), data.subarray(at + C, at + C + row + 1));
          }
        }
      }
    }
    this.nextLogprob = growCopy(this.nextLogprob, past, T);
    this.nextLogprob.set(out.next_logprob.data as Float32Array, past);
    if (end === ids.length) this.nextLogprob[T - 1] = NaN; // a chunk's last row had the next chunk's token as target
    this.topLogprob = growCopy(this.topLogprob, past * TOP_K, T * TOP_K);
    this.topLogprob.set(out.top_logprob.data as Float32Array, past * TOP_K);
    this.topIds = growCopy(this.topIds, past * TOP_K, T * TOP_K);
    const topIds = out.top_ids.data as BigInt64Array;
    for (let i = 0; i < topIds.length; i++) this.topIds[past * TOP_K + i] = Number(topIds[i]);
    this.ids = ids.slice(0, end);
  }

  /** Positions a..b−1 (b ≤ ids.length) at every layer, stacked layer-major: [(L+1)·(b−a), E], the logit lens's rows. */
  residualRows(a: number, b: number): Float32Array {
    const E = this.dims.nEmbd;
    if (!(a >= 0 && a < b && b <= this.ids.length)) throw new Error(`residualRows: ${a}:${b} is outside the ${this.ids.length} positions run`);
    const n = b - a;
    const rows = new Float32Array(this.residuals.length * n * E);
    this.residuals.forEach((r, l) => rows.set(r.subarray(a * E, b * E), l * n * E));
    return rows;
  }

  /** Copies layer l's queries of positions past..past+n−1 (`present_q_l`, [1, H, n, D]) in. */
  storeQueries(l: number, q: Float32Array, past: number, n: number): void {
    const { nHead: H, headDim: D, nPositions: P } = this.dims;
    const dest = (this.queries[l] ??= new Float32Array(H * P * D));
    for (let h = 0; h < H; h++) dest.set(q.subarray(h * n * D, (h + 1) * n * D), (h * P + past) * D);
  }

  /** Keeps the first T positions (an edit that only removed tokens at the end). */
  truncate(T: number): void {
    this.attention.resize(T, T);
    this.queriesValid = Math.min(this.queriesValid, T);
    this.vwValid = this.vwValid.map((v) => Math.min(v, T));
    this.nextLogprob = this.nextLogprob.slice(0, T);
    if (T > 0) this.nextLogprob[T - 1] = NaN;
    this.topLogprob = this.topLogprob.slice(0, T * TOP_K);
    this.topIds = this.topIds.slice(0, T * TOP_K);
    this.ids = this.ids.slice(0, T);
  }
}

/** The top guesses for the token at position i (made at i−1) from [T, TOP_K] top-k arrays; i = T: the next token. */
export function topPredictions(topIds: Int32Array, topLogprob: Float32Array, i: number, k: number, decode: (ids: number[]) => string): Prediction[] {
  if (i <= 0 || i > topIds.length / TOP_K) return [];
  const base = (i - 1) * TOP_K;
  return Array.from({ length: Math.min(k, TOP_K) }, (_, r) => {
    const id = topIds[base + r];
    return { id, text: decode([id]), logprob: topLogprob[base + r] };
  });
}

function growCopy<A extends Float32Array | Int32Array>(a: A, keep: number, size: number): A {
  const next = new (a.constructor as { new (n: number): A })(size);
  next.set(a.subarray(0, Math.min(keep, size)) as never);
  return next;
}
