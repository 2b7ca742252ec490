/**
 * The Llama family: `llama` (Llama 2/3.x, SmolLM2, TinyLlama), `mistral`, `qwen2`, `qwen3`, from transformers'
 * modeling_llama.py, modeling_mistral.py, modeling_qwen2.py and modeling_qwen3.py. Pre-norm blocks:
 *   h  = x + o_proj(attention(rmsnorm(x)))          rotate-half RoPE on q and k; GQA (num_key_value_heads)
 *   x' = h + down(silu(gate(n)) · up(n)),  n = rmsnorm(h)
 *   logits = lm_head(rmsnorm(x))                     lm_head = embed_tokens when tie_word_embeddings
 * The four differ by flags:
 * | | llama | mistral | qwen2 | qwen3 |
 * |---|---|---|---|---|
 * | q/k/v biases | attention_bias | – | always | attention_bias |
 * | o_proj bias | attention_bias | – | – | attention_bias |
 * | MLP biases | mlp_bias | – | – | – |
 * | per-head q_norm/k_norm before RoPE | – | – | – | yes |
 * | sliding window | – | every layer (sliding_window, default 4096) | layers ≥ max_window_layers when use_sliding_window | as qwen2 |
 * | head_dim default | hidden/heads | hidden/heads | hidden/heads | 128 |
 * `layer_types` (newer configs), when present, says which layers slide.
 */
import { activation, linearT, rmsNorm } from '../graph/blocks.js';
import { DecoderGraph, type DecoderFamily } from '../graph/decoderGraph.js';
import type { Weight } from '../graph/gpt2Graph.js';
import { ConfigFields } from '../model/configFields.js';
import type { ModelDims } from '../model/dims.js';
import { ropeFromConfig, type RopeSpec } from '../model/rope.js';
import { activationField, attentionProjTensors, decoderDims, gatedMlpTensors, qkNormTensors, qkvBiasTensors, engineWindow, layerTypesField, type DecoderSizes, type ExpectedTensor, type Family, type FamilyModel, type LoadOptions, type Readout } from './family.js';

type ModelType = 'llama' | 'mistral' | 'qwen2' | 'qwen3';

export interface LlamaConfig extends DecoderSizes {
  modelType: ModelType;
  nKvHead: number;
  rope: RopeSpec;
  /** [nLayer]: each layer's sliding window, or null. */
  windows: (number | null)[];
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  qkNorm: boolean;
}

/** transformers' config-class defaults that differ between the four. */
const DEFAULTS: Record<ModelType, { vocab: number; intermediate: number; kvHeads?: number; maxPositions: number; headDim?: number }> = {
  llama: { vocab: 32000, intermediate: 11008, maxPositions: 2048 },
  mistral: { vocab: 32000, intermediate: 14336, kvHeads: 8, maxPositions: 4096 * 32 },
  qwen2: { vocab: 151936, intermediate: 22016, maxPositions: 32768 },
  qwen3: { vocab: 151936, intermediate: 22016, maxPositions: 32768, headDim: 128 },
};

export function parseLlamaConfig(json: Record<string, unknown>, file: string, opts: LoadOptions): LlamaConfig {
  const c = new ConfigFields(json, file);
  const modelType = json.model_type as ModelType;
  const d = DEFAULTS[modelType];
  const nLayer = c.int('num_hidden_layers', 32);
  const hidden = c.int('hidden_size', 4096);
  const nHead = c.int('num_attention_heads', 32);
  const nKvHead = c.int('num_key_value_heads', d.kvHeads ?? nHead);
  if (nHead % nKvHead !== 0) c.fail('num_key_value_heads', `(${nKvHead}) must divide num_attention_heads (${nHead})`);
  const headDim = c.get('head_dim') !== undefined ? c.int('head_dim') : (d.headDim ?? hidden / nHead);
  if (!Number.isInteger(headDim)) c.fail('num_attention_heads', `(${nHead}) does not divide hidden_size (${hidden}) and there is no head_dim`);
  const maxPositions = c.int('max_position_embeddings', d.maxPositions);
  const act = activationField(c, 'hidden_act', c.get('hidden_act') ?? 'silu');
  const attentionBias = (modelType === 'llama' || modelType === 'qwen3') && c.bool('attention_bias', false);
  return {
    modelType,
    nLayer,
    nHead,
    nKvHead,
    headDim,
    hidden,
    intermediate: c.int('intermediate_size', d.intermediate),
    vocabSize: c.int('vocab_size', d.vocab),
    maxPositions,
    window: engineWindow(maxPositions, opts),
    eps: c.num('rms_norm_eps', 1e-6),
    act,
    tie: c.bool('tie_word_embeddings', false),
    rope: ropeFromConfig(c, headDim, { theta: 10000, fraction: 1 }),
    windows: slidingWindows(c, modelType, nLayer),
    qkvBias: modelType === 'qwen2' || attentionBias,
    oBias: attentionBias,
    mlpBias: modelType === 'llama' && c.bool('mlp_bias', false),
    qkNorm: modelType === 'qwen3',
  };
}

