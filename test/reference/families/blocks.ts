/**
 * Float64 building blocks shared by the families' reference forwards (Llama/Mistral/Qwen, GPT-NeoX, Gemma, GPT-Neo).
 * Written from the papers and Hugging Face transformers' modeling files, not from the engine: plain loops, one idea per
 * function, shape comments. Rows are positions: a [T, E] matrix holds position t's vector at data[t*E .. t*E+E).
 */
import { HeadlightError } from '../../../extension/common/errors.js';
import { erf } from '../gpt2.js';
import type { RefConfig, RefHooks, RefResult, RefTensor, RefWeights } from './types.js';

export { erf };

/** Row-major float64 matrix. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float64Array; // [rows, cols]
}

export function matrix(rows: number, cols: number): Matrix {
  return { rows, cols, data: new Float64Array(rows * cols) };
}

// ---------------------------------------------------------------- weights and config

/** The tensor stored under `key`, checked against the expected shape. */
export function weight(weights: RefWeights, key: string, shape: readonly number[]): RefTensor {
  const t = weights.get(key);
  if (!t) {
    throw new HeadlightError('reference-missing-tensor', `reference: the checkpoint has no tensor ${key}.`, 'Write it (see test/fixtures/hfCheckpoint.ts) or fix the config that asks for it.');
  }
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new HeadlightError('reference-tensor-shape', `reference: ${key} has shape [${t.shape}], the config implies [${shape}].`, 'Check hidden_size, num_attention_heads, num_key_value_heads, head_dim and intermediate_size in config.json.');
  }
  return t;
}

/** The tensor under `key` if present (optional biases), checked like `weight`. */
export function optionalWeight(weights: RefWeights, key: string, shape: readonly number[]): RefTensor | undefined {
  return weights.has(key) ? weight(weights, key, shape) : undefined;
}

/** A required positive integer field of config.json. */
export function intField(config: RefConfig, field: string, fallback?: number): number {
  const v = config[field] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new HeadlightError('reference-config', `reference: config.json field ${field} is ${JSON.stringify(v)}, want a positive integer.`, 'Fix config.json.');
  }
  return v;
}

/** A numeric field of config.json with a default. */
export function numField(config: RefConfig, field: string, fallback: number): number {
  const v = config[field] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new HeadlightError('reference-config', `reference: config.json field ${field} is ${JSON.stringify(v)}, want a number.`, 'Fix config.json.');
  }
  return v;
}

// ---------------------------------------------------------------- linear maps and norms

/** x · Wᵀ + b with torch's Linear layout: weight [out, in], bias [out]. x: [T, in] -> [T, out]. */
export function linear(x: Matrix, w: RefTensor, b?: RefTensor): Matrix {
  const [nOut, nIn] = w.shape;
  if (w.shape.length !== 2 || nIn !== x.cols) throw new Error(`linear: weight [${w.shape}] does not take ${x.cols} inputs`);
  if (b && (b.shape.length !== 1 || b.shape[0] !== nOut)) throw new Error(`linear: bias [${b.shape}] for ${nOut} outputs`);
  const out = matrix(x.rows, nOut); // [T, out]
  for (let t = 0; t < x.rows; t++) {
    for (let o = 0; o < nOut; o++) {
      let sum = b ? b.data[o] : 0;
      for (let i = 0; i < nIn; i++) sum += x.data[t * nIn + i] * w.data[o * nIn + i];
      out.data[t * nOut + o] = sum;
    }
  }
  return out;
}

/**
 * RMSNorm per row: x / sqrt(mean(x²) + eps) · w. `plusOne` scales by (1 + w) instead, as Gemma's norms do.
 * x: [T, n], w: [n] -> [T, n].
 */
