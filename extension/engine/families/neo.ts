/**
 * GPT-Neo (`gpt_neo`: EleutherAI/gpt-neo-125m…2.7B, roneneldan/TinyStories-*), from transformers'
 * gpt_neo/modeling_gpt_neo.py and configuration_gpt_neo.py. Pre-LN blocks with learned absolute positions:
 *   x₀ = wte[ids] + wpe[positions]
 *   h  = x + out_proj(attention(ln_1(x)))          q/k/v_proj without bias, out_proj with bias
 *   x' = h + c_proj(gelu_new(c_fc(ln_2(h))))
 *   logits = ln_f(x) · wteᵀ                          lm_head tied to wte (unless tie_word_embeddings is false)
 * Attention has NO 1/√head_dim factor: softmax(q·kᵀ + mask)·v. Layers are global or local as `attention_types`
 * expands ([[["global", "local"], 12]] → 24 layers, the first global); a local layer's query i sees keys
 * i − window_size < j ≤ i (the modeling file's bias ^ tril(bias, −window_size)). The mask buffers old exports carry
 * (attn.attention.bias, masked_bias) are ignored: the masks are computed here. Tokenizer: GPT-2's.
 */
import { activation, layerNorm, linearT } from '../graph/blocks.js';
import { DecoderGraph, type DecoderFamily } from '../graph/decoderGraph.js';
import type { Weight } from '../graph/gpt2Graph.js';
import { ConfigFields, describe } from '../model/configFields.js';
import type { ModelDims } from '../model/dims.js';
import { HeadlightError } from '../../common/errors.js';
import { activationField, decoderDims, engineWindow, type DecoderSizes, type ExpectedTensor, type Family, type FamilyModel, type LoadOptions, type Readout, type StoredTensors } from './family.js';

type AttentionType = 'global' | 'local';

/** maxPositions (max_position_embeddings) is also the rows of wpe. */
export interface NeoConfig extends DecoderSizes {
  /** [nLayer]: each layer's attention type. */
  attentionLayers: AttentionType[];
  windowSize: number;
  /** `transformer.` (GPTNeoForCausalLM) or `` (a bare GPTNeoModel); set by `resolve`. */
  prefix: string;
}

export function parseNeoConfig(json: Record<string, unknown>, file: string, opts: LoadOptions): NeoConfig {
  const c = new ConfigFields(json, file);
  const hidden = c.int('hidden_size', 2048);
  // GPTNeoConfig's own names are num_layers / num_heads; num_hidden_layers / num_attention_heads map onto them.
  const layersKey = c.get('num_layers') !== undefined || c.get('num_hidden_layers') === undefined ? 'num_layers' : 'num_hidden_layers';
  const headsKey = c.get('num_heads') !== undefined || c.get('num_attention_heads') === undefined ? 'num_heads' : 'num_attention_heads';
  const nLayer = c.int(layersKey, 24);
  const nHead = c.int(headsKey, 16);
  if (hidden % nHead !== 0) c.fail(headsKey, `(${nHead}) does not divide hidden_size (${hidden})`);
  const maxPositions = c.int('max_position_embeddings', 2048);
  const act = activationField(c, 'activation_function', c.get('activation_function') ?? 'gelu_new');
  return {
    nLayer,
    nHead,
    headDim: hidden / nHead,
    hidden,
    intermediate: c.get('intermediate_size') === undefined ? 4 * hidden : c.int('intermediate_size'),
    vocabSize: c.int('vocab_size', 50257),
    maxPositions,
    window: engineWindow(maxPositions, opts),
    eps: c.num('layer_norm_epsilon', 1e-5),
    act,
    tie: c.bool('tie_word_embeddings', true),
    attentionLayers: attentionLayers(c, nLayer, layersKey),
    windowSize: c.int('window_size', 256),
    prefix: 'transformer.',
  };
}

/**
 * attention_types [[pattern, n], …] → one type per layer, each pattern repeated n times in order (as GPTNeoConfig
 * expands it). A saved config also carries the expansion as attention_layers; it must agree.
 */
