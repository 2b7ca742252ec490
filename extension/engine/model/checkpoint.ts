/**
 * Loads a Hugging Face GPT-2-family checkpoint folder: config.json, model.safetensors (or a sharded
 * model.safetensors.index.json) and the tokenizer files. Every tensor is checked against the config before use.
 */
import { promises as fsp } from 'node:fs';
import { basename, join } from 'node:path';
import { HeadlightError } from '../../common/errors.js';
import { describe } from './configFields.js';
import type { Activation, Gpt2Config, Gpt2Weights, LayerWeights, LazyTensor } from './checkpointTypes.js';
import { openSafetensors } from './safetensors.js';
import { TensorStore } from './tensorStore.js';

export type FileDtype = 'F32' | 'F16' | 'BF16';

export interface Checkpoint {
  dir: string;
  config: Gpt2Config;
  weights: Gpt2Weights;
  /** The dtype of the weights in the file (they are converted to fp32). */
  fileDtype: FileDtype;
  files: { config: string; weights: string; tokenizerJson?: string; vocab?: string; merges?: string };
}

const ACTIVATIONS: readonly Activation[] = ['gelu_new', 'gelu_pytorch_tanh', 'gelu', 'relu', 'silu'];
const PICKLE_SUFFIXES = ['.bin', '.pt', '.pth', '.ckpt', '.pkl', '.pickle'];

// ---------------------------------------------------------------- config

/** config.json → Gpt2Config, with Hugging Face GPT2Config's defaults for absent fields. */
export function parseConfig(json: unknown, file: string): Gpt2Config {
  const name = basename(file);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new HeadlightError('checkpoint-bad-config', `${name}: expected a JSON object, got ${describe(json)}.`);
  }
  const c = json as Record<string, unknown>;
  checkArchitecture(c, name);

  const int = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (!Number.isSafeInteger(v) || (v as number) <= 0) {
      throw new HeadlightError(
        'checkpoint-bad-config',
        `${name}: "${key}" must be a positive integer, got ${describe(c[key])}.`,
        'Fix config.json or download the checkpoint again.',
      );
    }
    return v as number;
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'boolean') {
      throw new HeadlightError('checkpoint-bad-config', `${name}: "${key}" must be true or false, got ${describe(v)}.`);
    }
    return v;
  };

  // GPT2Config's defaults: the 124M model.
  const nEmbd = int('n_embd', 768);
  const nHead = int('n_head', 12);
  if (nEmbd % nHead !== 0) {
    throw new HeadlightError(
      'checkpoint-bad-config',
      `${name}: n_embd (${nEmbd}) is not divisible by n_head (${nHead}).`,
      'Fix config.json or download the checkpoint again.',
    );
  }
  const eps = c.layer_norm_epsilon ?? 1e-5;
  if (typeof eps !== 'number' || !(eps > 0)) {
    throw new HeadlightError('checkpoint-bad-config', `${name}: "layer_norm_epsilon" must be a positive number, got ${describe(eps)}.`);
  }
  return {
    nLayer: int('n_layer', 12),
    nHead,
    nEmbd,
    nPositions: int('n_positions', 1024),
    vocabSize: int('vocab_size', 50257),
    nInner: c.n_inner === null || c.n_inner === undefined ? 4 * nEmbd : int('n_inner'),
    layerNormEpsilon: eps,
    activation: parseActivation(c.activation_function, name),
    scaleAttnWeights: bool('scale_attn_weights', true),
    scaleAttnByInverseLayerIdx: bool('scale_attn_by_inverse_layer_idx', false),
    // reorder_and_upcast_attn is accepted and ignored: it only changes the precision PyTorch computes in.
    bosTokenId: tokenId(c.bos_token_id, 'bos_token_id', name),
    eosTokenId: tokenId(c.eos_token_id, 'eos_token_id', name),
  };
}

function checkArchitecture(c: Record<string, unknown>, name: string): void {
  const type = c.model_type;
  if (type === 'gpt2') return;
  if (type === undefined && ('n_embd' in c || 'n_layer' in c || 'n_head' in c)) return;
  throw new HeadlightError(
    'checkpoint-unsupported-architecture',
    type === undefined
      ? `${name}: no "model_type" and no GPT-2 fields (n_embd, n_layer, n_head) — this does not look like a GPT-2 config.`
      : `${name}: model_type is ${describe(type)}; only GPT-2-architecture checkpoints (model_type "gpt2") are supported.`,
    'Pick a GPT-2-family model such as openai-community/gpt2 or distilbert/distilgpt2.',
  );
}

