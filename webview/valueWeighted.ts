/**
 * Value-weighted attention of one head in the webview: each row of the head's triangle weighed by the value norms
 * with the same function the engine uses for its value-weighted rows (common/valueWeighted.ts), so the matrix, the
 * text view and the exports all show it with no other change.
 */
import type { HeadTriangle } from '../extension/common/engineProtocol';
import { HeadlightError } from '../extension/common/errors';
import { halfTable } from '../extension/common/half';
import { valueWeighted } from '../extension/common/valueWeighted';

/** The triangle re-weighted by the value norms, as fp32 rows (row i holds i+1 weights summing to 1, or all 0). */
export function valueWeightedTriangle(tri: HeadTriangle, norms: Float32Array): HeadTriangle {
  const T = tri.T;
  if (norms.length < T) {
    throw new HeadlightError('bad-answer', `Value norms cover ${norms.length} tokens; the head's map has ${T}.`, 'Run the analysis again (the run changed while the panel asked).');
  }
  const half = tri.data instanceof Uint16Array ? halfTable() : undefined;
  const src = tri.data;
  const out = new Float32Array(src.length); // [T*(T+1)/2]
  const row = new Float32Array(T); // one row's α, decoded from fp16 bits
  for (let i = 0, base = 0; i < T; base += ++i) {
    const n = i + 1;
    let probs: Float32Array;
    if (half) {
      for (let j = 0; j < n; j++) row[j] = half[src[base + j]];
      probs = row.subarray(0, n);
    } else probs = (src as Float32Array).subarray(base, base + n);
    valueWeighted(probs, norms.subarray(0, n), out.subarray(base, base + n)); // [n] -> [n], sums to 1
  }
  return { T, data: out };
}
