/**
 * What the memory plan (common/memoryPlan.ts) needs of a model, found without the engine and without reading a weight:
 * the sizes from config.json and the tensor list from the safetensors headers (the first 8 + N bytes of each file,
 * nothing after), or, for a known model not yet downloaded, from its facts in knownModels.ts. The model picker shows
 * each model's estimate from these.
 *
 * The engine finds the same from its own config parsing (engine/families/*); test/unit/pickerMemory.test.ts checks that
 * both give the same plan for a checkpoint of every family. Like the engine, this reads only the tensors the graph uses:
 * mask buffers, rotary frequency buffers, a stored copy of a tied LM head and a vision tower are left out.
 */
import { promises as fsp, readFileSync } from 'node:fs';
import { freemem, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { HeadlightError } from '../common/errors';
import { availableMemoryFrom, type AvailableMemory, type PlanDims, type PlannedTensor } from '../common/memoryPlan';
import { headerLength, parseHeader } from '../common/safetensorsHeader';
import { knownTensors, type KnownModel } from './knownModels';
import { INDEX, WEIGHTS, shardsOfIndex } from './modelFiles';

/** A model as the plan sees it, before a window is chosen. */
export interface ModelShape {
  dims: PlanDims;
  tensors: PlannedTensor[];
  /** The longest window config.json allows (n_positions / max_position_embeddings). */
  context: number;
  /** GPT-2: the engine's window is always the context, whatever headlight.window.tokens says. */
  fixedWindow: boolean;
}

/** Buffers the graph does not read (computed by the engine instead), and a multimodal model's vision part. */
const NOT_READ = /\.(attn|attention)\.(bias|masked_bias)$|rotary_emb\.inv_freq$|^(model\.)?(vision_tower|multi_modal_projector)\./;
/** A stored LM head: not read when the head is tied to the embedding. */
const STORED_HEAD = /^(language_model\.)?lm_head\.weight$|^embed_out\.weight$/;

/** The plan's input for a known model from its facts (the tensors its checkpoint holds, in the repo's dtype). */
export function knownShape(k: KnownModel): ModelShape {
  return {
    dims: { nLayer: k.layers, nHead: k.heads, nKvHead: k.kvHeads, headDim: k.headDim, nEmbd: k.embd, vocabSize: k.vocab },
    tensors: knownTensors(k).map((t) => ({ ...t, dtype: k.dtype })),
    context: k.context,
    fixedWindow: k.modelType === 'gpt2',
  };
}

/** Per model_type: transformers' config-class defaults that the engine also uses where a field is absent. */
interface FamilyDefaults {
  layers: [string, number];
  heads: [string, number];
  hidden: [string, number];
  kvHeads?: number;
  headDim?: number;
  vocab: number;
  positions: [string, number];
  tie: boolean;
}
const D = (layers: number, heads: number, hidden: number, vocab: number, positions: number, tie: boolean, more: Partial<FamilyDefaults> = {}): FamilyDefaults => ({
  layers: ['num_hidden_layers', layers],
  heads: ['num_attention_heads', heads],
  hidden: ['hidden_size', hidden],
  vocab,
  positions: ['max_position_embeddings', positions],
  tie,
  ...more,
});
const FAMILY_DEFAULTS: Record<string, FamilyDefaults> = {
  gpt2: { layers: ['n_layer', 12], heads: ['n_head', 12], hidden: ['n_embd', 768], vocab: 50257, positions: ['n_positions', 1024], tie: true },
  llama: D(32, 32, 4096, 32000, 2048, false),
  mistral: D(32, 32, 4096, 32000, 4096 * 32, false, { kvHeads: 8 }),
  qwen2: D(32, 32, 4096, 151936, 32768, false),
  qwen3: D(32, 32, 4096, 151936, 32768, false, { headDim: 128 }),
  gpt_neox: D(44, 64, 6144, 50432, 2048, false),
  gemma2: D(26, 8, 2304, 256000, 8192, true, { kvHeads: 4, headDim: 256 }),
  gemma3_text: D(26, 8, 2304, 262208, 131072, true, { kvHeads: 4, headDim: 256 }),
  gpt_neo: D(24, 16, 2048, 50257, 2048, true),
};

/**
 * The plan's input from a parsed config.json and the tensors its headers list. Pure. Throws a HeadlightError naming
 * the file and field for a model_type Headlight does not run or a size that is not a positive integer.
 */
export function shapeFromConfig(json: unknown, file: string, headers: PlannedTensor[]): ModelShape {
  const bad = (why: string) => new HeadlightError('model-bad-config', `${file}: ${why}.`, 'Check config.json, or download the model again.');
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('not a JSON object');
  const outer = json as Record<string, unknown>;
  let type = outer.model_type;
  let c = outer;
  let prefix = '';
  if (type === 'gemma3') {
    const text = outer.text_config;
    if (typeof text !== 'object' || text === null || Array.isArray(text)) throw bad('"text_config" is missing; a "gemma3" config carries its text model there');
    c = text as Record<string, unknown>;
    prefix = 'text_config.';
    type = 'gemma3_text';
  }
  if (type === undefined && ('n_embd' in c || 'n_layer' in c || 'n_head' in c)) type = 'gpt2';
  const d = typeof type === 'string' ? FAMILY_DEFAULTS[type] : undefined;
  if (!d) throw new HeadlightError('model-unsupported', `${file}: model_type is ${JSON.stringify(type) ?? 'missing'}; Headlight runs ${Object.keys(FAMILY_DEFAULTS).join(', ')}, gemma3.`, 'Pick a model of one of these families.');
  const int = (key: string, fallback: number | undefined): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw bad(`"${prefix}${key}" must be a positive integer, not ${JSON.stringify(v) ?? 'missing'}`);
    return v;
  };
  // GPT-Neo spells the counts num_layers / num_heads (num_hidden_layers / num_attention_heads accepted, as the engine does).
  const neo = type === 'gpt_neo';
  const layersKey = neo && c.num_layers === undefined && c.num_hidden_layers !== undefined ? 'num_hidden_layers' : neo ? 'num_layers' : d.layers[0];
  const headsKey = neo && c.num_heads === undefined && c.num_attention_heads !== undefined ? 'num_attention_heads' : neo ? 'num_heads' : d.heads[0];
  const nLayer = int(layersKey, d.layers[1]);
  const nHead = int(headsKey, d.heads[1]);
  const nEmbd = int(d.hidden[0], d.hidden[1]);
  const nKvHead = type === 'gpt2' || type === 'gpt_neox' || neo ? nHead : int('num_key_value_heads', d.kvHeads ?? nHead);
  const headDim = type === 'gpt2' || type === 'gpt_neox' || neo || (c.head_dim === undefined && d.headDim === undefined) ? nEmbd / nHead : int('head_dim', d.headDim);
  if (!Number.isInteger(headDim)) throw bad(`"${prefix}${d.hidden[0]}" (${nEmbd}) is not divisible by "${prefix}${headsKey}" (${nHead})`);
  const vocabSize = int('vocab_size', d.vocab);
  const context = int(d.positions[0], d.positions[1]);
  const tied = type === 'gpt2' || (typeof c.tie_word_embeddings === 'boolean' ? c.tie_word_embeddings : d.tie);
  const tensors = headers.filter((t) => !NOT_READ.test(t.name) && !(tied && STORED_HEAD.test(t.name)));
  return { dims: { nLayer, nHead, nKvHead, headDim, nEmbd, vocabSize }, tensors, context, fixedWindow: type === 'gpt2' };
}

