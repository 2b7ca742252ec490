/**
 * The models Select Model and `headlight models` offer by name: each one's repo, family, architecture facts, the dtype
 * it ships and whether it is gated, with its download size (exact where checked, else parameters x bytes per
 * parameter). Data and two pure functions; the store (modelStore.ts) resolves and downloads them.
 */

/** Bytes per parameter of the dtypes repos ship. */
export const DTYPE_BYTES = { F32: 4, F16: 2, BF16: 2 } as const;
export type WeightsDtype = keyof typeof DTYPE_BYTES;

/** The architecture facts of a known model, as its config.json states them. */
export interface KnownArchitecture {
  /** config.json `model_type`: what the engine dispatches on. */
  modelType: 'gpt2' | 'llama' | 'qwen2' | 'qwen3' | 'gpt_neox' | 'gemma2' | 'gemma3_text' | 'gpt_neo';
  layers: number;
  /** Query heads. */
  heads: number;
  /** Key/value heads (= heads without grouped-query attention). */
  kvHeads: number;
  /** Hidden size (n_embd, hidden_size). */
  embd: number;
  /** Per-head dimension (`head_dim`; embd / heads where the config has none). */
  headDim: number;
  /** MLP inner size (n_inner, intermediate_size). */
  intermediate: number;
  vocab: number;
  /** Learned absolute positions (GPT-2, GPT-Neo): `n_positions` / `max_position_embeddings`; 0 for rotary models. */
  learnedPositions: number;
  /** LM head tied to the input embedding (no separate lm_head / embed_out tensor). */
  tied: boolean;
  /** The context config.json allows (`n_positions` / `max_position_embeddings`): the engine's window is at most this. */
  context: number;
}

/** A model the picker offers by name. */
export interface KnownModel extends KnownArchitecture {
  /** Short id: the legacy Hub id for renamed repos (`gpt2`), else the repo id itself. */
  id: string;
  /** Current Hub repo id. */
  repoId: string;
  /** Family as the picker shows it. */
  family: string;
  /** The dtype the repo's safetensors are stored in. */
  dtype: WeightsDtype;
  /** Size of the weights to download (all shards), in bytes. */
  weightsBytes: number;
  /** False where `weightsBytes` is an estimate (≈). */
  exactSize: boolean;
  /** The repo needs its licence accepted on the Hub and a token (HF_TOKEN): requests without both get 401/403. */
  gated: boolean;
}

/** A tensor of a known model as its checkpoint would hold it: the key's last part (what the memory plan matches
 * on: embeddings, positions, LM head) and the shape. */
export interface KnownTensor {
  name: string;
  shape: number[];
}

/**
 * The tensors the engine reads of a decoder, from its architecture facts alone (for models not yet downloaded):
 * embeddings (+ learned positions), per layer the attention projections (q and o: heads*headDim x embd; k and v:
 * kvHeads*headDim x embd; GPT-2 and GPT-NeoX fuse q, k and v in one matrix) and the MLP (two matrices for GPT-2,
 * GPT-NeoX and GPT-Neo, three for the gated SwiGLU/GeGLU MLPs), with the biases and norm weights each family has,
 * and an untied LM head. Mask buffers and a stored copy of a tied head are not read, so not listed. Names follow
 * the Hub's key layout; the memory plan reads them only to tell embeddings, positions and the head apart.
 */