function attentionLayers(c: ConfigFields, nLayer: number, layersKey: string): AttentionType[] {
  const types = c.get('attention_types') ?? [[['global', 'local'], 12]];
  const wellFormed = Array.isArray(types) && types.every((t) => Array.isArray(t) && t.length === 2 && Array.isArray(t[0]) && Number.isSafeInteger(t[1]) && t[1] >= 0);
  if (!wellFormed) c.fail('attention_types', `must look like [[["global", "local"], n], …], got ${describe(types)}`);
  const out: AttentionType[] = [];
  for (const [pattern, n] of types as [unknown[], number][]) {
    for (let r = 0; r < n; r++) {
      for (const t of pattern) {
        if (t !== 'global' && t !== 'local') c.fail('attention_types', `names ${describe(t)}; only "global" and "local" exist`);
        out.push(t);
      }
    }
  }
  if (out.length !== nLayer) c.fail('attention_types', `expands to ${out.length} layers, but ${layersKey} is ${nLayer}`);
  const saved = c.get('attention_layers');
  if (saved !== undefined && JSON.stringify(saved) !== JSON.stringify(out)) c.fail('attention_layers', `is ${describe(saved)}, but attention_types expands to ${describe(out)}`);
  return out;
}

/** The key prefix in use, and no layer beyond num_layers (named precisely before checkedWeights' generic refusal). */
function resolveNeo(c: NeoConfig, store: StoredTensors): NeoConfig {
  const names = store.names();
  const prefix = names.includes('transformer.wte.weight') || !names.includes('wte.weight') ? 'transformer.' : '';
  for (const name of names) {
    const m = /^(?:transformer\.)?h\.(\d+)\./.exec(name);
    if (m && Number(m[1]) >= c.nLayer) {
      throw new HeadlightError(
        'checkpoint-bad-tensor',
        `${store.fileOf(name)}: has tensor ${name} but config.json says num_layers is ${c.nLayer}.`,
        'config.json and the weights do not belong together: download the checkpoint again.',
      );
    }
  }
  return { ...c, prefix };
}

export function neoTensors(c: NeoConfig): ExpectedTensor[] {
  const { hidden: E, intermediate: I, vocabSize: V, maxPositions: P, prefix } = c;
  const norm = (key: string): ExpectedTensor[] => [
    { name: `${key}.weight`, shape: [E], fields: 'hidden_size' },
    { name: `${key}.bias`, shape: [E], fields: 'hidden_size' },
  ];
  const t: ExpectedTensor[] = [
    { name: `${prefix}wte.weight`, shape: [V, E], fields: 'vocab_size, hidden_size' },
    { name: `${prefix}wpe.weight`, shape: [P, E], fields: 'max_position_embeddings, hidden_size' },
  ];
  for (let l = 0; l < c.nLayer; l++) {
    const p = `${prefix}h.${l}.`;
    t.push(
      ...norm(`${p}ln_1`),
      { name: `${p}attn.attention.q_proj.weight`, shape: [E, E], fields: 'hidden_size, hidden_size' },
      { name: `${p}attn.attention.k_proj.weight`, shape: [E, E], fields: 'hidden_size, hidden_size' },
      { name: `${p}attn.attention.v_proj.weight`, shape: [E, E], fields: 'hidden_size, hidden_size' },
      { name: `${p}attn.attention.out_proj.weight`, shape: [E, E], fields: 'hidden_size, hidden_size' },
      { name: `${p}attn.attention.out_proj.bias`, shape: [E], fields: 'hidden_size' },
      ...norm(`${p}ln_2`),
      { name: `${p}mlp.c_fc.weight`, shape: [I, E], fields: 'intermediate_size (default 4 × hidden_size), hidden_size' },
      { name: `${p}mlp.c_fc.bias`, shape: [I], fields: 'intermediate_size (default 4 × hidden_size)' },
      { name: `${p}mlp.c_proj.weight`, shape: [E, I], fields: 'hidden_size, intermediate_size (default 4 × hidden_size)' },
      { name: `${p}mlp.c_proj.bias`, shape: [E], fields: 'hidden_size' },
    );
  }
  t.push(...norm(`${prefix}ln_f`));
  if (!c.tie) t.push({ name: 'lm_head.weight', shape: [V, E], fields: 'vocab_size, hidden_size' });
  return t;
}

export function neoDims(c: NeoConfig): ModelDims {
  return decoderDims(c, { nKvHead: c.nHead, scale: 1 /* no 1/√D in GPT-Neo */, windows: c.attentionLayers.map((t) => (t === 'local' ? c.windowSize : null)) });
}

