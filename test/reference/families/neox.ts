/**
 * Float64 reference forward of GPT-NeoX (`gpt_neox`: Pythia, GPT-NeoX-20B), from transformers' modeling_gpt_neox.py;
 * imports nothing from the engine.
 *
 * - LayerNorm with bias (`layer_norm_eps`), untied `embed_out`.
 * - Fused `query_key_value` [3E, E] whose output is laid out PER HEAD: the modeling file views it as [T, H, 3d] and
 *   takes q_h, k_h, v_h as the three d-wide thirds of head h's 3d slice (not [Q | K | V] across heads).
 * - Rotate-half RoPE on the first rotary_ndims = int(d · rotary_pct) dims of q and k (v5: partial_rotary_factor),
 *   base `rotary_emb_base` (v5: rope_theta); scores scaled by d^−½.
 * - use_parallel_residual: x + attn(ln1 x) + mlp(ln2 x); otherwise h = x + attn(ln1 x), h + mlp(ln2 h).
 * - MLP dense_4h_to_h(act(dense_h_to_4h(x))), `hidden_act` (Pythia: exact gelu).
 * - The stale buffers some checkpoints carry (`attention.bias`, `attention.masked_bias`, `attention.rotary_emb.inv_freq`)
 *   are never read: the mask and frequencies are recomputed here.
 */
import { HeadlightError } from '../../../extension/common/errors.js';
import {
  activation,
  add,
  applyHeadHooks,
  applyResidHook,
  applyRope,
  attentionHead,
  columns,
  embed,
  emptyResult,
  intField,
  layerNorm,
  linear,
  numField,
  projectHeads,
  recordLayer,
  ropeFromConfig,
  ropeInvFreq,
  setLogits,
  weight,
  type Matrix,
} from './blocks.js';
import type { RefConfig, RefHooks, RefResult, RefTensor, RefWeights, ReferenceForward } from './types.js';

export interface NeoxShape {
  L: number;
  E: number;
  H: number;
  d: number;
  I: number;
  V: number;
  eps: number;
  act: (x: number) => number;
  parallel: boolean;
  /** `attention_bias` (default true): biases on query_key_value and dense. */
  bias: boolean;
  invFreq: Float64Array;
}

export function neoxShape(config: RefConfig): NeoxShape {
  if (config.model_type !== 'gpt_neox') {
    throw new HeadlightError('reference-model-type', `reference: model_type ${JSON.stringify(config.model_type)} is not gpt_neox.`, 'Use the reference of its family.');
  }
  const E = intField(config, 'hidden_size');
  const H = intField(config, 'num_attention_heads');
  if (E % H !== 0) throw new HeadlightError('reference-config', `reference: hidden_size ${E} is not a multiple of num_attention_heads ${H}.`, 'Fix config.json.');
  const d = E / H;
  return {
    L: intField(config, 'num_hidden_layers'),
    E,
    H,
    d,
    I: intField(config, 'intermediate_size'),
    V: intField(config, 'vocab_size'),
    eps: numField(config, 'layer_norm_eps', 1e-5),
    act: activation(config.hidden_act ?? 'gelu'),
    parallel: config.use_parallel_residual !== false,
    bias: config.attention_bias !== false,
    invFreq: ropeInvFreq(ropeFromConfig({ rotary_pct: 0.25, ...config }, d)),
  };
}

function norm(weights: RefWeights, key: string, E: number, eps: number, x: Matrix): Matrix {
  return layerNorm(x, weight(weights, `${key}.weight`, [E]).data, weight(weights, `${key}.bias`, [E]).data, eps);
}

