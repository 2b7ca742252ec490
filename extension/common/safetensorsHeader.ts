/**
 * The safetensors header, from its bytes (no file access: the engine's reader and the model picker's memory
 * estimate both read the bytes and call these). Format: 8-byte little-endian header length N, N bytes of JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: { string: string } }`, then the data area;
 * offsets are relative to the data area's start (byte 8 + N). Anything else is a HeadlightError naming the file.
 */
import { HeadlightError } from './errors.js';

/** The web-standard decoder, which Node and browsers both have (common/ sees only the ES library's types). */
declare const TextDecoder: new (label: 'utf-8', options: { fatal: boolean }) => { decode(bytes: Uint8Array): string };

/** Every dtype the format defines, with its size in bytes. */
export const DTYPE_BYTES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
} as const;

export type SafetensorsDtype = keyof typeof DTYPE_BYTES;

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** [begin, end) in bytes, relative to the start of the data area. */
  offsets: [number, number];
}

/** The spec's limit on the JSON header; a larger length means a corrupt or non-safetensors file. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;
/** A header value for a message, shortened; one nested too deeply for JSON.stringify (which recurses) by its kind. */
function shown(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = `${Array.isArray(v) ? 'an array' : 'an object'} nested too deeply to show`;
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

export const REDOWNLOAD = 'Download the file again, or pick another checkpoint.';

export function isSafetensorsDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.hasOwn(DTYPE_BYTES, value);
}

/** The header's length N from the file's first 8 bytes (`first8`; fewer when the file is shorter), checked against the file's `size`. */
export function headerLength(first8: Uint8Array, file: string, size: number): number {
  if (size < 8 || first8.length < 8) {
    throw new HeadlightError(
      'safetensors-truncated',
      `${file}: the file has ${size} bytes, fewer than the 8-byte header length — it is not a safetensors file or it is truncated.`,
      REDOWNLOAD,
    );
  }
  const length = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(size - 8)) {
    throw new HeadlightError(
      'safetensors-truncated',
      `${file}: the header says it is ${length} bytes long but the file has only ${size - 8} bytes after the length field — the file is truncated or not a safetensors file.`,
      REDOWNLOAD,
    );
  }
  const n = Number(length);
  if (n > MAX_HEADER_BYTES) {
    throw new HeadlightError(
      'safetensors-corrupt',
      `${file}: the header claims ${n} bytes, more than the format's 100 MB limit — the file is corrupt or not a safetensors file.`,
      REDOWNLOAD,
    );
  }
  return n;
}

/** The tensors and metadata of the header's bytes, validated (dtypes, shapes, offsets within `dataSize`, no overlap). */
export function parseHeader(headerBytes: Uint8Array, file: string, dataSize: number): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (err) {
    throw new HeadlightError(
      'safetensors-corrupt',
      `${file}: the ${headerBytes.length}-byte header is not valid UTF-8 JSON (${(err as Error).message}) — the file is corrupt or not a safetensors file.`,
      REDOWNLOAD,
    );
  }
  return validateHeader(header, file, dataSize);
}

function validateHeader(
  header: unknown,
  file: string,
  dataSize: number,
): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  const corrupt = (what: string) =>
    new HeadlightError('safetensors-corrupt', `${file}: ${what} — the file is corrupt.`, REDOWNLOAD);
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw corrupt('the header is not a JSON object');
  }
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = validateMetadata(entry, corrupt);
      continue;
    }
    tensors.set(name, validateEntry(name, entry, file, dataSize, corrupt));
  }
  checkNoOverlap([...tensors.values()], corrupt);
  return { tensors, metadata };
}

function validateMetadata(entry: unknown, corrupt: (what: string) => Error): Record<string, string> {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw corrupt('__metadata__ is not an object');
  }
  for (const [key, value] of Object.entries(entry)) {
    if (typeof value !== 'string') throw corrupt(`__metadata__.${key} is not a string`);
  }
  return entry as Record<string, string>;
}

function validateEntry(
  name: string,
  entry: unknown,
  file: string,
  dataSize: number,
  corrupt: (what: string) => Error,
): TensorInfo {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw corrupt(`tensor ${name} has no {dtype, shape, data_offsets} entry`);
  }
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (!isSafetensorsDtype(dtype)) {
    throw new HeadlightError(
      'safetensors-unsupported-dtype',
      `${file}: tensor ${name} has dtype ${shown(dtype)}, which is not a safetensors dtype (known: ${Object.keys(DTYPE_BYTES).join(', ')}).`,
      'The file is corrupt or was written by a newer safetensors version; convert it to F32, F16 or BF16.',
    );
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw corrupt(`tensor ${name} has shape ${shown(shape)}, not a list of non-negative integers`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    throw corrupt(`tensor ${name} has data_offsets ${shown(offsets)}, not [begin, end] with 0 <= begin <= end`);
  }
  const [begin, end] = offsets as [number, number];
  const expectedBytes = shape.reduce((a: number, d: number) => a * d, 1) * DTYPE_BYTES[dtype];
  if (end - begin !== expectedBytes) {
    throw corrupt(
      `tensor ${name} (${dtype} [${shape.join(', ')}]) needs ${expectedBytes} bytes but its data_offsets [${begin}, ${end}] span ${end - begin}`,
    );
  }
  if (end > dataSize) {
    throw new HeadlightError(
      'safetensors-truncated',
      `${file}: tensor ${name} ends at byte ${end} but the file's data area has ${dataSize} bytes — the file is truncated.`,
      REDOWNLOAD,
    );
  }
  return { name, dtype, shape: shape as number[], offsets: [begin, end] };
}

function checkNoOverlap(tensors: TensorInfo[], corrupt: (what: string) => Error): void {
  const sorted = tensors.filter((t) => t.offsets[1] > t.offsets[0]).sort((a, b) => a.offsets[0] - b.offsets[0]);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const cur = sorted[i];
    if (cur.offsets[0] < prev.offsets[1]) {
      throw corrupt(
        `tensors ${prev.name} [${prev.offsets.join(', ')}) and ${cur.name} [${cur.offsets.join(', ')}) overlap`,
      );
    }
  }
}

