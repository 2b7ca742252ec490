/**
 * The graph of a rotary decoder (the Llama family and GPT-NeoX): what every such family's graph shares, with the
 * inputs and outputs of GPT-2's graph (listed at the top of gpt2Graph.ts), so the runner and every analysis work
 * unchanged. A family file supplies the embedding, one layer (norms, projections, MLP, residual wiring) and the
 * final norm and LM head; this file does the attention: rotary positions, grouped-query attention as plain
 * softmax(q·kᵀ·scale + mask)·v, the head gate, value norms, the K/V outputs, and the analysis plumbing.
 *
 * Differences from GPT-2's graph:
 *   present_k_{l}, present_v_{l}, past_k_{l}, past_v_{l} have nKvHead heads (the cache stays small; the graph
 *                   repeats them for the query heads); present_k/present_q are AFTER rotation (and q/k norms).
 *   mask_local      [1, 1, Tn, C+Tn]: the causal mask with the sliding window applied, read by windowed layers.
 *   position_ids    feed the rotary tables (cos/sin of position·inv_freq, [n_positions, R], computed in float64),
 *                   one pair per distinct rotary spec (Gemma 3: local and global layers); families with learned
 *                   positions (GPT-Neo) read them in their `embed` instead.
 * Per layer from ModelDims: the q·k factor, the sliding window, the rotary frequencies (`rotaryOf`) and Gemma 2's
 * attention soft-cap (cap·tanh(s/cap) before the mask); the final-logit soft-cap applies before the log-softmax.
 */
import { rotaryOf, type ModelDims } from '../model/dims';
import { headReplacement, repeatKv, sdpa, softcap } from './blocks';
import { graphInputs, layerInputRows, nextTokenOutputs, ROW_BLOCK, writeExternalData, type BuiltGraph, type GraphOptions, type Weight } from './gpt2Graph';
import { GraphBuilder } from './graphBuilder';
import { DataType, encodeModel, type ValueSpec } from './onnxProto';

const OPSET = 17;

/** What a family's file supplies to the shared decoder graph. */
export interface DecoderFamily {
  /** The model's name in the ONNX file. */
  name: string;
  /** input_ids [1, T] -> [1, T, E]. */
  embed(d: DecoderGraph): string;
  /** Layer l: x [1, T, E] -> [1, T, E], calling `d.attention`. */
  layer(d: DecoderGraph, x: string, l: number): string;
  /** The final norm of x [1, T, E] and the LM head's initializer [V, E]. */
  final(d: DecoderGraph, x: string): { hidden: string; head: string };
}

export interface AttentionInputs {
  /** Projections [1, T, H·D] (or [1, T, H, D]). */
  q: string;
  /** [1, T, KVH·D] (or [1, T, KVH, D]). */
  k: string;
  v: string;
  /** Per-head transform of q and k before the rotation, on [1, T, heads, D] (Qwen3's q_norm / k_norm). */
  beforeRotation?: (x: string, which: 'q' | 'k') => string;
  /** The output projection's weight [E, H·D] (torch layout): value norms use each head's slice. */
  oProj: string;
}

export class DecoderGraph {
  readonly g = new GraphBuilder();
  readonly inputs: ValueSpec[];
  readonly outputs: ValueSpec[] = [];
  readonly analysis: boolean;
  private readonly attentionOut: 'fp16' | 'fp32' | 'none';
  /** The mask rows of layer l's queries (set by the layer loop). */
  private masks: { full: string; local: string } = { full: 'mask', local: 'mask_local' };
  /** cos/sin tables by rotary spec (Gemma 3's local and global layers rotate with different frequencies). */
  private readonly tables = new Map<{ dims: number; invFreq: Float64Array }, { cos: string; sin: string }>();
  private blockEnds: string[] | undefined;
  private pastSlotsNode: string | undefined;

  constructor(
    readonly dims: ModelDims,
    opts: GraphOptions,
  ) {
    this.analysis = opts.analysis ?? true;
    this.attentionOut = opts.attention ?? 'fp16';
    this.inputs = graphInputs(dims, true);
  }

  weight(name: string, data: Weight, shape: number[]): string {
    return this.g.weight(name, data, shape);
  }

