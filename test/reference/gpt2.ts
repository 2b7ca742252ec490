/**
 * A naive GPT-2 forward pass, written to be obviously correct rather than fast (after picoGPT's gpt2.py).
 * Plain loops, float64 throughout, one function per idea. Tests compare the engine against it.
 * Imports nothing from the engine but types.
 */
import type { Activation, Gpt2Config, Gpt2Weights, LayerNormWeights, LayerWeights, LinearWeights } from '../../extension/engine/model/checkpointTypes.js';

/** Row-major matrix of float64. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float64Array; // [rows, cols]
}

export interface ReferenceOptions {
  /** [n_layer][n_head] multipliers on each head's output before c_proj (1 keeps a head, 0 removes it). */
  headMask?: ArrayLike<ArrayLike<number>>;
  /**
   * [n_layer][n_head][d] what a masked head outputs instead: each head's output becomes
   * gate·out + (1 − gate)·replacement (mean ablation); absent means zeros (plain zero ablation).
   */
  headReplacement?: ArrayLike<ArrayLike<ArrayLike<number>>>;
  /** Record the residual stream and each block's parts (`trace` in the result): the lens and attribution tests. */
  trace?: boolean;
  /** Activation patching: replace the residual stream entering layer l at position t (overwrite `row` [E]). */
  patchResidPre?: (layer: number, position: number, row: Float64Array) => void;
  /** Activation patching: replace head h of layer l's output at position t (overwrite `z` [d], after any mask). */
  patchHeadOut?: (layer: number, head: number, position: number, z: Float64Array) => void;
}

/** The residual stream and what each part adds to it (ReferenceOptions.trace). */
export interface ReferenceTrace {
  /** [L+1] each [T*E]: the stream entering layer l; entry L enters ln_f. */
  residPre: Float64Array[];
  /** [L][H] each [T*E]: head h's output through its rows of c_proj (no bias), after any mask. */
  headOut: Float64Array[][];
  /** [L] each [T*E]: what attention adds (c_proj with its bias) and what the MLP adds. */
  attnOut: Float64Array[];
  mlpOut: Float64Array[];
}

export interface ReferenceResult {
  logits: Float32Array; // [T, V]
  /** Softmax probabilities of every head, before any head mask; zeros above the diagonal. */
  attention: Float32Array; // [L, H, T, T]
  /** ln p(token_t | tokens < t); NaN at t = 0. */
  logprobs: Float32Array; // [T]
  /** Each head's output (before any mask) averaged over positions: mean ablation's replacement. */
  headOutputMeans: Float64Array[][]; // [L][H][d]
  trace?: ReferenceTrace;
}

export function matrix(rows: number, cols: number): Matrix {
  return { rows, cols, data: new Float64Array(rows * cols) };
}

// ---------------------------------------------------------------- building blocks

/** (x - mean) / sqrt(var + eps) * weight + bias, per row; var is the biased variance. */
export function layerNorm(x: Matrix, ln: LayerNormWeights, eps: number): Matrix {
  const out = matrix(x.rows, x.cols); // [T, E]
  for (let t = 0; t < x.rows; t++) {
    let mean = 0;
    for (let i = 0; i < x.cols; i++) mean += x.data[t * x.cols + i];
    mean /= x.cols;
    let variance = 0;
    for (let i = 0; i < x.cols; i++) variance += (x.data[t * x.cols + i] - mean) ** 2;
    variance /= x.cols;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let i = 0; i < x.cols; i++) {
      out.data[t * x.cols + i] = (x.data[t * x.cols + i] - mean) * inv * ln.weight[i] + ln.bias[i];
    }
  }
  return out;
}

/** x @ weight + bias, weight stored [in, out] (GPT-2's Conv1D). */
export function linear(x: Matrix, lin: LinearWeights): Matrix {
  const nIn = x.cols;
  const nOut = lin.bias.length;
  if (lin.weight.length !== nIn * nOut) throw new Error(`linear: weight has ${lin.weight.length} values, want ${nIn}x${nOut}`);
  const out = matrix(x.rows, nOut); // [T, out]
  for (let t = 0; t < x.rows; t++) {
    for (let o = 0; o < nOut; o++) {
      let sum = lin.bias[o];
      for (let i = 0; i < nIn; i++) sum += x.data[t * nIn + i] * lin.weight[i * nOut + o];
      out.data[t * nOut + o] = sum;
    }
  }
  return out;
}

/** GELU, tanh approximation (gelu_new, gelu_pytorch_tanh). */
export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

/** GELU, exact: x · Φ(x). */
export function geluErf(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/** erf to ~1e-13: Maclaurin series for |x| < 3, the continued fraction of erfc beyond. */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a < 3) {
    let term = a; // (-1)^n a^(2n+1) / n!
    let sum = a;
    for (let n = 1; n < 100; n++) {
      term *= (-a * a) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(a) = exp(-a²)/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + 2/(a + …)))))
  let f = a;
  for (let k = 60; k >= 1; k--) f = a + k / 2 / f;
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

