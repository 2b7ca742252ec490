/**
 * The model store: what the extension's model picker and the `headlight models` CLI call.
 *
 * A model reference is one of
 * - `bundled`: the tiny model shipped with the extension (its folder is passed in as `bundledDir`);
 * - a local folder (`/abs/path`, `./rel`, `~/x`, or an existing folder with a config.json);
 * - a Hugging Face repo id with optional revision: `openai-community/gpt2@main`, legacy ids such as `gpt2`.
 *
 * Resolving gives a folder holding `config.json`, `model.safetensors` (or `model.safetensors.index.json` and every
 * shard it names) and `tokenizer.json` or `vocab.json` + `merges.txt` (plus `tokenizer_config.json` and
 * `special_tokens_map.json` where the repo has them), which `loadCheckpoint(dir)` reads. Pickle weights are never
 * fetched. Hub models live in the cache Python's huggingface_hub uses
 * (`HF_HUB_CACHE`, …), so a model downloaded by either is reused by the other.
 */
import { promises as fsp } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { HeadlightError } from '../common/errors';
import {
  downloadHubFile,
  getFileMetadata,
  getRepoInfo,
  PARTIAL_SUFFIX,
  partialPathOf,
  type HubContext,
  type HubFileMetadata,
  type OpenPartial,
} from './hub';
import {
  blobPathOf,
  existsFollowing,
  isCommitHash,
  lockDirOf,
  readRef,
  repoDirOf,
  scanCache,
  snapshotDirOf,
  writeNoExist,
  writeRef,
  type CachedRepo,
  type CachedSnapshot,
} from './cache';
import { hubEnv, type Env, type HubEnv } from './env';

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

/**
 * Parameters of a decoder from its architecture facts: embeddings (+ learned positions), per layer the attention
 * projections (q and o: embd x heads*headDim; k and v: embd x kvHeads*headDim) and the MLP (two matrices for GPT-2,
 * GPT-NeoX and GPT-Neo, three for the gated SwiGLU/GeGLU MLPs), plus biases and norm weights as each family has
 * them, and an untied LM head. Used to estimate download sizes offline.
 */
export function estimateParams(a: KnownArchitecture): number {
  const { embd: e, heads: h, kvHeads: kv, headDim: d, intermediate: i, layers: l, vocab: v } = a;
  const q = h * d;
  const k = kv * d;
  let perLayer: number;
  switch (a.modelType) {
    case 'gpt2': // c_attn, c_proj, c_fc, c_proj all with bias; two LayerNorms
      perLayer = e * 3 * e + 3 * e + e * e + e + e * i + i + i * e + e + 4 * e;
      break;
    case 'gpt_neox': // fused per-head QKV, dense, h_to_4h, 4h_to_h, all with bias; two LayerNorms
      perLayer = e * 3 * q + 3 * q + q * e + e + e * i + i + i * e + e + 4 * e;
      break;
    case 'gpt_neo': // q, k, v without bias, out_proj with bias; c_fc, c_proj with bias; two LayerNorms
      perLayer = 3 * e * q + q * e + e + e * i + i + i * e + e + 4 * e;
      break;
    case 'llama': // no biases, SwiGLU, two RMSNorms
      perLayer = e * (2 * q + 2 * k) + 3 * e * i + 2 * e;
      break;
    case 'qwen2': // as llama + q/k/v biases
      perLayer = e * (2 * q + 2 * k) + q + 2 * k + 3 * e * i + 2 * e;
      break;
    case 'qwen3': // as llama + per-head q_norm/k_norm
      perLayer = e * (2 * q + 2 * k) + 2 * d + 3 * e * i + 2 * e;
      break;
    case 'gemma2': // as llama with four RMSNorms
      perLayer = e * (2 * q + 2 * k) + 3 * e * i + 4 * e;
      break;
    case 'gemma3_text': // as gemma2 + q_norm/k_norm
      perLayer = e * (2 * q + 2 * k) + 2 * d + 3 * e * i + 4 * e;
      break;
  }
  const finalNorm = a.modelType === 'gpt2' || a.modelType === 'gpt_neox' || a.modelType === 'gpt_neo' ? 2 * e : e;
  return v * e * (a.tied ? 1 : 2) + a.learnedPositions * e + l * perLayer + finalNorm;
}

/** An estimated download: parameters x bytes per parameter of the dtype the repo ships (exactSize false). */
function estimated(
  m: Omit<KnownModel, 'weightsBytes' | 'exactSize'>,
): KnownModel {
  return { ...m, weightsBytes: estimateParams(m) * DTYPE_BYTES[m.dtype], exactSize: false };
}

