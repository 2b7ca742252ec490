/**
 * Float64 reference forwards of Gemma 2 (`gemma2`) and Gemma 3 text (`gemma3_text`, and the text part of multimodal
 * `gemma3` checkpoints), written from transformers' gemma2/modeling_gemma2.py, gemma3/modular_gemma3.py,
 * configuration_gemma3.py, modeling_rope_utils.py and masking_utils.py over the shared blocks. Imports nothing from
 * the engine.
 *
 * One decoder layer (both versions):
 *   h   = x + post_attention_layernorm(o_proj(attention(input_layernorm(x))))
 *   out = h + post_feedforward_layernorm(down(gelu_tanh(gate(g)) · up(g))),  g = pre_feedforward_layernorm(h)
 * Every norm is RMSNorm with a (1 + w) gain. Scores are q·k · query_pre_attn_scalar^-½ (not head_dim^-½),
 * soft-capped as cap·tanh(s/cap) BEFORE the mask when `attn_logit_softcapping` is set (Gemma 2), then causal
 * (+ sliding-window on sliding layers) masked and softmaxed; grouped-query heads share k/v. Gemma 3 adds
 * q_norm/k_norm (per head, (1 + w)) before the rotary embedding, and rotates sliding layers with
 * rope_local_base_freq (unscaled) and full layers with rope_theta and rope_scaling. Embeddings are multiplied by
 * √hidden_size rounded to the weights' dtype (transformers makes the normalizer a tensor of that dtype: √48 =
 * 6.928… is 6.9375 in bfloat16). Logits come from the tied embedding (or `lm_head.weight`), soft-capped by
 * `final_logit_softcapping` when set.
 *
 * RefResult.headOut for Gemma is head h's slice of o_proj applied to its output, BEFORE post_attention_layernorm:
 * that norm is nonlinear, so a head's contribution after it is not defined. Σ_h headOut (+ o_proj bias, if any) is
 * what enters the post-attention norm. attnOut and mlpOut are what the residual stream receives: AFTER the post norms.
 */
import { HeadlightError } from '../../../extension/common/errors.js';
import type { FloatDtype } from '../../fixtures/safetensorsWriter.js';
import { bf16BitsToNumber, f16BitsToNumber, f32ToBf16Bits, f32ToF16Bits } from '../../fixtures/safetensorsWriter.js';
import type { CheckpointSpec, TensorInit, TensorSpec } from '../../fixtures/hfCheckpoint.js';
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
  optionalWeight,
  projectHeads,
  recordLayer,
  rmsNorm,
  ropeInvFreq,
  setLogits,
  weight,
  type Matrix,
  type RopeScaling,
} from './blocks.js';
import type { RefConfig, RefHooks, RefWeights, ReferenceForward } from './types.js';

// ---------------------------------------------------------------- the model's facts, read from config.json

export type LayerType = 'sliding_attention' | 'full_attention';

/** Everything in config.json that changes Gemma's computation, with Gemma2Config / Gemma3TextConfig defaults. */
export interface GemmaShape {
  modelType: 'gemma2' | 'gemma3_text';
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  eps: number;
  /** query_pre_attn_scalar^-½. */
  scale: number;
  attnSoftcap: number | null;
  finalSoftcap: number | null;
  slidingWindow: number | null;
  layerTypes: LayerType[]; // [L]
  invFreq: Float64Array[]; // [L] each [head_dim / 2]
  qkNorm: boolean;
  attentionBias: boolean;
  /** √hidden_size as a tensor of the weights' dtype. */
  embedScale: number;
  act: (x: number) => number;
}

function badConfig(field: string, message: string, hint = 'Fix config.json.'): HeadlightError {
  return new HeadlightError('reference-config', `reference (Gemma): config.json field ${field} ${message}.`, hint);
}

function positiveNumber(cfg: RefConfig, key: string, fallback: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number' || !(v > 0)) throw badConfig(key, `is ${JSON.stringify(v)}, want a positive number`);
  return v;
}

