/**
 * Blocks every family's graph shares. Attention stays plain MatMul + Softmax so the probabilities are a value the
 * graph can output (no fused kernel hides them).
 */
import type { GraphBuilder } from './graphBuilder';

/**
 * Scaled dot-product attention over every head: softmax(q·kᵀ·scale + mask)·v.
 * q [1, H, T, D], k and v [1, H, S, D] (cached keys first), mask [1, 1, T, S] (0 or −1e30), scale a scalar
 * initializer -> probs [1, H, T, S], out [1, H, T, D]. `cap` (Gemma 2's attn_logit_softcapping): the scores become
 * cap·tanh(scores/cap) before the mask is added.
 */
export function sdpa(g: GraphBuilder, q: string, k: string, v: string, mask: string, scale: string, cap?: number): { probs: string; out: string } {
  const kT = g.op('Transpose', [k], { perm: [0, 1, 3, 2] }); // [1, H, D, S]
  let scores = g.op('Mul', [g.op('MatMul', [q, kT]), scale]); // [1, H, T, S]
  if (cap) scores = softcap(g, scores, cap); // Gemma 2: capped BEFORE the mask, so masked keys still get weight 0
  const probs = g.op('Softmax', [g.op('Add', [scores, mask])], { axis: -1 }); // [1, H, T, S]
  const out = g.op('MatMul', [probs, v]); // [1, H, T, D]
  return { probs, out };
}

/**
 * Grouped-query attention: keys or values of KVH heads [1, KVH, S, D] repeated for the `groups` query heads that
 * read each (query head h reads KV head ⌊h / groups⌋, as transformers' repeat_kv) -> [1, KVH·groups, S, D].
 */
export function repeatKv(g: GraphBuilder, x: string, H: number, groups: number, D: number): string {
  if (groups === 1) return x;
  const five = g.op('Unsqueeze', [x, g.ints('axes_two', [2])]); // [1, KVH, 1, S, D]
  const expanded = g.op('Expand', [five, g.ints(`expand_groups_${groups}`, [1, 1, groups, 1, 1])]); // [1, KVH, G, S, D]
  return g.op('Reshape', [expanded, g.ints(`shape_query_heads_${H}_${D}`, [1, H, -1, D])]); // [1, H, S, D]
}

/** RMSNorm over the last axis, in fp32: x / √(mean(x²) + eps) · w. x [..., N], w [N]. */
export function rmsNorm(g: GraphBuilder, x: string, w: string, eps: number): string {
  const meanSquare = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: [-1], keepdims: 1 }); // [..., 1]
  const rms = g.op('Sqrt', [g.op('Add', [meanSquare, g.scalar(`c_eps_${eps}`, eps)])]); // [..., 1]
  return g.op('Mul', [g.op('Div', [x, rms]), w]); // [..., N]
}

/** Gemma's RMSNorm: x / √(mean(x²) + eps) · (1 + w), in fp32 (Gemma stores the gain as an offset from 1). */
export function rmsNormPlusOne(g: GraphBuilder, x: string, w: string, eps: number): string {
  return rmsNorm(g, x, g.op('Add', [w, g.scalar('c_one', 1)]), eps); // [..., N]
}

/** cap·tanh(x/cap), elementwise (Gemma 2's soft-capping of attention scores and of the final logits). */
export function softcap(g: GraphBuilder, x: string, cap: number): string {
  const c = g.scalar(`c_softcap_${cap}`, cap);
  return g.op('Mul', [g.op('Tanh', [g.op('Div', [x, c])]), c]);
}

/** LayerNorm over the last axis with weight and bias [N]. */
export function layerNorm(g: GraphBuilder, x: string, w: string, b: string, eps: number): string {
  return g.op('LayerNormalization', [x, w, b], { axis: -1, epsilon: { float: eps } });
}

/** x [1, T, nIn] · Wᵀ + b with W stored [nOut, nIn] as torch's Linear stores it -> [1, T, nOut]. */
export function linearT(g: GraphBuilder, x: string, w: string, nIn: number, nOut: number, b?: string): string {
  const rows = g.op('Reshape', [x, g.ints(`shape_rows_${nIn}`, [-1, nIn])]); // [T, nIn]
  const y = g.op('Gemm', b ? [rows, w, b] : [rows, w], { transB: 1 }); // [T, nOut]
  return g.op('Reshape', [y, g.ints(`shape_stream_${nOut}`, [1, -1, nOut])]); // [1, T, nOut]
}

export type ActivationName = 'silu' | 'gelu' | 'gelu_new' | 'gelu_pytorch_tanh' | 'gelu_fast' | 'relu';
export const ACTIVATION_NAMES: readonly ActivationName[] = ['silu', 'gelu', 'gelu_new', 'gelu_pytorch_tanh', 'gelu_fast', 'relu'];

/** transformers' ACT2FN for the names above: silu x·σ(x), exact GELU with erf, tanh GELU, ReLU. */
export function activation(g: GraphBuilder, name: ActivationName, x: string): string {
  const half = () => g.scalar('c_half', 0.5);
  const one = () => g.scalar('c_one', 1);
  switch (name) {
    case 'silu':
      return g.op('Mul', [x, g.op('Sigmoid', [x])]);
    case 'gelu': {
      const erf = g.op('Erf', [g.op('Mul', [x, g.scalar('c_inv_sqrt2', Math.SQRT1_2)])]); // 0.5·x·(1 + erf(x/√2))
      return g.op('Mul', [g.op('Mul', [half(), x]), g.op('Add', [one(), erf])]);
    }
    case 'gelu_new':
    case 'gelu_fast':
    case 'gelu_pytorch_tanh': {
      // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
      const cube = g.op('Mul', [x, g.op('Mul', [x, x])]);
      const inner = g.op('Mul', [g.scalar('c_gelu_k', Math.sqrt(2 / Math.PI)), g.op('Add', [x, g.op('Mul', [g.scalar('c_gelu_c', 0.044715), cube])])]);
      return g.op('Mul', [g.op('Mul', [half(), x]), g.op('Add', [one(), g.op('Tanh', [inner])])]);
    }
    case 'relu':
      return g.op('Relu', [x]);
  }
}

/**
 * What a gated-off head outputs instead, per position: head_mean[l] [1, H, 1, D] plus the first rows of head_rows
 * [1, H, P, D] (P = 1 broadcasts one row; P = the layer's T gives each position its own, activation patching's
 * clean run; a layer with 0 rows takes 0). Returns [1, H, 1 or T, D].
 */
export function headReplacement(g: GraphBuilder, perHead: string, headMean: string): string {
  const rowsEnd = g.op('Gather', [g.op('Shape', [perHead]), g.ints('dim_head_rows', [2])], { axis: 0 }); // [1]: T
  const rows = g.op('Slice', ['head_rows', g.ints('zero', [0]), rowsEnd, g.ints('axis_head_rows', [2])]); // [1, H, min(P, T), D]
  return g.op('Add', [headMean, rows]); // [1, H, 1 or T, D]
}
