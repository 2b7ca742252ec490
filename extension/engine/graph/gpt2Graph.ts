/**
 * Builds the ONNX graph of GPT-2's forward pass from a config and its weights. Read `attention()` first: it is
 * softmax(q·kᵀ/√d + mask)·v with shape comments, as in picoGPT.
 *
 * Outputs (only those the options ask for: onnxruntime keeps every declared output alive for the whole run, so an
 * unused one costs memory — 48 MiB per layer for a full fp32 map at T=1024):
 *   attn_{l}_{b}    [1, H, rows, cols] attention probabilities of the new positions in row blocks of ROW_BLOCK:
 *                   block b holds rows b·B..(b+1)·B−1 and only the key columns they can see (0..C+(b+1)·B−1), so
 *                   the causal upper half is mostly not copied out (onnxruntime copies every output); fp16 or fp32.
 *                   Blocks past the last row are empty.
 *   present_k_{l}   [1, H, Tn, D] keys of the new positions (the caller appends them to its cache)
 *   present_v_{l}   [1, H, Tn, D] values of the new positions
 *   present_q_{l}   [1, H, Tn, D] queries of the new positions (fetched only while a viewer looks inside heads)
 *   vnorm_{l}       [1, H, Tn] ‖v_s·W_O^h‖: the norm of what source s adds through head h, per unit of attention
 *                   (value-weighted attention is α_ts·vnorm_s); from the Gram matrix W_O^h·W_O^hᵀ [D, D]
 *   head_out_mean_{l} [1, H, 1, D] each head's output (before the head mask) averaged over the new positions:
 *                   the replacement of a mean-ablated head, fetched from a plain run of the window
 *   resid_{l}       [1, Tn, E] the residual stream entering layer l (what a run that skips layers before l feeds)
 *   resid_final     [1, Tn, E] the residual stream entering the final norm (logit lens and attribution)
 *   head_z_{l}      [1, H, Tn, D] each head's output after the head gate, before the output projection (attribution)
 *   next_logprob    [Tn] natural-log probability of `targets[i]` after position i
 *   top_logprob     [Tn, K] and top_ids [Tn, K]: the K most likely next tokens after each position
 *   logits          [Tn, V] full logits (only for `--logits` dumps and the benchmark's baseline)
 * Inputs:
 *   input_ids [1, Tn] int64, position_ids [1, Tn] int64, targets [Tn, 1] int64,
 *   mask [1, 1, Tn, C+Tn] fp32 (0 where a query may look, -1e30 elsewhere),
 *   head_mask [L, H] fp32 (multiplies each head's output: 1 keeps a head, 0 ablates it),
 *   head_mean [L, H, D] fp32: what an ablated head outputs instead, head_out = mask·out + (1 − mask)·mean (zeros for
 *                   zero ablation; a plain run's head_out_mean for mean ablation),
 *   head_rows [1, H, P, D] fp32: added to head_mean per position, head_out = mask·out + (1 − mask)·(mean + rows):
 *                   P = 1 (zeros) for every run but activation patching, which feeds P = Tn rows of one head's
 *                   output in the clean run (analyses/patching.ts); one tensor for all layers, since only the
 *                   patched layer has a gated-off head,
 *   layer_rows [L] int64, resid_rows [L] int64, resid_in [1, R, E] fp32: layer l reads the first layer_rows[l] rows
 *                   of the previous layer's output (the embeddings for l = 0) followed by the first resid_rows[l]
 *                   rows of resid_in. A plain run feeds layer_rows = Tn and resid_rows = 0. Ranking heads by ablation
 *                   starts at the ablated layer s: 0 rows for layers before s (they compute nothing), resid_in =
 *                   the plain run's resid_{s} for layer s, then layer_rows = Tn again.
 *   past_k_{l}, past_v_{l} [1, H, C, D] fp32: the cache, head-major so that it needs no transpose. C may exceed
 *                   the valid past length P (the caller's capacity buffer, passed without a copy); the mask hides
 *                   slots P..C−1.
 */