function parseActivation(value: unknown, name: string): Activation {
  const v = value ?? 'gelu_new';
  if (typeof v === 'string' && (ACTIVATIONS as readonly string[]).includes(v)) return v as Activation;
  throw new HeadlightError(
    'checkpoint-bad-config',
    `${name}: activation_function ${describe(v)} is not supported (supported: ${ACTIVATIONS.join(', ')}).`,
    'Pick a checkpoint that uses one of these activations.',
  );
}

function tokenId(value: unknown, key: string, name: string): number {
  // null appears in some configs; fall back to GPT-2's <|endoftext|>.
  if (value === undefined || value === null) return 50256;
  if (Number.isSafeInteger(value) && (value as number) >= 0) return value as number;
  throw new HeadlightError('checkpoint-bad-config', `${name}: "${key}" must be a token id, got ${describe(value)}.`);
}

// ---------------------------------------------------------------- folder

export async function loadCheckpoint(dir: string, opts: { signal?: AbortSignal } = {}): Promise<Checkpoint> {
  const folder = await openFolder(dir, opts.signal);
  try {
    opts.signal?.throwIfAborted();
    const { weights, fileDtype } = await readWeights(folder.store, folder.config, (name, shape) => folder.store.read(name, shape));
    return { dir, config: folder.config, weights, fileDtype, files: folder.files };
  } finally {
    await folder.close();
  }
}

/** A checked checkpoint whose weights are read only when the graph is serialized. Close it afterwards. */
export interface OpenCheckpoint extends Omit<Checkpoint, 'weights'> {
  weights: Gpt2Weights<LazyTensor>;
  close(): Promise<void>;
}

/**
 * Like `loadCheckpoint` (the same checks and errors), but holds no weights: each tensor is read from the file when
 * the ONNX model is written, straight into the model's bytes. Loading GPT-2 then needs one copy of the weights in
 * JavaScript instead of two.
 */
export async function openCheckpoint(dir: string, opts: { signal?: AbortSignal } = {}): Promise<OpenCheckpoint> {
  const folder = await openFolder(dir, opts.signal);
  try {
    const { weights, fileDtype } = await readWeights(folder.store, folder.config, async (name, shape) => folder.store.lazy(name, shape));
    return { dir, config: folder.config, weights, fileDtype, files: folder.files, close: folder.close };
  } catch (err) {
    await folder.close();
    throw err;
  }
}

/** GPT-2's weights of an opened folder, checked, as lazy sources (read when the graph is serialized). */
export function lazyGpt2Weights(store: TensorStore, config: Gpt2Config): Promise<{ weights: Gpt2Weights<LazyTensor>; fileDtype: FileDtype }> {
  return readWeights(store, config, async (name, shape) => store.lazy(name, shape));
}

/**
 * Reads config.json (parsed by `parse`: GPT-2's parser by default, a family's otherwise), finds the tokenizer and
 * weight files, and opens the safetensors headers. No tensor is read here.
 */
export async function openFolder<C = Gpt2Config>(dir: string, signal?: AbortSignal, parse: (json: unknown, path: string) => C = parseConfig as never, prefixed: (config: C) => boolean = () => true) {
  const entries = await listFolder(dir);
  const configPath = join(dir, 'config.json');
  if (!entries.has('config.json')) {
    throw new HeadlightError(
      'checkpoint-missing-file',
      `${dir}: no config.json — this folder is not a Hugging Face model checkpoint.`,
      'Pick the folder that holds config.json and model.safetensors (a Hugging Face model snapshot).',
    );
  }
  const config = parse(await readJson(configPath), configPath);
  const tokenizer = findTokenizer(dir, entries);
  const shards = await findWeights(dir, entries);
  signal?.throwIfAborted();
  const opened = await Promise.all([...new Set(shards.values())].map((p) => openSafetensors(p)));
  const label = opened.length === 1 ? basename(opened[0].path) : INDEX;
  return {
    config,
    store: new TensorStore(label, opened, shards, signal, prefixed(config)),
    files: { config: configPath, weights: opened.length === 1 ? opened[0].path : join(dir, INDEX), ...tokenizer },
    close: () => Promise.all(opened.map((f) => f.close())).then(() => undefined),
  };
}

