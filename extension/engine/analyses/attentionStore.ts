/**
 * Attention probabilities of one run, kept as the causal lower triangle of every head: row i holds i+1 weights.
 * Per layer one typed array of H heads × tri(capacity) values, fp16 (Uint16Array bits) or fp32. GPT-2 small at
 * T=1024 takes 144 MiB in fp16 instead of the 576 MiB a full fp32 [L, H, T, T] would.
 *
 * Rows are written in place, so an incremental run overwrites only the rows from the edit onward.
 */
import { halfTable } from '../../common/half';

export type Precision = 'fp16' | 'fp32';

export const tri = (n: number): number => (n * (n + 1)) / 2;

/** Room for `need` rows with headroom (typing appends tokens), in steps of 64, at most `max`. */
export function growCapacity(current: number, need: number, max: number): number {
  return Math.min(max, Math.max(need, Math.ceil((Math.max(need, current) * 1.25) / 64) * 64));
}

export class AttentionStore {
  private layers: (Uint16Array | Float32Array)[] = [];
  private capacity = 0;
  /** Number of valid rows (tokens). */
  length = 0;

  constructor(
    readonly nLayer: number,
    readonly nHead: number,
    readonly precision: Precision,
    private readonly maxLength: number,
  ) {}

  get bytes(): number {
    return this.layers.reduce((s, a) => s + a.byteLength, 0);
  }

  /** Keeps the first `keep` rows and makes room for `length` rows in all. */
  resize(keep: number, length: number): void {
    if (length > this.capacity) {
      const capacity = growCapacity(this.capacity, length, this.maxLength);
      const size = this.nHead * tri(capacity);
      this.layers = this.layers.length
        ? this.layers.map((old) => {
            const next = this.precision === 'fp16' ? new Uint16Array(size) : new Float32Array(size);
            for (let h = 0; h < this.nHead; h++) {
              next.set(old.subarray(h * tri(this.capacity), h * tri(this.capacity) + tri(keep)), h * tri(capacity));
            }
            return next;
          })
        : Array.from({ length: this.nLayer }, () => (this.precision === 'fp16' ? new Uint16Array(size) : new Float32Array(size)));
      this.capacity = capacity;
    }
    this.length = length;
  }

  /**
   * Writes row i of head h in layer l: its weights on keys 0..i, given as `head` (keys 0..head.length−1) followed by
   * `tail` (the remaining keys), both views onto an onnxruntime output in the store's precision.
   */
  writeRow(l: number, h: number, i: number, head: Uint16Array | Float32Array, tail?: Uint16Array | Float32Array): void {
    const at = h * tri(this.capacity) + tri(i);
    const layer = this.layers[l];
    if (head.length + (tail?.length ?? 0) !== i + 1) throw new RangeError(`attention row ${i}: got ${head.length + (tail?.length ?? 0)} weights, expected ${i + 1}`);
    layer.set(head, at);
    if (tail) layer.set(tail, at + head.length);
  }

  /** Row i of head h in layer l as fp32: the i+1 weights of query i over keys 0..i. */
  row(l: number, h: number, i: number, out = new Float32Array(i + 1)): Float32Array {
    this.check(l, h, i);
    const start = h * tri(this.capacity) + tri(i);
    const layer = this.layers[l];
    if (layer instanceof Float32Array) {
      out.set(layer.subarray(start, start + i + 1));
    } else {
      const t = halfTable();
      for (let j = 0; j <= i; j++) out[j] = t[layer[start + j]];
    }
    return out;
  }

  /**
   * Row i of head h in layer l as stored, a view (no copy): fp16 bits or fp32 values. Weights are ≥ 0, and the bits
   * of non-negative halves order like their values, so maxima and comparisons can run on the bits; `decode` turns a
   * stored value into its weight.
   */
  rawRow(l: number, h: number, i: number): Uint16Array | Float32Array {
    this.check(l, h, i);
    const start = h * tri(this.capacity) + tri(i);
    return this.layers[l].subarray(start, start + i + 1);
  }

  /** A stored value (fp16 bits or fp32) as a weight. */
  decode(v: number): number {
    return this.precision === 'fp16' ? halfTable()[v] : v;
  }

  /** Weight of query i on key j (0 above the diagonal). */
  at(l: number, h: number, i: number, j: number): number {
    if (j > i) return 0;
    const v = this.layers[l][h * tri(this.capacity) + tri(i) + j];
    return this.precision === 'fp16' ? halfTable()[v] : v;
  }

  /** One head's full [T, T] map as fp32, zeros above the diagonal. */
  map(l: number, h: number, out = new Float32Array(this.length * this.length)): Float32Array {
    const T = this.length;
    for (let i = 0; i < T; i++) this.row(l, h, i, out.subarray(i * T, i * T + i + 1));
    return out;
  }

  /** One head's lower triangle as stored (fp16 bits or fp32), rows 0..T-1 back to back: for sending as binary. */
  triangle(l: number, h: number): Uint16Array | Float32Array {
    this.check(l, h, 0);
    const start = h * tri(this.capacity);
    return this.layers[l].slice(start, start + tri(this.length));
  }

  private check(l: number, h: number, i: number): void {
    if (!(l >= 0 && l < this.nLayer && h >= 0 && h < this.nHead && i >= 0 && i < this.length)) {
      throw new RangeError(`attention: layer ${l}, head ${h}, position ${i} is outside ${this.nLayer}×${this.nHead}×${this.length}`);
    }
  }
}