/** A soft-cap: null when absent-with-no-default or null (off), else a positive number. */
function optionalCap(cfg: RefConfig, key: string, fallback: number | null): number | null {
  const v = key in cfg ? cfg[key] : fallback;
  if (v === null || v === undefined) return null;
  if (typeof v !== 'number' || !(v > 0)) throw badConfig(key, `is ${JSON.stringify(v)}, want a positive number or null`);
  return v;
}

export type TorchDtype = 'float32' | 'float16' | 'bfloat16';

/** The weights' dtype: config `torch_dtype` (v4) or `dtype` (v5), as hfCheckpoint.ts writes it; float32 if absent. */
export function weightDtype(cfg: RefConfig): TorchDtype {
  const v = cfg.torch_dtype ?? cfg.dtype ?? 'float32';
  if (v === 'float32' || v === 'float16' || v === 'bfloat16') return v;
  throw badConfig('torch_dtype', `is ${JSON.stringify(v)}, want "float32", "float16" or "bfloat16"`);
}

/** x as torch.tensor(x, dtype=…) holds it: float32, then nearest-even half or bfloat16. */
export function roundToDtype(x: number, dtype: TorchDtype): number {
  if (dtype === 'float16') return f16BitsToNumber(f32ToF16Bits(x));
  if (dtype === 'bfloat16') return bf16BitsToNumber(f32ToBf16Bits(x));
  return Math.fround(x);
}

/** Which layers slide: `layer_types` if given, else Gemma 2's even layers, else Gemma 3's sliding_window_pattern. */
function layerTypesOf(cfg: RefConfig, L: number, modelType: GemmaShape['modelType']): LayerType[] {
  const given = cfg.layer_types;
  if (given !== undefined && given !== null) {
    if (!Array.isArray(given) || given.length !== L || given.some((t) => t !== 'sliding_attention' && t !== 'full_attention')) {
      throw badConfig('layer_types', `is ${JSON.stringify(given)}, want "sliding_attention" or "full_attention" for each of the ${L} layers`);
    }
    return given as LayerType[];
  }
  // Gemma 2: is_sliding = not bool(layer_idx % 2). Gemma 3 (older configs): layer i is full iff (i + 1) % pattern == 0.
  const pattern = modelType === 'gemma2' ? 2 : intField(cfg, 'sliding_window_pattern', 6);
  return Array.from({ length: L }, (_, i) => ((i + 1) % pattern === 0 ? 'full_attention' : 'sliding_attention'));
}

type RopeDict = RopeScaling & { rope_theta?: number };

function ropeDict(field: string, v: unknown): RopeDict | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'object' || Array.isArray(v)) throw badConfig(field, `is ${JSON.stringify(v)}, want an object`);
  return v as RopeDict;
}

/**
 * inv_freq per layer. Gemma 2: one base, `rope_theta` (default 1e4) with `rope_scaling`. Gemma 3: full layers use
 * rope_theta (default 1e6) and rope_scaling; sliding layers rope_local_base_freq (default 1e4), unscaled (the model
 * builds its local rotary from a config copy with rope_scaling = default). transformers v5 writes `rope_parameters`,
 * flat (Gemma 2) or keyed by layer type (Gemma 3); both forms are read.
 */
