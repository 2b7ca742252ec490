/**
 * Float64 reference forward of the Llama family: `llama` (Llama 2/3.x, SmolLM2, TinyLlama), `mistral`, `qwen2`,
 * `qwen3`. Written from transformers' modeling_llama.py, modeling_mistral.py, modeling_qwen2.py and
 * modular_qwen3.py; imports nothing from the engine. The four differ only by flags:
 *
 * | flag | llama | mistral | qwen2 | qwen3 |
 * |---|---|---|---|---|
 * | q/k/v bias | attention_bias | no | always | attention_bias |
 * | o_proj bias | attention_bias | no | no | attention_bias |
 * | gate/up/down bias | mlp_bias | no | no | no |
 * | per-head q_norm/k_norm before RoPE | no | no | no | yes |
 * | sliding window | no | every layer when sliding_window is set | layers ≥ max_window_layers when use_sliding_window | as qwen2 |
 *
 * Per layer (pre-norm): h = x + o_proj(attn(input_layernorm(x))); x' = h + down(act(gate(n)) · up(n)),
 * n = post_attention_layernorm(h). Logits = lm_head(norm(x)) (embed_tokens when tie_word_embeddings).
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
  kvHeadOf,
  linear,
  matrix,
  numField,
  projectHeads,
  recordLayer,
  rmsNorm,
  ropeFromConfig,
  ropeInvFreq,
  setLogits,
  weight,
  type Matrix,
} from './blocks.js';
import type { RefConfig, RefHooks, RefResult, RefWeights, ReferenceForward } from './types.js';

const FAMILY = ['llama', 'mistral', 'qwen2', 'qwen3'] as const;
type ModelType = (typeof FAMILY)[number];

/** What the forward needs from config.json, with transformers' defaults. */
export interface LlamaShape {
  modelType: ModelType;
  L: number;
  E: number;
  H: number;
  KVH: number;
  /** Per-head width: `head_dim` when given, else hidden_size / num_attention_heads. */
  d: number;
  I: number;
  V: number;
  eps: number;
  act: (x: number) => number;
  tie: boolean;
  /** [L]: the sliding window of each layer, or null for full causal attention. */
  windows: (number | null)[];
  invFreq: Float64Array;
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
}

export function llamaShape(config: RefConfig): LlamaShape {
  const modelType = config.model_type as ModelType;
  if (!FAMILY.includes(modelType)) {
    throw new HeadlightError('reference-model-type', `reference: model_type ${JSON.stringify(config.model_type)} is not in the Llama family.`, `Use one of ${FAMILY.join(', ')}.`);
  }
  const L = intField(config, 'num_hidden_layers');
  const E = intField(config, 'hidden_size');
  const H = intField(config, 'num_attention_heads');
  const KVH = intField(config, 'num_key_value_heads', H);
  if (H % KVH !== 0) {
    throw new HeadlightError('reference-config', `reference: num_attention_heads ${H} is not a multiple of num_key_value_heads ${KVH}.`, 'Fix config.json.');
  }
  const d = config.head_dim == null ? E / H : intField(config, 'head_dim');
  if (!Number.isInteger(d)) throw new HeadlightError('reference-config', `reference: hidden_size ${E} is not a multiple of num_attention_heads ${H} and head_dim is missing.`, 'Add head_dim to config.json.');
  const attentionBias = (modelType === 'llama' || modelType === 'qwen3') && config.attention_bias === true;
  return {
    modelType,
    L,
    E,
    H,
    KVH,
    d,
    I: intField(config, 'intermediate_size'),
    V: intField(config, 'vocab_size'),
    eps: numField(config, 'rms_norm_eps', 1e-6),
    act: activation(config.hidden_act ?? 'silu'),
    tie: config.tie_word_embeddings === true,
    windows: layerWindows(config, modelType, L),
    invFreq: ropeInvFreq(ropeFromConfig(config, d)),
    qkvBias: modelType === 'qwen2' || attentionBias,
    oBias: attentionBias,
    mlpBias: modelType === 'llama' && config.mlp_bias === true,
  };
}

/** Each layer's sliding window (null: full attention), from `layer_types` when present, else the family's rule. */
function layerWindows(config: RefConfig, modelType: ModelType, L: number): (number | null)[] {
  const window = typeof config.sliding_window === 'number' ? config.sliding_window : null;
  const layerTypes = config.layer_types as string[] | undefined;
  if (Array.isArray(layerTypes)) {
    if (layerTypes.length !== L) throw new HeadlightError('reference-config', `reference: layer_types has ${layerTypes.length} entries for ${L} layers.`, 'Fix config.json.');
    return layerTypes.map((t) => (t === 'sliding_attention' ? window : null));
  }
  if (modelType === 'mistral') return Array.from({ length: L }, () => window);
  if (modelType === 'qwen2' || modelType === 'qwen3') {
    const on = config.use_sliding_window === true && window !== null;
    const from = typeof config.max_window_layers === 'number' ? config.max_window_layers : L;
    return Array.from({ length: L }, (_, l) => (on && l >= from ? window : null));
  }
  return Array.from({ length: L }, () => null);
}

