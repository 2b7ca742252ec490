/**
 * Gemma 2 (`gemma2`) and Gemma 3 text (`gemma3_text`, and the language model of a multimodal `gemma3` checkpoint),
 * from transformers' gemma2/modeling_gemma2.py, gemma3/modeling_gemma3.py and masking_utils.py. Every norm is RMSNorm
 * with gain (1 + w), in fp32; each layer has four of them:
 *   x₀  = embed(ids) · √hidden_size            the factor rounded to the weights' dtype, as transformers does
 *   h   = x + post_attention_layernorm(o_proj(attention(input_layernorm(x))))
 *   x'  = h + post_feedforward_layernorm(down(gelu_tanh(gate(m)) · up(m))),  m = pre_feedforward_layernorm(h)
 *   logits = cap·tanh(lm_head(norm(x)) / cap)  final_logit_softcapping (Gemma 2); lm_head tied to embed_tokens
 * Attention: scores q·k · query_pre_attn_scalar^-½, soft-capped cap·tanh(s/cap) BEFORE the mask when
 * attn_logit_softcapping is set (Gemma 2); grouped-/multi-query heads; sliding layers see keys i − window < j ≤ i.
 * | | gemma2 | gemma3_text |
 * |---|---|---|
 * | soft-caps (attention, final) | 50, 30 by default | none |
 * | q_norm / k_norm (per head, (1 + w), before RoPE) | – | yes |
 * | sliding layers (without layer_types) | even layers | all but every sliding_window_pattern-th (6) |
 * | rotary | rope_theta (1e4) | local: rope_local_base_freq (1e4), unscaled; global: rope_theta (1e6) + rope_scaling |
 * Multimodal `gemma3`: the config is `text_config` (with Gemma3TextConfig's defaults), the keys sit under
 * `model.language_model.` (or `language_model.model.` in older exports); the vision tower and projector are ignored.
 */
import { activation, linearT, rmsNormPlusOne } from '../graph/blocks.js';
import { DecoderGraph, type DecoderFamily } from '../graph/decoderGraph.js';
import type { Weight } from '../graph/gpt2Graph.js';
import { ConfigFields, describe } from '../model/configFields.js';
import type { ModelDims } from '../model/dims.js';
import { defaultInvFreq, ropeFromConfig, type RopeSpec } from '../model/rope.js';
import { activationField, attentionProjTensors, decoderDims, gatedMlpTensors, qkNormTensors, qkvBiasTensors, engineWindow, layerTypesField, type DecoderSizes, type ExpectedTensor, type LayerType, type Family, type FamilyModel, type LoadOptions, type Readout, type StoredTensors } from './family.js';

type WeightDtype = 'float32' | 'float16' | 'bfloat16';

export interface GemmaConfig extends DecoderSizes {
  /** config.json's model_type: gemma2, gemma3_text or gemma3 (multimodal; its text model runs). */
  modelType: 'gemma2' | 'gemma3_text' | 'gemma3';
  version: 2 | 3;
  nKvHead: number;
  bias: boolean;
  /** query_pre_attn_scalar^-½. */
  scale: number;
  attnSoftcap: number | null;
  finalSoftcap: number | null;
  /** [nLayer]: the sliding window of each layer, or null. */
  windows: (number | null)[];
  /** [nLayer]: each layer's rotary frequencies. */
  rope: RopeSpec[];
  /** The weights' dtype from config.json (torch_dtype / dtype); undefined: taken from embed_tokens in `resolve`. */
  dtype: WeightDtype | undefined;
  /** Where the text model's keys start: `model.`, `model.language_model.` or `language_model.model.` (set by `resolve`). */
  prefix: string;
  /** The untied LM head's key (`lm_head.weight`, or `language_model.lm_head.weight` in older multimodal exports). */
  headKey: string;
}

