/**
 * What the graph and the analyses read of a config: the sizes by name (so code says `headDim`, not `E / H`), and
 * the factor on q·k. A family whose head size is not n_embd / n_head sets `headDim` here and nowhere else.
 */
import type { Gpt2Config } from './checkpointTypes';

export interface ModelDims {
  nLayer: number;
  nHead: number;
  /** D: the size of one head's queries, keys and values. */
  headDim: number;
  /** E: the residual stream's width. */
  nEmbd: number;
  /** The longest window the model sees. */
  nPositions: number;
  vocabSize: number;
}

export function modelDims(config: Gpt2Config): ModelDims {
  const { nLayer, nHead, nEmbd, nPositions, vocabSize } = config;
  return { nLayer, nHead, headDim: nEmbd / nHead, nEmbd, nPositions, vocabSize };
}

/** The factor on q·k: 1/√D (when scale_attn_weights), divided by layer+1 for models that scale by layer. */
export function attentionScale(config: Pick<Gpt2Config, 'nEmbd' | 'nHead' | 'scaleAttnWeights' | 'scaleAttnByInverseLayerIdx'>, layer: number): number {
  let scale = config.scaleAttnWeights ? 1 / Math.sqrt(config.nEmbd / config.nHead) : 1;
  if (config.scaleAttnByInverseLayerIdx) scale /= layer + 1;
  return scale;
}