/** Each head's attention output (before hooks) and probabilities. x: [T, E], already normed. */
export function neoxAttention(s: NeoxShape, weights: RefWeights, layer: number, x: Matrix): { z: Matrix[]; probs: Float64Array[] } {
  const { E, H, d } = s;
  const p = `gpt_neox.layers.${layer}.attention.`;
  const qkvBias: RefTensor | undefined = s.bias ? weight(weights, `${p}query_key_value.bias`, [3 * E]) : undefined;
  const qkv = linear(x, weight(weights, `${p}query_key_value.weight`, [3 * E, E]), qkvBias); // [T, E] -> [T, 3E] = [T, H, 3d]
  const positions = Array.from({ length: x.rows }, (_, t) => t);
  const z: Matrix[] = [];
  const probs: Float64Array[] = [];
  for (let h = 0; h < H; h++) {
    const q = applyRope(columns(qkv, h * 3 * d, d), positions, s.invFreq); // [T, d], first rotary_ndims dims turned
    const k = applyRope(columns(qkv, h * 3 * d + d, d), positions, s.invFreq); // [T, d]
    const v = columns(qkv, h * 3 * d + 2 * d, d); // [T, d]
    const head = attentionHead(q, k, v, { scale: 1 / Math.sqrt(d) });
    z.push(head.out);
    probs.push(head.probs);
  }
  return { z, probs };
}

/** dense_4h_to_h(act(dense_h_to_4h(x))). x: [T, E] -> [T, E]. */
function neoxMlp(s: NeoxShape, weights: RefWeights, layer: number, x: Matrix): Matrix {
  const { E, I } = s;
  const p = `gpt_neox.layers.${layer}.mlp.`;
  const a = linear(x, weight(weights, `${p}dense_h_to_4h.weight`, [I, E]), weight(weights, `${p}dense_h_to_4h.bias`, [I])); // [T, E] -> [T, I]
  for (let i = 0; i < a.data.length; i++) a.data[i] = s.act(a.data[i]);
  return linear(a, weight(weights, `${p}dense_4h_to_h.weight`, [E, I]), weight(weights, `${p}dense_4h_to_h.bias`, [E])); // [T, I] -> [T, E]
}

export const neoxForward: ReferenceForward = (config: RefConfig, weights: RefWeights, ids: readonly number[], hooks?: RefHooks): RefResult => {
  const s = neoxShape(config);
  const { L, E, V, eps } = s;
  if (ids.length === 0) throw new HeadlightError('reference-empty', 'reference: no token ids.', 'Pass at least one id.');
  let x = embed(weight(weights, 'gpt_neox.embed_in.weight', [V, E]), ids, 'gpt_neox.embed_in.weight'); // [T, E]

  const result = emptyResult();
  for (let l = 0; l < L; l++) {
    applyResidHook(l, x, hooks);
    result.residPre.push(Float64Array.from(x.data));
    const p = `gpt_neox.layers.${l}.`;
    const attn = neoxAttention(s, weights, l, norm(weights, `${p}input_layernorm`, E, eps, x));
    applyHeadHooks(l, attn.z, hooks);
    const denseBias = s.bias ? weight(weights, `${p}attention.dense.bias`, [E]) : undefined;
    const proj = projectHeads(attn.z, weight(weights, `${p}attention.dense.weight`, [E, E]), denseBias); // H × [T, d] -> [T, E]
    let mlp: Matrix;
    if (s.parallel) {
      mlp = neoxMlp(s, weights, l, norm(weights, `${p}post_attention_layernorm`, E, eps, x)); // reads the layer's input
      x = add(add(x, proj.attnOut), mlp);
    } else {
      x = add(x, proj.attnOut);
      mlp = neoxMlp(s, weights, l, norm(weights, `${p}post_attention_layernorm`, E, eps, x)); // reads x + attn
      x = add(x, mlp);
    }
    recordLayer(result, attn.probs, proj.headOut, proj.attnOut, mlp);
  }
  result.residPre.push(Float64Array.from(x.data));

  const final = norm(weights, 'gpt_neox.final_layer_norm', E, eps, x); // [T, E]
  return setLogits(result, linear(final, weight(weights, 'embed_out.weight', [V, E])).data, ids, V); // [T, E] -> [T, V]
};