const DTYPES: Record<string, WeightDtype> = { float32: 'float32', float16: 'float16', bfloat16: 'bfloat16', F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

export function parseGemmaConfig(json: Record<string, unknown>, file: string, opts: LoadOptions): GemmaConfig {
  const modelType = json.model_type as GemmaConfig['modelType'];
  const outer: ConfigFields = new ConfigFields(json, file); // typed, so that `outer.fail` (never) narrows `text`
  let c = outer;
  if (modelType === 'gemma3') {
    const text = outer.object('text_config');
    if (!text) outer.fail('text_config', 'is missing; a "gemma3" config.json carries its text model there', 'Download the checkpoint again: its config.json is incomplete.');
    c = new ConfigFields(text, file, 'text_config.');
  }
  const version = modelType === 'gemma2' ? 2 : 3;
  const nLayer = c.int('num_hidden_layers', 26);
  const hidden = c.int('hidden_size', 2304);
  const nHead = c.int('num_attention_heads', 8);
  const nKvHead = c.int('num_key_value_heads', 4);
  if (nHead % nKvHead !== 0) c.fail('num_key_value_heads', `(${nKvHead}) must divide num_attention_heads (${nHead})`);
  const headDim = c.int('head_dim', 256);
  const maxPositions = c.int('max_position_embeddings', version === 2 ? 8192 : 131072);
  const act = activationField(c, 'hidden_activation', c.get('hidden_activation') ?? c.get('hidden_act') ?? 'gelu_pytorch_tanh');
  const types = layerTypes(c, nLayer, version);
  const slidingWindow = c.optional('sliding_window', 4096, true);
  const dtypeRaw = c.get('torch_dtype') ?? c.get('dtype') ?? outer.get('torch_dtype') ?? outer.get('dtype');
  if (dtypeRaw !== undefined && !(typeof dtypeRaw === 'string' && dtypeRaw in DTYPES)) c.fail('torch_dtype', `is ${describe(dtypeRaw)}; expected "float32", "float16" or "bfloat16"`);
  return {
    modelType,
    version,
    nLayer,
    nHead,
    nKvHead,
    headDim,
    hidden,
    intermediate: c.int('intermediate_size', 9216),
    vocabSize: c.int('vocab_size', version === 2 ? 256000 : 262208),
    maxPositions,
    window: engineWindow(maxPositions, opts),
    eps: c.num('rms_norm_eps', 1e-6),
    act,
    tie: c.bool('tie_word_embeddings', true),
    bias: c.bool('attention_bias', false),
    scale: c.num('query_pre_attn_scalar', 256) ** -0.5,
    attnSoftcap: c.optional('attn_logit_softcapping', version === 2 ? 50 : null),
    finalSoftcap: c.optional('final_logit_softcapping', version === 2 ? 30 : null),
    windows: types.map((t) => (t === 'sliding_attention' ? slidingWindow : null)),
    rope: ropes(c, types, version, headDim),
    dtype: dtypeRaw === undefined ? undefined : DTYPES[dtypeRaw as string],
    prefix: modelType === 'gemma3' ? 'model.language_model.' : 'model.',
    headKey: 'lm_head.weight',
  };
}

/** layer_types when given; else Gemma 2 slides on even layers, Gemma 3 on all but every sliding_window_pattern-th. */
function layerTypes(c: ConfigFields, nLayer: number, version: 2 | 3): LayerType[] {
  const given = layerTypesField(c, nLayer);
  if (given) return given;
  const pattern = version === 2 ? 2 : c.int('sliding_window_pattern', 6);
  return Array.from({ length: nLayer }, (_, l) => ((l + 1) % pattern === 0 ? 'full_attention' : 'sliding_attention'));
}

/**
 * Each layer's rotary frequencies. Gemma 2: one base for all. Gemma 3: global layers rope_theta (1e6) with
 * rope_scaling; local layers rope_local_base_freq (1e4) without scaling (the model builds its local rotary from a
 * copy of the config with rope_scaling = default). transformers v5 writes rope_parameters, flat or keyed by layer type.
 */
function ropes(c: ConfigFields, types: LayerType[], version: 2 | 3, headDim: number): RopeSpec[] {
  if (version === 2) {
    const one = ropeFromConfig(c, headDim, { theta: 10000, fraction: 1 });
    return types.map(() => one);
  }
  const params = c.object('rope_parameters');
  let full: RopeSpec;
  let local: RopeSpec;
  if (params && ('full_attention' in params || 'sliding_attention' in params)) {
    const entry = (type: LayerType) => {
      const v = params[type];
      if (v !== undefined && v !== null && (typeof v !== 'object' || Array.isArray(v))) c.fail(`rope_parameters.${type}`, `must be an object, got ${describe(v)}`);
      return { where: `rope_parameters.${type}`, value: (v ?? undefined) as Record<string, unknown> | undefined };
    };
    full = ropeFromConfig(c, headDim, { theta: 1e6, fraction: 1, params: entry('full_attention') });
    local = ropeFromConfig(c, headDim, { theta: 1e4, fraction: 1, thetaKey: 'rope_local_base_freq', params: entry('sliding_attention') });
  } else {
    full = ropeFromConfig(c, headDim, { theta: 1e6, fraction: 1 });
    local = { dims: headDim, invFreq: defaultInvFreq(c.num('rope_local_base_freq', 1e4), headDim) };
  }
  return types.map((t) => (t === 'sliding_attention' ? local : full));
}

/** Prefixes of the text model's keys, in the order they are tried. */
const PREFIXES = ['model.', 'model.language_model.', 'language_model.model.'];

/** The vision tower and projector of a multimodal checkpoint (either export layout): present, never read. */
const VISION = /^(model\.)?(vision_tower|multi_modal_projector)\./;

/** Finds where the text model's keys start and the weights' dtype (when config.json does not say). */
function resolveGemma(c: GemmaConfig, store: StoredTensors): GemmaConfig {
  const names = new Set(store.names());
  const prefix = PREFIXES.find((p) => names.has(`${p}embed_tokens.weight`)) ?? c.prefix; // none: the check names the expected key
  const headKey = prefix === 'language_model.model.' ? 'language_model.lm_head.weight' : 'lm_head.weight';
  const embed = `${prefix}embed_tokens.weight`;
  const dtype = c.dtype ?? (names.has(embed) ? DTYPES[store.dtypeOf(embed)] : undefined) ?? 'float32';
  return { ...c, prefix, headKey, dtype };
}

export function gemmaTensors(c: GemmaConfig): ExpectedTensor[] {
  const { hidden: E, nHead: H, nKvHead: KVH, headDim: D, intermediate: I, vocabSize: V, prefix } = c;
  const sizes = { E, H, KVH, D };
  const t: ExpectedTensor[] = [{ name: `${prefix}embed_tokens.weight`, shape: [V, E], fields: 'vocab_size, hidden_size' }];
  for (let l = 0; l < c.nLayer; l++) {
    const p = `${prefix}layers.${l}.`;
    t.push(
      { name: `${p}input_layernorm.weight`, shape: [E], fields: 'hidden_size' },
      ...attentionProjTensors(p, sizes),
      { name: `${p}post_attention_layernorm.weight`, shape: [E], fields: 'hidden_size' },
      { name: `${p}pre_feedforward_layernorm.weight`, shape: [E], fields: 'hidden_size' },
      ...gatedMlpTensors(p, E, I),
      { name: `${p}post_feedforward_layernorm.weight`, shape: [E], fields: 'hidden_size' },
    );
    if (c.version === 3) t.push(...qkNormTensors(p, D));
    if (c.bias) t.push(...qkvBiasTensors(p, sizes), { name: `${p}self_attn.o_proj.bias`, shape: [E], fields: 'hidden_size' });
  }
  t.push({ name: `${prefix}norm.weight`, shape: [E], fields: 'hidden_size' });
  if (!c.tie) t.push({ name: c.headKey, shape: [V, E], fields: 'vocab_size, hidden_size' });
  return t;
}

/**
 * √hidden_size as transformers holds it: a float32 tensor cast to the weights' dtype (√2304 = 48 exactly; √48 =
 * 6.928… becomes 6.9375 in bfloat16, 6.9296875 in float16). Round to nearest, ties to even.
 */
export function embedScale(hidden: number, dtype: WeightDtype): number {
  const x = Math.fround(Math.sqrt(hidden));
  if (dtype === 'float32') return x;
  const bits = dtype === 'bfloat16' ? 8 : 11; // significant bits: bfloat16 7 + 1, float16 10 + 1 (normal range)
  const ulp = 2 ** (Math.floor(Math.log2(x)) - bits + 1);
  const q = x / ulp;
  let r = Math.round(q);
  if (Math.abs(q - Math.trunc(q)) === 0.5 && r % 2 !== 0) r -= 1; // a tie goes to the even neighbour
  return r * ulp;
}

export function gemmaDims(c: GemmaConfig): ModelDims {
  const dims = decoderDims(c, { nKvHead: c.nKvHead, scale: c.scale, windows: c.windows, rotary: c.rope[0] });
  dims.softcaps = Array.from({ length: c.nLayer }, () => c.attnSoftcap);
  if (c.rope.some((r) => r !== c.rope[0])) dims.layerRotary = c.rope;
  if (c.finalSoftcap !== null) dims.logitSoftcap = c.finalSoftcap;
  return dims;
}

function gemmaGraph(c: GemmaConfig, weights: Map<string, Weight>): DecoderFamily {
  const { hidden: E, nHead: H, nKvHead: KVH, headDim: D, intermediate: I, vocabSize: V, prefix } = c;
  const w = (d: DecoderGraph, name: string, shape: number[]) => d.weight(name, weights.get(name)!, shape);
  const norm = (d: DecoderGraph, x: string, name: string, n = E) => rmsNormPlusOne(d.g, x, w(d, name, [n]), c.eps); // [..., n]
  const embedKey = `${prefix}embed_tokens.weight`;
  return {
    name: c.modelType,
    embed: (d) => {
      const rows = d.g.op('Gather', [w(d, embedKey, [V, E]), 'input_ids'], { axis: 0 }); // [1, T] -> [1, T, E]
      return d.g.op('Mul', [rows, d.g.scalar('c_embed_scale', embedScale(E, c.dtype ?? 'float32'))]); // · √E in the weights' dtype
    },
    layer: (d, x, l) => {
      const g = d.g;
      const p = `${prefix}layers.${l}.`;
      const bias = (name: string, n: number) => (c.bias ? w(d, `${p}self_attn.${name}.bias`, [n]) : undefined);
      const n = norm(d, x, `${p}input_layernorm.weight`); // [1, T, E]
      const q = linearT(g, n, w(d, `${p}self_attn.q_proj.weight`, [H * D, E]), E, H * D, bias('q_proj', H * D)); // [1, T, H·D]
      const k = linearT(g, n, w(d, `${p}self_attn.k_proj.weight`, [KVH * D, E]), E, KVH * D, bias('k_proj', KVH * D)); // [1, T, KVH·D]
      const v = linearT(g, n, w(d, `${p}self_attn.v_proj.weight`, [KVH * D, E]), E, KVH * D, bias('v_proj', KVH * D)); // [1, T, KVH·D]
      const oProj = w(d, `${p}self_attn.o_proj.weight`, [E, H * D]);
      const merged = d.attention(l, {
        q,
        k,
        v,
        oProj,
        // Gemma 3: q_norm / k_norm, (1 + w) RMSNorm over each head's D dims, before the rotation. [1, T, heads, D]
        beforeRotation: c.version === 3 ? (heads, which) => norm(d, heads, `${p}self_attn.${which}_norm.weight`, D) : undefined,
      }); // [1, T, H·D]
      const attn = linearT(g, merged, oProj, H * D, E, bias('o_proj', E)); // [1, T, E]
      const h = g.op('Add', [x, norm(d, attn, `${p}post_attention_layernorm.weight`)]); // [1, T, E]
      const m = norm(d, h, `${p}pre_feedforward_layernorm.weight`); // [1, T, E]
      const gate = linearT(g, m, w(d, `${p}mlp.gate_proj.weight`, [I, E]), E, I); // [1, T, I]
      const up = linearT(g, m, w(d, `${p}mlp.up_proj.weight`, [I, E]), E, I); // [1, T, I]
      const down = linearT(g, g.op('Mul', [activation(g, c.act, gate), up]), w(d, `${p}mlp.down_proj.weight`, [E, I]), I, E); // [1, T, E]
      return g.op('Add', [h, norm(d, down, `${p}post_feedforward_layernorm.weight`)]); // [1, T, E]
    },
    final: (d, x) => ({
      hidden: norm(d, x, `${prefix}norm.weight`), // [1, T, E]
      head: c.tie ? embedKey : w(d, c.headKey, [V, E]), // [V, E] (the final soft-cap is ModelDims.logitSoftcap)
    }),
  };
}

/** The final (1 + w) norm, the LM head, the soft-cap and each layer's o_proj and post-attention norm. */
function gemmaReadout(c: GemmaConfig, weights: Map<string, Weight>): Readout {
  const p = c.prefix;
  const rms = (name: string) => ({ kind: 'rms' as const, weight: weights.get(name)!, eps: c.eps, plusOne: true });
  return {
    finalNorm: rms(`${p}norm.weight`),
    unembed: weights.get(c.tie ? `${p}embed_tokens.weight` : c.headKey)!,
    finalSoftcap: c.finalSoftcap,
    layers: Array.from({ length: c.nLayer }, (_, l) => ({
      oProj: weights.get(`${p}layers.${l}.self_attn.o_proj.weight`)!, // [E, H·D]
      oProjLayout: 'out_in' as const,
      oBias: c.bias ? weights.get(`${p}layers.${l}.self_attn.o_proj.bias`) : undefined,
      postAttnNorm: rms(`${p}layers.${l}.post_attention_layernorm.weight`),
    })),
  };
}

export const gemmaFamily: Family<GemmaConfig> = {
  modelTypes: ['gemma2', 'gemma3_text', 'gemma3'],
  parseConfig: parseGemmaConfig,
  resolve: resolveGemma,
  tensors: gemmaTensors,
  ignored: (c) => {
    const parts: RegExp[] = [];
    if (c.tie) parts.push(/^(language_model\.)?lm_head\.weight$/); // a stored copy of the tied head is not read
    if (c.modelType === 'gemma3') parts.push(VISION);
    return parts.length ? new RegExp(parts.map((r) => r.source).join('|')) : /(?!)/; // nothing
  },
  model(c, weights): FamilyModel {
    const dims = gemmaDims(c);
    return { modelType: c.modelType, dims, build: (opts) => DecoderGraph.build(dims, gemmaGraph(c, weights), opts), readout: gemmaReadout(c, weights) };
  },
};
