/**
 * The tensors of a checkpoint's safetensors files by name (with or without GPT-2's `transformer.` prefix, across
 * shards, trusting only the shard the index names), read as fp32 after their dtype and shape are checked against
 * what config.json implies — whole, or streamed into the caller's buffer.
 */
import { basename } from 'node:path';
import { HeadlightError } from '../../common/errors.js';
import type { LazyTensor } from './checkpointTypes.js';
import type { SafetensorsFile, TensorInfo } from './safetensors.js';

const FLOAT_DTYPES: readonly string[] = ['F32', 'F16', 'BF16'];

/** Finds tensors by name with or without the `transformer.` prefix, across shards, and reads them checked. */
export class TensorStore {
  private readonly byName = new Map<string, { file: SafetensorsFile; info: TensorInfo }>();

  constructor(
    readonly label: string,
    files: SafetensorsFile[],
    shards: Map<string, string>,
    private readonly signal?: AbortSignal,
    /** GPT-2 files may prefix every key with `transformer.`; other families are read by their exact names. */
    private readonly prefixed = true,
  ) {
    for (const file of files) {
      for (const info of file.tensors.values()) {
        // In a sharded checkpoint, only trust the shard the index names.
        const shard = shards.get(info.name);
        if (shards.has('*') || shard === file.path) this.byName.set(prefixed ? stripPrefix(info.name) : info.name, { file, info });
      }
    }
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): { file: SafetensorsFile; info: TensorInfo } {
    const found = this.byName.get(name);
    if (!found) {
      throw new HeadlightError(
        'checkpoint-missing-tensor',
        `${this.label}: no tensor ${name}${this.prefixed ? ` (nor transformer.${name})` : ''}.`,
        'The file is incomplete or does not belong to this config.json: download the checkpoint again or pick another model.',
      );
    }
    return found;
  }

  /** Read `name` as fp32 after checking its dtype and that its shape is `shape`. */
  async read(name: string, shape: number[]): Promise<Float32Array> {
    this.signal?.throwIfAborted();
    const { file, info } = this.check(name, shape);
    return file.readF32(info.name);
  }

  /**
   * Checks `name` like `read`, and returns a source that reads it as fp32 bytes only when asked, straight into the
   * caller's buffer (no whole-tensor copy in between).
   */
  lazy(name: string, shape: number[], fields?: string): LazyTensor {
    const { file, info } = this.check(name, shape, fields);
    const byteLength = shape.reduce((a, b) => a * b, 1) * 4;
    const read = async (into: Uint8Array, from: number): Promise<void> => {
      this.signal?.throwIfAborted();
      if (from % 4 !== 0 || into.byteLength % 4 !== 0) throw new RangeError(`${name}: fp32 bytes are read in whole values, not ${into.byteLength} from byte ${from}`);
      // A Float32Array over `into` when it is aligned (always, for the buffers the graph writer makes); else a copy.
      const aligned = into.byteOffset % 4 === 0;
      const values = aligned ? new Float32Array(into.buffer, into.byteOffset, into.byteLength / 4) : new Float32Array(into.byteLength / 4);
      await file.readF32Range(info.name, from / 4, values);
      if (!aligned) into.set(new Uint8Array(values.buffer));
    };
    return { byteLength, read, write: (into) => read(into.subarray(0, byteLength), 0) };
  }

  /** The tensor's file and header entry, after checking its dtype and shape (`fields`: the config fields that set it). */
  check(name: string, shape: number[], fields?: string): { file: SafetensorsFile; info: TensorInfo } {
    const found = this.info(name);
    const { file, info } = found;
    const where = `${basename(file.path)}: tensor ${info.name}`;
    if (!FLOAT_DTYPES.includes(info.dtype)) {
      throw new HeadlightError(
        'checkpoint-bad-tensor',
        `${where} is ${info.dtype}; weights must be F32, F16 or BF16.`,
        'Pick a checkpoint with floating-point weights (quantized files are not supported).',
      );
    }
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new HeadlightError(
        'checkpoint-bad-tensor',
        `${where} has shape [${info.shape.join(', ')}] but config.json implies [${shape.join(', ')}]${fields ? ` (${fields})` : ''}.`,
        'config.json and the weights do not belong together: download the checkpoint again.',
      );
    }
    return found;
  }
}

function stripPrefix(name: string): string {
  return name.startsWith('transformer.') ? name.slice('transformer.'.length) : name;
}

