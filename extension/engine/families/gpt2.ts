/**
 * GPT-2 (`model_type` "gpt2", or a config with GPT-2's fields and no model_type): learned positions, LayerNorm,
 * fused Conv1D attention, tied LM head. Its config parsing and tensor checks live in model/checkpoint.ts and its
 * graph in graph/gpt2Graph.ts (the first family, kept where it was); this file makes it a family like the others.
 */
import { buildGpt2Graph, type Weight } from '../graph/gpt2Graph.js';
import type { Gpt2Config, Gpt2Weights } from '../model/checkpointTypes.js';
import { modelDims } from '../model/dims.js';
import type { FamilyModel } from './family.js';

export const GPT2_MODEL_TYPES = ['gpt2'] as const;

export function gpt2Model(config: Gpt2Config, weights: Gpt2Weights<Weight>): FamilyModel {
  return {
    modelType: 'gpt2',
    dims: modelDims(config),
    build: (opts) => buildGpt2Graph(config, weights, opts),
    readout: {
      finalNorm: { kind: 'layer', weight: weights.lnF.weight, bias: weights.lnF.bias, eps: config.layerNormEpsilon },
      unembed: weights.wte, // tied LM head
      finalSoftcap: null,
      layers: weights.layers.map((l) => ({ oProj: l.attnProj.weight, oProjLayout: 'in_out' as const, oBias: l.attnProj.bias })), // c_proj: Conv1D [E, E]
    },
  };
}