export function rmsNorm(x: Matrix, w: ArrayLike<number>, eps: number, plusOne = false): Matrix {
  const n = x.cols;
  const out = matrix(x.rows, n); // [T, n]
  for (let t = 0; t < x.rows; t++) {
    let sq = 0;
    for (let i = 0; i < n; i++) sq += x.data[t * n + i] ** 2;
    const inv = 1 / Math.sqrt(sq / n + eps);
    for (let i = 0; i < n; i++) out.data[t * n + i] = x.data[t * n + i] * inv * (plusOne ? 1 + w[i] : w[i]);
  }
  return out;
}

/** LayerNorm per row: (x − mean) / sqrt(var + eps) · w + b, biased variance. x: [T, n] -> [T, n]. */
export function layerNorm(x: Matrix, w: ArrayLike<number>, b: ArrayLike<number>, eps: number): Matrix {
  const n = x.cols;
  const out = matrix(x.rows, n); // [T, n]
  for (let t = 0; t < x.rows; t++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += x.data[t * n + i];
    mean /= n;
    let variance = 0;
    for (let i = 0; i < n; i++) variance += (x.data[t * n + i] - mean) ** 2;
    variance /= n;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let i = 0; i < n; i++) out.data[t * n + i] = (x.data[t * n + i] - mean) * inv * w[i] + b[i];
  }
  return out;
}

/** Columns [from, from + width) of x: [T, n] -> [T, width] (one head's slice). */
export function columns(x: Matrix, from: number, width: number): Matrix {
  const out = matrix(x.rows, width);
  for (let t = 0; t < x.rows; t++) {
    for (let c = 0; c < width; c++) out.data[t * width + c] = x.data[t * x.cols + from + c];
  }
  return out;
}

export function add(x: Matrix, y: Matrix): Matrix {
  const out = matrix(x.rows, x.cols);
  for (let i = 0; i < x.data.length; i++) out.data[i] = x.data[i] + y.data[i];
  return out;
}

/** Embedding rows for the ids: table [V, E] -> [T, E]. */
export function embed(table: RefTensor, ids: readonly number[], key: string): Matrix {
  const [V, E] = table.shape;
  const out = matrix(ids.length, E); // [T, E]
  ids.forEach((id, t) => {
    if (!Number.isInteger(id) || id < 0 || id >= V) {
      throw new HeadlightError('reference-token-id', `reference: token id ${id} at position ${t} is outside [0, ${V}) (${key}).`, 'Pass ids below vocab_size.');
    }
    out.data.set(table.data.subarray(id * E, id * E + E), t * E);
  });
  return out;
}

