/**
 * The shared shape of the float64 reference forwards of the new families (Llama/Mistral/Qwen2/Qwen3, GPT-NeoX,
 * Gemma 2/3, GPT-Neo). Each family's reference is one file beside this one, written from the papers and Hugging Face
 * transformers' modeling files with plain loops; it imports nothing from the engine.
 *
 * Weights are held by their Hugging Face key names exactly as a checkpoint stores them (after any dtype rounding
 * the checkpoint writer applied), so a test writes the same tensors to a folder for the engine and hands them here.
 */

/** One tensor: row-major float64 with its shape as stored (Linear weights are [out, in], as torch stores them). */
export interface RefTensor {
  shape: number[];
  data: Float64Array;
}

/** Checkpoint tensors by their key names (e.g. `model.layers.0.self_attn.q_proj.weight`). */
export type RefWeights = Map<string, RefTensor>;

/** A parsed config.json (the family reads the fields it needs, in both the old and the transformers-v5 forms). */
export type RefConfig = Record<string, unknown>;

/** Interventions for the analyses' tests (ablation, activation patching). All optional. */
export interface RefHooks {
  /** [layer][query head] multiplier on each head's output before the output projection (0 removes a head). */
  headMask?: ArrayLike<ArrayLike<number>>;
  /** Replace the residual stream entering layer l at position t: called with (l, t, row) and may overwrite row. */
  patchResidPre?: (layer: number, position: number, row: Float64Array) => void;
  /** Replace query head h of layer l's output at position t (the [head_dim] vector before o_proj). */
  patchHeadOut?: (layer: number, head: number, position: number, z: Float64Array) => void;
}

export interface RefResult {
  /**
   * Softmax probabilities of every query head (after rotation, norms, soft-caps and masks): [L][H] each [T*T].
   * headMask and patchHeadOut act on head outputs, so they leave these unchanged (in that layer).
   */
  attention: Float64Array[][];
  /** [T*V] final logits (after any final soft-cap). */
  logits: Float64Array;
  /** ln p(ids[t] | ids[<t]); NaN at t = 0. */
  logprobs: Float64Array;
  /**
   * [L+1] each [T*E]: the residual stream entering layer l (after patchResidPre); entry L is the stream entering the
   * final norm.
   */
  residPre: Float64Array[];
  /**
   * [L][H] each [T*E]: query head h's contribution to the residual stream through its slice of the output
   * projection (no bias; for Gemma, before the post-attention norm, which is nonlinear — see the family file), after
   * headMask and patchHeadOut (a patch sees the masked vector).
   */
  headOut: Float64Array[][];
  /** [L] each [T*E]: what the attention block adds to the residual stream (after any post-norm). */
  attnOut: Float64Array[];
  /** [L] each [T*E]: what the MLP block adds to the residual stream (after any post-norm). */
  mlpOut: Float64Array[];
}

/** A family's reference forward over token ids. */
export type ReferenceForward = (config: RefConfig, weights: RefWeights, ids: readonly number[], hooks?: RefHooks) => RefResult;