  /** Each layer's rows get their own symbolic dimension (see gpt2Graph.ts). */
  private rowsOf(l: number): string {
    return this.analysis ? `T${l}` : 'T';
  }

  /** C, the past slots fed (the same for every layer): [1]. */
  private pastSlots(): string {
    return (this.pastSlotsNode ??= this.g.op('Gather', [this.g.op('Shape', ['past_k_0']), this.g.ints('dim_past', [2])], { axis: 0 }));
  }

  /** cos and signed sin [1, 1, T, R] of the new positions (sin negated on the first half: rotate_half's sign). */
  private rotaryTables(rotary: { dims: number; invFreq: Float64Array }): { cos: string; sin: string } {
    const known = this.tables.get(rotary);
    if (known) return known;
    const { nPositions: P } = this.dims;
    const R = rotary.dims;
    const half = R / 2;
    const cos = new Float32Array(P * R); // [P, R]: cos(p·f_k) at k and k + R/2
    const sin = new Float32Array(P * R); // [P, R]: −sin at k, +sin at k + R/2
    for (let p = 0; p < P; p++) {
      for (let k = 0; k < half; k++) {
        const angle = p * rotary.invFreq[k];
        cos[p * R + k] = cos[p * R + k + half] = Math.cos(angle);
        sin[p * R + k] = -Math.sin(angle);
        sin[p * R + k + half] = Math.sin(angle);
      }
    }
    const g = this.g;
    const at = (table: string) => g.op('Unsqueeze', [g.op('Gather', [table, 'position_ids'], { axis: 0 }), g.ints('axes_one', [1])]); // [1, 1, T, R]
    const suffix = this.tables.size === 0 ? '' : `_${this.tables.size}`; // the first keeps its old name
    const tables = { cos: at(g.weight(`rope_cos${suffix}`, cos, [P, R])), sin: at(g.weight(`rope_sin${suffix}`, sin, [P, R])) };
    this.tables.set(rotary, tables);
    return tables;
  }

  /**
   * Rotate-half RoPE on the first R dims of each head: x·cos + swap(x)·sin, where swap exchanges the two halves of
   * the R dims (with the signed sin table this is transformers' x·cos + rotate_half(x)·sin). x [1, Hx, T, D].
   * Layers without rotary positions (GPT-Neo's learned ones) pass x through.
   */
  private rotate(x: string, l: number, as?: string): string {
    const g = this.g;
    const { headDim: D } = this.dims;
    const rotary = rotaryOf(this.dims, l);
    if (!rotary) {
      if (!as) return x;
      g.named('Identity', [x], [as]);
      return as;
    }
    const R = rotary.dims;
    const tables = this.rotaryTables(rotary);
    // The tables' first rows (x's rows): a layer skipped by layer_rows has 0 rows while position_ids has T (ranking
    // heads and activation patching start past layer 0; without the slice the Mul cannot broadcast 0 against T).
    const rowsOfX = g.op('Gather', [g.op('Shape', [x]), g.ints('dim_head_rows', [2])], { axis: 0 }); // [1]
    const [cos, sin] = [tables.cos, tables.sin].map((t) => g.op('Slice', [t, g.ints('zero', [0]), rowsOfX, g.ints('axis_head_rows', [2])])); // [1, 1, ≤T, R]
    const partial = R < D;
    let rot = x;
    let pass: string | undefined;
    if (partial) {
      const split = g.op('Split', [x, g.ints(`split_rotary_${R}_${D}`, [R, D - R])], { axis: -1 }, 2);
      [rot, pass] = [split, `${split.slice(0, -2)}_1`]; // [1, Hx, T, R], [1, Hx, T, D − R]
    }
    const halves = g.op('Split', [rot, g.ints(`split_half_${R}`, [R / 2, R / 2])], { axis: -1 }, 2);
    const swapped = g.op('Concat', [`${halves.slice(0, -2)}_1`, halves], { axis: -1 }); // [1, Hx, T, R]: (x2, x1)
    const terms = [g.op('Mul', [rot, cos]), g.op('Mul', [swapped, sin])];
    if (!partial) {
      if (!as) return g.op('Add', terms);
      g.named('Add', terms, [as]);
      return as;
    }
    const rotated = g.op('Add', terms); // [1, Hx, T, R]
    if (!as) return g.op('Concat', [rotated, pass!], { axis: -1 });
    g.named('Concat', [rotated, pass!], [as], { axis: -1 }); // [1, Hx, T, D]
    return as;
  }

