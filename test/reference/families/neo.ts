/**
 * Float64 reference forward of GPT-Neo (`gpt_neo`: EleutherAI's GPT-Neo and the TinyStories models), written from
 * transformers' gpt_neo/modeling_gpt_neo.py and configuration_gpt_neo.py over the shared blocks. Imports nothing from
 * the engine.
 *
 *   x   = wte[ids] + wpe[0..T)                                  (learned absolute positions)
 *   h   = x + out_proj(attention(ln_1(x)))                       (q/k/v without bias, out_proj with bias)
 *   out = h + c_proj(gelu_new(c_fc(ln_2(h))))
 *   logits = ln_f(out) · wteᵀ                                    (lm_head tied to wte)
 * Attention scores are the plain q·k: GPT-Neo has NO 1/√head_dim scaling. Layers alternate global and local
 * attention as config `attention_types` says ([[["global","local"], 12]] → 24 layers, the first global); a local
 * layer's query i sees keys i − window_size < j ≤ i (the modeling file's bias ^ tril(bias, −window_size)).
 * The `attn.attention.bias` / `masked_bias` mask buffers some checkpoints carry are ignored.
 */
import { HeadlightError } from '../../../extension/common/errors.js';
import type { CheckpointSpec, TensorSpec } from '../../fixtures/hfCheckpoint.js';
import {
  activation,
  add,
  applyHeadHooks,
  applyResidHook,
  attentionHead,
  columns,
  embed,
  emptyResult,
  intField,
  layerNorm,
  linear,
  numField,
  optionalWeight,
  projectHeads,
  recordLayer,
  setLogits,
  weight,
  type Matrix,
} from './blocks.js';
import type { RefConfig, RefHooks, RefWeights, ReferenceForward } from './types.js';

export type NeoAttentionType = 'global' | 'local';

/** Everything in config.json that changes GPT-Neo's computation, with GPTNeoConfig's defaults. */
export interface NeoShape {
  vocab: number;
  positions: number;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  window: number;
  eps: number;
  attentionLayers: NeoAttentionType[]; // [L]
  act: (x: number) => number;
}

function badConfig(field: string, message: string): HeadlightError {
  return new HeadlightError('reference-config', `reference (GPT-Neo): config.json field ${field} ${message}.`, 'Fix config.json.');
}

/**
 * attention_types [[pattern, n], …] → one type per layer: each pattern repeated n times, in order
 * (GPTNeoConfig.expand_attention_types_params). A saved config also carries that expansion as attention_layers;
 * it must agree.
 */
export function expandAttentionTypes(config: RefConfig, layers: number): NeoAttentionType[] {
  const types = config.attention_types ?? [[['global', 'local'], 12]];
  const wellFormed =
    Array.isArray(types) &&
    types.every((item) => Array.isArray(item) && item.length === 2 && Array.isArray(item[0]) && Number.isInteger(item[1]) && item[1] >= 0);
  if (!wellFormed) throw badConfig('attention_types', `is ${JSON.stringify(types)}, want [[["global", "local"], n], …]`);
  const out: NeoAttentionType[] = [];
  for (const [pattern, n] of types as [unknown[], number][]) {
    for (let r = 0; r < n; r++) {
      for (const t of pattern) {
        if (t !== 'global' && t !== 'local') throw badConfig('attention_types', `names ${JSON.stringify(t)}; only "global" and "local" exist`);
        out.push(t);
      }
    }
  }
  if (out.length !== layers) throw badConfig('attention_types', `expands to ${out.length} layers, but num_layers is ${layers}`);
  const saved = config.attention_layers;
  if (saved !== undefined && JSON.stringify(saved) !== JSON.stringify(out)) {
    throw badConfig('attention_layers', `is ${JSON.stringify(saved)}, but attention_types expands to ${JSON.stringify(out)}`);
  }
  return out;
}

/** config.json → NeoShape (num_layers / num_heads, or their aliases num_hidden_layers / num_attention_heads). */
export function neoShape(config: RefConfig): NeoShape {
  if (config.model_type !== 'gpt_neo') throw badConfig('model_type', `is ${JSON.stringify(config.model_type)}, want "gpt_neo"`);
  const hidden = intField(config, 'hidden_size', 2048);
  const layers = intField(config, 'num_layers', (config.num_hidden_layers as number | undefined) ?? 24);
  const heads = intField(config, 'num_heads', (config.num_attention_heads as number | undefined) ?? 16);
  if (hidden % heads !== 0) throw badConfig('num_heads', `(${heads}) does not divide hidden_size (${hidden})`);
  const inner = config.intermediate_size;
  return {
    vocab: intField(config, 'vocab_size', 50257),
    positions: intField(config, 'max_position_embeddings', 2048),
    hidden,
    layers,
    heads,
    intermediate: inner === null || inner === undefined ? 4 * hidden : intField(config, 'intermediate_size'),
    window: intField(config, 'window_size', 256),
    eps: numField(config, 'layer_norm_epsilon', 1e-5),
    attentionLayers: expandAttentionTypes(config, layers),
    act: activation(config.activation_function ?? 'gelu_new'),
  };
}

