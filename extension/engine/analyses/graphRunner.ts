/**
 * The graph's inputs for one run and the run itself: ids, positions, targets, the causal mask over cached and new
 * keys, the head mask and the key/value cache (see the input list at the top of graph/gpt2Graph.ts).
 */
import type { ModelDims } from '../model/dims';
import { ROW_BLOCK } from '../graph/gpt2Graph';
import { f32, i64, type Feeds, type Fetched, type ModelSession } from '../graph/session';
import type { KvCache } from './kvCache';

/**
 * Positions per graph run of a long window: each chunk runs on the cache of the ones before (as an edit would). At
 * T=1024 on GPT-2 small, four runs of 256 instead of one cut the engine's peak RSS by keeping a quarter of the
 * attention outputs and intermediates alive at once (see README).
 */
export const CHUNK = 256;

/** Heads taken away: mask [L, H] (1 keeps, 0 ablates), what they output instead [L, H, D], and where to start. */
export interface Ablation {
  mask: Float32Array;
  means: Float32Array;
  /** Start at this layer on the plain run's residual stream entering it ([T, E], this run's rows). */
  from?: { layer: number; resid: Float32Array };
  /** Per-position replacements [H, n, D] (this run's rows), added to `means` where the mask is 0 (activation patching). */
  rows?: Float32Array;
}

export class GraphRunner {
  /** [L, H] ones and [L, H, D] zeros: a plain run's head mask and replacement. */
  private readonly keepAll: Float32Array;
  private readonly noMeans: Float32Array;

  constructor(
    readonly dims: ModelDims,
    private readonly session: ModelSession,
    /** Names of the graph's inputs: feeds are limited to these. */
    private readonly inputs: ReadonlySet<string>,
  ) {
    this.keepAll = new Float32Array(dims.nLayer * dims.nHead).fill(1);
    this.noMeans = new Float32Array(dims.nLayer * dims.nHead * dims.headDim);
    const windows = new Set(dims.windows.filter((w) => w !== null));
    if (windows.size > 1) throw new Error(`graph runner: layers with different sliding windows (${[...windows].join(', ')}) are not supported`);
    this.window = windows.size ? [...windows][0]! : undefined;
  }

  /** The sliding window of the windowed layers (they read `mask_local`), if any. */
  private readonly window: number | undefined;

  /**
   * Inputs for running ids[past..end−1] on a cache of `past` positions (targets come from `ids`, end included). The
   * cache goes in as C slots: none for a fresh run; for a short update the whole capacity buffer as it is; for a
   * long one an exact copy of the first `past` slots (so the unused slots cost no attention work).
   */
  feeds(cache: KvCache, ids: number[], past: number, end = ids.length, ablation?: Ablation): { feeds: Feeds; C: number } {
    const { nLayer: L, nHead: H, nKvHead: KVH, headDim: D, nEmbd: E, nPositions } = this.dims;
    const n = end - past;
    const s = ablation?.from?.layer ?? 0; // the first layer computed
    const skip = ablation?.from !== undefined; // start at layer s on ablation.from.resid (s = 0 too: activation patching)
    const C = past === 0 ? 0 : n <= ROW_BLOCK ? nPositions : past;
    const S = C + n;
    const mask = new Float32Array(n * S).fill(-1e30); // [n, S]
    for (let r = 0; r < n; r++) {
      mask.fill(0, r * S, r * S + past); // the cached keys
      mask.fill(0, r * S + C, r * S + C + r + 1); // the new keys up to the query itself
    }
    const layers = Array.from({ length: L }, (_, l) => l);
    const feeds: Feeds = {
      input_ids: i64(ids.slice(past, end), [1, n]),
      position_ids: i64(Array.from({ length: n }, (_, r) => past + r), [1, n]),
      targets: i64(Array.from({ length: n }, (_, r) => ids[past + r + 1] ?? 0), [n, 1]),
      mask: f32(mask, [1, 1, n, S]),
      head_mask: f32(ablation?.mask ?? this.keepAll, [L, H]),
      head_mean: f32(ablation?.means ?? this.noMeans, [L, H, D]),
      // Every layer computes every new row; an ablation `from` layer s starts there on the plain run's residual
      // stream, and the layers before it take no rows (compute nothing).
      head_rows: f32(ablation?.rows ?? new Float32Array(H * D), [1, H, ablation?.rows ? n : 1, D]),
      layer_rows: i64(layers.map((l) => (skip && l <= s ? 0 : n)), [L]),
      resid_rows: i64(layers.map((l) => (skip && l === s ? n : 0)), [L]),
      resid_in: f32(skip ? ablation!.from!.resid : new Float32Array(0), [1, skip ? n : 0, E]),
    };
    if (this.window !== undefined) feeds.mask_local = f32(slidingMask(mask, n, S, past, C, this.window), [1, 1, n, S]);
    for (let l = 0; l < L; l++) {
      feeds[`past_k_${l}`] = f32(cache.slots('keys', l, C), [1, KVH, C, D]);
      feeds[`past_v_${l}`] = f32(cache.slots('values', l, C), [1, KVH, C, D]);
    }
    for (const name of Object.keys(feeds)) if (!this.inputs.has(name)) delete feeds[name];
    return { feeds, C };
  }

  run(feeds: Feeds, fetches: string[]): Promise<Fetched> {
    return this.session.run(feeds, fetches);
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/**
 * The causal mask [n, S] with a sliding window: query past + r sees key position j only when past + r − window < j.
 * Key slot j < C holds position j; slot C + r' holds position past + r'.
 */
function slidingMask(causal: Float32Array, n: number, S: number, past: number, C: number, window: number): Float32Array {
  const mask = causal.slice(); // [n, S]
  for (let r = 0; r < n; r++) {
    const first = past + r - window + 1; // the first position still seen
    if (first <= 0) continue;
    mask.fill(-1e30, r * S, r * S + Math.min(first, past)); // cached keys before the window
    if (first > past) mask.fill(-1e30, r * S + C, r * S + C + Math.min(first - past, n)); // new keys before it
  }
  return mask;
}