  /** [1, T, heads(·D)] -> [1, T, heads, D], the optional per-head transform, -> [1, heads, T, D] (named `as`). */
  private toHeads(x: string, which: 'q' | 'k' | 'v', a: AttentionInputs, as?: string): string {
    const g = this.g;
    const D = this.dims.headDim;
    const n = which === 'q' ? this.dims.nHead : this.dims.nKvHead;
    let heads = g.op('Reshape', [x, g.ints(`shape_heads_${n}_${D}`, [1, -1, n, D])]); // [1, T, heads, D]
    if (which !== 'v' && a.beforeRotation) heads = a.beforeRotation(heads, which);
    if (!as) return g.op('Transpose', [heads], { perm: [0, 2, 1, 3] });
    g.named('Transpose', [heads], [as], { perm: [0, 2, 1, 3] }); // [1, heads, T, D]
    return as;
  }

  /**
   * softmax(q·kᵀ·scale + mask)·v of layer l with past keys/values prepended, q and k rotated, KV heads repeated for
   * the query heads; each head's output gated by head_mask/head_mean. Returns the heads merged, [1, T, H·D] (the
   * family applies the output projection).
   */
  attention(l: number, a: AttentionInputs): string {
    const g = this.g;
    const { nHead: H, nKvHead: KVH, headDim: D } = this.dims;
    const analysis = this.analysis;
    const pastK = `past_k_${l}`;
    const pastV = `past_v_${l}`;
    this.inputs.push({ name: pastK, dataType: DataType.FLOAT, dims: [1, KVH, 'C', D] });
    this.inputs.push({ name: pastV, dataType: DataType.FLOAT, dims: [1, KVH, 'C', D] });
    const qh = this.rotate(this.toHeads(a.q, 'q', a), l, analysis ? `present_q_${l}` : undefined); // [1, H, T, D]
    const kNew = this.rotate(this.toHeads(a.k, 'k', a), l, analysis ? `present_k_${l}` : undefined); // [1, KVH, T, D]
    const vNew = this.toHeads(a.v, 'v', a, analysis ? `present_v_${l}` : undefined); // [1, KVH, T, D]
    if (analysis) {
      this.outputs.push({ name: `present_q_${l}`, dataType: DataType.FLOAT, dims: [1, H, this.rowsOf(l), D] });
      for (const name of [`present_k_${l}`, `present_v_${l}`]) this.outputs.push({ name, dataType: DataType.FLOAT, dims: [1, KVH, this.rowsOf(l), D] });
    }
    const groups = H / KVH;
    const kh = repeatKv(g, g.op('Concat', [pastK, kNew], { axis: 2 }), H, groups, D); // [1, KVH, S, D] -> [1, H, S, D]
    const vh = repeatKv(g, g.op('Concat', [pastV, vNew], { axis: 2 }), H, groups, D); // [1, H, S, D]
    const mask = this.dims.windows[l] === null ? this.masks.full : this.masks.local;
    const cap = this.dims.softcaps?.[l] ?? undefined; // Gemma 2: cap·tanh(s/cap) before the mask
    const { probs, out: perHead } = sdpa(g, qh, kh, vh, mask, g.scalar(`scale_${l}`, this.dims.scales[l]), cap); // [1, H, T, S], [1, H, T, D]
    if (this.attentionOut !== 'none') this.attentionBlocks(probs, l);

    const one = g.scalar('c_one', 1);
    const layerIndex = g.ints(`layer_${l}`, [l]);
    const headGate = g.op('Reshape', [g.op('Gather', ['head_mask', layerIndex], { axis: 0 }), g.ints(`shape_gate_${H}`, [1, H, 1, 1])]); // [1, H, 1, 1]
    const headMean = g.op('Reshape', [g.op('Gather', ['head_mean', layerIndex], { axis: 0 }), g.ints(`shape_head_mean_${H}_${D}`, [1, H, 1, D])]); // [1, H, 1, D]
    const gateTerms = [g.op('Mul', [perHead, headGate]), g.op('Mul', [g.op('Sub', [one, headGate]), headReplacement(g, perHead, headMean)])]; // head_rows: see gpt2Graph.ts
    let gated: string; // [1, H, T, D]
    if (analysis) {
      // head_z_{l}: what each head hands the output projection (fetched only by the lens's runs for attribution).
      g.named('Add', gateTerms, [(gated = `head_z_${l}`)]);
      this.outputs.push({ name: gated, dataType: DataType.FLOAT, dims: [1, H, this.rowsOf(l), D] });
    } else gated = g.op('Add', gateTerms);
    if (analysis) {
      g.named('ReduceMean', [perHead], [`head_out_mean_${l}`], { axes: [2], keepdims: 1 }); // [1, H, 1, D]
      this.outputs.push({ name: `head_out_mean_${l}`, dataType: DataType.FLOAT, dims: [1, H, 1, D] });
      this.valueNorms(vNew, a.oProj, l);
    }
    return g.op('Reshape', [g.op('Transpose', [gated], { perm: [0, 2, 1, 3] }), g.ints(`shape_merged_${H * D}`, [1, -1, H * D])]); // [1, T, H·D]
  }