export function activate(x: number, activation: Activation): number {
  switch (activation) {
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
      return geluTanh(x);
    case 'gelu':
      return geluErf(x);
    case 'relu':
      return Math.max(0, x);
    case 'silu':
      return x / (1 + Math.exp(-x));
  }
}

/** Softmax of a row in place, subtracting the max first. */
function softmaxInPlace(row: Float64Array): void {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (let i = 0; i < row.length; i++) {
    row[i] = Math.exp(row[i] - max);
    sum += row[i];
  }
  for (let i = 0; i < row.length; i++) row[i] /= sum;
}

/**
 * softmax(q · kᵀ · scale + causal mask) · v for one head.
 * q, k, v: [T, d]. Returns the output [T, d] and the probabilities [T, T] (zeros above the diagonal).
 */
export function attention(q: Matrix, k: Matrix, v: Matrix, scale: number): { out: Matrix; probs: Matrix } {
  const T = q.rows;
  const d = q.cols;
  const probs = matrix(T, T); // [T, T]
  const out = matrix(T, d); // [T, d]
  for (let i = 0; i < T; i++) {
    const row = new Float64Array(i + 1); // only keys 0..i: the causal mask removes the rest
    for (let j = 0; j <= i; j++) {
      let dot = 0;
      for (let c = 0; c < d; c++) dot += q.data[i * d + c] * k.data[j * d + c];
      row[j] = dot * scale;
    }
    softmaxInPlace(row);
    for (let j = 0; j <= i; j++) {
      probs.data[i * T + j] = row[j];
      for (let c = 0; c < d; c++) out.data[i * d + c] += row[j] * v.data[j * d + c];
    }
  }
  return { out, probs };
}

/** Columns [from, from + width) of x. */
function columns(x: Matrix, from: number, width: number): Matrix {
  const out = matrix(x.rows, width);
  for (let t = 0; t < x.rows; t++) {
    for (let c = 0; c < width; c++) out.data[t * width + c] = x.data[t * x.cols + from + c];
  }
  return out;
}

/** Multi-head causal self-attention. x: [T, E] → out [T, E], probs per head [H][T, T]. */
export function mha(
  x: Matrix,
  layer: LayerWeights,
  config: Gpt2Config,
  layerIndex: number,
  headMask?: ArrayLike<number>,
  headReplacement?: ArrayLike<ArrayLike<number>>,
  patchHeadOut?: ReferenceOptions['patchHeadOut'],
): { out: Matrix; probs: Matrix[]; headMeans: Float64Array[]; headOut: Float64Array[] } {
  const E = config.nEmbd;
  const H = config.nHead;
  const d = E / H;
  const qkv = linear(x, layer.attnQkv); // [T, E] -> [T, 3E]
  let scale = config.scaleAttnWeights ? 1 / Math.sqrt(d) : 1;
  if (config.scaleAttnByInverseLayerIdx) scale /= layerIndex + 1;
  const merged = matrix(x.rows, E); // [T, E]: the heads side by side
  const probs: Matrix[] = [];
  const headMeans: Float64Array[] = [];
  for (let h = 0; h < H; h++) {
    const q = columns(qkv, h * d, d); // [T, d]
    const k = columns(qkv, E + h * d, d); // [T, d]
    const v = columns(qkv, 2 * E + h * d, d); // [T, d]
    const head = attention(q, k, v, scale);
    const gate = headMask ? headMask[h] : 1;
    for (let t = 0; t < x.rows; t++) {
      for (let c = 0; c < d; c++) {
        const replacement = headReplacement ? headReplacement[h][c] : 0;
        merged.data[t * E + h * d + c] = gate * head.out.data[t * d + c] + (1 - gate) * replacement;
      }
      patchHeadOut?.(layerIndex, h, t, merged.data.subarray(t * E + h * d, t * E + (h + 1) * d));
    }
    probs.push(head.probs);
    const mean = new Float64Array(d); // [d]
    for (let t = 0; t < x.rows; t++) for (let c = 0; c < d; c++) mean[c] += head.out.data[t * d + c] / x.rows;
    headMeans.push(mean);
  }
  // Each head through its rows h·d..(h+1)·d of c_proj (Conv1D [E, E]), no bias: [T, d] · [d, E] -> [T, E].
  const headOut = Array.from({ length: H }, (_, h) => {
    const out = new Float64Array(x.rows * E);
    for (let t = 0; t < x.rows; t++) {
      for (let c = 0; c < d; c++) {
        const z = merged.data[t * E + h * d + c];
        for (let o = 0; o < E; o++) out[t * E + o] += z * layer.attnProj.weight[(h * d + c) * E + o];
      }
    }
    return out;
  });
  return { out: linear(merged, layer.attnProj), probs, headMeans, headOut }; // [T, E] -> [T, E]
}