function invFreqOf(cfg: RefConfig, types: LayerType[], modelType: GemmaShape['modelType'], headDim: number): Float64Array[] {
  const v5 = ropeDict('rope_parameters', cfg.rope_parameters);
  const at = (theta: number, scaling: RopeDict | null) => ropeInvFreq({ theta, rotaryDim: headDim, scaling });
  if (modelType === 'gemma2') {
    const one = at(v5?.rope_theta ?? positiveNumber(cfg, 'rope_theta', 1e4), v5 ?? ropeDict('rope_scaling', cfg.rope_scaling));
    return types.map(() => one);
  }
  let full: Float64Array;
  let local: Float64Array;
  if (v5 && ('full_attention' in v5 || 'sliding_attention' in v5)) {
    const byType = v5 as Record<string, unknown>;
    const f = ropeDict('rope_parameters.full_attention', byType.full_attention);
    const s = ropeDict('rope_parameters.sliding_attention', byType.sliding_attention);
    full = at(f?.rope_theta ?? 1e6, f);
    local = at(s?.rope_theta ?? 1e4, s);
  } else {
    full = at(v5?.rope_theta ?? positiveNumber(cfg, 'rope_theta', 1e6), v5 ?? ropeDict('rope_scaling', cfg.rope_scaling));
    local = at(positiveNumber(cfg, 'rope_local_base_freq', 1e4), null);
  }
  return types.map((t) => (t === 'sliding_attention' ? local : full));
}

/** The text model's config: a multimodal `gemma3` config.json nests it under text_config (its dtype may sit outside). */
function textConfigOf(config: RefConfig): { cfg: RefConfig; modelType: GemmaShape['modelType'] } {
  const type = config.model_type;
  if (type === 'gemma2' || type === 'gemma3_text') return { cfg: config, modelType: type };
  if (type === 'gemma3') {
    const text = config.text_config;
    if (typeof text !== 'object' || text === null) throw badConfig('text_config', 'is missing; a "gemma3" config.json carries the text model there');
    const cfg: RefConfig = { ...(text as RefConfig) };
    cfg.torch_dtype ??= config.torch_dtype ?? config.dtype;
    return { cfg, modelType: 'gemma3_text' };
  }
  throw badConfig('model_type', `is ${JSON.stringify(type)}; this reference handles "gemma2", "gemma3_text" and "gemma3"`, 'Use the reference of that family.');
}

/** config.json → GemmaShape. */
export function gemmaShape(config: RefConfig): GemmaShape {
  const { cfg, modelType } = textConfigOf(config);
  const g3 = modelType === 'gemma3_text';
  const hidden = intField(cfg, 'hidden_size', 2304);
  const layers = intField(cfg, 'num_hidden_layers', 26);
  const heads = intField(cfg, 'num_attention_heads', 8);
  const kvHeads = intField(cfg, 'num_key_value_heads', 4);
  if (heads % kvHeads !== 0) throw badConfig('num_key_value_heads', `(${kvHeads}) does not divide num_attention_heads (${heads})`);
  const headDim = intField(cfg, 'head_dim', 256);
  const types = layerTypesOf(cfg, layers, modelType);
  const window = cfg.sliding_window === undefined ? 4096 : cfg.sliding_window;
  if (window !== null && (typeof window !== 'number' || !Number.isInteger(window) || window <= 0)) {
    throw badConfig('sliding_window', `is ${JSON.stringify(window)}, want a positive integer or null`);
  }
  return {
    modelType,
    vocab: intField(cfg, 'vocab_size', g3 ? 262208 : 256000),
    hidden,
    layers,
    heads,
    kvHeads,
    headDim,
    intermediate: intField(cfg, 'intermediate_size', 9216),
    eps: positiveNumber(cfg, 'rms_norm_eps', 1e-6),
    scale: positiveNumber(cfg, 'query_pre_attn_scalar', 256) ** -0.5,
    attnSoftcap: optionalCap(cfg, 'attn_logit_softcapping', g3 ? null : 50),
    finalSoftcap: optionalCap(cfg, 'final_logit_softcapping', g3 ? null : 30),
    slidingWindow: window as number | null,
    layerTypes: types,
    invFreq: invFreqOf(cfg, types, modelType, headDim),
    qkNorm: g3,
    attentionBias: cfg.attention_bias === true,
    embedScale: roundToDtype(Math.sqrt(hidden), weightDtype(cfg)),
    // Gemma configs say hidden_activation; the oldest only hidden_act.
    act: activation(cfg.hidden_activation ?? cfg.hidden_act ?? 'gelu_pytorch_tanh'),
  };
}