async function listFolder(dir: string): Promise<Set<string>> {
  try {
    return new Set(await fsp.readdir(dir));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new HeadlightError(
      'checkpoint-missing-file',
      code === 'ENOENT' ? `${dir}: no such folder.` : `${dir}: cannot read the folder (${code ?? String(err)}).`,
      'Pick a folder that holds config.json and model.safetensors.',
    );
  }
}

async function readJson(path: string): Promise<unknown> {
  const text = await fsp.readFile(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HeadlightError(
      'checkpoint-bad-config',
      `${basename(path)}: not valid JSON (${(err as Error).message}).`,
      'The file is damaged: download the checkpoint again.',
    );
  }
}

function findTokenizer(dir: string, entries: Set<string>): Omit<Checkpoint['files'], 'config' | 'weights'> {
  const found: Omit<Checkpoint['files'], 'config' | 'weights'> = {};
  if (entries.has('tokenizer.json')) found.tokenizerJson = join(dir, 'tokenizer.json');
  if (entries.has('vocab.json')) found.vocab = join(dir, 'vocab.json');
  if (entries.has('merges.txt')) found.merges = join(dir, 'merges.txt');
  if (found.tokenizerJson || (found.vocab && found.merges)) return found;
  const missing = found.vocab ? 'merges.txt' : found.merges ? 'vocab.json' : 'tokenizer.json (or vocab.json + merges.txt)';
  throw new HeadlightError(
    'checkpoint-missing-file',
    `${dir}: no tokenizer — ${missing} is missing.`,
    'Download the tokenizer files with the model (tokenizer.json, or vocab.json and merges.txt).',
  );
}

const INDEX = 'model.safetensors.index.json';

/** Tensor name → file that holds it: one model.safetensors, or the shards an index names. */
async function findWeights(dir: string, entries: Set<string>): Promise<Map<string, string>> {
  if (entries.has('model.safetensors')) {
    const path = join(dir, 'model.safetensors');
    return new Map([['*', path]]);
  }
  if (entries.has(INDEX)) {
    const indexPath = join(dir, INDEX);
    checkNoDuplicateEntries(await fsp.readFile(indexPath, 'utf8'));
    const index = (await readJson(indexPath)) as { weight_map?: unknown };
    const map = index?.weight_map;
    if (typeof map !== 'object' || map === null) {
      throw new HeadlightError('checkpoint-bad-config', `${INDEX}: no "weight_map" object.`, 'Download the checkpoint again.');
    }
    const shards = new Map<string, string>();
    for (const [tensor, shard] of Object.entries(map)) {
      if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\') || !entries.has(shard)) {
        throw new HeadlightError(
          'checkpoint-missing-file',
          `${INDEX}: tensor ${tensor} is in ${describe(shard)}, which is not in ${dir}.`,
          'Download every shard of the checkpoint.',
        );
      }
      shards.set(tensor, join(dir, shard));
    }
    return shards;
  }
  const pickles = [...entries].filter((e) => PICKLE_SUFFIXES.some((s) => e.endsWith(s)));
  if (pickles.length > 0) {
    throw new HeadlightError(
      'checkpoint-pickle-only',
      `${dir}: has ${pickles.join(', ')} but no model.safetensors — only safetensors weights are loaded, because pickle files can run code when read.`,
      'Convert with `python -c "import transformers as t; t.AutoModelForCausalLM.from_pretrained(\'DIR\').save_pretrained(\'DIR\', safe_serialization=True)"` on a trusted copy, or pick a repository that has model.safetensors.',
    );
  }
  throw new HeadlightError(
    'checkpoint-missing-file',
    `${dir}: no model.safetensors (nor ${INDEX}).`,
    'Download model.safetensors with the checkpoint.',
  );
}

/**
 * JSON.parse keeps the last of two equal keys, so an index that names a tensor twice (two shards claiming it) would
 * silently pick one: look for repeated `"tensor": "….safetensors"` entries in the text itself.
 */