import type { Gpt2Config, Gpt2Weights, LayerNormWeights, LazyTensor, LinearWeights } from '../model/checkpointTypes';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { attentionScale, type ModelDims } from '../model/dims';
import { headReplacement, sdpa } from './blocks';
import { GraphBuilder } from './graphBuilder';
import { DataType, encodeModel, type TensorSpec, type ValueSpec } from './onnxProto';

export const TOP_K = 10;
const OPSET = 17;

export interface GraphOptions {
  /** Attention maps as outputs: fp16 (the default: half the copy-out), fp32 (exact dumps) or none. */
  attention?: 'fp16' | 'fp32' | 'none';
  /** Keys/values, next-token log-probabilities and top-k predictions (default true). */
  analysis?: boolean;
  /** The full [T, V] logits as an output (default false). */
  logits?: boolean;
  /**
   * Write the weights to `weights.bin` in this folder as ONNX external data (page-aligned, so onnxruntime can map
   * them instead of copying them) and keep only references in the model. Needed past protobuf's 2 GB limit
   * (gpt2-large, gpt2-xl); the model must then be loaded from a file in the same folder.
   */
  externalDir?: string;
}

/** Rows per attention output block (see `attn_{l}_{b}`). */
export const ROW_BLOCK = 64;

/** Rows per block of the LM head (logits → log-probabilities → top-k). */
export const LM_ROW_BLOCK = 256;

/**
 * The LM head's analysis outputs from the final rows [T, E]: next_logprob [T] (the log-probability of `targets`),
 * top_logprob / top_ids [T, K]. `unembed` maps a block of rows [≤B, E] to its logits [≤B, V] (after any soft-cap).
 * Per row block of LM_ROW_BLOCK positions (blocks past the last row are empty), so only one block's [B, V] logits and
 * log-probabilities are alive at once (at T=1024: 2 × 51 MB instead of 2 × 206 MB). LogSoftmax is one vectorized
 * pass; ReduceLogSumExp was ~8% of a full run. Shared by the GPT-2 graph and the decoder families' graph.
 */
export function nextTokenOutputs(g: GraphBuilder, final: string, nPositions: number, unembed: (rows: string) => string, outputs: ValueSpec[]): void {
  const logprobs: string[] = [];
  const topValues: string[] = [];
  const topIds: string[] = [];
  const rowAxis = g.ints('axis_rows', [0]);
  for (let b = 0; b < Math.ceil(nPositions / LM_ROW_BLOCK); b++) {
    const from = g.ints(`lm_from_${b}`, [b * LM_ROW_BLOCK]);
    const to = g.ints(`lm_to_${b}`, [(b + 1) * LM_ROW_BLOCK]);
    const rows = g.op('Slice', [final, from, to, rowAxis]); // [≤B, E]
    const logp = g.op('LogSoftmax', [unembed(rows)], { axis: -1 }); // [≤B, V]
    logprobs.push(g.op('GatherElements', [logp, g.op('Slice', ['targets', from, to, rowAxis])], { axis: 1 })); // [≤B, 1]
    const [values, ids] = g.topKRows(logp, TOP_K); // [≤B, K]
    topValues.push(values);
    topIds.push(ids);
  }
  g.named('Reshape', [g.op('Concat', logprobs, { axis: 0 }), g.ints('shape_vec', [-1])], ['next_logprob']); // [T]
  g.named('Concat', topValues, ['top_logprob'], { axis: 0 }); // [T, K]
  g.named('Concat', topIds, ['top_ids'], { axis: 0 }); // [T, K]
  outputs.push({ name: 'next_logprob', dataType: DataType.FLOAT, dims: ['T'] });
  outputs.push({ name: 'top_logprob', dataType: DataType.FLOAT, dims: ['T', TOP_K] });
  outputs.push({ name: 'top_ids', dataType: DataType.INT64, dims: ['T', TOP_K] });
}

/**
 * The inputs every model's graph may take, before the per-layer past_k_l / past_v_l (listed at the top of this file);
 * `localMask` adds mask_local (the sliding-window mask of the decoder families). Only the ones a node reads are declared.
 */