// ---------------------------------------------------------------- activations

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** Exact GELU: x · Φ(x). */
export function geluErf(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/** GELU, tanh approximation (gelu_new, gelu_pytorch_tanh). */
export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

/** The activation named by config.json's `hidden_act` / `hidden_activation` / `activation_function`. */
export function activation(name: unknown): (x: number) => number {
  switch (name) {
    case 'silu':
    case 'swish':
      return silu;
    case 'gelu':
      return geluErf;
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
      return geluTanh;
    case 'relu':
      return (x) => Math.max(0, x);
  }
  throw new HeadlightError('reference-activation', `reference: activation ${JSON.stringify(name)} is not implemented.`, 'Use silu, gelu, gelu_new, gelu_pytorch_tanh or relu, or add it to test/reference/families/blocks.ts.');
}

// ---------------------------------------------------------------- rotary position embedding

/** `rope_scaling` / `rope_parameters` as config.json writes them (`type` is the old name of `rope_type`). */
export interface RopeScaling {
  rope_type?: string;
  type?: string;
  factor?: number;
  low_freq_factor?: number;
  high_freq_factor?: number;
  original_max_position_embeddings?: number;
}

export interface RopeParams {
  theta: number;
  /** How many leading dims of each head rotate (even; head_dim · partial_rotary_factor). */
  rotaryDim: number;
  scaling?: RopeScaling | null;
}

/**
 * Inverse frequencies θ^(−2i/rotaryDim), i = 0..rotaryDim/2, then the scaling of modeling_rope_utils.py:
 * `linear` divides every one by `factor`; `llama3` keeps wavelengths below original_max/high_freq_factor, divides those
 * above original_max/low_freq_factor by `factor`, and blends in between. Any other type throws.
 */
export function ropeInvFreq(p: RopeParams): Float64Array {
  const half = p.rotaryDim / 2;
  const inv = new Float64Array(half); // [rotaryDim/2]
  for (let i = 0; i < half; i++) inv[i] = 1 / p.theta ** ((2 * i) / p.rotaryDim);
  const type = p.scaling?.rope_type ?? p.scaling?.type ?? 'default';
  if (type === 'default') return inv;
  const s = p.scaling!;
  const factor = requireNumber(s.factor, 'factor', type);
  if (type === 'linear') return inv.map((f) => f / factor);
  if (type === 'llama3') {
    const low = requireNumber(s.low_freq_factor, 'low_freq_factor', type);
    const high = requireNumber(s.high_freq_factor, 'high_freq_factor', type);
    const oldContext = requireNumber(s.original_max_position_embeddings, 'original_max_position_embeddings', type);
    const lowFreqWavelen = oldContext / low;
    const highFreqWavelen = oldContext / high;
    return inv.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highFreqWavelen) return f; // high frequency: unchanged
      if (wavelen > lowFreqWavelen) return f / factor; // low frequency: interpolated by `factor`
      const smooth = (oldContext / wavelen - low) / (high - low);
      return (1 - smooth) * (f / factor) + smooth * f;
    });
  }
  throw new HeadlightError('reference-rope-type', `reference: rope_scaling type ${JSON.stringify(type)} is not implemented.`, 'Use default, linear or llama3, or add the type to test/reference/families/blocks.ts.');
}

function requireNumber(v: unknown, field: string, type: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new HeadlightError('reference-config', `reference: rope_scaling (${type}) field ${field} is ${JSON.stringify(v)}, want a number.`, 'Fix rope_scaling / rope_parameters in config.json.');
  }
  return v;
}

/**
 * The RoPE parameters of a config in either form: transformers ≤ 4 (`rope_theta` or NeoX's `rotary_emb_base`,
 * `rope_scaling`, `partial_rotary_factor` or NeoX's `rotary_pct`) or v5 (`rope_parameters` holding `rope_type`,
 * `rope_theta`, `partial_rotary_factor` and the scaling fields). `headDim` is the per-head width.
 */
export function ropeFromConfig(config: RefConfig, headDim: number): RopeParams {
  const v5 = (config.rope_parameters ?? undefined) as (RopeScaling & { rope_theta?: number; partial_rotary_factor?: number }) | undefined;
  const theta = v5?.rope_theta ?? (config.rope_theta as number | undefined) ?? (config.rotary_emb_base as number | undefined) ?? 10000;
  const partial = v5?.partial_rotary_factor ?? (config.partial_rotary_factor as number | undefined) ?? (config.rotary_pct as number | undefined) ?? 1;
  const rotaryDim = Math.floor(headDim * partial);
  if (rotaryDim % 2 !== 0 || rotaryDim <= 0) {
    throw new HeadlightError('reference-config', `reference: head_dim ${headDim} × partial rotary factor ${partial} = ${rotaryDim} rotary dims, want a positive even number.`, 'Fix rotary_pct / partial_rotary_factor in config.json.');
  }
  const scaling = (config.rope_scaling as RopeScaling | null | undefined) ?? v5 ?? null;
  return { theta: numberOr(theta, 'rope_theta'), rotaryDim, scaling };
}

function numberOr(v: unknown, field: string): number {
  if (typeof v !== 'number' || !(v > 0)) {
    throw new HeadlightError('reference-config', `reference: config.json ${field} is ${JSON.stringify(v)}, want a positive number.`, 'Fix config.json.');
  }
  return v;
}

/**
 * Rotate-half RoPE on the first rotaryDim dims of each row (one head, rows are positions); the rest pass through.
 * Pair (i, i + rotaryDim/2) turns by positions[t] · invFreq[i]. x: [T, d] -> [T, d].
 */
