/**
 * Value-weighted attention of one head in the webview: α_ij·n_j / Σ_k α_ik·n_k with n_j = ‖v_j·W_O^h‖, the same
 * formula as the engine's `Run.row(sel, i, 'value-weighted')` for one head (extension/engine/analyses/engine.ts), applied to
 * the head's triangle so the matrix, the text view and the exports all show it with no other change.
 */
import type { HeadTriangle } from '../extension/common/engineProtocol';
import { halfTable } from '../extension/common/half';

/** The triangle re-weighted by the value norms, as fp32 rows (row i holds i+1 weights summing to 1, or all 0). */
export function valueWeightedTriangle(tri: HeadTriangle, norms: Float32Array): HeadTriangle {
  const T = tri.T;
  if (norms.length < T) throw new Error(`Value norms cover ${norms.length} tokens; the head's map has ${T}.`);
  const half = tri.data instanceof Uint16Array ? halfTable() : undefined;
  const src = tri.data;
  const out = new Float32Array(src.length); // [T*(T+1)/2]
  for (let i = 0, base = 0; i < T; base += ++i) {
    let total = 0;
    for (let j = 0; j <= i; j++) {
      const a = half ? half[src[base + j]] : src[base + j];
      const w = a * norms[j];
      out[base + j] = w;
      total += w;
    }
    if (total > 0) for (let j = 0; j <= i; j++) out[base + j] /= total;
  }
  return { T, data: out };
}
