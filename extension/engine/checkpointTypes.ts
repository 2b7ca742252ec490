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

export interface LayerNormWeights {
  weight: Float32Array; // [n_embd]
  bias: Float32Array; // [n_embd]
}

/** A Conv1D: y = x @ weight + bias, weight stored [in, out] (no transpose). */
export interface LinearWeights {
  weight: Float32Array; // [in, out]
  bias: Float32Array; // [out]
}

export interface LayerWeights {
  ln1: LayerNormWeights;
  attnQkv: LinearWeights; // c_attn: [n_embd, 3*n_embd]
  attnProj: LinearWeights; // attn.c_proj: [n_embd, n_embd]
  ln2: LayerNormWeights;
  mlpFc: LinearWeights; // mlp.c_fc: [n_embd, n_inner]
  mlpProj: LinearWeights; // mlp.c_proj: [n_inner, n_embd]
}

/** All weights as fp32, whatever the file's dtype. The LM head is tied to wte. */
export interface Gpt2Weights {
  wte: Float32Array; // [vocab_size, n_embd]
  wpe: Float32Array; // [n_positions, n_embd]
  layers: LayerWeights[];
  lnF: LayerNormWeights;
}