  /** attn_{l}_{b}: the probabilities in row blocks of ROW_BLOCK, fp16 or fp32 (as gpt2Graph.ts). */
  private attentionBlocks(probs: string, l: number): void {
    const g = this.g;
    const fp32 = this.attentionOut === 'fp32';
    const typed = fp32 ? probs : g.op('Cast', [probs], { to: DataType.FLOAT16 }); // [1, H, T, S]
    this.blockEnds ??= Array.from({ length: Math.ceil(this.dims.nPositions / ROW_BLOCK) }, (_, b) => {
      const rows = (b + 1) * ROW_BLOCK;
      return g.op('Concat', [g.ints(`block_rows_${b}`, [rows]), g.op('Add', [this.pastSlots(), g.ints(`block_cols_${b}`, [rows])])], { axis: 0 }); // [2]
    });
    this.blockEnds.forEach((ends, b) => {
      const out = `attn_${l}_${b}`;
      g.named('Slice', [typed, g.ints(`block_start_${b}`, [b * ROW_BLOCK, 0]), ends, g.ints('block_axes', [2, 3])], [out]); // [1, H, ≤B, ≤S]
      this.outputs.push({ name: out, dataType: fp32 ? DataType.FLOAT : DataType.FLOAT16, dims: [1, this.dims.nHead, `R${l}_${b}`, `K${l}_${b}`] });
    });
  }

  /**
   * vnorm_{l} [1, H, T]: ‖v_s·W_O^h‖ per query head h, with v_s the values of h's KV head and W_O^h [D, E] the
   * columns h·D..(h+1)·D of o_proj [E, H·D] (transposed). ‖v·W‖² = v·(W·Wᵀ)·vᵀ with one Gram matrix [D, D] per head.
   */
  private valueNorms(v: string, oProj: string, l: number): void {
    const g = this.g;
    const { nHead: H, nKvHead: KVH, headDim: D, nEmbd: E } = this.dims;
    const groups = H / KVH;
    const perHead = g.op('Transpose', [g.op('Reshape', [oProj, g.ints(`shape_oproj_${H}_${D}`, [E, H, D])])], { perm: [1, 2, 0] }); // [E, H·D] -> [H, D, E]
    const gram = g.op('MatMul', [perHead, g.op('Transpose', [perHead], { perm: [0, 2, 1] })]); // [H, D, D]
    const gramGroups = g.op('Reshape', [gram, g.ints(`shape_gram_${KVH}_${groups}_${D}`, [KVH, groups, D, D])]); // [KVH, G, D, D]
    const v5 = g.op('Unsqueeze', [v, g.ints('axes_two', [2])]); // [1, KVH, 1, T, D]
    const vg = g.op('MatMul', [v5, gramGroups]); // [1, KVH, G, T, D]
    const squared = g.op('ReduceSum', [g.op('Mul', [vg, v5]), g.ints('axes_last', [-1])], { keepdims: 0 }); // [1, KVH, G, T]
    const perQuery = g.op('Reshape', [squared, g.ints(`shape_vnorm_${H}`, [1, H, -1])]); // [1, H, T]
    g.named('Sqrt', [g.op('Relu', [perQuery])], [`vnorm_${l}`]); // (Relu: rounding can dip below 0)
    this.outputs.push({ name: `vnorm_${l}`, dataType: DataType.FLOAT, dims: [1, H, this.rowsOf(l)] });
  }