/** `transformer.` (GPTNeoForCausalLM) or no prefix (a bare GPTNeoModel). */
export function neoPrefix(weights: RefWeights): string {
  for (const p of ['transformer.', '']) if (weights.has(`${p}wte.weight`)) return p;
  throw new HeadlightError('reference-missing-tensor', 'reference (GPT-Neo): no transformer.wte.weight (or wte.weight).', 'Pass the checkpoint tensors by their Hugging Face key names.');
}

function ln(weights: RefWeights, key: string, x: Matrix, eps: number): Matrix {
  const E = x.cols;
  return layerNorm(x, weight(weights, `${key}.weight`, [E]).data, weight(weights, `${key}.bias`, [E]).data, eps);
}

/** Layer l's self-attention on xn = ln_1(x) [T, E]: maps, per-head contributions and out_proj's output. */
function attention(s: NeoShape, weights: RefWeights, p: string, l: number, xn: Matrix, hooks: RefHooks | undefined) {
  const { hidden: E, heads: H } = s;
  const d = E / H;
  const a = `${p}h.${l}.attn.attention.`;
  const q = linear(xn, weight(weights, `${a}q_proj.weight`, [E, E])); // [T, E] -> [T, E], no bias
  const k = linear(xn, weight(weights, `${a}k_proj.weight`, [E, E])); // [T, E] -> [T, E], no bias
  const v = linear(xn, weight(weights, `${a}v_proj.weight`, [E, E])); // [T, E] -> [T, E], no bias
  const window = s.attentionLayers[l] === 'local' ? s.window : null;
  const probs: Float64Array[] = [];
  const z: Matrix[] = [];
  for (let h = 0; h < H; h++) {
    // scale 1: GPT-Neo does not divide q·k by √d.
    const head = attentionHead(columns(q, h * d, d), columns(k, h * d, d), columns(v, h * d, d), { scale: 1, window });
    probs.push(head.probs);
    z.push(head.out);
  }
  applyHeadHooks(l, z, hooks);
  const proj = projectHeads(z, weight(weights, `${a}out_proj.weight`, [E, E]), weight(weights, `${a}out_proj.bias`, [E])); // -> [T, E]
  return { probs, headOut: proj.headOut, out: proj.attnOut };
}

/** c_proj(act(c_fc(x))): [T, E] -> [T, I] -> [T, E]. */
function mlp(s: NeoShape, weights: RefWeights, p: string, l: number, x: Matrix): Matrix {
  const { hidden: E, intermediate: I } = s;
  const m = `${p}h.${l}.mlp.`;
  const a = linear(x, weight(weights, `${m}c_fc.weight`, [I, E]), weight(weights, `${m}c_fc.bias`, [I])); // [T, E] -> [T, I]
  for (let i = 0; i < a.data.length; i++) a.data[i] = s.act(a.data[i]);
  return linear(a, weight(weights, `${m}c_proj.weight`, [E, I]), weight(weights, `${m}c_proj.bias`, [E])); // [T, I] -> [T, E]
}

/**
 * GPT-Neo forward over `ids`. Hooks as in blocks.ts: headMask multiplies each head's output before out_proj, then
 * patchHeadOut may overwrite it; patchResidPre sees the stream entering layers 0..L−1. headOut excludes out_proj's
 * bias; attnOut = Σ_h headOut + bias; mlpOut is the MLP's output.
 */
export const neoForward: ReferenceForward = (config, weights, ids, hooks) => {
  const s = neoShape(config);
  const { vocab: V, hidden: E, layers: L } = s;
  const T = ids.length;
  if (T === 0 || T > s.positions) {
    throw new HeadlightError('reference-token-id', `reference (GPT-Neo): need 1..${s.positions} token ids (max_position_embeddings), got ${T}.`, 'Pass a shorter window.');
  }
  const p = neoPrefix(weights);
  const wte = weight(weights, `${p}wte.weight`, [V, E]); // [V, E]
  const wpe = weight(weights, `${p}wpe.weight`, [s.positions, E]); // [P, E]
  let x = embed(wte, ids, `${p}wte.weight`); // [T, E]
  for (let i = 0; i < T * E; i++) x.data[i] += wpe.data[i]; // + wpe[0..T)

  const result = emptyResult();
  for (let l = 0; l < L; l++) {
    applyResidHook(l, x, hooks);
    result.residPre.push(Float64Array.from(x.data));
    const attn = attention(s, weights, p, l, ln(weights, `${p}h.${l}.ln_1`, x, s.eps), hooks);
    x = add(x, attn.out);
    const ff = mlp(s, weights, p, l, ln(weights, `${p}h.${l}.ln_2`, x, s.eps)); // [T, E]
    x = add(x, ff);
    recordLayer(result, attn.probs, attn.headOut, attn.out, ff);
  }
  result.residPre.push(Float64Array.from(x.data));

  const final = ln(weights, `${p}ln_f`, x, s.eps); // [T, E]
  const lmHead = optionalWeight(weights, 'lm_head.weight', [V, E]) ?? wte; // tied unless the file stores it
  setLogits(result, linear(final, lmHead).data, ids, V); // [T, E] -> [T, V]
  return result;
};

