/**
 * Intensity buckets for editor highlights (backed by the contributed theme colours headlight.attention1..4 and
 * headlight.surprisal1..4) and unicode bars for hovers. Pure: no `vscode`.
 */
export const LEVELS = 4;

/** Lower edges of the attention buckets for a threshold t: t, then 10%, 25% and 50% of the way from t to 1. */
export function attentionEdges(threshold: number): number[] {
  const t = Math.min(0.95, Math.max(0, threshold));
  return [t, t + (1 - t) * 0.1, t + (1 - t) * 0.25, t + (1 - t) * 0.5];
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
