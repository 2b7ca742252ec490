/**
 * GPT-NeoX (`gpt_neox`: Pythia, GPT-NeoX-20B), from transformers' modeling_gpt_neox.py:
 *   a  = dense(attention(layernorm1(x)))     fused query_key_value laid out PER HEAD: [q_h | k_h | v_h] for each h
 *   parallel (use_parallel_residual):  x' = x + a + mlp(layernorm2(x))
 *   sequential:                        h = x + a;  x' = h + mlp(layernorm2(h))
 *   mlp(y) = dense_4h_to_h(gelu(dense_h_to_4h(y)))   exact GELU (hidden_act "gelu")
 *   logits = embed_out(final_layer_norm(x))         untied unless tie_word_embeddings
 * Rotate-half RoPE on the first rotary_pct (v5: partial_rotary_factor) of each head's dims, base rotary_emb_base
 * (v5: rope_parameters.rope_theta). The stale buffers some checkpoints carry (attention.bias, masked_bias,
 * rotary_emb.inv_freq) are ignored: the mask and the frequencies are computed here.
 */
import { activation, layerNorm, linearT } from '../graph/blocks.js';
import { DecoderGraph, type DecoderFamily } from '../graph/decoderGraph.js';
import type { Weight } from '../graph/gpt2Graph.js';
import { ConfigFields } from '../model/configFields.js';
import type { ModelDims } from '../model/dims.js';
import { ropeFromConfig, type RopeSpec } from '../model/rope.js';
import { activationField, decoderDims, engineWindow, type DecoderSizes, type ExpectedTensor, type Family, type FamilyModel, type LoadOptions, type Readout } from './family.js';

export interface NeoxConfig extends DecoderSizes {
  parallel: boolean;
  bias: boolean;
  rope: RopeSpec;
}

export function parseNeoxConfig(json: Record<string, unknown>, file: string, opts: LoadOptions): NeoxConfig {
  const c = new ConfigFields(json, file);
  const hidden = c.int('hidden_size', 6144);
  const nHead = c.int('num_attention_heads', 64);
  if (hidden % nHead !== 0) c.fail('num_attention_heads', `(${nHead}) does not divide hidden_size (${hidden})`);
  const headDim = hidden / nHead;
  const maxPositions = c.int('max_position_embeddings', 2048);
  const act = activationField(c, 'hidden_act', c.get('hidden_act') ?? 'gelu');
  return {
    nLayer: c.int('num_hidden_layers', 44),
    nHead,
    headDim,
    hidden,
    intermediate: c.int('intermediate_size', 24576),
    vocabSize: c.int('vocab_size', 50432),
    maxPositions,
    window: engineWindow(maxPositions, opts),
    eps: c.num('layer_norm_eps', 1e-5),
    act,
    parallel: c.bool('use_parallel_residual', true),
    bias: c.bool('attention_bias', true),
    tie: c.bool('tie_word_embeddings', false),
    rope: ropeFromConfig(c, headDim, { theta: 10000, fraction: 0.25, thetaKey: 'rotary_emb_base', fractionKey: 'rotary_pct' }),
  };
}

export function neoxTensors(c: NeoxConfig): ExpectedTensor[] {
  const { hidden: E, intermediate: I, vocabSize: V } = c;
  const t: ExpectedTensor[] = [{ name: 'gpt_neox.embed_in.weight', shape: [V, E], fields: 'vocab_size, hidden_size' }];
  for (let l = 0; l < c.nLayer; l++) {
    const p = `gpt_neox.layers.${l}.`;
    for (const norm of ['input_layernorm', 'post_attention_layernorm']) {
      t.push({ name: `${p}${norm}.weight`, shape: [E], fields: 'hidden_size' }, { name: `${p}${norm}.bias`, shape: [E], fields: 'hidden_size' });
    }
    t.push(
      { name: `${p}attention.query_key_value.weight`, shape: [3 * E, E], fields: '3 × hidden_size, hidden_size' },
      { name: `${p}attention.dense.weight`, shape: [E, E], fields: 'hidden_size, hidden_size' },
      { name: `${p}mlp.dense_h_to_4h.weight`, shape: [I, E], fields: 'intermediate_size, hidden_size' },
      { name: `${p}mlp.dense_h_to_4h.bias`, shape: [I], fields: 'intermediate_size' },
      { name: `${p}mlp.dense_4h_to_h.weight`, shape: [E, I], fields: 'hidden_size, intermediate_size' },
      { name: `${p}mlp.dense_4h_to_h.bias`, shape: [E], fields: 'hidden_size' },
    );
    if (c.bias) {
      t.push({ name: `${p}attention.query_key_value.bias`, shape: [3 * E], fields: '3 × hidden_size' }, { name: `${p}attention.dense.bias`, shape: [E], fields: 'hidden_size' });
    }
  }
  t.push({ name: 'gpt_neox.final_layer_norm.weight', shape: [E], fields: 'hidden_size' }, { name: 'gpt_neox.final_layer_norm.bias', shape: [E], fields: 'hidden_size' });
  if (!c.tie) t.push({ name: 'embed_out.weight', shape: [V, E], fields: 'vocab_size, hidden_size' });
  return t;
}