export function ffn(x: Matrix, layer: LayerWeights, activation: Activation): Matrix {
  const a = linear(x, layer.mlpFc); // [T, E] -> [T, n_inner]
  for (let i = 0; i < a.data.length; i++) a.data[i] = activate(a.data[i], activation);
  return linear(a, layer.mlpProj); // [T, n_inner] -> [T, E]
}

function addInPlace(x: Matrix, y: Matrix): void {
  for (let i = 0; i < x.data.length; i++) x.data[i] += y.data[i];
}

/** x + mha(ln_1(x)), then x + ffn(ln_2(x)). */
export function block(
  x: Matrix,
  layer: LayerWeights,
  config: Gpt2Config,
  layerIndex: number,
  headMask?: ArrayLike<number>,
  headReplacement?: ArrayLike<ArrayLike<number>>,
  patchHeadOut?: ReferenceOptions['patchHeadOut'],
): { x: Matrix; probs: Matrix[]; headMeans: Float64Array[]; headOut: Float64Array[]; attnOut: Matrix; mlpOut: Matrix } {
  const eps = config.layerNormEpsilon;
  const attn = mha(layerNorm(x, layer.ln1, eps), layer, config, layerIndex, headMask, headReplacement, patchHeadOut); // [T, E]
  const out: Matrix = { rows: x.rows, cols: x.cols, data: Float64Array.from(x.data) };
  addInPlace(out, attn.out);
  const mlpOut = ffn(layerNorm(out, layer.ln2, eps), layer, config.activation); // [T, E]
  addInPlace(out, mlpOut);
  return { x: out, probs: attn.probs, headMeans: attn.headMeans, headOut: attn.headOut, attnOut: attn.out, mlpOut };
}

/** The whole model: token ids → logits, attention maps and per-token log-probabilities. */
export function gpt2(
  config: Gpt2Config,
  weights: Gpt2Weights,
  ids: ArrayLike<number>,
  opts: ReferenceOptions = {},
): ReferenceResult {
  const T = ids.length;
  const { nEmbd: E, vocabSize: V, nLayer: L, nHead: H } = config;
  if (T === 0 || T > config.nPositions) throw new Error(`gpt2: need 1..${config.nPositions} tokens, got ${T}`);

  let x = matrix(T, E); // [T, E] = wte[ids] + wpe[0..T)
  for (let t = 0; t < T; t++) {
    const id = ids[t];
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`gpt2: token id ${id} outside [0, ${V})`);
    for (let i = 0; i < E; i++) x.data[t * E + i] = weights.wte[id * E + i] + weights.wpe[t * E + i];
  }

  const attention = new Float32Array(L * H * T * T); // [L, H, T, T]
  const headOutputMeans: Float64Array[][] = [];
  const trace: ReferenceTrace | undefined = opts.trace ? { residPre: [], headOut: [], attnOut: [], mlpOut: [] } : undefined;
  for (let l = 0; l < L; l++) {
    for (let t = 0; opts.patchResidPre && t < T; t++) opts.patchResidPre(l, t, x.data.subarray(t * E, (t + 1) * E));
    const result = block(x, weights.layers[l], config, l, opts.headMask?.[l], opts.headReplacement?.[l], opts.patchHeadOut);
    if (trace) {
      trace.residPre.push(Float64Array.from(x.data));
      trace.headOut.push(result.headOut);
      trace.attnOut.push(result.attnOut.data);
      trace.mlpOut.push(result.mlpOut.data);
    }
    x = result.x;
    headOutputMeans.push(result.headMeans);
    result.probs.forEach((p, h) => attention.set(p.data, (l * H + h) * T * T));
  }

  trace?.residPre.push(Float64Array.from(x.data));
  const final = layerNorm(x, weights.lnF, config.layerNormEpsilon); // [T, E]
  const logits64 = matrix(T, V); // [T, V] = final @ wteᵀ (tied head)
  for (let t = 0; t < T; t++) {
    for (let v = 0; v < V; v++) {
      let dot = 0;
      for (let i = 0; i < E; i++) dot += final.data[t * E + i] * weights.wte[v * E + i];
      logits64.data[t * V + v] = dot;
    }
  }
  return { logits: Float32Array.from(logits64.data), attention, logprobs: logprobsOf(logits64, ids), headOutputMeans, ...(trace ? { trace } : {}) };
}

/** logprobs[t] = log_softmax(logits[t - 1])[ids[t]]; NaN at t = 0, which has no prediction. */
export function logprobsOf(logits: Matrix, ids: ArrayLike<number>): Float32Array {
  const V = logits.cols;
  const out = new Float32Array(ids.length).fill(NaN);
  for (let t = 1; t < ids.length; t++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits.data[(t - 1) * V + v]);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits.data[(t - 1) * V + v] - max);
    out[t] = logits.data[(t - 1) * V + ids[t]] - max - Math.log(sum);
  }
  return out;
}
