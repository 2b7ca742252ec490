/**
 * A safetensors reader with positioned reads: the header is parsed and validated once, tensors are read on demand
 * with `read` at their offsets, so files past 2 GiB work and no mapping of the whole file is ever made.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: { string: string } }`,
 * then the data area; offsets are relative to the data area's start (byte 8 + N).
 */
import { halfTable } from '../../common/half.js';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { HeadlightError } from '../../common/errors.js';
import { DTYPE_BYTES, headerLength, parseHeader, REDOWNLOAD, type TensorInfo } from '../../common/safetensorsHeader.js';

export { isSafetensorsDtype, type SafetensorsDtype, type TensorInfo } from '../../common/safetensorsHeader.js';

/** The dtypes `readF32` converts. */
export type FloatDtype = 'F32' | 'F16' | 'BF16';

export interface SafetensorsFile {
  path: string;
  /** Total file size in bytes. */
  size: number;
  /** Absolute byte offset of the data area (8 + header length). */
  dataStart: number;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** The tensor as fp32, converted from F32, F16 or BF16. */
  readF32(name: string): Promise<Float32Array>;
  /**
   * Elements [from, from + into.length) of the tensor as fp32, read straight into `into` (F16 and BF16 through a
   * buffer of at most READ_CHUNK bytes): a tensor can be streamed without ever being whole in memory.
   */
  readF32Range(name: string, from: number, into: Float32Array): Promise<void>;
  /** The tensor's bytes as stored (little-endian). */
  readRaw(name: string): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** Read at most this many bytes per `read` call (a single read is capped near 2 GiB). */
const READ_CHUNK = 64 * 1024 * 1024;

export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  const file = basename(path);
  let handle: FileHandle;
  try {
    handle = await fsp.open(path, 'r');
  } catch (err) {
    throw new HeadlightError(
      'safetensors-unreadable',
      `${file}: cannot open ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)}).`,
      'Check that the file exists and is readable.',
    );
  }
  try {
    const size = (await handle.stat()).size;
    const length = headerLength(await readExactly(handle, 0, Math.min(8, size), file), file, size);
    const dataStart = 8 + length;
    const { tensors, metadata } = parseHeader(await readExactly(handle, 8, length, file), file, size - dataStart);
    return makeFile(handle, path, size, dataStart, tensors, metadata);
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** `open(path)`: the same as `openSafetensors`. */
export { openSafetensors as open };

function makeFile(
  handle: FileHandle,
  path: string,
  size: number,
  dataStart: number,
  tensors: Map<string, TensorInfo>,
  metadata: Record<string, string>,
): SafetensorsFile {
  const file = basename(path);
  const info = (name: string): TensorInfo => {
    const t = tensors.get(name);
    if (!t) throw new HeadlightError('safetensors-missing-tensor', `${file}: no tensor named ${name}.`);
    return t;
  };
  const readInto = async (t: TensorInfo, target: Uint8Array) => {
    await readFully(handle, dataStart + t.offsets[0], target, file);
  };
  const notFloat = (name: string, dtype: string) =>
    new HeadlightError(
      'safetensors-unsupported-dtype',
      `${file}: tensor ${name} is ${dtype}; only F32, F16 and BF16 tensors can be read as floats.`,
      'Convert the checkpoint to F32, F16 or BF16.',
    );
  return {
    path,
    size,
    dataStart,
    tensors,
    metadata,
    async readRaw(name) {
      const t = info(name);
      const bytes = new Uint8Array(t.offsets[1] - t.offsets[0]);
      await readInto(t, bytes);
      return bytes;
    },
    async readF32(name) {
      const t = info(name);
      const n = (t.offsets[1] - t.offsets[0]) / DTYPE_BYTES[t.dtype];
      switch (t.dtype) {
        case 'F32': {
          const out = new Float32Array(n);
          await readInto(t, new Uint8Array(out.buffer));
          return out;
        }
        case 'F16': {
          const half = new Uint16Array(n);
          await readInto(t, new Uint8Array(half.buffer));
          return f16ToF32(half);
        }
        case 'BF16': {
          const half = new Uint16Array(n);
          await readInto(t, new Uint8Array(half.buffer));
          return bf16ToF32(half);
        }
        default:
          throw notFloat(name, t.dtype);
      }
    },
    async readF32Range(name, from, into) {
      const t = info(name);
      const size = DTYPE_BYTES[t.dtype];
      const n = (t.offsets[1] - t.offsets[0]) / size;
      if (!(Number.isSafeInteger(from) && from >= 0 && from + into.length <= n)) {
        throw new RangeError(`${file}: elements ${from}..${from + into.length} of tensor ${name}, which has ${n}`);
      }
      const at = dataStart + t.offsets[0] + from * size;
      if (t.dtype === 'F32') return readFully(handle, at, new Uint8Array(into.buffer, into.byteOffset, into.byteLength), file);
      if (t.dtype !== 'F16' && t.dtype !== 'BF16') throw notFloat(name, t.dtype);
      const step = READ_CHUNK / 2; // halves per read
      const half = new Uint16Array(Math.min(step, into.length));
      for (let done = 0; done < into.length; done += step) {
        const part = half.subarray(0, Math.min(step, into.length - done));
        await readFully(handle, at + done * 2, new Uint8Array(part.buffer, 0, part.byteLength), file);
        (t.dtype === 'BF16' ? bf16Into : f16Into)(part, into.subarray(done, done + part.length));
      }
    },
    close: () => handle.close(),
  };
}

async function readExactly(handle: FileHandle, position: number, length: number, file: string) {
  const bytes = new Uint8Array(length);
  await readFully(handle, position, bytes, file);
  return bytes;
}

/** Fill `target` from `position`, in chunks; a short read means the file shrank under us. */
async function readFully(handle: FileHandle, position: number, target: Uint8Array, file: string) {
  let done = 0;
  while (done < target.length) {
    const want = Math.min(READ_CHUNK, target.length - done);
    const { bytesRead } = await handle.read(target, done, want, position + done);
    if (bytesRead === 0) {
      throw new HeadlightError(
        'safetensors-truncated',
        `${file}: the file ended at byte ${position + done} while reading ${target.length} bytes from byte ${position} — it was truncated or changed while being read.`,
        REDOWNLOAD,
      );
    }
    done += bytesRead;
  }
}

// ---- Float conversions. The platform is little-endian (x64, arm64), as is the file format. ----

export function f16ToF32(half: Uint16Array): Float32Array {
  return f16Into(half, new Float32Array(half.length));
}

/** bfloat16 is the top half of an fp32: shift it back into place. */
export function bf16ToF32(half: Uint16Array): Float32Array {
  return bf16Into(half, new Float32Array(half.length));
}

/** half[i] as fp32 into out[i] (out as long as half); returns out. */
function f16Into(half: Uint16Array, out: Float32Array): Float32Array {
  const table = halfTable();
  for (let i = 0; i < half.length; i++) out[i] = table[half[i]];
  return out;
}

function bf16Into(half: Uint16Array, out: Float32Array): Float32Array {
  const bits = new Uint32Array(out.buffer, out.byteOffset, half.length);
  for (let i = 0; i < half.length; i++) bits[i] = half[i] << 16;
  return out;
}