export function neoxDims(c: NeoxConfig): ModelDims {
  return decoderDims(c, { nKvHead: c.nHead, scale: 1 / Math.sqrt(c.headDim), windows: Array.from({ length: c.nLayer }, () => null), rotary: c.rope });
}

function neoxGraph(c: NeoxConfig, weights: Map<string, Weight>): DecoderFamily {
  const { hidden: E, nHead: H, headDim: D, intermediate: I, vocabSize: V } = c;
  const w = (d: DecoderGraph, name: string, shape: number[]) => d.weight(name, weights.get(name)!, shape);
  const norm = (d: DecoderGraph, x: string, prefix: string) => layerNorm(d.g, x, w(d, `${prefix}.weight`, [E]), w(d, `${prefix}.bias`, [E]), c.eps);
  return {
    name: 'gpt_neox',
    embed: (d) => d.g.op('Gather', [w(d, 'gpt_neox.embed_in.weight', [V, E]), 'input_ids'], { axis: 0 }), // [1, T] -> [1, T, E]
    layer: (d, x, l) => {
      const g = d.g;
      const p = `gpt_neox.layers.${l}.`;
      const bias = (name: string, n: number) => (c.bias ? w(d, name, [n]) : undefined);
      const qkv = linearT(g, norm(d, x, `${p}input_layernorm`), w(d, `${p}attention.query_key_value.weight`, [3 * E, E]), E, 3 * E, bias(`${p}attention.query_key_value.bias`, 3 * E)); // [1, T, 3E]
      const perHead = g.op('Reshape', [qkv, g.ints(`shape_neox_qkv_${H}_${D}`, [1, -1, H, 3 * D])]); // [1, T, H, 3D]: [q_h | k_h | v_h]
      const split = g.op('Split', [perHead, g.ints(`split_neox_${D}`, [D, D, D])], { axis: -1 }, 3);
      const base = split.slice(0, -2);
      const dense = w(d, `${p}attention.dense.weight`, [E, E]);
      const merged = d.attention(l, { q: `${base}_0`, k: `${base}_1`, v: `${base}_2`, oProj: dense }); // 3 × [1, T, H, D] -> [1, T, E]
      const attn = linearT(g, merged, dense, E, E, bias(`${p}attention.dense.bias`, E)); // [1, T, E]
      const mlp = (y: string) => {
        const up = linearT(g, y, w(d, `${p}mlp.dense_h_to_4h.weight`, [I, E]), E, I, w(d, `${p}mlp.dense_h_to_4h.bias`, [I])); // [1, T, I]
        return linearT(g, activation(g, c.act, up), w(d, `${p}mlp.dense_4h_to_h.weight`, [E, I]), I, E, w(d, `${p}mlp.dense_4h_to_h.bias`, [E])); // [1, T, E]
      };
      if (c.parallel) return g.op('Add', [g.op('Add', [x, attn]), mlp(norm(d, x, `${p}post_attention_layernorm`))]); // x + attn(ln1 x) + mlp(ln2 x)
      const h = g.op('Add', [x, attn]); // [1, T, E]
      return g.op('Add', [h, mlp(norm(d, h, `${p}post_attention_layernorm`))]); // h + mlp(ln2 h)
    },
    final: (d, x) => ({
      hidden: norm(d, x, 'gpt_neox.final_layer_norm'), // [1, T, E]
      head: c.tie ? 'gpt_neox.embed_in.weight' : w(d, 'embed_out.weight', [V, E]), // [V, E]
    }),
  };
}

/** The final LayerNorm, the LM head and each layer's attention.dense for the lens and attribution. */
function neoxReadout(c: NeoxConfig, weights: Map<string, Weight>): Readout {
  return {
    finalNorm: { kind: 'layer', weight: weights.get('gpt_neox.final_layer_norm.weight')!, bias: weights.get('gpt_neox.final_layer_norm.bias')!, eps: c.eps },
    unembed: weights.get(c.tie ? 'gpt_neox.embed_in.weight' : 'embed_out.weight')!,
    finalSoftcap: null,
    layers: Array.from({ length: c.nLayer }, (_, l) => ({
      oProj: weights.get(`gpt_neox.layers.${l}.attention.dense.weight`)!, // [E, E]
      oProjLayout: 'out_in' as const,
      oBias: c.bias ? weights.get(`gpt_neox.layers.${l}.attention.dense.bias`) : undefined,
    })),
  };
}

export const neoxFamily: Family<NeoxConfig> = {
  modelTypes: ['gpt_neox'],
  parseConfig: parseNeoxConfig,
  tensors: neoxTensors,
  ignored: (c) =>
    c.tie
      ? /^gpt_neox\.layers\.\d+\.attention\.(bias|masked_bias|rotary_emb\.inv_freq)$|^embed_out\.weight$/
      : /^gpt_neox\.layers\.\d+\.attention\.(bias|masked_bias|rotary_emb\.inv_freq)$/,
  model(c, weights): FamilyModel {
    const dims = neoxDims(c);
    return { modelType: 'gpt_neox', dims, build: (opts) => DecoderGraph.build(dims, neoxGraph(c, weights), opts), readout: neoxReadout(c, weights) };
  },
};