export function knownTensors(a: KnownArchitecture): KnownTensor[] {
  const { embd: e, heads: h, kvHeads: kv, headDim: d, intermediate: i, layers, vocab: v } = a;
  const q = h * d;
  const k = kv * d;
  const m = (name: string, rows: number, cols: number): KnownTensor => ({ name, shape: [rows, cols] });
  const b = (name: string, n: number): KnownTensor => ({ name, shape: [n] });
  const out: KnownTensor[] = [];
  const neoLike = a.modelType === 'gpt2' || a.modelType === 'gpt_neo';
  const lead = neoLike ? 'transformer.' : a.modelType === 'gpt_neox' ? 'gpt_neox.' : 'model.';
  out.push(m(neoLike ? `${lead}wte.weight` : a.modelType === 'gpt_neox' ? `${lead}embed_in.weight` : `${lead}embed_tokens.weight`, v, e));
  if (a.learnedPositions > 0) out.push(m(`${lead}wpe.weight`, a.learnedPositions, e));
  for (let l = 0; l < layers; l++) {
    const p = neoLike ? `${lead}h.${l}.` : `${lead}layers.${l}.`;
    switch (a.modelType) {
      case 'gpt2': // c_attn, c_proj, c_fc, c_proj all with bias (Conv1D: in x out); two LayerNorms
        out.push(m(`${p}attn.c_attn.weight`, e, 3 * e), b(`${p}attn.c_attn.bias`, 3 * e), m(`${p}attn.c_proj.weight`, e, e), b(`${p}attn.c_proj.bias`, e));
        out.push(m(`${p}mlp.c_fc.weight`, e, i), b(`${p}mlp.c_fc.bias`, i), m(`${p}mlp.c_proj.weight`, i, e), b(`${p}mlp.c_proj.bias`, e));
        out.push(b(`${p}ln_1.weight`, e), b(`${p}ln_1.bias`, e), b(`${p}ln_2.weight`, e), b(`${p}ln_2.bias`, e));
        break;
      case 'gpt_neox': // fused per-head QKV, dense, h_to_4h, 4h_to_h, all with bias; two LayerNorms
        out.push(m(`${p}attention.query_key_value.weight`, 3 * q, e), b(`${p}attention.query_key_value.bias`, 3 * q));
        out.push(m(`${p}attention.dense.weight`, e, q), b(`${p}attention.dense.bias`, e));
        out.push(m(`${p}mlp.dense_h_to_4h.weight`, i, e), b(`${p}mlp.dense_h_to_4h.bias`, i), m(`${p}mlp.dense_4h_to_h.weight`, e, i), b(`${p}mlp.dense_4h_to_h.bias`, e));
        out.push(b(`${p}input_layernorm.weight`, e), b(`${p}input_layernorm.bias`, e), b(`${p}post_attention_layernorm.weight`, e), b(`${p}post_attention_layernorm.bias`, e));
        break;
      case 'gpt_neo': // q, k, v without bias, out_proj with bias; c_fc, c_proj with bias; two LayerNorms
        for (const x of ['q', 'k', 'v']) out.push(m(`${p}attn.attention.${x}_proj.weight`, q, e));
        out.push(m(`${p}attn.attention.out_proj.weight`, e, q), b(`${p}attn.attention.out_proj.bias`, e));
        out.push(m(`${p}mlp.c_fc.weight`, i, e), b(`${p}mlp.c_fc.bias`, i), m(`${p}mlp.c_proj.weight`, e, i), b(`${p}mlp.c_proj.bias`, e));
        out.push(b(`${p}ln_1.weight`, e), b(`${p}ln_1.bias`, e), b(`${p}ln_2.weight`, e), b(`${p}ln_2.bias`, e));
        break;
      default: {
        // Llama, Qwen2 (+ q/k/v biases), Qwen3 (+ per-head q_norm/k_norm), Gemma 2 (four RMSNorms), Gemma 3 (both)
        const t = a.modelType;
        out.push(m(`${p}self_attn.q_proj.weight`, q, e), m(`${p}self_attn.k_proj.weight`, k, e), m(`${p}self_attn.v_proj.weight`, k, e), m(`${p}self_attn.o_proj.weight`, e, q));
        if (t === 'qwen2') out.push(b(`${p}self_attn.q_proj.bias`, q), b(`${p}self_attn.k_proj.bias`, k), b(`${p}self_attn.v_proj.bias`, k));
        if (t === 'qwen3' || t === 'gemma3_text') out.push(b(`${p}self_attn.q_norm.weight`, d), b(`${p}self_attn.k_norm.weight`, d));
        out.push(m(`${p}mlp.gate_proj.weight`, i, e), m(`${p}mlp.up_proj.weight`, i, e), m(`${p}mlp.down_proj.weight`, e, i));
        const norms = t === 'gemma2' || t === 'gemma3_text' ? ['input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm'] : ['input_layernorm', 'post_attention_layernorm'];
        for (const n of norms) out.push(b(`${p}${n}.weight`, e));
      }
    }
  }
  if (neoLike) out.push(b(`${lead}ln_f.weight`, e), b(`${lead}ln_f.bias`, e));
  else if (a.modelType === 'gpt_neox') out.push(b(`${lead}final_layer_norm.weight`, e), b(`${lead}final_layer_norm.bias`, e));
  else out.push(b(`${lead}norm.weight`, e));
  if (!a.tied) out.push(m(a.modelType === 'gpt_neox' ? 'embed_out.weight' : 'lm_head.weight', v, e));
  return out;
}

/** Parameters of a decoder from its architecture facts: the elements of `knownTensors`. Used to estimate download
 * sizes offline. */
export function estimateParams(a: KnownArchitecture): number {
  return knownTensors(a).reduce((n, t) => n + t.shape.reduce((x, y) => x * y, 1), 0);
}

/** An estimated download: parameters x bytes per parameter of the dtype the repo ships (exactSize false). */
function estimated(
  m: Omit<KnownModel, 'weightsBytes' | 'exactSize'>,
): KnownModel {
  return { ...m, weightsBytes: estimateParams(m) * DTYPE_BYTES[m.dtype], exactSize: false };
}