/** Each layer's window (null: full causal attention): from layer_types when present, else the family's rule. */
function slidingWindows(c: ConfigFields, modelType: ModelType, nLayer: number): (number | null)[] {
  // Mistral's default window is 4096 when the key is absent; null switches it off.
  const window = 'sliding_window' in c.json ? (c.get('sliding_window') === undefined ? null : c.int('sliding_window')) : modelType === 'mistral' ? 4096 : null;
  const types = layerTypesField(c, nLayer);
  if (types) return types.map((t) => (t === 'sliding_attention' ? window : null));
  if (modelType === 'mistral') return Array.from({ length: nLayer }, () => window);
  if (modelType === 'qwen2' || modelType === 'qwen3') {
    const on = c.bool('use_sliding_window', false) && window !== null;
    const from = c.get('max_window_layers') === undefined ? 28 : (c.get('max_window_layers') as number);
    return Array.from({ length: nLayer }, (_, l) => (on && l >= from ? window : null));
  }
  return Array.from({ length: nLayer }, () => null);
}

export function llamaTensors(c: LlamaConfig): ExpectedTensor[] {
  const { hidden: E, nHead: H, nKvHead: KVH, headDim: D, intermediate: I, vocabSize: V } = c;
  const sizes = { E, H, KVH, D };
  const t: ExpectedTensor[] = [{ name: 'model.embed_tokens.weight', shape: [V, E], fields: 'vocab_size, hidden_size' }];
  for (let l = 0; l < c.nLayer; l++) {
    const p = `model.layers.${l}.`;
    t.push(
      { name: `${p}input_layernorm.weight`, shape: [E], fields: 'hidden_size' },
      ...attentionProjTensors(p, sizes),
      { name: `${p}post_attention_layernorm.weight`, shape: [E], fields: 'hidden_size' },
      ...gatedMlpTensors(p, E, I),
    );
    if (c.qkvBias) t.push(...qkvBiasTensors(p, sizes));
    if (c.oBias) t.push({ name: `${p}self_attn.o_proj.bias`, shape: [E], fields: 'hidden_size' });
    if (c.qkNorm) t.push(...qkNormTensors(p, D));
    if (c.mlpBias) {
      t.push(
        { name: `${p}mlp.gate_proj.bias`, shape: [I], fields: 'intermediate_size' },
        { name: `${p}mlp.up_proj.bias`, shape: [I], fields: 'intermediate_size' },
        { name: `${p}mlp.down_proj.bias`, shape: [E], fields: 'hidden_size' },
      );
    }
  }
  t.push({ name: 'model.norm.weight', shape: [E], fields: 'hidden_size' });
  if (!c.tie) t.push({ name: 'lm_head.weight', shape: [V, E], fields: 'vocab_size, hidden_size' });
  return t;
}

export function llamaDims(c: LlamaConfig): ModelDims {
  return decoderDims(c, { nKvHead: c.nKvHead, scale: 1 / Math.sqrt(c.headDim), windows: c.windows, rotary: c.rope });
}

