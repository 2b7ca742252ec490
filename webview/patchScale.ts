/** The patching metric's scale (no DOM: the unit tests import it). */

/**
 * (patched − corrupted) / (clean − corrupted): 1 = the clean run's metric restored, 0 = as corrupted. NaN when the
 * two ends are (nearly) equal: then there is nothing to restore and only the raw values mean something.
 */
export function normalizedPatch(patched: number, clean: number, corrupt: number): number {
  const span = clean - corrupt;
  if (!Number.isFinite(patched) || !(Math.abs(span) > 1e-6)) return NaN;
  return (patched - corrupt) / span;
}

/** `+1.23` / `−0.40`. */
export function signed(v: number, digits = 2): string {
  return Number.isFinite(v) ? `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(digits)}` : '–';
}