/**
 * Where the text model's keys start: `model.` (text-only), `model.language_model.` (multimodal, transformers ≥ 4.52)
 * or `language_model.model.` (multimodal, as older exports store it).
 */
export function gemmaPrefix(weights: RefWeights): string {
  for (const p of ['model.', 'model.language_model.', 'language_model.model.']) if (weights.has(`${p}embed_tokens.weight`)) return p;
  throw new HeadlightError(
    'reference-missing-tensor',
    'reference (Gemma): no embed_tokens.weight under "model.", "model.language_model." or "language_model.model.".',
    'Pass the checkpoint tensors by their Hugging Face key names.',
  );
}

// ---------------------------------------------------------------- the model

/** cap · tanh(s / cap), or s when cap is null. */
export function softcap(s: number, cap: number | null): number {
  return cap === null ? s : cap * Math.tanh(s / cap);
}

/** Gemma's norm: RMSNorm with gain (1 + w). [T, n] -> [T, n]. */
function norm(weights: RefWeights, key: string, x: Matrix, eps: number): Matrix {
  return rmsNorm(x, weight(weights, key, [x.cols]).data, eps, true);
}

/** q_norm / k_norm: the (1 + w) RMSNorm over each head's d dims of every position. [T, n·d] -> [T, n·d]. */
function perHeadNorm(weights: RefWeights, key: string, x: Matrix, d: number, eps: number): Matrix {
  const rows: Matrix = { rows: x.rows * (x.cols / d), cols: d, data: x.data }; // [T·n, d]: one row per (position, head)
  const normed = norm(weights, key, rows, eps);
  return { rows: x.rows, cols: x.cols, data: normed.data };
}

/** Layer l's self-attention on the normed stream xn [T, E]: maps, per-head contributions and o_proj's output. */
function attention(s: GemmaShape, weights: RefWeights, p: string, l: number, xn: Matrix, hooks: RefHooks | undefined) {
  const { hidden: E, heads: H, kvHeads: KV, headDim: d } = s;
  const a = `${p}layers.${l}.self_attn.`;
  const bias = (name: string, n: number) => (s.attentionBias ? weight(weights, `${a}${name}.bias`, [n]) : undefined);
  let q = linear(xn, weight(weights, `${a}q_proj.weight`, [H * d, E]), bias('q_proj', H * d)); // [T, E] -> [T, H·d]
  let k = linear(xn, weight(weights, `${a}k_proj.weight`, [KV * d, E]), bias('k_proj', KV * d)); // [T, E] -> [T, KV·d]
  const v = linear(xn, weight(weights, `${a}v_proj.weight`, [KV * d, E]), bias('v_proj', KV * d)); // [T, E] -> [T, KV·d]
  if (s.qkNorm) {
    q = perHeadNorm(weights, `${a}q_norm.weight`, q, d, s.eps); // [T, H·d], each head normed
    k = perHeadNorm(weights, `${a}k_norm.weight`, k, d, s.eps); // [T, KV·d]
  }
  const positions = Array.from({ length: xn.rows }, (_, t) => t);
  const keys = Array.from({ length: KV }, (_, g) => applyRope(columns(k, g * d, d), positions, s.invFreq[l])); // KV × [T, d]
  const values = Array.from({ length: KV }, (_, g) => columns(v, g * d, d)); // KV × [T, d]
  const window = s.layerTypes[l] === 'sliding_attention' ? s.slidingWindow : null;
  const probs: Float64Array[] = [];
  const z: Matrix[] = [];
  for (let h = 0; h < H; h++) {
    const g = kvHeadOf(h, H, KV);
    const qh = applyRope(columns(q, h * d, d), positions, s.invFreq[l]); // [T, d]
    const head = attentionHead(qh, keys[g], values[g], { scale: s.scale, window, softcap: s.attnSoftcap });
    probs.push(head.probs);
    z.push(head.out);
  }
  applyHeadHooks(l, z, hooks);
  const proj = projectHeads(z, weight(weights, `${a}o_proj.weight`, [E, H * d]), bias('o_proj', E)); // H × [T, d] -> [T, E]
  return { probs, headOut: proj.headOut, out: proj.attnOut };
}

