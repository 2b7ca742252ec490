/**
 * The lens head: a small ONNX graph that reads rows of the residual stream as the model reads its last one — its own
 * final norm, unembedding and (Gemma 2) final soft-cap — and returns what the logit lens shows, plus rows of the
 * unembedding for direct logit attribution. Built from a family's `Readout` only when a lens or attribution is first
 * asked for, so a model whose lens is never opened pays nothing.
 *
 * Inputs:
 *   rows         [R, E] fp32   residual rows (any layer, any position: the caller stacks them)
 *   targets      [R, 1] int64  the token whose log-probability each row is asked for
 *   unembed_ids  [N] int64     unembedding rows to return (N may be 0)
 * Outputs:
 *   logprob      [R]           ln p(targets[r] | row r)
 *   top_logprob  [R, K] and top_ids [R, K] (K = LENS_TOP_K): the row's most likely tokens
 *   unembed_rows [N, E]        W_U[unembed_ids]
 */
import type { Readout, ReadoutNorm } from '../families/family';
import type { BuiltGraph, Weight } from './gpt2Graph';
import { writeExternalData } from './gpt2Graph';
import { GraphBuilder } from './graphBuilder';
import { layerNorm, rmsNorm } from './blocks';
import { DataType, encodeModel, type ValueSpec } from './onnxProto';

export const LENS_TOP_K = 5;
const OPSET = 17;

/** The norm's weight as applied: w, or 1 + w for Gemma's x̂·(1 + w) (needs the weight in memory). */
export function appliedWeight(norm: ReadoutNorm, weight: Float32Array): Float32Array {
  if (!norm.plusOne) return weight;
  return weight.map((w) => 1 + w);
}

/**
 * `finalNorm` holds the final norm's weight and bias already read (they are small); the unembedding stays a lazy
 * source, copied once into the model (or into `externalDir`/weights.bin).
 */
export async function buildLensGraph(
  readout: Readout,
  finalNorm: { weight: Float32Array; bias?: Float32Array },
  dims: { nEmbd: number; vocabSize: number },
  externalDir?: string,
): Promise<BuiltGraph> {
  const g = new GraphBuilder();
  const { nEmbd: E, vocabSize: V } = dims;
  const inputs: ValueSpec[] = [
    { name: 'rows', dataType: DataType.FLOAT, dims: ['R', E] },
    { name: 'targets', dataType: DataType.INT64, dims: ['R', 1] },
    { name: 'unembed_ids', dataType: DataType.INT64, dims: ['N'] },
  ];
  const norm = readout.finalNorm;
  const w = g.weight('final_norm.weight', appliedWeight(norm, finalNorm.weight), [E]);
  const normed =
    norm.kind === 'layer'
      ? layerNorm(g, 'rows', w, g.weight('final_norm.bias', finalNorm.bias ?? new Float32Array(E), [E]), norm.eps) // [R, E]
      : rmsNorm(g, 'rows', w, norm.eps); // [R, E]
  const head = g.weight('unembed', readout.unembed as Weight, [V, E]);
  let logits = g.op('Gemm', [normed, head], { transB: 1 }); // [R, E] · [V, E]ᵀ -> [R, V]
  if (readout.finalSoftcap !== null) {
    const cap = g.scalar('final_softcap', readout.finalSoftcap);
    logits = g.op('Mul', [g.op('Tanh', [g.op('Div', [logits, cap])]), cap]); // cap·tanh(logits / cap)
  }
  const logp = g.op('LogSoftmax', [logits], { axis: -1 }); // [R, V]
  g.named('Reshape', [g.op('GatherElements', [logp, 'targets'], { axis: 1 }), g.ints('shape_vec', [-1])], ['logprob']); // [R, 1] -> [R]
  const [values, ids] = g.topKRows(logp, LENS_TOP_K); // [R, K]
  g.named('Identity', [values], ['top_logprob']);
  g.named('Identity', [ids], ['top_ids']);
  g.named('Gather', [head, 'unembed_ids'], ['unembed_rows'], { axis: 0 }); // [N, E]
  const outputs: ValueSpec[] = [
    { name: 'logprob', dataType: DataType.FLOAT, dims: ['R'] },
    { name: 'top_logprob', dataType: DataType.FLOAT, dims: ['R', LENS_TOP_K] },
    { name: 'top_ids', dataType: DataType.INT64, dims: ['R', LENS_TOP_K] },
    { name: 'unembed_rows', dataType: DataType.FLOAT, dims: ['N', E] },
  ];
  if (externalDir) await writeExternalData(g.initializers, externalDir);
  const bytes = await encodeModel({ nodes: g.nodes, initializers: g.initializers, inputs, outputs, opset: OPSET, name: 'lens' });
  return { bytes, inputs: inputs.map((i) => i.name), outputs: outputs.map((o) => o.name) };
}