// ---------------------------------------------------------------- a tiny checkpoint (for test/fixtures/hfCheckpoint.ts)

export interface NeoSpecOptions {
  layers: number;
  hidden: number;
  heads: number;
  vocab: number;
  /** Default 4·hidden (written as null, as TinyStories' configs do). */
  intermediate?: number;
  maxPositions?: number;
  windowSize: number;
  /** Default [[["global", "local"], layers / 2]]. */
  attentionTypes?: [NeoAttentionType[], number][];
  layerNormEps?: number;
  activation?: string;
  /** Write each layer's `attn.attention.bias` (BOOL, [1, 1, P, P]) and `masked_bias` buffers, as old exports do. */
  buffers?: boolean;
  /** Std of the unscaled scores q·k (default 4: far from uniform). */
  qkScale?: number;
}

/** config.json and key list of a GPTNeoForCausalLM checkpoint (keys under `transformer.`, lm_head tied). */
export function neoSpec(o: NeoSpecOptions): CheckpointSpec {
  const { hidden: E, heads: H, vocab: V } = o;
  const d = E / H;
  const I = o.intermediate ?? 4 * E;
  const P = o.maxPositions ?? 64;
  const types = o.attentionTypes ?? [[['global', 'local'], o.layers / 2]];
  const config: RefConfig = {
    architectures: ['GPTNeoForCausalLM'],
    model_type: 'gpt_neo',
    vocab_size: V,
    max_position_embeddings: P,
    hidden_size: E,
    num_layers: o.layers,
    num_heads: H,
    intermediate_size: o.intermediate ?? null,
    window_size: o.windowSize,
    attention_types: types,
    activation_function: o.activation ?? 'gelu_new',
    layer_norm_epsilon: o.layerNormEps ?? 1e-5,
    bos_token_id: 50256,
    eos_token_id: 50256,
  };
  config.attention_layers = expandAttentionTypes(config, o.layers);
  const residual = 1 / Math.sqrt(2 * o.layers);
  // Unit-RMS rows through q, k of std s: entries of std s·√E, q·k over d dims has std s²·E·√d (no 1/√d here).
  const qk = Math.sqrt((o.qkScale ?? 4) / (E * Math.sqrt(d)));
  const norm = (key: string): TensorSpec[] => [
    { key: `${key}.weight`, shape: [E], init: { normal: 0.1, mean: 1 } },
    { key: `${key}.bias`, shape: [E], init: { normal: 0.05 } },
  ];
  const tensors: TensorSpec[] = [
    { key: 'transformer.wte.weight', shape: [V, E], init: { normal: 2 / Math.sqrt(E) } },
    { key: 'transformer.wpe.weight', shape: [P, E], init: { normal: 1 / Math.sqrt(E) } },
  ];
  (config.attention_layers as NeoAttentionType[]).forEach((type, l) => {
    const p = `transformer.h.${l}.`;
    tensors.push(
      ...norm(`${p}ln_1`),
      { key: `${p}attn.attention.k_proj.weight`, shape: [E, E], init: { normal: qk } },
      { key: `${p}attn.attention.v_proj.weight`, shape: [E, E], init: { normal: 1 / Math.sqrt(E) } },
      { key: `${p}attn.attention.q_proj.weight`, shape: [E, E], init: { normal: qk } },
      { key: `${p}attn.attention.out_proj.weight`, shape: [E, E], init: { normal: residual / Math.sqrt(E) } },
      { key: `${p}attn.attention.out_proj.bias`, shape: [E], init: { normal: 0.02 } },
      ...norm(`${p}ln_2`),
      { key: `${p}mlp.c_fc.weight`, shape: [I, E], init: { normal: 1 / Math.sqrt(E) } },
      { key: `${p}mlp.c_fc.bias`, shape: [I], init: { normal: 0.1 } },
      { key: `${p}mlp.c_proj.weight`, shape: [E, I], init: { normal: residual / Math.sqrt(I) } },
      { key: `${p}mlp.c_proj.bias`, shape: [E], init: { normal: 0.02 } },
    );
    if (o.buffers) {
      const mask = new Float32Array(P * P); // [1, 1, P, P]: causal, and within the window on local layers
      for (let i = 0; i < P; i++) for (let j = 0; j <= i; j++) if (type === 'global' || j > i - o.windowSize) mask[i * P + j] = 1;
      tensors.push(
        { key: `${p}attn.attention.bias`, shape: [1, 1, P, P], init: { values: mask }, rawDtype: 'BOOL' },
        { key: `${p}attn.attention.masked_bias`, shape: [], init: { values: Float32Array.of(-1e9) } },
      );
    }
  });
  tensors.push(...norm('transformer.ln_f'));
  return { config, tensors };
}