/** The tensors a safetensors file's header lists (name, shape, dtype): reads the header's bytes only, validated as the engine does (common/safetensorsHeader.ts). */
export async function readSafetensorsHeader(path: string): Promise<PlannedTensor[]> {
  const name = basename(path);
  const file = await fsp.open(path, 'r').catch((err: unknown) => {
    throw unreadable(path, err);
  });
  try {
    const { size } = await file.stat();
    const readAt = async (position: number, length: number): Promise<Uint8Array> => {
      const bytes = new Uint8Array(length);
      for (let at = 0; at < length; ) {
        const { bytesRead } = await file.read(bytes, at, length - at, position + at);
        if (bytesRead === 0) return bytes.subarray(0, at); // shorter than it said: the parser names it
        at += bytesRead;
      }
      return bytes;
    };
    const length = headerLength(await readAt(0, Math.min(8, size)), name, size);
    const { tensors } = parseHeader(await readAt(8, length), name, size - 8 - length);
    return [...tensors.values()].map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype }));
  } finally {
    await file.close();
  }
}

/**
 * A model folder's shape from config.json and its weights' headers (model.safetensors, or every shard that
 * model.safetensors.index.json names, read in parallel). No weight is read.
 */
export async function readModelShape(dir: string): Promise<ModelShape> {
  const configPath = join(dir, 'config.json');
  const text = await fsp.readFile(configPath, 'utf8').catch((err: unknown) => {
    throw unreadable(configPath, err);
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new HeadlightError('model-bad-config', `config.json: not valid JSON (${(err as Error).message}).`, 'Download the model again.');
  }
  const index = await fsp.readFile(join(dir, INDEX), 'utf8').catch(() => undefined);
  const files = index === undefined ? [WEIGHTS] : shardsOfIndex(index, dir);
  const headers = (await Promise.all(files.map((f) => readSafetensorsHeader(join(dir, f))))).flat();
  return shapeFromConfig(json, 'config.json', headers);
}

function unreadable(path: string, err: unknown): HeadlightError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const why = code === 'ENOENT' ? 'not found' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EISDIR' ? 'is a folder' : (err as Error).message;
  return new HeadlightError('model-files-missing', `${basename(path)} in ${basename(join(path, '..'))}: ${why}.`, 'Pick a folder with config.json and model.safetensors.');
}

/** Memory free now (os.freemem, and cgroup limits), read as the engine reads it when a model loads. */
export function availableMemoryNow(): AvailableMemory {
  return availableMemoryFrom(freemem(), totalmem(), (path) => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return undefined;
    }
  });
}