export function applyRope(x: Matrix, positions: readonly number[], invFreq: Float64Array): Matrix {
  const d = x.cols;
  const half = invFreq.length;
  const out: Matrix = { rows: x.rows, cols: d, data: Float64Array.from(x.data) };
  for (let t = 0; t < x.rows; t++) {
    for (let i = 0; i < half; i++) {
      const angle = positions[t] * invFreq[i];
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      const a = x.data[t * d + i];
      const b = x.data[t * d + i + half];
      out.data[t * d + i] = a * cos - b * sin; // x·cos + rotate_half(x)·sin, rotate_half = [−x2, x1]
      out.data[t * d + i + half] = b * cos + a * sin;
    }
  }
  return out;
}

// ---------------------------------------------------------------- attention

export interface AttentionOptions {
  /** Multiplies q·k (1/√head_dim for most families; 1 for GPT-Neo; query_pre_attn_scalar^−½ for Gemma). */
  scale: number;
  /** Sliding window: key j is visible to query i iff i − window < j ≤ i (masking_utils' sliding_window_overlay). */
  window?: number | null;
  /** Soft-cap: score → cap · tanh(score / cap), after scaling and before the mask (Gemma 2). */
  softcap?: number | null;
}

/** Whether key j is visible to query i under the causal mask and an optional sliding window. */
export function visible(i: number, j: number, window?: number | null): boolean {
  return j <= i && (window == null || j > i - window);
}

/** softmax(q·kᵀ·scale [soft-capped] + mask) · v for one head. q, k, v: [T, d] -> out [T, d], probs [T*T]. */
export function attentionHead(q: Matrix, k: Matrix, v: Matrix, opts: AttentionOptions): { out: Matrix; probs: Float64Array } {
  const T = q.rows;
  const d = q.cols;
  const dv = v.cols;
  const probs = new Float64Array(T * T); // [T, T], zeros where masked
  const out = matrix(T, dv); // [T, dv]
  for (let i = 0; i < T; i++) {
    const row = new Float64Array(T).fill(-Infinity); // [T]: masked keys stay −∞
    for (let j = 0; j < T; j++) {
      if (!visible(i, j, opts.window)) continue;
      let dot = 0;
      for (let c = 0; c < d; c++) dot += q.data[i * d + c] * k.data[j * d + c];
      let score = dot * opts.scale;
      if (opts.softcap) score = opts.softcap * Math.tanh(score / opts.softcap);
      row[j] = score;
    }
    softmaxInPlace(row);
    for (let j = 0; j < T; j++) {
      probs[i * T + j] = row[j];
      if (row[j] === 0) continue;
      for (let c = 0; c < dv; c++) out.data[i * dv + c] += row[j] * v.data[j * dv + c];
    }
  }
  return { out, probs };
}

/** The KV head that query head h reads with H query heads and KVH key/value heads (grouped-query attention). */
export function kvHeadOf(h: number, H: number, KVH: number): number {
  return Math.floor(h / (H / KVH));
}

/** Softmax in place, max subtracted first; −∞ entries become 0. */
export function softmaxInPlace(row: Float64Array): void {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (let i = 0; i < row.length; i++) {
    row[i] = row[i] === -Infinity ? 0 : Math.exp(row[i] - max);
    sum += row[i];
  }
  for (let i = 0; i < row.length; i++) row[i] /= sum;
}

/** log_softmax of one row. */
export function logSoftmax(row: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i]);
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  const lse = max + Math.log(sum);
  return Float64Array.from({ length: row.length }, (_, i) => row[i] - lse);
}

/** logprobs[t] = log_softmax(logits[t − 1])[ids[t]]; NaN at t = 0. logits: [T*V]. */
/** A forward's result before its first layer: each layer appends with `recordLayer`, the end sets `setLogits`. */
export function emptyResult(): RefResult {
  return { attention: [], logits: new Float64Array(0), logprobs: new Float64Array(0), residPre: [], headOut: [], attnOut: [], mlpOut: [] };
}