export function graphInputs(dims: Pick<ModelDims, 'nLayer' | 'nHead' | 'headDim' | 'nEmbd'>, localMask: boolean): ValueSpec[] {
  const { nLayer: L, nHead: H, headDim: D, nEmbd: E } = dims;
  return [
    { name: 'input_ids', dataType: DataType.INT64, dims: [1, 'T'] },
    { name: 'position_ids', dataType: DataType.INT64, dims: [1, 'T'] },
    { name: 'targets', dataType: DataType.INT64, dims: ['T', 1] },
    { name: 'mask', dataType: DataType.FLOAT, dims: [1, 1, 'T', 'S'] },
    ...(localMask ? [{ name: 'mask_local', dataType: DataType.FLOAT, dims: [1, 1, 'T', 'S'] }] : []),
    { name: 'head_mask', dataType: DataType.FLOAT, dims: [L, H] },
    { name: 'head_mean', dataType: DataType.FLOAT, dims: [L, H, D] },
    { name: 'head_rows', dataType: DataType.FLOAT, dims: [1, H, 'P', D] },
    { name: 'layer_rows', dataType: DataType.INT64, dims: [L] },
    { name: 'resid_rows', dataType: DataType.INT64, dims: [L] },
    { name: 'resid_in', dataType: DataType.FLOAT, dims: [1, 'R', E] },
  ];
}

/**
 * Layer l's input rows with analysis, named resid_{l} (an output, [1, T, E] with T = rowsDim): the first
 * layer_rows[l] rows of x, then the first resid_rows[l] rows of resid_in. Returns the end [T, C + T] [2] of the mask
 * rows its T queries read over C + T key columns (a skipped layer has no new keys either). Shared by the GPT-2 graph
 * and the decoder families' graph.
 */
export function layerInputRows(g: GraphBuilder, x: string, l: number, rowsDim: string, E: number, outputs: ValueSpec[], pastSlots: () => string): string {
  const index = g.ints(`layer_${l}`, [l]);
  const zero = g.ints('zero', [0]);
  const keep = g.op('Gather', ['layer_rows', index], { axis: 0 }); // [1]
  const take = g.op('Gather', ['resid_rows', index], { axis: 0 }); // [1]
  const rowAxis = g.ints('axis_one', [1]);
  const rows = [g.op('Slice', [x, zero, keep, rowAxis]), g.op('Slice', ['resid_in', zero, take, rowAxis])]; // [1, ·, E]
  g.named('Concat', rows, [`resid_${l}`], { axis: 1 }); // [1, T, E] (T = 0 for a skipped layer)
  outputs.push({ name: `resid_${l}`, dataType: DataType.FLOAT, dims: [1, rowsDim, E] });
  const n = g.op('Add', [keep, take]); // [1]
  return g.op('Concat', [n, g.op('Add', [pastSlots(), n])], { axis: 0 }); // [2]
}

/** Alignment of external tensors: onnxruntime maps external data whose offset is a multiple of the page size. */
const EXTERNAL_ALIGN = 65536;
/** Tensors smaller than this stay inside the model. */
const EXTERNAL_MIN_BYTES = 4096;

/** The buffer a checkpoint tensor streams through on its way into the external-data file. */
const STREAM_BYTES = 16 * 2 ** 20;

/**
 * Moves large initializers into `dir/weights.bin`. A tensor still in its checkpoint streams through one buffer of
 * STREAM_BYTES, so no weight is ever whole in JavaScript. (Each was read whole into a fresh buffer and copied into
 * another, garbage once written: Gemma 3 270M's 671 MB embedding made 1.3 GB of them at once, and under the engine's
 * glibc settings a freed heap is never given back, so TinyStories-33M kept 300 MB of them or not, from run to run.)
 */
