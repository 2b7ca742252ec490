/** Comparing engine answers with the reference. */
import assert from 'node:assert/strict';

/** Largest absolute difference of two equally long arrays; positions NaN in both are equal. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length');
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i]) && Number.isNaN(b[i])) continue;
    d = Math.max(d, Math.abs(a[i] - b[i]));
  }
  return d;
}
