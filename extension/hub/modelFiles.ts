/**
 * Which files make a model folder: config.json, the safetensors weights (one file, or an index and every shard it
 * names, never outside the folder) and the tokenizer files; pickle-only repos are refused by name. Used for local
 * folders, the Hugging Face cache and the list of files a download fetches.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { HeadlightError } from '../common/errors';
import { existsFollowing } from './cache';

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

export const WEIGHTS = 'model.safetensors';
export const INDEX = 'model.safetensors.index.json';
/** Fetched when the repo has them: tokenizer.json (every family), its config and special tokens, GPT-2's BPE pair. */
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt'];
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

export async function presentIn(dir: string, names: string[]): Promise<Set<string>> {
  const present = new Set<string>();
  for (const n of names) if (await existsFollowing(join(dir, n))) present.add(n);
  return present;
}

export function filesOf(dir: string, names: string[], shards?: string[]): ModelFiles {
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

export const FOLDER_NAMES = ['config.json', WEIGHTS, INDEX, ...TOKENIZER_FILES];

/** The model files of folder `dir`, with every shard its index names present; throws naming what is missing. */
export async function completeModelFiles(dir: string, where: string, extra: string[] = []): Promise<ModelFiles> {
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