function checkNoDuplicateEntries(text: string): void {
  const seen = new Map<string, string>();
  for (const m of text.matchAll(/"((?:[^"\\]|\\.)*)"\s*:\s*"((?:[^"\\]|\\.)*\.safetensors)"/g)) {
    const [, tensor, shard] = m;
    const before = seen.get(tensor);
    if (before !== undefined) {
      throw new HeadlightError(
        'checkpoint-bad-config',
        `${INDEX}: "weight_map" names tensor ${tensor} twice (in ${before} and in ${shard}).`,
        'The index is damaged: download the checkpoint again.',
      );
    }
    seen.set(tensor, shard);
  }
}

/** Tensors that may be present and are not weights: causal-mask buffers. */
const BUFFER = /^h\.\d+\.attn\.(bias|masked_bias)$/;

async function readWeights<T>(
  store: TensorStore,
  config: Gpt2Config,
  read: (name: string, shape: number[]) => Promise<T>,
): Promise<{ weights: Gpt2Weights<T>; fileDtype: FileDtype }> {
  const { nLayer, nEmbd: E, nInner, vocabSize: V, nPositions: P } = config;
  checkNoExtraLayers(store, config);
  const fileDtype = store.info('wte.weight').info.dtype as FileDtype;
  const ln = async (prefix: string) => ({
    weight: await read(`${prefix}.weight`, [E]), // [E]
    bias: await read(`${prefix}.bias`, [E]), // [E]
  });
  const linear = async (prefix: string, nIn: number, nOut: number) => ({
    weight: await read(`${prefix}.weight`, [nIn, nOut]), // [in, out], Conv1D layout
    bias: await read(`${prefix}.bias`, [nOut]), // [out]
  });

  const wte = await read('wte.weight', [V, E]); // [V, E]
  const wpe = await read('wpe.weight', [P, E]); // [P, E]
  const layers: LayerWeights<T>[] = [];
  for (let i = 0; i < nLayer; i++) {
    layers.push({
      ln1: await ln(`h.${i}.ln_1`),
      attnQkv: await linear(`h.${i}.attn.c_attn`, E, 3 * E),
      attnProj: await linear(`h.${i}.attn.c_proj`, E, E),
      ln2: await ln(`h.${i}.ln_2`),
      mlpFc: await linear(`h.${i}.mlp.c_fc`, E, nInner),
      mlpProj: await linear(`h.${i}.mlp.c_proj`, nInner, E),
    });
  }
  const lnF = await ln('ln_f');
  if (store.has('lm_head.weight')) await checkTiedHead(store, [V, E]);
  return { weights: { wte, wpe, layers, lnF }, fileDtype };
}

/** Tensors of layers beyond n_layer mean config.json and the weights disagree. */
function checkNoExtraLayers(store: TensorStore, config: Gpt2Config): void {
  for (const name of store.names()) {
    const m = /^h\.(\d+)\./.exec(name);
    if (m && Number(m[1]) >= config.nLayer && !BUFFER.test(name)) {
      throw new HeadlightError(
        'checkpoint-bad-tensor',
        `${store.label}: has tensor ${name} but config.json says n_layer is ${config.nLayer}.`,
        'config.json and the weights do not belong together: download the checkpoint again.',
      );
    }
  }
}

/**
 * GPT-2 ties the LM head to wte. Some files store lm_head.weight anyway: accept it when it equals wte. An untied head
 * is refused rather than silently replaced by wte, which would give wrong predictions and surprisal
 * (Gpt2Weights has no separate head).
 */
async function checkTiedHead(store: TensorStore, shape: number[]): Promise<void> {
  const wte = await store.read('wte.weight', shape); // [V, E]
  const head = await store.read('lm_head.weight', shape); // [V, E]
  for (let i = 0; i < head.length; i++) {
    if (head[i] !== wte[i] && !(Number.isNaN(head[i]) && Number.isNaN(wte[i]))) {
      throw new HeadlightError(
        'checkpoint-untied-head',
        `${basename(store.info('lm_head.weight').file.path)}: lm_head.weight differs from wte.weight (first at element ${i}); only checkpoints whose LM head is tied to the token embedding are supported.`,
        'Pick a GPT-2 checkpoint with tied embeddings (tie_word_embeddings true).',
      );
    }
  }
}
