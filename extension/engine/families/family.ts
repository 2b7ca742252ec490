/**
 * A model family: one file per architecture (gpt2.ts, llama.ts, neox.ts) registered by config.json's `model_type`.
 * A family parses its config with Hugging Face's defaults, names the tensors it expects with their shapes (checked
 * against the safetensors headers before any weight is read), and builds its ONNX graph over the shared blocks in
 * graph/. Everything after loading (the runner, the analyses) sees only `ModelDims` and the built graph.
 */
import { basename } from 'node:path';
import { HeadlightError } from '../../common/errors.js';
import { ACTIVATION_NAMES, type ActivationName } from '../graph/blocks.js';
import type { BuiltGraph, GraphOptions, Weight } from '../graph/gpt2Graph.js';
import type { TensorStore } from '../model/tensorStore.js';
import { describe, type ConfigFields } from '../model/configFields.js';
import type { ModelDims } from '../model/dims.js';

/** A checked model ready to build: its sizes and its graph. */
export interface FamilyModel {
  /** config.json's model_type (`gpt2` also for GPT-2 configs without one). */
  modelType: string;
  dims: ModelDims;
  /** Builds the ONNX graph (inputs and outputs as listed at the top of graph/gpt2Graph.ts). */
  build(opts: GraphOptions): Promise<BuiltGraph>;
  /** What the logit lens and direct logit attribution read of the model (analyses/lens.ts, attribution.ts). */
  readout?: Readout;
}

/** A norm the readout applies itself: LayerNorm (with bias) or RMSNorm; `plusOne`: x̂·(1 + w) (Gemma). */
export interface ReadoutNorm {
  kind: 'layer' | 'rms';
  weight: Weight; // [E]
  bias?: Weight; // [E], LayerNorm only
  eps: number;
  plusOne?: boolean;
}

/** One layer's attention output as the readout splits it by head. */
export interface ReadoutLayer {
  /** The output projection: torch's Linear layout [E, H·D] ('out_in') or GPT-2's Conv1D [H·D, E] ('in_out'). */
  oProj: Weight;
  oProjLayout: 'out_in' | 'in_out';
  oBias?: Weight; // [E]
  /** A norm on the attention block's output before it joins the residual stream (Gemma's post_attention_layernorm). */
  postAttnNorm?: ReadoutNorm;
}

/**
 * What the logit lens (the residual stream entering each layer read through the model's own final norm and
 * unembedding) and direct logit attribution (the final residual split into embeddings, heads, attention biases and
 * MLPs, each projected through the frozen final norm) need of a family. A family fills it from its weights (lazy
 * sources: read while the checkpoint is open); the analyses never read a family's config.
 */
export interface Readout {
  finalNorm: ReadoutNorm;
  /** The unembedding [V, E] (the embedding table when tied). */
  unembed: Weight;
  /** Gemma 2's final logit soft-cap: logits = cap·tanh(logits / cap); null for none. */
  finalSoftcap: number | null;
  layers: ReadoutLayer[];
}

export interface LoadOptions {
  /** The longest window the engine runs: min(max_position_embeddings, maxWindow); default 1024. */
  maxWindow?: number;
}

export const DEFAULT_MAX_WINDOW = 1024;

/** The sizes every decoder family's config has (each family's config extends it with its own flags). */
export interface DecoderSizes {
  nLayer: number;
  nHead: number;
  headDim: number;
  hidden: number;
  intermediate: number;
  vocabSize: number;
  /** max_position_embeddings. */
  maxPositions: number;
  /** The engine's longest window: min(max_position_embeddings, maxWindow). */
  window: number;
  eps: number;
  act: ActivationName;
  tie: boolean;
}

/** The engine's longest window for a model with maxPositions positions: min(maxPositions, opts.maxWindow ?? 1024). */
export function engineWindow(maxPositions: number, opts: LoadOptions): number {
  return Math.min(maxPositions, opts.maxWindow ?? DEFAULT_MAX_WINDOW);
}

/** A config's activation `value` (read from `key`, which errors name), refused unless graph/blocks.ts has it. */
export function activationField(c: ConfigFields, key: string, value: unknown): ActivationName {
  if (!(ACTIVATION_NAMES as readonly unknown[]).includes(value)) c.fail(key, `is ${describe(value)}; supported: ${ACTIVATION_NAMES.join(', ')}`, 'Pick a checkpoint with one of these activations.');
  return value as ActivationName;
}

export type LayerType = 'sliding_attention' | 'full_attention';

/** `layer_types` (one per layer, sliding or full), checked against nLayer; undefined when the config has none. */
export function layerTypesField(c: ConfigFields, nLayer: number): LayerType[] | undefined {
  const types = c.get('layer_types');
  if (types === undefined) return undefined;
  if (!Array.isArray(types) || types.length !== nLayer || types.some((t) => t !== 'sliding_attention' && t !== 'full_attention')) {
    c.fail('layer_types', `must list "sliding_attention" or "full_attention" for each of the ${nLayer} layers, got ${describe(types)}`);
  }
  return types as LayerType[];
}

/** Sizes of a Llama-style attention block: E hidden, H query heads, KVH key/value heads of D dims each. */
interface AttentionSizes {
  E: number;
  H: number;
  KVH: number;
  D: number;
}