/** The graph of one Llama-family model over its weights (by key). */
function llamaGraph(c: LlamaConfig, weights: Map<string, Weight>): DecoderFamily {
  const { hidden: E, nHead: H, nKvHead: KVH, headDim: D, intermediate: I, vocabSize: V } = c;
  const w = (d: DecoderGraph, name: string, shape: number[]) => d.weight(name, weights.get(name)!, shape);
  return {
    name: c.modelType,
    embed: (d) => d.g.op('Gather', [w(d, 'model.embed_tokens.weight', [V, E]), 'input_ids'], { axis: 0 }), // [1, T] -> [1, T, E]
    layer: (d, x, l) => {
      const g = d.g;
      const p = `model.layers.${l}.`;
      const bias = (on: boolean, name: string, n: number) => (on ? w(d, name, [n]) : undefined);
      const n = rmsNorm(g, x, w(d, `${p}input_layernorm.weight`, [E]), c.eps); // [1, T, E]
      const q = linearT(g, n, w(d, `${p}self_attn.q_proj.weight`, [H * D, E]), E, H * D, bias(c.qkvBias, `${p}self_attn.q_proj.bias`, H * D)); // [1, T, H·D]
      const k = linearT(g, n, w(d, `${p}self_attn.k_proj.weight`, [KVH * D, E]), E, KVH * D, bias(c.qkvBias, `${p}self_attn.k_proj.bias`, KVH * D)); // [1, T, KVH·D]
      const v = linearT(g, n, w(d, `${p}self_attn.v_proj.weight`, [KVH * D, E]), E, KVH * D, bias(c.qkvBias, `${p}self_attn.v_proj.bias`, KVH * D)); // [1, T, KVH·D]
      const oProj = w(d, `${p}self_attn.o_proj.weight`, [E, H * D]);
      const qkNorms = c.qkNorm ? { q: w(d, `${p}self_attn.q_norm.weight`, [D]), k: w(d, `${p}self_attn.k_norm.weight`, [D]) } : undefined;
      const merged = d.attention(l, {
        q,
        k,
        v,
        oProj,
        beforeRotation: qkNorms && ((heads, which) => rmsNorm(g, heads, qkNorms[which], c.eps)), // Qwen3: [1, T, heads, D]
      }); // [1, T, H·D]
      const h = g.op('Add', [x, linearT(g, merged, oProj, H * D, E, bias(c.oBias, `${p}self_attn.o_proj.bias`, E))]); // [1, T, E]
      const m = rmsNorm(g, h, w(d, `${p}post_attention_layernorm.weight`, [E]), c.eps); // [1, T, E]
      const gate = linearT(g, m, w(d, `${p}mlp.gate_proj.weight`, [I, E]), E, I, bias(c.mlpBias, `${p}mlp.gate_proj.bias`, I)); // [1, T, I]
      const up = linearT(g, m, w(d, `${p}mlp.up_proj.weight`, [I, E]), E, I, bias(c.mlpBias, `${p}mlp.up_proj.bias`, I)); // [1, T, I]
      const down = linearT(g, g.op('Mul', [activation(g, c.act, gate), up]), w(d, `${p}mlp.down_proj.weight`, [E, I]), I, E, bias(c.mlpBias, `${p}mlp.down_proj.bias`, E)); // [1, T, E]
      return g.op('Add', [h, down]); // [1, T, E]
    },
    final: (d, x) => ({
      hidden: rmsNorm(d.g, x, w(d, 'model.norm.weight', [E]), c.eps), // [1, T, E]
      head: c.tie ? 'model.embed_tokens.weight' : w(d, 'lm_head.weight', [V, E]), // [V, E]
    }),
  };
}

/** The final RMSNorm, the (tied or own) LM head and each layer's o_proj for the lens and attribution. */
function llamaReadout(c: LlamaConfig, weights: Map<string, Weight>): Readout {
  return {
    finalNorm: { kind: 'rms', weight: weights.get('model.norm.weight')!, eps: c.eps },
    unembed: weights.get(c.tie ? 'model.embed_tokens.weight' : 'lm_head.weight')!,
    finalSoftcap: null,
    layers: Array.from({ length: c.nLayer }, (_, l) => ({
      oProj: weights.get(`model.layers.${l}.self_attn.o_proj.weight`)!, // [E, H·D]
      oProjLayout: 'out_in' as const,
      oBias: c.oBias ? weights.get(`model.layers.${l}.self_attn.o_proj.bias`) : undefined,
    })),
  };
}

export const llamaFamily: Family<LlamaConfig> = {
  modelTypes: ['llama', 'mistral', 'qwen2', 'qwen3'],
  parseConfig: parseLlamaConfig,
  tensors: llamaTensors,
  // Old Llama checkpoints carry rotary inv_freq buffers; a tied head may be stored anyway (it is not read).
  ignored: (c) => (c.tie ? /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$|^lm_head\.weight$/ : /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/),
  model(c, weights): FamilyModel {
    const dims = llamaDims(c);
    return { modelType: c.modelType, dims, build: (opts) => DecoderGraph.build(dims, llamaGraph(c, weights), opts), readout: llamaReadout(c, weights) };
  },
};