const GPT2 = { modelType: 'gpt2', family: 'GPT-2', dtype: 'F32', gated: false, vocab: 50257, learnedPositions: 1024, tied: true } as const;
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
    layers: 30, heads: 9, kvHeads: 3, embd: 576, headDim: 64, intermediate: 1536, vocab: 49152, learnedPositions: 0, tied: true,
  }),
  // 361.8 M x 2 (BF16) ≈ 724 MB
  estimated({
    id: 'HuggingFaceTB/SmolLM2-360M', repoId: 'HuggingFaceTB/SmolLM2-360M', family: 'Llama (SmolLM2)', modelType: 'llama', dtype: 'BF16', gated: false,
    layers: 32, heads: 15, kvHeads: 5, embd: 960, headDim: 64, intermediate: 2560, vocab: 49152, learnedPositions: 0, tied: true,
  }),
  // 70.4 M x 2 (F16) ≈ 141 MB, + 6 x 2048² B of mask buffers if the file keeps them
  estimated({
    id: 'EleutherAI/pythia-70m', repoId: 'EleutherAI/pythia-70m', family: 'GPT-NeoX (Pythia)', modelType: 'gpt_neox', dtype: 'F16', gated: false,
    layers: 6, heads: 8, kvHeads: 8, embd: 512, headDim: 64, intermediate: 2048, vocab: 50304, learnedPositions: 0, tied: false,
  }),
  // 162.3 M x 2 (F16) ≈ 325 MB, + 12 x 2048² B of mask buffers if kept
  estimated({
    id: 'EleutherAI/pythia-160m', repoId: 'EleutherAI/pythia-160m', family: 'GPT-NeoX (Pythia)', modelType: 'gpt_neox', dtype: 'F16', gated: false,
    layers: 12, heads: 12, kvHeads: 12, embd: 768, headDim: 64, intermediate: 3072, vocab: 50304, learnedPositions: 0, tied: false,
  }),
  // 494.0 M x 2 (BF16) ≈ 988 MB
  estimated({
    id: 'Qwen/Qwen2.5-0.5B', repoId: 'Qwen/Qwen2.5-0.5B', family: 'Qwen2', modelType: 'qwen2', dtype: 'BF16', gated: false,
    layers: 24, heads: 14, kvHeads: 2, embd: 896, headDim: 64, intermediate: 4864, vocab: 151936, learnedPositions: 0, tied: true,
  }),
  // 596.0 M x 2 (BF16) ≈ 1.19 GB (+311 MB if the file stores the tied head separately)
  estimated({
    id: 'Qwen/Qwen3-0.6B', repoId: 'Qwen/Qwen3-0.6B', family: 'Qwen3', modelType: 'qwen3', dtype: 'BF16', gated: false,
    layers: 28, heads: 16, kvHeads: 8, embd: 1024, headDim: 128, intermediate: 3072, vocab: 151936, learnedPositions: 0, tied: true,
  }),
  // 1.100 B x 4 (F32, the intermediate-checkpoint dtype) ≈ 4.40 GB
  estimated({
    id: 'TinyLlama/TinyLlama_v1.1', repoId: 'TinyLlama/TinyLlama_v1.1', family: 'Llama (TinyLlama)', modelType: 'llama', dtype: 'F32', gated: false,
    layers: 22, heads: 32, kvHeads: 4, embd: 2048, headDim: 64, intermediate: 5632, vocab: 32000, learnedPositions: 0, tied: false,
  }),
  // 1.236 B x 2 (BF16) ≈ 2.47 GB
  estimated({
    id: 'meta-llama/Llama-3.2-1B', repoId: 'meta-llama/Llama-3.2-1B', family: 'Llama 3.2', modelType: 'llama', dtype: 'BF16', gated: true,
    layers: 16, heads: 32, kvHeads: 8, embd: 2048, headDim: 64, intermediate: 8192, vocab: 128256, learnedPositions: 0, tied: true,
  }),
  // 268.1 M x 2 (BF16) ≈ 536 MB
  estimated({
    id: 'google/gemma-3-270m', repoId: 'google/gemma-3-270m', family: 'Gemma 3', modelType: 'gemma3_text', dtype: 'BF16', gated: true,
    layers: 18, heads: 4, kvHeads: 1, embd: 640, headDim: 256, intermediate: 2048, vocab: 262144, learnedPositions: 0, tied: true,
  }),
  // 999.9 M x 2 (BF16) ≈ 2.00 GB
  estimated({
    id: 'google/gemma-3-1b-pt', repoId: 'google/gemma-3-1b-pt', family: 'Gemma 3', modelType: 'gemma3_text', dtype: 'BF16', gated: true,
    layers: 26, heads: 4, kvHeads: 1, embd: 1152, headDim: 256, intermediate: 6912, vocab: 262144, learnedPositions: 0, tied: true,
  }),
  // 2.614 B x 4 (F32, sharded) ≈ 10.5 GB
  estimated({
    id: 'google/gemma-2-2b', repoId: 'google/gemma-2-2b', family: 'Gemma 2', modelType: 'gemma2', dtype: 'F32', gated: true,
    layers: 26, heads: 8, kvHeads: 4, embd: 2304, headDim: 256, intermediate: 9216, vocab: 256000, learnedPositions: 0, tied: true,
  }),
  // 68.5 M x 4 (F32) ≈ 274 MB, + 4 x 2048² B of mask buffers if kept
  estimated({
    id: 'roneneldan/TinyStories-33M', repoId: 'roneneldan/TinyStories-33M', family: 'GPT-Neo (TinyStories)', modelType: 'gpt_neo', dtype: 'F32', gated: false,
    layers: 4, heads: 16, kvHeads: 16, embd: 768, headDim: 48, intermediate: 3072, vocab: 50257, learnedPositions: 2048, tied: true,
  }),
  // 125.2 M x 4 (F32) ≈ 501 MB, + 12 x 2048² B of mask buffers if kept
  estimated({
    id: 'EleutherAI/gpt-neo-125m', repoId: 'EleutherAI/gpt-neo-125m', family: 'GPT-Neo', modelType: 'gpt_neo', dtype: 'F32', gated: false,
    layers: 12, heads: 12, kvHeads: 12, embd: 768, headDim: 64, intermediate: 3072, vocab: 50257, learnedPositions: 2048, tied: true,
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

export type ModelRef =
  | { kind: 'bundled' }
  | { kind: 'local'; dir: string }
  | { kind: 'hub'; repoId: string; revision: string };

const REPO_PART = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;

/** True for a well-formed Hub repo id (`name` or `org/name`; no `--`, no `..`, at most 96 characters). */
export function isValidRepoId(id: string): boolean {
  const parts = id.split('/');
  return (
    id.length <= 96 &&
    parts.length <= 2 &&
    parts.every((p) => REPO_PART.test(p) && !p.includes('--') && !p.includes('..'))
  );
}

function looksLikePath(ref: string): boolean {
  return /^(\/|\.\.?([\\/]|$)|~([\\/]|$)|[A-Za-z]:[\\/]|\\\\)/.test(ref) || ref.includes('\\');
}

function expandTilde(p: string, env: Env): string {
  const home = env.HOME ?? env.USERPROFILE ?? '';
  return p === '~' || /^~[\\/]/.test(p) ? join(home, p.slice(1)) : p;
}

/**
 * Parses a model reference. A bare `org/name` that is also an existing folder with a config.json is taken as the
 * folder (as transformers does).
 */
export async function parseModelRef(ref: string, opts: { cwd?: string; env?: Env } = {}): Promise<ModelRef> {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const trimmed = ref.trim();
  if (trimmed === 'bundled') return { kind: 'bundled' };
  if (looksLikePath(trimmed)) return { kind: 'local', dir: resolve(cwd, expandTilde(trimmed, env)) };
  const at = trimmed.indexOf('@');
  const repoId = at >= 0 ? trimmed.slice(0, at) : trimmed;
  const revision = at >= 0 ? trimmed.slice(at + 1) : 'main';
  const asDir = resolve(cwd, trimmed);
  if (await existsFollowing(join(asDir, 'config.json'))) return { kind: 'local', dir: asDir };
  if (!isValidRepoId(repoId) || revision === '') {
    throw new HeadlightError(
      'model-ref-invalid',
      `"${ref}" is neither a folder nor a Hugging Face repo id.`,
      'Use a repo id such as openai-community/gpt2 or gpt2@main, a folder path, or "bundled".',
    );
  }
  return { kind: 'hub', repoId, revision };
}

/** Files of a loadable model folder, as absolute paths. */
export interface ModelFiles {
  config: string;
  /** model.safetensors, or model.safetensors.index.json for a sharded checkpoint. */
  weights: string;
  /** The shards the index names, in order (sharded checkpoints only). */
  shards?: string[];
  /** `tokenizer.json`, when present (preferred). */
  tokenizer?: string;
  /** `vocab.json` + `merges.txt`, when present. */
  vocab?: string;
  merges?: string;
}

/** A resolved model: a folder `loadCheckpoint(dir)` reads, and where it came from. */
export interface ResolvedModel {
  dir: string;
  source: 'bundled' | 'local' | 'cache' | 'download';
  files: ModelFiles;
  repoId?: string;
  revision?: string;
  commit?: string;
}

const WEIGHTS = 'model.safetensors';
const INDEX = 'model.safetensors.index.json';
/** Fetched when the repo has them: tokenizer.json (every family), its config and special tokens, GPT-2's BPE pair. */
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt'];
const PICKLE_FILES = ['pytorch_model.bin', 'pytorch_model.bin.index.json', 'tf_model.h5', 'flax_model.msgpack', 'model.ckpt.index'];

function pickleOnlyError(where: string, found: string): HeadlightError {
  return new HeadlightError(
    'model-pickle-only',
    `${where} has weights only as ${found}. Headlight loads only model.safetensors: pickle files ` +
      '(pytorch_model.bin) can run arbitrary code when loaded, safetensors cannot.',
    'Choose a repo or revision that has model.safetensors. For weights you trust, convert them once with Python: ' +
      'AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out, safe_serialization=True).',
  );
}

/**
 * Which files a model needs, given the names present: config.json, model.safetensors or the shard index
 * model.safetensors.index.json (its shards come from `shardsOfIndex`), and the tokenizer files present. Throws a
 * HeadlightError naming what is missing (and why pickle weights are refused).
 */
export function chooseModelFiles(present: ReadonlySet<string>, where: string): string[] {
  const weights = present.has(WEIGHTS) ? WEIGHTS : present.has(INDEX) ? INDEX : undefined;
  if (!weights) {
    const pickle = PICKLE_FILES.find((f) => present.has(f));
    if (pickle) throw pickleOnlyError(where, pickle);
    throw new HeadlightError(
      'model-files-missing',
      `${where} has no ${WEIGHTS} (nor ${INDEX}).`,
      'Pick a folder or repo with a safetensors checkpoint.',
    );
  }
  if (!present.has('config.json')) {
    throw new HeadlightError('model-files-missing', `${where} has no config.json.`, 'A Hugging Face model folder needs config.json beside its weights.');
  }
  const hasBpe = present.has('vocab.json') && present.has('merges.txt');
  if (!present.has('tokenizer.json') && !hasBpe) {
    throw new HeadlightError(
      'model-files-missing',
      `${where} has no tokenizer: neither tokenizer.json nor vocab.json + merges.txt.`,
      'Copy the tokenizer files of the base model (e.g. openai-community/gpt2) into the folder.',
    );
  }
  return ['config.json', weights, ...TOKENIZER_FILES.filter((f) => present.has(f))];
}

/**
 * The shard files a `model.safetensors.index.json` names in its `weight_map`, each once, in order of first use.
 * Refuses names that are not plain `.safetensors` files beside the index, and, given `present`, shards the repo or
 * folder does not have.
 */
export function shardsOfIndex(text: string, where: string, present?: ReadonlySet<string>): string[] {
  const bad = (why: string): HeadlightError =>
    new HeadlightError('model-bad-index', `${INDEX} of ${where}: ${why}.`, 'Download the model again; if it persists, the repo is broken.');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw bad(`not valid JSON (${(err as Error).message})`);
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw bad('no "weight_map" object');
  const shards: string[] = [];
  for (const [tensor, shard] of Object.entries(map)) {
    if (typeof shard !== 'string' || !/^[^/\\]+\.safetensors$/.test(shard) || shard.startsWith('.')) {
      throw bad(`tensor ${tensor} is in ${JSON.stringify(shard)}, which is not a .safetensors file beside the index`);
    }
    if (!shards.includes(shard)) shards.push(shard);
  }
  if (shards.length === 0) throw bad('"weight_map" names no tensor');
  const missing = present ? shards.filter((f) => !present.has(f)) : [];
  if (missing.length > 0) {
    throw new HeadlightError(
      'model-files-missing',
      `${INDEX} of ${where} names ${missing.join(', ')}, which ${missing.length === 1 ? 'is' : 'are'} not there.`,
      'Download every shard of the checkpoint.',
    );
  }
  return shards;
}

async function presentIn(dir: string, names: string[]): Promise<Set<string>> {
  const present = new Set<string>();
  for (const n of names) if (await existsFollowing(join(dir, n))) present.add(n);
  return present;
}

function filesOf(dir: string, names: string[], shards?: string[]): ModelFiles {
  const has = (n: string): string | undefined => (names.includes(n) ? join(dir, n) : undefined);
  return {
    config: join(dir, 'config.json'),
    weights: join(dir, names.includes(INDEX) ? INDEX : WEIGHTS),
    shards: shards?.map((f) => join(dir, f)),
    tokenizer: has('tokenizer.json'),
    vocab: has('merges.txt') ? has('vocab.json') : undefined,
    merges: has('vocab.json') ? has('merges.txt') : undefined,
  };
}

const FOLDER_NAMES = ['config.json', WEIGHTS, INDEX, ...TOKENIZER_FILES];

/** The model files of folder `dir`, with every shard its index names present; throws naming what is missing. */
async function completeModelFiles(dir: string, where: string, extra: string[] = []): Promise<ModelFiles> {
  const present = await presentIn(dir, [...FOLDER_NAMES, ...extra]);
  const names = chooseModelFiles(present, where);
  if (!names.includes(INDEX)) return filesOf(dir, names);
  const text = await fsp.readFile(join(dir, INDEX), 'utf8');
  const shards = shardsOfIndex(text, where);
  const shardsPresent = await presentIn(dir, shards);
  shardsOfIndex(text, where, shardsPresent);
  return filesOf(dir, names, shards);
}

/** Checks a folder (local or bundled) and lists its model files. */
export async function inspectModelDir(dir: string): Promise<ModelFiles> {
  const st = await fsp.stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new HeadlightError('model-folder-missing', `Model folder ${dir} does not exist.`, 'Check the path.');
  }
  return completeModelFiles(dir, dir, PICKLE_FILES);
}

/** Options shared by the store's functions. */
export interface ModelStoreOptions {
  /** Environment to read HF_* variables from (default `process.env`). Tests pass their own. */
  env?: Env;
  /** Folder of the bundled model; required to resolve `bundled`. */
  bundledDir?: string;
  /** Base for relative folder references (default `process.cwd()`). */
  cwd?: string;
}

/** Download progress, summed over the files of one model. Sent at most every ~100 ms, and once per file at its end. */
export interface DownloadProgress {
  repoId: string;
  /** File being fetched now. */
  file: string;
  /** 1-based index of `file` among `fileCount`. */
  fileIndex: number;
  fileCount: number;
  /** Bytes of all files present so far (including those already cached). */
  bytes: number;
  /** Bytes of all files. */
  total: number;
  /** Transfer rate over the last few seconds, bytes per second (0 until measured). */
  rateBytesPerSec: number;
  /** Seconds left at that rate; undefined until a rate is known. */
  etaSec: number | undefined;
}

/** Options of `downloadModel` and `resolveModel`. */
export interface DownloadOptions extends ModelStoreOptions {
  onProgress?: (p: DownloadProgress) => void;
  /** Cancels the download; whatever file was in flight is deleted, completed files stay cached. */
  signal?: AbortSignal;
  /** A server silent this long fails the request with a `hub-timeout` error (default 15 s). */
  timeoutMs?: number;
  /** Consecutive failed attempts without progress before giving up (default 3). */
  retries?: number;
  /** Relative symlinks in snapshots (default true); false copies, as on Windows without developer mode. */
  symlinks?: boolean;
  /** How partial files are opened (default: the real filesystem); tests pass one whose disk fills up. */
  openPartial?: OpenPartial;
}

function contextOf(opts: DownloadOptions, env: HubEnv): HubContext {
  return { env, signal: opts.signal, timeoutMs: opts.timeoutMs, retries: opts.retries, symlinks: opts.symlinks, openPartial: opts.openPartial };
}

/** Folders a repo may be cached under: the id asked for, then its renamed alias. */
function candidateRepoIds(repoId: string): string[] {
  const alias = repoAlias(repoId);
  return alias ? [repoId, alias] : [repoId];
}

/**
 * Looks for a complete snapshot of `repoId@revision` in the cache, under both `models--gpt2` and
 * `models--openai-community--gpt2` namings. Never touches the network. Undefined when absent or incomplete.
 */
export async function findCachedModel(
  repoId: string,
  revision = 'main',
  opts: ModelStoreOptions = {},
): Promise<ResolvedModel | undefined> {
  const env = hubEnv(opts.env);
  for (const id of candidateRepoIds(repoId)) {
    const repoDir = repoDirOf(env.hubCache, id);
    const commit = await readRef(repoDir, revision);
    if (!commit) continue;
    const dir = snapshotDirOf(repoDir, commit);
    try {
      const files = await completeModelFiles(dir, `${id}@${revision}`);
      return { dir, source: 'cache', files, repoId: id, revision, commit };
    } catch {
      continue;
    }
  }
  return undefined;
}

/** The commit of the most recently changed snapshot folder of a repo folder, if any. */
async function newestSnapshot(repoDir: string): Promise<string | undefined> {
  let best: { commit: string; mtimeMs: number } | undefined;
  for (const commit of await fsp.readdir(join(repoDir, 'snapshots')).catch(() => [] as string[])) {
    const st = await fsp.stat(snapshotDirOf(repoDir, commit)).catch(() => undefined);
    if (isCommitHash(commit) && st && (!best || st.mtimeMs > best.mtimeMs)) best = { commit, mtimeMs: st.mtimeMs };
  }
  return best?.commit;
}

/** What a cut download left of `repoId@revision` in the cache: the files its snapshot lacks, bytes in partial files. */
async function leftInCache(
  repoId: string,
  revision: string,
  env: HubEnv,
): Promise<{ missing?: string[]; partialBytes: number }> {
  let partialBytes = 0;
  let missing: string[] | undefined;
  for (const id of candidateRepoIds(repoId)) {
    const repoDir = repoDirOf(env.hubCache, id);
    const blobs = await fsp.readdir(join(repoDir, 'blobs')).catch(() => [] as string[]);
    for (const b of blobs.filter((n) => n.endsWith(PARTIAL_SUFFIX))) {
      partialBytes += (await fsp.stat(join(repoDir, 'blobs', b)).catch(() => undefined))?.size ?? 0;
    }
    // refs/{revision} is written once a download completes: a cut one left only its snapshot folder.
    const commit = (await readRef(repoDir, revision)) ?? (await newestSnapshot(repoDir));
    if (!commit || missing) continue;
    const dir = snapshotDirOf(repoDir, commit);
    const present = await presentIn(dir, FOLDER_NAMES);
    const lacks: string[] = [];
    if (!present.has('config.json')) lacks.push('config.json');
    if (present.has(INDEX)) {
      const shards = await fsp.readFile(join(dir, INDEX), 'utf8').then((t) => shardsOfIndex(t, id), () => []);
      const have = await presentIn(dir, shards);
      lacks.push(...shards.filter((f) => !have.has(f)));
    } else if (!present.has(WEIGHTS)) {
      lacks.push(WEIGHTS);
    }
    if (!present.has('tokenizer.json') && !(present.has('vocab.json') && present.has('merges.txt'))) {
      lacks.push('tokenizer.json (or vocab.json + merges.txt)');
    }
    missing = lacks;
  }
  return { missing, partialBytes };
}

/** The error for a model that offline mode cannot finish: names the files still missing and says how to finish. */
async function offlineError(repoId: string, revision: string, env: HubEnv): Promise<HeadlightError> {
  const { missing, partialBytes } = await leftInCache(repoId, revision, env).catch(() => ({ missing: undefined, partialBytes: 0 }));
  const kept = partialBytes > 0 ? ` (${formatBytes(partialBytes)} of a cut download are kept and will resume)` : '';
  const state = missing?.length
    ? `is only partly downloaded in ${env.hubCache}: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing${kept}`
    : `is not in the cache (${env.hubCache})${kept}`;
  return new HeadlightError(
    'offline',
    `${repoId}@${revision} ${state}, and offline mode (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE) forbids downloading.`,
    partialBytes > 0 || missing?.length
      ? 'Unset HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE and load the model again to finish the download: it resumes where it stopped.'
      : 'Unset HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE to download it, or choose a model from `headlight models list`.',
  );
}

/** Free bytes for an unprivileged user on the filesystem holding `dir` (or its nearest existing parent). */
async function freeBytes(dir: string): Promise<number> {
  let d = dir;
  for (;;) {
    try {
      const s = await fsp.statfs(d);
      return s.bavail * s.bsize;
    } catch {
      const up = dirname(d);
      if (up === d) throw new HeadlightError('disk', `Cannot read free space for ${dir}.`);
      d = up;
    }
  }
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB', 'PB'];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
export { formatBytes };

/** Bytes still to fetch for `metas`: sizes of blobs not yet cached, less partial files a download will resume. */
async function bytesToFetch(repoDir: string, metas: HubFileMetadata[]): Promise<number> {
  let need = 0;
  for (const m of new Map(metas.map((x) => [x.etag, x])).values()) {
    if (await existsFollowing(blobPathOf(repoDir, m.etag))) continue;
    const partial = await fsp.stat(partialPathOf(repoDir, m.etag)).catch(() => undefined);
    need += m.size - Math.min(partial?.size ?? 0, m.size);
  }
  return need;
}

async function checkDiskSpace(hubCache: string, repoDir: string, metas: HubFileMetadata[], label: string): Promise<void> {
  const need = await bytesToFetch(repoDir, metas);
  if (need === 0) return;
  const free = await freeBytes(hubCache);
  if (need > free) {
    throw new HeadlightError(
      'disk-full',
      `${label} needs ${formatBytes(need)} (${need} bytes) but only ${formatBytes(free)} (${free} bytes) are free ` +
        `on the disk holding ${hubCache}.`,
      'Free some space (`headlight models rm REPO` removes a cached model), or point HF_HUB_CACHE at a larger disk.',
    );
  }
}

/** Turns per-file byte counts into model-level progress events with a rate and ETA, throttled to ~10 per second. */
class ProgressMeter {
  private samples: Array<{ t: number; bytes: number }> = [];
  private lastEmit = 0;
  constructor(
    private readonly repoId: string,
    private readonly total: number,
    private readonly fileCount: number,
    private readonly emit?: (p: DownloadProgress) => void,
  ) {}

  report(file: string, fileIndex: number, bytes: number, force = false): void {
    if (!this.emit) return;
    const t = performance.now();
    this.samples.push({ t, bytes });
    while (this.samples.length > 2 && t - this.samples[0].t > 3000) this.samples.shift();
    if (!force && t - this.lastEmit < 100) return;
    this.lastEmit = t;
    const first = this.samples[0];
    const dt = (t - first.t) / 1000;
    const rate = dt > 0.2 ? Math.max(0, (bytes - first.bytes) / dt) : 0;
    this.emit({
      repoId: this.repoId,
      file,
      fileIndex,
      fileCount: this.fileCount,
      bytes,
      total: this.total,
      rateBytesPerSec: rate,
      etaSec: rate > 0 ? (this.total - bytes) / rate : undefined,
    });
  }
}

/**
 * Downloads `ref` (a Hub repo id with optional `@revision`) into the shared Hugging Face cache and returns the
 * snapshot folder. Asks the Hub which files exist at the revision, fetches `config.json`, `model.safetensors` (or
 * the shard index, then every shard it names) and the tokenizer files, each verified (sha256 / git sha1) and renamed into `blobs/` atomically, then links
 * `snapshots/{commit}/` and writes `refs/{revision}`. Checks free disk space first. Files already cached are not
 * fetched again. In offline mode returns the cached copy or throws `offline`.
 *
 * Errors are HeadlightErrors: `offline`, `cancelled`, `disk-full`, `hub-timeout`, `hub-network`, `hub-auth`,
 * `hub-repo-not-found`, `hub-revision-not-found`, `hub-entry-not-found`, `hub-checksum`, `model-pickle-only`, ….
 */
export async function downloadModel(ref: string, opts: DownloadOptions = {}): Promise<ResolvedModel> {
  const env = hubEnv(opts.env);
  const parsed = await parseModelRef(ref, opts);
  if (parsed.kind !== 'hub') {
    throw new HeadlightError('model-ref-invalid', `"${ref}" is a folder, not a Hub repo: there is nothing to download.`);
  }
  const { repoId, revision } = parsed;
  if (env.offline) {
    const cached = await findCachedModel(repoId, revision, opts);
    if (cached) return cached;
    throw await offlineError(repoId, revision, env);
  }
  const ctx = contextOf(opts, env);
  const info = await getRepoInfo(ctx, repoId, revision);
  const label = `${repoId}@${revision}`;
  const siblings = new Set(info.siblings);
  const wanted = chooseModelFiles(siblings, label);
  // Resolve every file at the listed commit, so a push during the download cannot mix two commits.
  const at = isCommitHash(info.sha) ? info.sha : revision;
  const repoDir = repoDirOf(env.hubCache, repoId);
  if (wanted.includes(INDEX)) {
    // Sharded: the index (small) says which shards to fetch; only .safetensors shards the repo lists are accepted.
    const indexPath = await downloadHubFile(ctx, repoId, at, INDEX);
    const shards = shardsOfIndex(await fsp.readFile(indexPath, 'utf8'), label, siblings);
    wanted.splice(wanted.indexOf(INDEX) + 1, 0, ...shards);
  }
  const metas: HubFileMetadata[] = [];
  for (const f of wanted) metas.push(await getFileMetadata(ctx, repoId, at, f));
  const commit = metas[0].commit;
  await checkDiskSpace(env.hubCache, repoDir, metas, label);

  const total = metas.reduce((s, m) => s + m.size, 0);
  const meter = new ProgressMeter(repoId, total, wanted.length, opts.onProgress);
  let done = 0;
  for (let i = 0; i < wanted.length; i++) {
    const file = wanted[i];
    await downloadHubFile(ctx, repoId, at, file, {
      metadata: metas[i],
      onBytes: (bytes) => meter.report(file, i + 1, done + bytes),
    });
    done += metas[i].size;
    meter.report(file, i + 1, done, true);
  }
  for (const f of TOKENIZER_FILES) if (!siblings.has(f)) await writeNoExist(repoDir, commit, f);
  await writeRef(repoDir, revision, commit);
  const dir = snapshotDirOf(repoDir, commit);
  const shards = wanted.includes(INDEX) ? wanted.filter((f) => f.endsWith('.safetensors') && f !== WEIGHTS) : undefined;
  return { dir, source: 'download', files: filesOf(dir, wanted, shards), repoId, revision, commit };
}

/**
 * Resolves a model reference to a folder `loadCheckpoint(dir)` can read.
 * - `bundled` -> `opts.bundledDir`; a folder -> itself (both checked for the needed files);
 * - a Hub id -> the cached snapshot when complete (no network at all), else `downloadModel` unless
 *   `download: false` (then a `model-not-cached` error).
 */
export async function resolveModel(ref: string, opts: DownloadOptions & { download?: boolean } = {}): Promise<ResolvedModel> {
  const parsed = await parseModelRef(ref, opts);
  if (parsed.kind === 'bundled') {
    if (!opts.bundledDir) {
      throw new HeadlightError('model-bundled-missing', 'The bundled model was asked for but no bundled folder was given.');
    }
    return { dir: opts.bundledDir, source: 'bundled', files: await inspectModelDir(opts.bundledDir) };
  }
  if (parsed.kind === 'local') return { dir: parsed.dir, source: 'local', files: await inspectModelDir(parsed.dir) };
  const cached = await findCachedModel(parsed.repoId, parsed.revision, opts);
  if (cached) return cached;
  const env = hubEnv(opts.env);
  if (env.offline) throw await offlineError(parsed.repoId, parsed.revision, env);
  if (opts.download === false) {
    throw new HeadlightError(
      'model-not-cached',
      `${parsed.repoId}@${parsed.revision} is not in the cache (${env.hubCache}).`,
      `Download it with \`headlight models pull ${ref}\` or from the model picker.`,
    );
  }
  return downloadModel(ref, opts);
}

/** One cached repo as the picker and `models list` show it. */
export interface CachedModelInfo extends CachedRepo {
  /** A complete snapshot folder to load (the one `refs/main` points to when complete, else the newest complete). */
  loadableDir?: string;
  /** The KNOWN_MODELS entry this repo is (by either id). */
  known?: KnownModel;
}

/** Lists every model in the cache with sizes, refs and a loadable snapshot when there is one. No network. */
export async function listCachedModels(opts: ModelStoreOptions = {}): Promise<CachedModelInfo[]> {
  const env = hubEnv(opts.env);
  const repos = await scanCache(env.hubCache);
  const out: CachedModelInfo[] = [];
  for (const r of repos) {
    const complete: CachedSnapshot[] = [];
    for (const s of r.snapshots) {
      if (await completeModelFiles(s.dir, r.repoId).then(() => true, () => false)) complete.push(s);
    }
    const main = complete.find((s) => s.commit === r.refs.main);
    const loadableDir = (main ?? complete[complete.length - 1])?.dir;
    out.push({ ...r, loadableDir, known: knownModel(r.repoId) });
  }
  return out;
}

/**
 * Removes the cache folder `models--{org}--{name}` of exactly `repoId` (and its lock folder when empty). Refuses anything that
 * is not a well-formed repo id or whose folder is not a real directory directly inside the cache. Returns the
 * paths removed.
 */
export async function removeCachedModel(repoId: string, opts: ModelStoreOptions = {}): Promise<string[]> {
  if (!isValidRepoId(repoId)) {
    throw new HeadlightError(
      'model-ref-invalid',
      `"${repoId}" is not a Hugging Face repo id; refusing to remove anything.`,
      'Give a repo id as shown by `headlight models list`, e.g. openai-community/gpt2.',
    );
  }
  const env = hubEnv(opts.env);
  const folder = repoDirOf(env.hubCache, repoId);
  const st = await fsp.lstat(folder).catch(() => undefined);
  if (!st) {
    throw new HeadlightError('model-not-cached', `${repoId} is not in the cache (${env.hubCache}).`, 'See `headlight models list`.');
  }
  if (!st.isDirectory() || dirname(folder) !== env.hubCache || !basename(folder).startsWith('models--')) {
    throw new HeadlightError('model-rm-refused', `${folder} is not a plain cache folder of ${repoId}; refusing to remove it.`);
  }
  const removed = [folder];
  await fsp.rm(folder, { recursive: true, force: true });
  const locks = lockDirOf(env.hubCache, repoId);
  // Only an empty lock folder: a lock file inside means a download in another window is still running.
  if (await fsp.rmdir(locks).then(() => true, () => false)) removed.push(locks);
  return removed;
}