/** The q/k/v/o_proj weights of a Llama-style attention block under `p` (`…layers.N.`), torch Linear layout [out, in]. */
export function attentionProjTensors(p: string, { E, H, KVH, D }: AttentionSizes): ExpectedTensor[] {
  return [
    { name: `${p}self_attn.q_proj.weight`, shape: [H * D, E], fields: 'num_attention_heads × head_dim, hidden_size' },
    { name: `${p}self_attn.k_proj.weight`, shape: [KVH * D, E], fields: 'num_key_value_heads × head_dim, hidden_size' },
    { name: `${p}self_attn.v_proj.weight`, shape: [KVH * D, E], fields: 'num_key_value_heads × head_dim, hidden_size' },
    { name: `${p}self_attn.o_proj.weight`, shape: [E, H * D], fields: 'hidden_size, num_attention_heads × head_dim' },
  ];
}

/** The q/k/v_proj biases of a Llama-style attention block under `p`. */
export function qkvBiasTensors(p: string, { H, KVH, D }: AttentionSizes): ExpectedTensor[] {
  return [
    { name: `${p}self_attn.q_proj.bias`, shape: [H * D], fields: 'num_attention_heads × head_dim' },
    { name: `${p}self_attn.k_proj.bias`, shape: [KVH * D], fields: 'num_key_value_heads × head_dim' },
    { name: `${p}self_attn.v_proj.bias`, shape: [KVH * D], fields: 'num_key_value_heads × head_dim' },
  ];
}

/** The gate/up/down_proj weights of a gated MLP (hidden E, intermediate I) under `p`. */
export function gatedMlpTensors(p: string, E: number, I: number): ExpectedTensor[] {
  return [
    { name: `${p}mlp.gate_proj.weight`, shape: [I, E], fields: 'intermediate_size, hidden_size' },
    { name: `${p}mlp.up_proj.weight`, shape: [I, E], fields: 'intermediate_size, hidden_size' },
    { name: `${p}mlp.down_proj.weight`, shape: [E, I], fields: 'hidden_size, intermediate_size' },
  ];
}

/** q_norm / k_norm (per head, over D dims) under `p`: Qwen3 and Gemma 3. */
export function qkNormTensors(p: string, D: number): ExpectedTensor[] {
  return [
    { name: `${p}self_attn.q_norm.weight`, shape: [D], fields: 'head_dim' },
    { name: `${p}self_attn.k_norm.weight`, shape: [D], fields: 'head_dim' },
  ];
}

/** A decoder family's ModelDims from its sizes: one q·k factor for every layer, each layer's window, the rotary. */
export function decoderDims(c: DecoderSizes, parts: { nKvHead: number; scale: number; windows: (number | null)[]; rotary?: ModelDims['rotary'] }): ModelDims {
  const dims: ModelDims = {
    nLayer: c.nLayer,
    nHead: c.nHead,
    nKvHead: parts.nKvHead,
    headDim: c.headDim,
    nEmbd: c.hidden,
    nPositions: c.window,
    vocabSize: c.vocabSize,
    scales: Array.from({ length: c.nLayer }, () => parts.scale),
    windows: parts.windows,
  };
  if (parts.rotary) dims.rotary = parts.rotary;
  return dims;
}

/** One tensor a family expects: its key, its shape and the config fields that set the shape (for errors). */
export interface ExpectedTensor {
  name: string;
  shape: number[];
  fields: string;
}

export interface Family<C> {
  modelTypes: readonly string[];
  /** config.json -> the family's config (HeadlightError naming the file and field on bad values). */
  parseConfig(json: Record<string, unknown>, file: string, opts: LoadOptions): C;
  /** Every tensor the graph reads, with its shape. */
  tensors(config: C): ExpectedTensor[];
  /** Keys a checkpoint may carry that are not read (stale buffers, a tied head stored anyway). */
  ignored(config: C): RegExp;
  /** The model over checked weights (by key). */
  model(config: C, weights: Map<string, Weight>): FamilyModel;
  /**
   * Optional: completes the config from the checkpoint's tensor names and dtypes, before `tensors` and before any
   * weight is read (Gemma 3: where the text model's keys start, the embedding's dtype; GPT-Neo: extra layers).
   */
  resolve?(config: C, store: StoredTensors): C;
  /** config.json's field for the layer count, named when a file holds more layers (default num_hidden_layers). */
  layerCountKey?: string;
}

/** What `resolve` sees of a checkpoint: its tensor names and each one's file and dtype (headers only). */
export interface StoredTensors {
  names(): string[];
  /** The tensor's safetensors dtype (F32, F16, BF16, …). */
  dtypeOf(name: string): string;
  /** The file that holds it (its base name, for errors). */
  fileOf(name: string): string;
}

/**
 * Checks every expected tensor against the headers (dtype, shape) and that the file holds nothing else (layers
 * beyond the config's count, biases the config says are absent), then returns lazy sources: no weight is read
 * until the graph is serialized.
 */
export function checkedWeights(store: TensorStore, expected: ExpectedTensor[], ignored: RegExp, layerCount: { key: string; value: number }): Map<string, Weight> {
  const weights = new Map<string, Weight>();
  for (const t of expected) weights.set(t.name, store.lazy(t.name, t.shape, t.fields));
  for (const name of store.names()) {
    if (weights.has(name) || ignored.test(name)) continue;
    const file = basename(store.info(name).file.path);
    const layer = /\.layers\.(\d+)\./.exec(name);
    throw new HeadlightError(
      'checkpoint-bad-tensor',
      layer && Number(layer[1]) >= layerCount.value
        ? `${file}: has tensor ${name} but config.json says ${layerCount.key} is ${layerCount.value}.`
        : `${file}: has tensor ${name}, which config.json does not call for (check its bias and tie_word_embeddings fields).`,
      'config.json and the weights do not belong together: download the checkpoint again.',
    );
  }
  return weights;
}
