/**
 * Blocks every family's graph shares. Attention stays plain MatMul + Softmax so the probabilities are a value the
 * graph can output (no fused kernel hides them).
 */
import type { GraphBuilder } from './graphBuilder';

/**
 * Scaled dot-product attention over every head: softmax(q·kᵀ·scale + mask)·v.
 * q [1, H, T, D], k and v [1, H, S, D] (cached keys first), mask [1, 1, T, S] (0 or −1e30), scale a scalar
 * initializer -> probs [1, H, T, S], out [1, H, T, D].
 */
export function sdpa(g: GraphBuilder, q: string, k: string, v: string, mask: string, scale: string): { probs: string; out: string } {
  const kT = g.op('Transpose', [k], { perm: [0, 1, 3, 2] }); // [1, H, D, S]
  const scores = g.op('Mul', [g.op('MatMul', [q, kT]), scale]); // [1, H, T, S]
  const probs = g.op('Softmax', [g.op('Add', [scores, mask])], { axis: -1 }); // [1, H, T, S]
  const out = g.op('MatMul', [probs, v]); // [1, H, T, D]
  return { probs, out };
}