/** down(act(gate(x)) · up(x)): [T, E] -> [T, I] -> [T, E]. */
function mlp(s: GemmaShape, weights: RefWeights, p: string, l: number, x: Matrix): Matrix {
  const { hidden: E, intermediate: I } = s;
  const m = `${p}layers.${l}.mlp.`;
  const gate = linear(x, weight(weights, `${m}gate_proj.weight`, [I, E])); // [T, E] -> [T, I]
  const up = linear(x, weight(weights, `${m}up_proj.weight`, [I, E])); // [T, E] -> [T, I]
  for (let i = 0; i < gate.data.length; i++) gate.data[i] = s.act(gate.data[i]) * up.data[i];
  return linear(gate, weight(weights, `${m}down_proj.weight`, [E, I])); // [T, I] -> [T, E]
}

/**
 * Gemma 2 / Gemma 3 text forward over `ids`. Hooks as in blocks.ts: headMask multiplies each head's output before
 * o_proj, then patchHeadOut may overwrite it; patchResidPre sees the stream entering layers 0..L−1, and residPre
 * records the stream after it.
 */
export const gemmaForward: ReferenceForward = (config, weights, ids, hooks) => {
  const s = gemmaShape(config);
  const { vocab: V, hidden: E, layers: L } = s;
  const p = gemmaPrefix(weights);
  if (ids.length === 0) throw new HeadlightError('reference-token-id', 'reference (Gemma): no token ids.', 'Pass at least one id.');
  const table = weight(weights, `${p}embed_tokens.weight`, [V, E]);
  let x = embed(table, ids, `${p}embed_tokens.weight`); // [T, E]
  for (let i = 0; i < x.data.length; i++) x.data[i] *= s.embedScale; // · √E in the weights' dtype

  const result = emptyResult();
  for (let l = 0; l < L; l++) {
    applyResidHook(l, x, hooks);
    result.residPre.push(Float64Array.from(x.data));
    const lp = `${p}layers.${l}.`;
    const attn = attention(s, weights, p, l, norm(weights, `${lp}input_layernorm.weight`, x, s.eps), hooks);
    const attnOut = norm(weights, `${lp}post_attention_layernorm.weight`, attn.out, s.eps); // [T, E]
    x = add(x, attnOut);
    const ff = mlp(s, weights, p, l, norm(weights, `${lp}pre_feedforward_layernorm.weight`, x, s.eps)); // [T, E]
    const mlpOut = norm(weights, `${lp}post_feedforward_layernorm.weight`, ff, s.eps); // [T, E]
    x = add(x, mlpOut);
    recordLayer(result, attn.probs, attn.headOut, attnOut, mlpOut);
  }
  result.residPre.push(Float64Array.from(x.data));

  const final = norm(weights, `${p}norm.weight`, x, s.eps); // [T, E]
  const lmHead = optionalWeight(weights, 'lm_head.weight', [V, E]) ?? optionalWeight(weights, 'language_model.lm_head.weight', [V, E]) ?? table;
  const logits = linear(final, lmHead).data; // [T, E] -> [T, V]
  for (let i = 0; i < logits.length; i++) logits[i] = softcap(logits[i], s.finalSoftcap);
  return setLogits(result, logits, ids, V);
};

// ---------------------------------------------------------------- tiny checkpoints (for test/fixtures/hfCheckpoint.ts)

export interface GemmaSpecOptions {
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  slidingWindow: number | null;
  maxPositions?: number;
  /** Default head_dim (the scale is then head_dim^-½ as in the released models). */
  queryPreAttnScalar?: number;
  rmsNormEps?: number;
  /** No lm_head.weight (default true, as every Gemma). */
  tie?: boolean;
  /** Typical std of the attention scores (default 4: far from uniform). */
  qkScale?: number;
  /** Std of the (1 + w) norms' w (default 0.1). */
  normStd?: number;
}