export async function writeExternalData(initializers: TensorSpec[], dir: string): Promise<void> {
  const file = await fsp.open(join(dir, 'weights.bin'), 'w');
  const writeAt = async (bytes: Uint8Array, position: number) => {
    for (let at = 0; at < bytes.length; ) at += (await file.write(bytes, at, Math.min(bytes.length - at, 1 << 30), position + at)).bytesWritten;
  };
  try {
    let offset = 0;
    let stream: Uint8Array | undefined;
    for (const t of initializers) {
      const raw = t.raw;
      if (!raw || raw.byteLength < EXTERNAL_MIN_BYTES) continue;
      offset = Math.ceil(offset / EXTERNAL_ALIGN) * EXTERNAL_ALIGN;
      if (raw instanceof Uint8Array) await writeAt(raw, offset);
      else if (raw.read) {
        stream ??= new Uint8Array(STREAM_BYTES);
        for (let at = 0; at < raw.byteLength; at += STREAM_BYTES) {
          const part = stream.subarray(0, Math.min(STREAM_BYTES, raw.byteLength - at));
          await raw.read(part, at);
          await writeAt(part, offset + at);
        }
      } else {
        const bytes = new Uint8Array(raw.byteLength);
        await raw.write(bytes);
        await writeAt(bytes, offset);
      }
      t.external = { location: 'weights.bin', offset, length: raw.byteLength };
      t.raw = undefined;
      offset += raw.byteLength;
    }
  } finally {
    await file.close();
  }
}

/** A weight in memory, or read from its file while the model is serialized. */
export type Weight = Float32Array | LazyTensor;

export interface BuiltGraph {
  /** The serialized ONNX model (its weights inside, or in `weights.bin` beside it when written to a folder). */
  bytes: Uint8Array;
  inputs: string[];
  outputs: string[];
}

