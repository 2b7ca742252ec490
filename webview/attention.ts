/** One head's causal attention map in the webview, decoded from the engine's triangle (row i has i+1 weights). */
import type { HeadTriangle } from '../extension/common/engineProtocol';
import { halfTable } from '../extension/common/half';

export class HeadMap {
  /** fp32 rows, decoded from `bits` on first use (the matrix colours straight from the bits and never needs it). */
  private decoded: Float32Array | undefined;
  private readonly half = halfTable();

  private constructor(
    readonly layer: number,
    readonly head: number,
    readonly T: number,
    data: Float32Array | undefined,
    /** The rows as the engine sent them, when fp16: [T*(T+1)/2] half-float bits. */
    readonly bits?: Uint16Array,
  ) {
    this.decoded = data;
  }

  static fromTriangle(layer: number, head: number, tri: HeadTriangle): HeadMap {
    const n = (tri.T * (tri.T + 1)) / 2;
    if (tri.data.length !== n) throw new Error(`Head ${layer}.${head}: triangle of T=${tri.T} needs ${n} weights, got ${tri.data.length}.`);
    return tri.data instanceof Float32Array ? new HeadMap(layer, head, tri.T, tri.data) : new HeadMap(layer, head, tri.T, undefined, tri.data);
  }

  /** Rows back to back as fp32: [T*(T+1)/2]. */
  get data(): Float32Array {
    if (!this.decoded) {
      const src = this.bits!;
      const out = new Float32Array(src.length);
      for (let k = 0; k < src.length; k++) out[k] = this.half[src[k]];
      this.decoded = out;
    }
    return this.decoded;
  }

  /** Weight number k of the triangle. */
  private w(k: number): number {
    return this.decoded ? this.decoded[k] : this.half[this.bits![k]];
  }

  static rowStart(i: number): number {
    return (i * (i + 1)) / 2;
  }

  at(i: number, j: number): number {
    return j <= i ? this.w(HeadMap.rowStart(i) + j) : 0;
  }

  /**
   * What query i attends to: [T], zeros after i. With `dimSink`, the first token's weight is dropped and the rest
   * renormalised to sum to 1 (the "attention sink" hides the structure of many heads).
   */
  row(i: number, dimSink: boolean, out = new Float32Array(this.T)): Float32Array {
    out.fill(0);
    const base = HeadMap.rowStart(i);
    const scale = dimSink ? renorm(this.w(base)) : 1;
    for (let j = dimSink ? 1 : 0; j <= i; j++) out[j] = this.w(base + j) * scale;
    return out;
  }

  /** Who attends to key j: [T], weight of each query i >= j on j (zeros before j); sink handling as in `row`. */
  column(j: number, dimSink: boolean, out = new Float32Array(this.T)): Float32Array {
    out.fill(0);
    if (dimSink && j === 0) return out;
    for (let i = j; i < this.T; i++) {
      const base = HeadMap.rowStart(i);
      out[i] = this.w(base + j) * (dimSink ? renorm(this.w(base)) : 1);
    }
    return out;
  }
}

function renorm(sink: number): number {
  const rest = 1 - sink;
  return rest > 1e-6 ? 1 / rest : 0;
}