export interface Gemma2SpecOptions extends GemmaSpecOptions {
  /** attn_logit_softcapping; default 50, null turns it off. */
  attnSoftcap?: number | null;
  /** final_logit_softcapping; default 30, null turns it off. */
  finalSoftcap?: number | null;
  ropeTheta?: number;
  /** Write layer_types (v4.5x configs do) instead of leaving the even-layers rule to the model. */
  layerTypes?: LayerType[];
}

export interface Gemma3SpecOptions extends GemmaSpecOptions {
  /** Written as layer_types; without it the config carries sliding_window_pattern (older configs' form). */
  layerTypes?: LayerType[];
  slidingWindowPattern?: number;
  ropeTheta?: number;
  ropeLocalBaseFreq?: number;
  /** rope_scaling of full layers, e.g. { rope_type: 'linear', factor: 8 } as gemma-3-4b has. */
  ropeScaling?: RopeScaling | null;
  /** 'v4' (default): rope_theta + rope_local_base_freq + rope_scaling; 'v5': rope_parameters keyed by layer type. */
  configForm?: 'v4' | 'v5';
  /** A multimodal `gemma3` config (text under text_config) with keys under `model.language_model.`. */
  multimodal?: boolean;
}

function gemmaConfig(o: GemmaSpecOptions): RefConfig {
  return {
    vocab_size: o.vocab,
    hidden_size: o.hidden,
    intermediate_size: o.intermediate,
    num_hidden_layers: o.layers,
    num_attention_heads: o.heads,
    num_key_value_heads: o.kvHeads,
    head_dim: o.headDim,
    hidden_activation: 'gelu_pytorch_tanh',
    max_position_embeddings: o.maxPositions ?? 128,
    rms_norm_eps: o.rmsNormEps ?? 1e-6,
    query_pre_attn_scalar: o.queryPreAttnScalar ?? o.headDim,
    sliding_window: o.slidingWindow,
    attention_bias: false,
    tie_word_embeddings: o.tie ?? true,
    pad_token_id: 0,
    eos_token_id: 1,
    bos_token_id: 2,
  };
}

/**
 * Keys and initialisations. Sizing: the stream entering a layer has RMS ≈ 1 (embeddings N(0, 1/E) · √E; every
 * block's output leaves a (1 + w) norm). Without q/k norms, q/k weights of std √(qkScale / E) make
 * q·k·qpas^-½ have std ≈ qkScale when qpas = head_dim; with them (Gemma 3) the norm gains (1 + w) ≈ √qkScale do.
 */