  /** Layer l's input rows (layer_rows of x, resid_rows of resid_in: see gpt2Graph.ts) and its queries' mask rows. */
  private layerInput(x: string, l: number): string {
    const g = this.g;
    const ends = layerInputRows(g, x, l, this.rowsOf(l), this.dims.nEmbd, this.outputs, () => this.pastSlots()); // [2]
    const slice = (mask: string) => g.op('Slice', [mask, g.ints('zeros_2', [0, 0]), ends, g.ints('axes_rows_cols', [2, 3])]); // [1, 1, T, C + T]
    this.masks = { full: slice('mask'), local: this.dims.windows.some((w) => w !== null) ? slice('mask_local') : 'mask_local' };
    return `resid_${l}`;
  }

  /** The LM head's outputs: logits (when asked) and, with analysis, next_logprob / top_logprob / top_ids in row blocks. */
  private lmHead(final: string, head: string, logits: boolean): void {
    const g = this.g;
    const V = this.dims.vocabSize;
    const cap = this.dims.logitSoftcap; // Gemma 2: logits = cap·tanh(logits/cap)
    const unembed = (rows: string, as?: string): string => {
      const z = g.op('Gemm', [rows, head], { transB: 1 }); // [T, E] · [V, E]ᵀ -> [T, V]
      const capped = cap ? softcap(g, z, cap) : z;
      if (as) g.named('Identity', [capped], [as]);
      return as ?? capped;
    };
    if (logits && !cap) {
      g.named('Gemm', [final, head], ['logits'], { transB: 1 }); // [T, E] · [V, E]ᵀ -> [T, V]
      this.outputs.push({ name: 'logits', dataType: DataType.FLOAT, dims: ['T', V] });
    } else if (logits) {
      unembed(final, 'logits'); // [T, V], capped
      this.outputs.push({ name: 'logits', dataType: DataType.FLOAT, dims: ['T', V] });
    }
    if (this.analysis) nextTokenOutputs(g, final, this.dims.nPositions, (rows) => unembed(rows), this.outputs); // [≤B, E] -> [≤B, V] (after any final soft-cap)
  }

  /** The whole graph: embed, the layers (each on its analysis inputs), the final norm and the LM head. */
  static async build(dims: ModelDims, family: DecoderFamily, opts: GraphOptions): Promise<BuiltGraph> {
    const d = new DecoderGraph(dims, opts);
    let x = family.embed(d); // [1, T, E]
    for (let l = 0; l < dims.nLayer; l++) {
      if (d.analysis) x = d.layerInput(x, l);
      x = family.layer(d, x, l); // [1, T, E]
    }
    if (d.analysis) {
      // resid_final: the stream entering the final norm (kept by every run for the logit lens); a copy of [T, E].
      d.g.named('Identity', [x], ['resid_final']);
      d.outputs.push({ name: 'resid_final', dataType: DataType.FLOAT, dims: [1, d.rowsOf(dims.nLayer - 1), dims.nEmbd] });
    }
    const { hidden, head } = family.final(d, x);
    const final = d.g.op('Reshape', [hidden, d.g.ints(`shape_rows_${dims.nEmbd}`, [-1, dims.nEmbd])]); // [T, E]
    d.lmHead(final, head, opts.logits ?? false);
    const used = new Set(d.g.nodes.flatMap((n) => n.inputs));
    const declared = d.inputs.filter((i) => used.has(i.name));
    if (opts.externalDir) await writeExternalData(d.g.initializers, opts.externalDir);
    const bytes = await encodeModel({ nodes: d.g.nodes, initializers: d.g.initializers, inputs: declared, outputs: d.outputs, opset: OPSET, name: family.name });
    return { bytes, inputs: declared.map((i) => i.name), outputs: d.outputs.map((o) => o.name) };
  }
}
