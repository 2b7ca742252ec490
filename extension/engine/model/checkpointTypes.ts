/** The shapes of a GPT-2-family checkpoint once loaded. Plain data: no I/O here. */

export type Activation = 'gelu_new' | 'gelu_pytorch_tanh' | 'gelu' | 'relu' | 'silu';

/** Every config.json field that changes the computation, with Hugging Face's defaults applied. */
export interface Gpt2Config {
  nLayer: number;
  nHead: number;
  nEmbd: number;
  nPositions: number;
  vocabSize: number;
  /** MLP width; config `n_inner`, default 4 * n_embd. */
  nInner: number;
  layerNormEpsilon: number;
  activation: Activation;
  /** Divide scores by sqrt(head_dim); default true. */
  scaleAttnWeights: boolean;
  /** Also divide scores by (layer index + 1); default false. */
  scaleAttnByInverseLayerIdx: boolean;
  bosTokenId: number;
  eosTokenId: number;
}

/**
 * Where a tensor's fp32 bytes come from without holding them in JavaScript: it writes them into the buffer the
 * graph is serialized into (so a checkpoint is read once, straight into the ONNX model bytes), or a part of them at a
 * time into a small buffer (the external-data file is written that way).
 */
export interface LazyTensor {
  /** fp32 size in bytes. */
  byteLength: number;
  /** All `byteLength` bytes into `into`. */
  write(into: Uint8Array): Promise<void>;
  /** Bytes [from, from + into.length) into `into` (whole fp32 values: both multiples of 4). */
  read(into: Uint8Array, from: number): Promise<void>;
}

export interface LayerNormWeights<T = Float32Array> {
  weight: T; // [n_embd]
  bias: T; // [n_embd]
}

/** A Conv1D: y = x @ weight + bias, weight stored [in, out] (no transpose). */
export interface LinearWeights<T = Float32Array> {
  weight: T; // [in, out]
  bias: T; // [out]
}

export interface LayerWeights<T = Float32Array> {
  ln1: LayerNormWeights<T>;
  attnQkv: LinearWeights<T>; // c_attn: [n_embd, 3*n_embd]
  attnProj: LinearWeights<T>; // attn.c_proj: [n_embd, n_embd]
  ln2: LayerNormWeights<T>;
  mlpFc: LinearWeights<T>; // mlp.c_fc: [n_embd, n_inner]
  mlpProj: LinearWeights<T>; // mlp.c_proj: [n_inner, n_embd]
}

/** All weights as fp32 (or lazy fp32 sources), whatever the file's dtype. The LM head is tied to wte. */
export interface Gpt2Weights<T = Float32Array> {
  wte: T; // [vocab_size, n_embd]
  wpe: T; // [n_positions, n_embd]
  layers: LayerWeights<T>[];
  lnF: LayerNormWeights<T>;
}
