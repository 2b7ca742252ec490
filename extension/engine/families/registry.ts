/**
 * The families by config.json's `model_type`, and opening a checkpoint folder as a checked model of its family:
 * config parsed with the family's defaults, every tensor's dtype and shape checked against the safetensors headers
 * before any weight is read (weights are read only when the graph is serialized).
 */
import { basename } from 'node:path';
import { HeadlightError } from '../../common/errors.js';
import { lazyGpt2Weights, openFolder, parseConfig, type Checkpoint, type FileDtype } from '../model/checkpoint.js';
import type { TensorStore } from '../model/tensorStore.js';
import type { Gpt2Config } from '../model/checkpointTypes.js';
import { describe } from '../model/configFields.js';
import type { PlannedTensor } from '../model/memoryPlan.js';
import { checkedWeights, type Family, type FamilyModel, type LoadOptions } from './family.js';
import { GPT2_MODEL_TYPES, gpt2Model } from './gpt2.js';
import { gemmaFamily } from './gemma.js';
import { llamaFamily } from './llama.js';
import { neoFamily } from './neo.js';
import { neoxFamily } from './neox.js';

const FAMILIES: readonly Family<unknown>[] = [llamaFamily as Family<unknown>, neoxFamily as Family<unknown>, gemmaFamily as Family<unknown>, neoFamily as Family<unknown>];

/** Every model_type the engine runs. */
export const SUPPORTED_MODEL_TYPES: readonly string[] = [...GPT2_MODEL_TYPES, ...FAMILIES.flatMap((f) => f.modelTypes)];

export interface OpenModel {
  model: FamilyModel;
  fileDtype: FileDtype;
  files: Checkpoint['files'];
  /** Every tensor the graph reads, as the headers give it (for the memory plan; nothing read yet). */
  tensors: PlannedTensor[];
  /** Closes the weight files (after the graph is built). */
  close(): Promise<void>;
}

type Parsed = { gpt2: Gpt2Config } | { family: Family<unknown>; config: unknown };

function pick(json: unknown, path: string, opts: LoadOptions): Parsed {
  const type = typeof json === 'object' && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>).model_type : undefined;
  if (type === undefined || (GPT2_MODEL_TYPES as readonly unknown[]).includes(type)) return { gpt2: parseConfig(json, path) }; // GPT-2's own checks and errors
  const family = FAMILIES.find((f) => f.modelTypes.includes(type as string));
  if (!family) {
    throw new HeadlightError(
      'checkpoint-unsupported-architecture',
      `${basename(path)}: model_type is ${describe(type)}; supported: ${SUPPORTED_MODEL_TYPES.join(', ')}.`,
      'Pick a model of one of these families (GPT-2, Llama/Mistral/Qwen2/Qwen3, GPT-NeoX/Pythia, Gemma 2/3, GPT-Neo).',
    );
  }
  return { family, config: family.parseConfig(json as Record<string, unknown>, path, opts) };
}

export async function openModel(dir: string, opts: LoadOptions & { signal?: AbortSignal } = {}): Promise<OpenModel> {
  const folder = await openFolder(dir, opts.signal, (json, path) => pick(json, path, opts), (p) => 'gpt2' in p);
  try {
    const parsed = folder.config;
    if ('gpt2' in parsed) {
      const { weights, fileDtype } = await lazyGpt2Weights(folder.store, parsed.gpt2);
      // Read: everything but the mask buffers and a stored copy of the tied head.
      const read = folder.store.names().filter((n) => !/^h\.\d+\.attn\.(bias|masked_bias)$|^lm_head\.weight$/.test(n));
      return { model: gpt2Model(parsed.gpt2, weights), fileDtype, files: folder.files, tensors: planned(folder.store, read), close: folder.close };
    }
    const { family } = parsed;
    const store = folder.store;
    const config = family.resolve
      ? family.resolve(parsed.config, { names: () => store.names(), dtypeOf: (n) => store.info(n).info.dtype, fileOf: (n) => basename(store.info(n).file.path) })
      : parsed.config;
    const nLayer = (config as { nLayer: number }).nLayer;
    const layerKey = family.layerCountKey ?? 'num_hidden_layers';
    // Every layer has tensors: a count beyond the files' would list millions of expected tensors before the first
    // missing one is found (num_hidden_layers 1e6 took 11 s and 1.9 GB).
    const held = store.names().length;
    if (nLayer > held) {
      throw new HeadlightError(
        'checkpoint-bad-config',
        `config.json: "${layerKey}" is ${nLayer}, but ${store.label} holds only ${held} tensors.`,
        'config.json and the weights do not belong together: download the checkpoint again.',
      );
    }
    const expected = family.tensors(config);
    const weights = checkedWeights(folder.store, expected, family.ignored(config), { key: layerKey, value: nLayer });
    const fileDtype = folder.store.info(expected[0].name).info.dtype as FileDtype;
    return { model: family.model(config, weights), fileDtype, files: folder.files, tensors: planned(folder.store, expected.map((t) => t.name)), close: folder.close };
  } catch (err) {
    await folder.close();
    throw err;
  }
}

function planned(store: TensorStore, names: string[]): PlannedTensor[] {
  return names.map((name) => {
    const { info } = store.info(name);
    return { name, shape: info.shape, dtype: info.dtype };
  });
}