/** Appends one layer: its heads' probabilities [H] × [T*T] and outputs [H] × [T*E], what attention and MLP add [T, E]. */
export function recordLayer(result: RefResult, probs: Float64Array[], headOut: Float64Array[], attnOut: Matrix, mlpOut: Matrix): void {
  result.attention.push(probs);
  result.headOut.push(headOut);
  result.attnOut.push(attnOut.data);
  result.mlpOut.push(mlpOut.data);
}

/** Sets the final logits [T*V] and the log-probability of each id given the ones before it. */
export function setLogits(result: RefResult, logits: Float64Array, ids: readonly number[], V: number): RefResult {
  result.logits = logits;
  result.logprobs = logprobsOf(logits, ids, V);
  return result;
}

export function logprobsOf(logits: Float64Array, ids: readonly number[], V: number): Float64Array {
  const out = new Float64Array(ids.length).fill(NaN);
  for (let t = 1; t < ids.length; t++) out[t] = logSoftmax(logits.subarray((t - 1) * V, t * V))[ids[t]];
  return out;
}

// ---------------------------------------------------------------- heads, hooks and the output projection

/**
 * Apply the hooks to each head's output z_h [T, d] of layer l (in place): headMask multiplies, then patchHeadOut may
 * overwrite a position's vector (so a patch sees the masked value).
 */
export function applyHeadHooks(layer: number, z: Matrix[], hooks?: RefHooks): void {
  const mask = hooks?.headMask?.[layer];
  z.forEach((zh, h) => {
    const d = zh.cols;
    if (mask) for (let i = 0; i < zh.data.length; i++) zh.data[i] *= mask[h];
    if (hooks?.patchHeadOut) {
      for (let t = 0; t < zh.rows; t++) {
        const row = zh.data.slice(t * d, t * d + d); // [d]
        hooks.patchHeadOut(layer, h, t, row);
        zh.data.set(row, t * d);
      }
    }
  });
}

/**
 * The output projection split by head: headOut[h] = z_h · W_o[:, h·d : (h+1)·d]ᵀ (no bias), and
 * attnOut = Σ_h headOut[h] + bias. z: H × [T, d], W_o: [E, H·d] -> headOut H × [T*E], attnOut [T, E].
 */
export function projectHeads(z: Matrix[], wo: RefTensor, bo?: RefTensor): { headOut: Float64Array[]; attnOut: Matrix } {
  const [E, HD] = wo.shape;
  const T = z[0].rows;
  const d = z[0].cols;
  if (z.length * d !== HD) throw new Error(`projectHeads: ${z.length} heads × ${d} != o_proj input ${HD}`);
  const attnOut = matrix(T, E); // [T, E]
  if (bo) for (let t = 0; t < T; t++) attnOut.data.set(bo.data, t * E);
  const headOut = z.map((zh, h) => {
    const out = new Float64Array(T * E); // [T, E]
    for (let t = 0; t < T; t++) {
      for (let e = 0; e < E; e++) {
        let sum = 0;
        for (let c = 0; c < d; c++) sum += zh.data[t * d + c] * wo.data[e * HD + h * d + c];
        out[t * E + e] = sum;
      }
    }
    for (let i = 0; i < out.length; i++) attnOut.data[i] += out[i];
    return out;
  });
  return { headOut, attnOut };
}

/** Let patchResidPre see and overwrite each row of the stream entering layer l (in place). x: [T, E]. */
export function applyResidHook(layer: number, x: Matrix, hooks?: RefHooks): void {
  if (!hooks?.patchResidPre) return;
  const E = x.cols;
  for (let t = 0; t < x.rows; t++) {
    const row = x.data.slice(t * E, t * E + E); // [E]
    hooks.patchResidPre(layer, t, row);
    x.data.set(row, t * E);
  }
}
