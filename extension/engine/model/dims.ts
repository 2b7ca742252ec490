/**
 * What the graph runner and the analyses read of a model, whatever its family: the sizes by name (so code says
 * `headDim`, not `E / H`), the factor on q·k per layer, each layer's sliding window and the rotary frequencies. A
 * family fills these in one place (its `dims`); analyses never read a family's config.
 */
import type { Gpt2Config } from './checkpointTypes';

export interface ModelDims {
  nLayer: number;
  /** Query heads: every per-head answer (maps, ablation, value norms) is numbered by query head. */
  nHead: number;
  /**
   * Key/value heads (grouped-query attention): query head h reads KV head ⌊h / (nHead / nKvHead)⌋. The K/V cache
   * keeps nKvHead heads. Equal to nHead for multi-head attention.
   */
  nKvHead: number;
  /** D: the size of one head's queries, keys and values. */
  headDim: number;
  /** E: the residual stream's width. */
  nEmbd: number;
  /** The longest window the engine runs (capacity of the caches and the attention store). */
  nPositions: number;
  vocabSize: number;
  /** [nLayer]: the factor on q·k. */
  scales: number[];
  /** [nLayer]: a key j is seen by query i only when i − window < j ≤ i; null: plain causal attention. */
  windows: (number | null)[];
  /** Rotary positions: the first `dims` of each head rotate by position·invFreq[k] (pairs k, k + dims/2). */
  rotary?: { dims: number; invFreq: Float64Array };
  /**
   * [nLayer]: each layer's rotary frequencies when they differ by layer (Gemma 3: local layers rope_local_base_freq,
   * global ones rope_theta with rope_scaling); absent: every layer uses `rotary`. Read it through `rotaryOf`.
   */
  layerRotary?: { dims: number; invFreq: Float64Array }[];
  /**
   * [nLayer]: the attention-logit soft-cap (Gemma 2): scores s = q·k·scale become cap·tanh(s/cap) before the mask
   * and the softmax; null or absent: none.
   */
  softcaps?: (number | null)[];
  /** The final-logit soft-cap (Gemma 2): logits z become cap·tanh(z/cap) before the log-softmax; absent: none. */
  logitSoftcap?: number;
}

/** Layer l's rotary frequencies (undefined: no rotary positions, e.g. GPT-2 and GPT-Neo). */
export function rotaryOf(dims: Pick<ModelDims, 'rotary' | 'layerRotary'>, l: number): { dims: number; invFreq: Float64Array } | undefined {
  return dims.layerRotary?.[l] ?? dims.rotary;
}

/** cap·tanh(s/cap), or s when cap is null or undefined (Gemma 2's soft-capping of scores and logits). */
export function softcap(s: number, cap: number | null | undefined): number {
  return cap ? cap * Math.tanh(s / cap) : s;
}

export function modelDims(config: Gpt2Config): ModelDims {
  const { nLayer, nHead, nEmbd, nPositions, vocabSize } = config;
  return {
    nLayer,
    nHead,
    nKvHead: nHead,
    headDim: nEmbd / nHead,
    nEmbd,
    nPositions,
    vocabSize,
    scales: Array.from({ length: nLayer }, (_, l) => attentionScale(config, l)),
    windows: Array.from({ length: nLayer }, () => null),
  };
}

/** GPT-2's factor on q·k: 1/√D (when scale_attn_weights), divided by layer+1 for models that scale by layer. */
export function attentionScale(config: Pick<Gpt2Config, 'nEmbd' | 'nHead' | 'scaleAttnWeights' | 'scaleAttnByInverseLayerIdx'>, layer: number): number {
  let scale = config.scaleAttnWeights ? 1 / Math.sqrt(config.nEmbd / config.nHead) : 1;
  if (config.scaleAttnByInverseLayerIdx) scale /= layer + 1;
  return scale;
}

/** The KV head query head h reads. */
export function kvHeadOf(dims: Pick<ModelDims, 'nHead' | 'nKvHead'>, h: number): number {
  return Math.floor(h / (dims.nHead / dims.nKvHead));
}