function gemmaTensors(o: GemmaSpecOptions, prefix: string, qkNorm: boolean): TensorSpec[] {
  const { vocab: V, hidden: E, heads: H, kvHeads: KV, headDim: d, intermediate: I } = o;
  const qkScale = o.qkScale ?? 4;
  const gain: TensorInit = { normal: o.normStd ?? 0.1 }; // w of a (1 + w) norm
  const qk: TensorInit = qkNorm ? { normal: 1 / Math.sqrt(E) } : { normal: Math.sqrt(qkScale / E) };
  const qkGain: TensorInit = { normal: 0.1, mean: Math.sqrt(qkScale) - 1 };
  const tensors: TensorSpec[] = [{ key: `${prefix}embed_tokens.weight`, shape: [V, E], init: { normal: 1 / Math.sqrt(E) } }];
  for (let l = 0; l < o.layers; l++) {
    const lp = `${prefix}layers.${l}.`;
    tensors.push(
      { key: `${lp}input_layernorm.weight`, shape: [E], init: gain },
      { key: `${lp}self_attn.q_proj.weight`, shape: [H * d, E], init: qk },
      { key: `${lp}self_attn.k_proj.weight`, shape: [KV * d, E], init: qk },
      { key: `${lp}self_attn.v_proj.weight`, shape: [KV * d, E], init: { normal: 1 / Math.sqrt(E) } },
      { key: `${lp}self_attn.o_proj.weight`, shape: [E, H * d], init: { normal: 1 / Math.sqrt(H * d) } },
    );
    if (qkNorm) tensors.push({ key: `${lp}self_attn.q_norm.weight`, shape: [d], init: qkGain }, { key: `${lp}self_attn.k_norm.weight`, shape: [d], init: qkGain });
    tensors.push(
      { key: `${lp}post_attention_layernorm.weight`, shape: [E], init: gain },
      { key: `${lp}pre_feedforward_layernorm.weight`, shape: [E], init: gain },
      { key: `${lp}mlp.gate_proj.weight`, shape: [I, E], init: { normal: 1 / Math.sqrt(E) } },
      { key: `${lp}mlp.up_proj.weight`, shape: [I, E], init: { normal: 1 / Math.sqrt(E) } },
      { key: `${lp}mlp.down_proj.weight`, shape: [E, I], init: { normal: 1 / Math.sqrt(I) } },
      { key: `${lp}post_feedforward_layernorm.weight`, shape: [E], init: gain },
    );
  }
  tensors.push({ key: `${prefix}norm.weight`, shape: [E], init: gain });
  if (o.tie === false) tensors.push({ key: 'lm_head.weight', shape: [V, E], init: { normal: 2 / Math.sqrt(E) } });
  return tensors;
}

/** A tiny Gemma2ForCausalLM checkpoint (keys under `model.`). */
export function gemma2Spec(o: Gemma2SpecOptions): CheckpointSpec {
  const config: RefConfig = {
    architectures: ['Gemma2ForCausalLM'],
    model_type: 'gemma2',
    ...gemmaConfig(o),
    rope_theta: o.ropeTheta ?? 10000,
    attn_logit_softcapping: o.attnSoftcap === undefined ? 50 : o.attnSoftcap,
    final_logit_softcapping: o.finalSoftcap === undefined ? 30 : o.finalSoftcap,
  };
  if (o.layerTypes) config.layer_types = o.layerTypes;
  return { config, tensors: gemmaTensors(o, 'model.', false) };
}

/** A tiny Gemma3ForCausalLM checkpoint (`gemma3_text`, keys `model.`), or the text part of a multimodal `gemma3` one. */
export function gemma3Spec(o: Gemma3SpecOptions): CheckpointSpec {
  const text: RefConfig = { model_type: 'gemma3_text', ...gemmaConfig(o), attn_logit_softcapping: null, final_logit_softcapping: null };
  if (o.layerTypes) text.layer_types = o.layerTypes;
  else text.sliding_window_pattern = o.slidingWindowPattern ?? 6;
  const full = { rope_theta: o.ropeTheta ?? 1e6, scaling: o.ropeScaling ?? null };
  const localTheta = o.ropeLocalBaseFreq ?? 1e4;
  if ((o.configForm ?? 'v4') === 'v4') {
    Object.assign(text, { rope_theta: full.rope_theta, rope_local_base_freq: localTheta, rope_scaling: full.scaling });
  } else {
    text.rope_parameters = {
      full_attention: { rope_type: 'default', ...full.scaling, rope_theta: full.rope_theta },
      sliding_attention: { rope_type: 'default', rope_theta: localTheta },
    };
  }
  if (!o.multimodal) return { config: { architectures: ['Gemma3ForCausalLM'], ...text }, tensors: gemmaTensors(o, 'model.', true) };
  const config: RefConfig = { architectures: ['Gemma3ForConditionalGeneration'], model_type: 'gemma3', text_config: text };
  return { config, tensors: gemmaTensors(o, 'model.language_model.', true) };
}

/** The torch_dtype string hfCheckpoint.ts writes for a checkpoint dtype. */
export function torchDtypeOf(dtype: FloatDtype): TorchDtype {
  return ({ F32: 'float32', F16: 'float16', BF16: 'bfloat16' } as const)[dtype];
}
