/**
 * Intensity buckets for editor highlights (backed by the contributed theme colours headlight.attention1..4 and
 * headlight.surprisal1..4) and unicode bars for hovers. Pure: no `vscode`. Attention levels are relative to the row
 * shown (`attentionLevels`), so a near-uniform model still lights its strongest tokens visibly.
 */
export const LEVELS = 4;

/** Lower edges of the attention buckets for a threshold t: t, then 10%, 25% and 50% of the way from t to 1. */
export function attentionEdges(threshold: number): number[] {
  const t = Math.min(0.95, Math.max(0, threshold));
  return [t, t + (1 - t) * 0.1, t + (1 - t) * 0.25, t + (1 - t) * 0.5];
}

/** Lowest shown weight and bucket edges of one row of attention weights (see `attentionLevels`). */
export interface RowEdges {
  /** The row's largest weight (the skipped index left out). */
  max: number;
  /** Its uniform weight: the mean of its positive weights (1/(i+1) for query i's sources). */
  uniform: number;
  /** Lower edges of the LEVELS buckets; edges[0] is the lowest weight shown (Infinity: none). */
  edges: number[];
}

/**
 * Edges relative to one row. A weight is shown when it reaches `threshold`, or when it stands out in its row: at
 * least half the row's largest weight and at least twice its uniform weight. So a row's strongest tokens always
 * show, even from a near-uniform model where no weight reaches the threshold, while a uniform row shows nothing
 * beyond the threshold. The levels are log-spaced from the lowest shown weight up to the row's largest, so the
 * strongest token always gets the top level whatever its absolute size.
 */
export function rowEdges(weights: ArrayLike<number>, threshold: number, skip?: (index: number) => boolean): RowEdges {
  let max = 0;
  let sum = 0;
  let n = 0;
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i];
    if (skip?.(i) || !(w > 0)) continue; // masked (future) keys are exactly 0
    if (w > max) max = w;
    sum += w;
    n++;
  }
  const uniform = n ? sum / n : 0;
  if (max <= 0) return { max, uniform, edges: Array.from({ length: LEVELS }, () => Infinity) };
  const t = Math.min(0.95, Math.max(0, threshold));
  const standsOut = Math.max(max / 2, 2 * uniform);
  const lowest = Math.min(t, standsOut);
  if (lowest > max) return { max, uniform, edges: Array.from({ length: LEVELS }, () => Infinity) }; // a near-uniform row
  const lo = Math.max(lowest, max / 256); // log spacing needs a positive start (threshold 0 shows every weight)
  const edges = Array.from({ length: LEVELS }, (_, k) => (k === 0 ? lowest : lo * Math.pow(max / lo, k / LEVELS)));
  return { max, uniform, edges };
}

/** Attention highlight groups of one row: result[level] lists the indices shown at that level (0 faintest). */
export function attentionLevels(weights: ArrayLike<number>, threshold: number, skip?: (index: number) => boolean): number[][] {
  const { edges } = rowEdges(weights, threshold, skip);
  return groupByBucket(weights, edges, (i) => Boolean(skip?.(i)) || !(weights[i] > 0));
}

/** Surprisal bucket edges in bits: from "unexpected" (6 bits, 1 in 64) to "very surprising" (15 bits). */
export const SURPRISAL_EDGES_BITS: readonly number[] = [6, 9, 12, 15];

/** Index of the highest edge at or below `value`, or -1 below the first (and for NaN). */
export function bucketOf(value: number, edges: readonly number[]): number {
  if (!(value >= edges[0])) return -1;
  let b = 0;
  while (b + 1 < edges.length && value >= edges[b + 1]) b++;
  return b;
}

/** Groups indices by bucket: result[level] lists the indices whose value falls into that level. */
export function groupByBucket(values: ArrayLike<number>, edges: readonly number[], skip?: (index: number) => boolean): number[][] {
  const groups: number[][] = edges.map(() => []);
  for (let i = 0; i < values.length; i++) {
    if (skip?.(i)) continue;
    const b = bucketOf(values[i], edges);
    if (b >= 0) groups[b].push(i);
  }
  return groups;
}

const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/** A bar of `width` cells for a fraction in [0, 1], in eighth-cell steps ("████▍"). */
export function bar(fraction: number, width = 8): string {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const eighths = Math.round(f * width * 8);
  const full = Math.floor(eighths / 8);
  return '█'.repeat(full) + EIGHTHS[eighths % 8];
}