const GPT2 = { modelType: 'gpt2', family: 'GPT-2', dtype: 'F32', gated: false, vocab: 50257, learnedPositions: 1024, tied: true, context: 1024 } as const;
const gpt2Arch = (layers: number, heads: number, embd: number) =>
  ({ layers, heads, kvHeads: heads, embd, headDim: embd / heads, intermediate: 4 * embd }) as const;

/**
 * The models the picker lists. GPT-2 sizes are of model.safetensors (F32; notes/huggingface-hub.md; they include
 * the h.N.attn.bias mask buffers). The other sizes cannot be checked offline: each is `estimateParams` of the
 * config.json facts below x the bytes of the dtype the repo ships (config `torch_dtype`), rounded by nothing.
 * Files that also carry causal-mask buffers (GPT-NeoX, GPT-Neo: layers x positions² bytes) or store a tied head
 * twice are larger by that much; the picker shows every estimate with "≈". Parameter counts agree with the model
 * cards (test/unit/hubModels.test.ts). Gated: Meta's Llama and Google's Gemma repos need a licence click and a token.
 */
export const KNOWN_MODELS: readonly KnownModel[] = [
  { id: 'gpt2', repoId: 'openai-community/gpt2', ...GPT2, ...gpt2Arch(12, 12, 768), weightsBytes: 548_105_171, exactSize: true },
  { id: 'distilgpt2', repoId: 'distilbert/distilgpt2', ...GPT2, ...gpt2Arch(6, 12, 768), weightsBytes: 352_824_413, exactSize: true },
  { id: 'gpt2-medium', repoId: 'openai-community/gpt2-medium', ...GPT2, ...gpt2Arch(24, 16, 1024), weightsBytes: 1_520_000_000, exactSize: false },
  { id: 'gpt2-large', repoId: 'openai-community/gpt2-large', ...GPT2, ...gpt2Arch(36, 20, 1280), weightsBytes: 3_250_000_000, exactSize: false },
  { id: 'gpt2-xl', repoId: 'openai-community/gpt2-xl', ...GPT2, ...gpt2Arch(48, 25, 1600), weightsBytes: 6_430_000_000, exactSize: false },
  // 134.5 M params x 2 (BF16) ≈ 269 MB
  estimated({
    id: 'HuggingFaceTB/SmolLM2-135M', repoId: 'HuggingFaceTB/SmolLM2-135M', family: 'Llama (SmolLM2)', modelType: 'llama', dtype: 'BF16', gated: false,
    layers: 30, heads: 9, kvHeads: 3, embd: 576, headDim: 64, intermediate: 1536, vocab: 49152, learnedPositions: 0, tied: true, context: 8192,
  }),
  // 361.8 M x 2 (BF16) ≈ 724 MB
  estimated({
    id: 'HuggingFaceTB/SmolLM2-360M', repoId: 'HuggingFaceTB/SmolLM2-360M', family: 'Llama (SmolLM2)', modelType: 'llama', dtype: 'BF16', gated: false,
    layers: 32, heads: 15, kvHeads: 5, embd: 960, headDim: 64, intermediate: 2560, vocab: 49152, learnedPositions: 0, tied: true, context: 8192,
  }),
  // 70.4 M x 2 (F16) ≈ 141 MB, + 6 x 2048² B of mask buffers if the file keeps them
  estimated({
    id: 'EleutherAI/pythia-70m', repoId: 'EleutherAI/pythia-70m', family: 'GPT-NeoX (Pythia)', modelType: 'gpt_neox', dtype: 'F16', gated: false,
    layers: 6, heads: 8, kvHeads: 8, embd: 512, headDim: 64, intermediate: 2048, vocab: 50304, learnedPositions: 0, tied: false, context: 2048,
  }),
  // 162.3 M x 2 (F16) ≈ 325 MB, + 12 x 2048² B of mask buffers if kept
  estimated({
    id: 'EleutherAI/pythia-160m', repoId: 'EleutherAI/pythia-160m', family: 'GPT-NeoX (Pythia)', modelType: 'gpt_neox', dtype: 'F16', gated: false,
    layers: 12, heads: 12, kvHeads: 12, embd: 768, headDim: 64, intermediate: 3072, vocab: 50304, learnedPositions: 0, tied: false, context: 2048,
  }),
  // 494.0 M x 2 (BF16) ≈ 988 MB
  estimated({
    id: 'Qwen/Qwen2.5-0.5B', repoId: 'Qwen/Qwen2.5-0.5B', family: 'Qwen2', modelType: 'qwen2', dtype: 'BF16', gated: false,
    layers: 24, heads: 14, kvHeads: 2, embd: 896, headDim: 64, intermediate: 4864, vocab: 151936, learnedPositions: 0, tied: true, context: 32768,
  }),
  // 596.0 M x 2 (BF16) ≈ 1.19 GB (+311 MB if the file stores the tied head separately)
  estimated({
    id: 'Qwen/Qwen3-0.6B', repoId: 'Qwen/Qwen3-0.6B', family: 'Qwen3', modelType: 'qwen3', dtype: 'BF16', gated: false,
    layers: 28, heads: 16, kvHeads: 8, embd: 1024, headDim: 128, intermediate: 3072, vocab: 151936, learnedPositions: 0, tied: true, context: 40960,
  }),
  // 1.100 B x 4 (F32, the intermediate-checkpoint dtype) ≈ 4.40 GB
  estimated({
    id: 'TinyLlama/TinyLlama_v1.1', repoId: 'TinyLlama/TinyLlama_v1.1', family: 'Llama (TinyLlama)', modelType: 'llama', dtype: 'F32', gated: false,
    layers: 22, heads: 32, kvHeads: 4, embd: 2048, headDim: 64, intermediate: 5632, vocab: 32000, learnedPositions: 0, tied: false, context: 2048,
  }),
  // 1.236 B x 2 (BF16) ≈ 2.47 GB
  estimated({
    id: 'meta-llama/Llama-3.2-1B', repoId: 'meta-llama/Llama-3.2-1B', family: 'Llama 3.2', modelType: 'llama', dtype: 'BF16', gated: true,
    layers: 16, heads: 32, kvHeads: 8, embd: 2048, headDim: 64, intermediate: 8192, vocab: 128256, learnedPositions: 0, tied: true, context: 131072,
  }),
  // 268.1 M x 2 (BF16) ≈ 536 MB
  estimated({
    id: 'google/gemma-3-270m', repoId: 'google/gemma-3-270m', family: 'Gemma 3', modelType: 'gemma3_text', dtype: 'BF16', gated: true,
    layers: 18, heads: 4, kvHeads: 1, embd: 640, headDim: 256, intermediate: 2048, vocab: 262144, learnedPositions: 0, tied: true, context: 32768,
  }),
  // 999.9 M x 2 (BF16) ≈ 2.00 GB
  estimated({
    id: 'google/gemma-3-1b-pt', repoId: 'google/gemma-3-1b-pt', family: 'Gemma 3', modelType: 'gemma3_text', dtype: 'BF16', gated: true,
    layers: 26, heads: 4, kvHeads: 1, embd: 1152, headDim: 256, intermediate: 6912, vocab: 262144, learnedPositions: 0, tied: true, context: 32768,
  }),
  // 2.614 B x 4 (F32, sharded) ≈ 10.5 GB
  estimated({
    id: 'google/gemma-2-2b', repoId: 'google/gemma-2-2b', family: 'Gemma 2', modelType: 'gemma2', dtype: 'F32', gated: true,
    layers: 26, heads: 8, kvHeads: 4, embd: 2304, headDim: 256, intermediate: 9216, vocab: 256000, learnedPositions: 0, tied: true, context: 8192,
  }),
  // 68.5 M x 4 (F32) ≈ 274 MB, + 4 x 2048² B of mask buffers if kept
  estimated({
    id: 'roneneldan/TinyStories-33M', repoId: 'roneneldan/TinyStories-33M', family: 'GPT-Neo (TinyStories)', modelType: 'gpt_neo', dtype: 'F32', gated: false,
    layers: 4, heads: 16, kvHeads: 16, embd: 768, headDim: 48, intermediate: 3072, vocab: 50257, learnedPositions: 2048, tied: true, context: 2048,
  }),
  // 125.2 M x 4 (F32) ≈ 501 MB, + 12 x 2048² B of mask buffers if kept
  estimated({
    id: 'EleutherAI/gpt-neo-125m', repoId: 'EleutherAI/gpt-neo-125m', family: 'GPT-Neo', modelType: 'gpt_neo', dtype: 'F32', gated: false,
    layers: 12, heads: 12, kvHeads: 12, embd: 768, headDim: 64, intermediate: 3072, vocab: 50257, learnedPositions: 2048, tied: true, context: 2048,
  }),
];

/** The KNOWN_MODELS entry for a repo id or short id. */
export function knownModel(id: string): KnownModel | undefined {
  return KNOWN_MODELS.find((m) => m.id === id || m.repoId === id);
}

/** The other folder name a renamed repo may be cached under (`gpt2` <-> `openai-community/gpt2`). */
export function repoAlias(repoId: string): string | undefined {
  const k = knownModel(repoId);
  if (!k || k.id === k.repoId) return undefined;
  return k.id === repoId ? k.repoId : k.id;
}