/** The attention block's output per head (before hooks) and its probabilities. x: [T, E] normed. */
export function llamaAttention(
  s: LlamaShape,
  weights: RefWeights,
  layer: number,
  x: Matrix,
): { z: Matrix[]; probs: Float64Array[] } {
  const { H, KVH, d, E, modelType } = s;
  const p = `model.layers.${layer}.self_attn.`;
  const bias = (key: string, n: number) => (s.qkvBias ? weight(weights, key, [n]) : undefined);
  const q = linear(x, weight(weights, `${p}q_proj.weight`, [H * d, E]), bias(`${p}q_proj.bias`, H * d)); // [T, E] -> [T, H·d]
  const k = linear(x, weight(weights, `${p}k_proj.weight`, [KVH * d, E]), bias(`${p}k_proj.bias`, KVH * d)); // [T, E] -> [T, KVH·d]
  const v = linear(x, weight(weights, `${p}v_proj.weight`, [KVH * d, E]), bias(`${p}v_proj.bias`, KVH * d)); // [T, E] -> [T, KVH·d]
  const positions = Array.from({ length: x.rows }, (_, t) => t);
  const qNorm = modelType === 'qwen3' ? weight(weights, `${p}q_norm.weight`, [d]).data : undefined;
  const kNorm = modelType === 'qwen3' ? weight(weights, `${p}k_norm.weight`, [d]).data : undefined;
  const prepare = (m: Matrix, head: number, norm?: Float64Array) => {
    let h = columns(m, head * d, d); // [T, d]
    if (norm) h = rmsNorm(h, norm, s.eps); // qwen3: per-head RMSNorm before RoPE
    return applyRope(h, positions, s.invFreq); // [T, d]
  };
  const keys = Array.from({ length: KVH }, (_, g) => prepare(k, g, kNorm));
  const values = Array.from({ length: KVH }, (_, g) => columns(v, g * d, d));
  const z: Matrix[] = [];
  const probs: Float64Array[] = [];
  for (let h = 0; h < H; h++) {
    const g = kvHeadOf(h, H, KVH);
    const head = attentionHead(prepare(q, h, qNorm), keys[g], values[g], { scale: 1 / Math.sqrt(d), window: s.windows[layer] });
    z.push(head.out); // [T, d]
    probs.push(head.probs); // [T*T]
  }
  return { z, probs };
}

/** down(act(gate(x)) · up(x)), with mlp_bias biases when present. x: [T, E] -> [T, E]. */
function llamaMlp(s: LlamaShape, weights: RefWeights, layer: number, x: Matrix): Matrix {
  const { E, I } = s;
  const p = `model.layers.${layer}.mlp.`;
  const bias = (key: string, n: number) => (s.mlpBias ? weight(weights, key, [n]) : undefined);
  const gate = linear(x, weight(weights, `${p}gate_proj.weight`, [I, E]), bias(`${p}gate_proj.bias`, I)); // [T, E] -> [T, I]
  const up = linear(x, weight(weights, `${p}up_proj.weight`, [I, E]), bias(`${p}up_proj.bias`, I)); // [T, E] -> [T, I]
  const a = matrix(x.rows, I); // [T, I]
  for (let i = 0; i < a.data.length; i++) a.data[i] = s.act(gate.data[i]) * up.data[i];
  return linear(a, weight(weights, `${p}down_proj.weight`, [E, I]), bias(`${p}down_proj.bias`, E)); // [T, I] -> [T, E]
}

export const llamaForward: ReferenceForward = (config: RefConfig, weights: RefWeights, ids: readonly number[], hooks?: RefHooks): RefResult => {
  const s = llamaShape(config);
  const { L, E, V } = s;
  const T = ids.length;
  if (T === 0) throw new HeadlightError('reference-empty', 'reference: no token ids.', 'Pass at least one id.');
  const embedTokens = weight(weights, 'model.embed_tokens.weight', [V, E]);
  let x = embed(embedTokens, ids, 'model.embed_tokens.weight'); // [T, E]

  const result = emptyResult();
  for (let l = 0; l < L; l++) {
    applyResidHook(l, x, hooks);
    result.residPre.push(Float64Array.from(x.data));
    const p = `model.layers.${l}.`;
    const attn = llamaAttention(s, weights, l, rmsNorm(x, weight(weights, `${p}input_layernorm.weight`, [E]).data, s.eps));
    applyHeadHooks(l, attn.z, hooks);
    const oBias = s.oBias ? weight(weights, `${p}self_attn.o_proj.bias`, [E]) : undefined;
    const proj = projectHeads(attn.z, weight(weights, `${p}self_attn.o_proj.weight`, [E, s.H * s.d]), oBias); // H × [T, d] -> [T, E]
    x = add(x, proj.attnOut); // [T, E]
    const mlp = llamaMlp(s, weights, l, rmsNorm(x, weight(weights, `${p}post_attention_layernorm.weight`, [E]).data, s.eps)); // [T, E]
    x = add(x, mlp);
    recordLayer(result, attn.probs, proj.headOut, proj.attnOut, mlp);
  }
  result.residPre.push(Float64Array.from(x.data));

  const final = rmsNorm(x, weight(weights, 'model.norm.weight', [E]).data, s.eps); // [T, E]
  const head = s.tie ? embedTokens : weight(weights, 'lm_head.weight', [V, E]);
  return setLogits(result, linear(final, head).data, ids, V); // [T, E] -> [T, V]
};