function neoGraph(c: NeoConfig, weights: Map<string, Weight>): DecoderFamily {
  const { hidden: E, intermediate: I, vocabSize: V, maxPositions: P, prefix } = c;
  const w = (d: DecoderGraph, name: string, shape: number[]) => d.weight(name, weights.get(name)!, shape);
  const norm = (d: DecoderGraph, x: string, key: string) => layerNorm(d.g, x, w(d, `${key}.weight`, [E]), w(d, `${key}.bias`, [E]), c.eps); // [1, T, E]
  const wte = `${prefix}wte.weight`;
  return {
    name: 'gpt_neo',
    embed: (d) => {
      const tokens = d.g.op('Gather', [w(d, wte, [V, E]), 'input_ids'], { axis: 0 }); // [1, T] -> [1, T, E]
      const positions = d.g.op('Gather', [w(d, `${prefix}wpe.weight`, [P, E]), 'position_ids'], { axis: 0 }); // [1, T] -> [1, T, E]
      return d.g.op('Add', [tokens, positions]); // [1, T, E]
    },
    layer: (d, x, l) => {
      const g = d.g;
      const a = `${prefix}h.${l}.attn.attention.`;
      const m = `${prefix}h.${l}.mlp.`;
      const n = norm(d, x, `${prefix}h.${l}.ln_1`); // [1, T, E]
      const q = linearT(g, n, w(d, `${a}q_proj.weight`, [E, E]), E, E); // [1, T, E]
      const k = linearT(g, n, w(d, `${a}k_proj.weight`, [E, E]), E, E); // [1, T, E]
      const v = linearT(g, n, w(d, `${a}v_proj.weight`, [E, E]), E, E); // [1, T, E]
      const oProj = w(d, `${a}out_proj.weight`, [E, E]);
      const merged = d.attention(l, { q, k, v, oProj }); // [1, T, E]: softmax(q·kᵀ + mask)·v, scale 1
      const h = g.op('Add', [x, linearT(g, merged, oProj, E, E, w(d, `${a}out_proj.bias`, [E]))]); // [1, T, E]
      const up = linearT(g, norm(d, h, `${prefix}h.${l}.ln_2`), w(d, `${m}c_fc.weight`, [I, E]), E, I, w(d, `${m}c_fc.bias`, [I])); // [1, T, I]
      const down = linearT(g, activation(g, c.act, up), w(d, `${m}c_proj.weight`, [E, I]), I, E, w(d, `${m}c_proj.bias`, [E])); // [1, T, E]
      return g.op('Add', [h, down]); // [1, T, E]
    },
    final: (d, x) => ({
      hidden: norm(d, x, `${prefix}ln_f`), // [1, T, E]
      head: c.tie ? wte : w(d, 'lm_head.weight', [V, E]), // [V, E]
    }),
  };
}

/** ln_f, the tied head and each layer's out_proj for the lens and attribution. */
function neoReadout(c: NeoConfig, weights: Map<string, Weight>): Readout {
  const p = c.prefix;
  return {
    finalNorm: { kind: 'layer', weight: weights.get(`${p}ln_f.weight`)!, bias: weights.get(`${p}ln_f.bias`)!, eps: c.eps },
    unembed: weights.get(c.tie ? `${p}wte.weight` : 'lm_head.weight')!,
    finalSoftcap: null,
    layers: Array.from({ length: c.nLayer }, (_, l) => ({
      oProj: weights.get(`${p}h.${l}.attn.attention.out_proj.weight`)!, // [E, E]
      oProjLayout: 'out_in' as const,
      oBias: weights.get(`${p}h.${l}.attn.attention.out_proj.bias`),
    })),
  };
}

export const neoFamily: Family<NeoConfig> = {
  modelTypes: ['gpt_neo'],
  parseConfig: parseNeoConfig,
  resolve: resolveNeo,
  tensors: neoTensors,
  ignored: (c) => (c.tie ? /^(transformer\.)?h\.\d+\.attn\.attention\.(bias|masked_bias)$|^lm_head\.weight$/ : /^(transformer\.)?h\.\d+\.attn\.attention\.(bias|masked_bias)$/),
  layerCountKey: 'num_layers',
  model(c, weights): FamilyModel {
    const dims = neoDims(c);
    return { modelType: 'gpt_neo', dims, build: (opts) => DecoderGraph.build(dims, neoGraph(c, weights), opts), readout: neoReadout(c, weights) };
  },
};