/** Builds GPT-2's graph. Weights are referenced, and copied once into the returned bytes. */
export async function buildGpt2Graph(config: Gpt2Config, weights: Gpt2Weights<Weight>, opts: GraphOptions = {}): Promise<BuiltGraph> {
  const g = new GraphBuilder();
  const attentionOut = opts.attention ?? 'fp16';
  const analysis = opts.analysis ?? true;
  const { nLayer: L, nHead: H, nEmbd: E, vocabSize: V, nInner } = config;
  const D = E / H;

  const layerNorm = (x: string, w: LayerNormWeights<Weight>, prefix: string): string =>
    g.op('LayerNormalization', [x, g.weight(`${prefix}.weight`, w.weight, [E]), g.weight(`${prefix}.bias`, w.bias, [E])], {
      axis: -1,
      epsilon: { float: config.layerNormEpsilon },
    });

  const linear = (x: string, w: LinearWeights<Weight>, prefix: string, nIn: number, nOut: number): string =>
    g.op('Add', [
      g.op('MatMul', [x, g.weight(`${prefix}.weight`, w.weight, [nIn, nOut])]), // [1, T, nIn] @ [nIn, nOut]
      g.weight(`${prefix}.bias`, w.bias, [nOut]),
    ]); // -> [1, T, nOut]

  const half = g.scalar('c_half', 0.5);
  const one = g.scalar('c_one', 1);
  const geluK = g.scalar('c_gelu_k', Math.sqrt(2 / Math.PI));
  const geluC = g.scalar('c_gelu_c', 0.044715);
  const three = g.scalar('c_three', 3);
  const activation = (x: string): string => {
    switch (config.activation) {
      case 'gelu_new':
      case 'gelu_pytorch_tanh': {
        // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
        const inner = g.op('Mul', [geluK, g.op('Add', [x, g.op('Mul', [geluC, g.op('Pow', [x, three])])])]);
        return g.op('Mul', [g.op('Mul', [half, x]), g.op('Add', [one, g.op('Tanh', [inner])])]);
      }
      case 'gelu': {
        // 0.5·x·(1 + erf(x/√2))
        const erf = g.op('Erf', [g.op('Mul', [x, g.scalar('c_inv_sqrt2', Math.SQRT1_2)])]); // one initializer, every layer
        return g.op('Mul', [g.op('Mul', [half, x]), g.op('Add', [one, erf])]);
      }
      case 'relu':
        return g.op('Relu', [x]);
      case 'silu':
        return g.op('Mul', [x, g.op('Sigmoid', [x])]);
    }
  };

  const headsShape = g.ints('shape_heads', [1, -1, H, D]); // [1, T, E] <-> [1, T, H, D]
  const flatShape = g.ints('shape_flat', [1, -1, E]);
  /** [1, T, E] -> [1, H, T, D]; `as` names the result (a graph output read by later nodes too, with no copy). */
  const toHeads = (x: string, as?: string): string => {
    const heads = g.op('Reshape', [x, headsShape]); // [1, T, H, D]
    if (!as) return g.op('Transpose', [heads], { perm: [0, 2, 1, 3] });
    g.named('Transpose', [heads], [as], { perm: [0, 2, 1, 3] });
    return as;
  };

  const inputs = graphInputs({ nLayer: L, nHead: H, headDim: D, nEmbd: E }, false);
  const outputs: ValueSpec[] = [];
  // Each layer's rows get their own symbolic dimension: a layer skipped by layer_rows has 0 of them while the others
  // have T, and onnxruntime's memory planner shares buffers between values whose symbolic shapes match.
  const rowsOf = (l: number): string => (analysis ? `T${l}` : 'T');

  // Shapes shared by every layer's attention outputs: C (past slots fed) and the end of each row block.
  let pastSlotsNode: string | undefined;
  /** C, the past slots fed (the same for every layer): [1]. */
  const pastSlots = (): string => (pastSlotsNode ??= g.op('Gather', [g.op('Shape', ['past_k_0']), g.ints('dim_past', [2])], { axis: 0 }));
  let blockEnds: string[] | undefined;
  const rowBlockEnds = (): string[] => {
    if (blockEnds) return blockEnds;
    const C = pastSlots();
    const nBlocks = Math.ceil(config.nPositions / ROW_BLOCK);
    blockEnds = Array.from({ length: nBlocks }, (_, b) => {
      const rows = (b + 1) * ROW_BLOCK;
      return g.op('Concat', [g.ints(`block_rows_${b}`, [rows]), g.op('Add', [C, g.ints(`block_cols_${b}`, [rows])])], { axis: 0 }); // [2]
    });
    return blockEnds;
  };

  /** softmax(q·kᵀ/√d + mask)·v for every head, with past keys/values prepended. Returns [1, T, E]. */
  const attention = (x: string, l: number, mask: string): string => {
    const qkv = linear(x, weights.layers[l].attnQkv, `h.${l}.attn.c_attn`, E, 3 * E); // [1, T, 3E]
    const [q, k, v] = splitThree(g, qkv, E); // 3 × [1, T, E]
    const pastK = `past_k_${l}`;
    const pastV = `past_v_${l}`;
    inputs.push({ name: pastK, dataType: DataType.FLOAT, dims: [1, H, 'C', D] });
    inputs.push({ name: pastV, dataType: DataType.FLOAT, dims: [1, H, 'C', D] });
    // New queries, keys and values; with analysis they are outputs too (keys/values kept by the caller as its cache,
    // queries fetched while a viewer looks inside heads). onnxruntime computes every node whatever is fetched, so an
    // Identity per output would copy them on every run.
    const qh = toHeads(q, analysis ? `present_q_${l}` : undefined); // [1, H, T, D]
    const kNew = toHeads(k, analysis ? `present_k_${l}` : undefined); // [1, H, T, D]
    const vNew = toHeads(v, analysis ? `present_v_${l}` : undefined); // [1, H, T, D]
    if (analysis) {
      for (const name of [`present_k_${l}`, `present_v_${l}`, `present_q_${l}`]) outputs.push({ name, dataType: DataType.FLOAT, dims: [1, H, rowsOf(l), D] });
    }
    const kh = g.op('Concat', [pastK, kNew], { axis: 2 }); // [1, H, S, D], S = C + T
    const vh = g.op('Concat', [pastV, vNew], { axis: 2 }); // [1, H, S, D]
    const { probs, out: perHead } = sdpa(g, qh, kh, vh, mask, g.scalar(`h.${l}.attn.scale`, attentionScale(config, l))); // [1, H, T, S], [1, H, T, D]
    if (attentionOut !== 'none') {
      const typed = attentionOut === 'fp32' ? probs : g.op('Cast', [probs], { to: DataType.FLOAT16 }); // [1, H, T, S]
      rowBlockEnds().forEach((ends, b) => {
        const out = `attn_${l}_${b}`;
        g.named('Slice', [typed, g.ints(`block_start_${b}`, [b * ROW_BLOCK, 0]), ends, g.ints('block_axes', [2, 3])], [out]); // [1, H, ≤B, ≤S]
        outputs.push({ name: out, dataType: attentionOut === 'fp32' ? DataType.FLOAT : DataType.FLOAT16, dims: [1, H, `R${l}_${b}`, `K${l}_${b}`] });
      });
    }

    const layerIndex = g.ints(`layer_${l}`, [l]);
    const headGate = g.op('Reshape', [g.op('Gather', ['head_mask', layerIndex], { axis: 0 }), g.ints(`shape_gate_${l}`, [1, H, 1, 1])]); // [1, H, 1, 1]
    const headMean = g.op('Reshape', [g.op('Gather', ['head_mean', layerIndex], { axis: 0 }), g.ints('shape_head_mean', [1, H, 1, D])]); // [1, H, 1, D]
    // mask·out + (1 − mask)·mean: zero ablation feeds a zero mean, mean ablation a plain run's head_out_mean.
    const gateTerms = [g.op('Mul', [perHead, headGate]), g.op('Mul', [g.op('Sub', [one, headGate]), headReplacement(g, perHead, headMean)])];
    let gated: string; // [1, H, T, D]
    if (analysis) {
      // head_z_{l}: what each head hands c_proj (fetched only by the lens's one-row runs for attribution).
      g.named('Add', gateTerms, [(gated = `head_z_${l}`)]);
      outputs.push({ name: gated, dataType: DataType.FLOAT, dims: [1, H, rowsOf(l), D] });
    } else gated = g.op('Add', gateTerms);
    const merged = g.op('Reshape', [g.op('Transpose', [gated], { perm: [0, 2, 1, 3] }), flatShape]); // [1, T, E]
    const out = linear(merged, weights.layers[l].attnProj, `h.${l}.attn.c_proj`, E, E); // [1, T, E]
    if (analysis) {
      g.named('ReduceMean', [perHead], [`head_out_mean_${l}`], { axes: [2], keepdims: 1 }); // [1, H, 1, D]
      outputs.push({ name: `head_out_mean_${l}`, dataType: DataType.FLOAT, dims: [1, H, 1, D] });
      valueNorms(vNew, `h.${l}.attn.c_proj.weight`, l);
    }
    return out;
  };

  /**
   * vnorm_{l} [1, H, T]: ‖v_s·W_O^h‖ for each new source s and head h, where W_O^h [D, E] are c_proj's rows that head
   * h's output multiplies. ‖v·W‖² = v·(W·Wᵀ)·vᵀ, so a Gram matrix per head [D, D] (constant, folded by onnxruntime)
   * replaces the [T, D]·[D, E] product: D² instead of D·E work per source and head.
   */
  const valueNorms = (v: string, proj: string, l: number): void => {
    const perHeadRows = g.op('Reshape', [proj, g.ints('shape_proj_heads', [H, D, E])]); // [E, E] -> [H, D, E]
    const gram = g.op('MatMul', [perHeadRows, g.op('Transpose', [perHeadRows], { perm: [0, 2, 1] })]); // [H, D, D]
    const vg = g.op('MatMul', [v, gram]); // [1, H, T, D] · [H, D, D] -> [1, H, T, D]
    const squared = g.op('ReduceSum', [g.op('Mul', [vg, v]), g.ints('axes_last', [-1])], { keepdims: 0 }); // [1, H, T]
    g.named('Sqrt', [g.op('Relu', [squared])], [`vnorm_${l}`]); // [1, H, T] (Relu: rounding can dip below 0)
    outputs.push({ name: `vnorm_${l}`, dataType: DataType.FLOAT, dims: [1, H, rowsOf(l)] });
  };

  const mlp = (x: string, l: number): string => {
    const hidden = activation(linear(x, weights.layers[l].mlpFc, `h.${l}.mlp.c_fc`, E, nInner)); // [1, T, n_inner]
    return linear(hidden, weights.layers[l].mlpProj, `h.${l}.mlp.c_proj`, nInner, E); // [1, T, E]
  };

  // Embeddings: token + position. [1, T] -> [1, T, E]
  const wte = g.weight('wte.weight', weights.wte, [V, E]);
  const wpe = g.weight('wpe.weight', weights.wpe, [config.nPositions, E]);
  let x = g.op('Add', [g.op('Gather', [wte, 'input_ids'], { axis: 0 }), g.op('Gather', [wpe, 'position_ids'], { axis: 0 })]);

  /**
   * Layer l's input with analysis: the first layer_rows[l] rows of x, then the first resid_rows[l] rows of resid_in
   * (named resid_{l}, an output), and the mask rows of its queries. A plain run takes x whole.
   */
  const layerInput = (x: string, l: number): [string, string] => {
    const ends = layerInputRows(g, x, l, rowsOf(l), E, outputs, pastSlots); // [2]
    const mask = g.op('Slice', ['mask', g.ints('zeros_2', [0, 0]), ends, g.ints('axes_rows_cols', [2, 3])]); // [1, 1, T, C + T]
    return [`resid_${l}`, mask];
  };

  for (let l = 0; l < L; l++) {
    let mask = 'mask';
    if (analysis) [x, mask] = layerInput(x, l);
    x = g.op('Add', [x, attention(layerNorm(x, weights.layers[l].ln1, `h.${l}.ln_1`), l, mask)]); // [1, T, E]
    const mlpTerms = [x, mlp(layerNorm(x, weights.layers[l].ln2, `h.${l}.ln_2`), l)];
    if (analysis && l === L - 1) {
      // resid_final: the stream entering ln_f (kept by every run for the logit lens).
      g.named('Add', mlpTerms, [(x = 'resid_final')]);
      outputs.push({ name: 'resid_final', dataType: DataType.FLOAT, dims: [1, rowsOf(l), E] });
    } else x = g.op('Add', mlpTerms); // [1, T, E]
  }
  const final = g.op('Reshape', [layerNorm(x, weights.lnF, 'ln_f'), g.ints('shape_rows', [-1, E])]); // [T, E]

  // LM head tied to wte: logits = final · wteᵀ. Gemm's transB reuses the embedding matrix without a copy.
  if (opts.logits) {
    g.named('Gemm', [final, wte], ['logits'], { transB: 1 }); // [T, V]
    outputs.push({ name: 'logits', dataType: DataType.FLOAT, dims: ['T', V] });
  }
  if (analysis) nextTokenOutputs(g, final, config.nPositions, (rows) => g.op('Gemm', [rows, wte], { transB: 1 }), outputs); // [≤B, E] -> [≤B, V]

  // Declare only the inputs some node reads (onnxruntime refuses feeds it does not know).
  const used = new Set(g.nodes.flatMap((n) => n.inputs));
  const declared = inputs.filter((i) => used.has(i.name));
  if (opts.externalDir) await writeExternalData(g.initializers, opts.externalDir);
  const bytes = await encodeModel({ nodes: g.nodes, initializers: g.initializers, inputs: declared, outputs, opset: OPSET, name: 'gpt2' });
  return { bytes, inputs: declared.map((i) => i.name), outputs: outputs.map((o) => o.name) };
}

/** Splits [1, T, 3E] into q, k, v of [1, T, E] each. */
function splitThree(g: GraphBuilder, qkv: string, E: number): [string, string, string] {
  const name = g.op('Split', [qkv, g.ints(`split_${qkv}`, [E, E, E])], { axis: 2 }, 3);
  const base = name.slice(0, -2);
  return [`${base}_0`, `${base}_1`, `${base}_2`];
}
