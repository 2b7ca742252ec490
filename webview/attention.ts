/** One head's causal attention map in the webview, decoded from the engine's triangle (row i has i+1 weights). */
import type { HeadTriangle } from '../extension/common/engineProtocol';
import { halfTable } from '../extension/common/half';

export class HeadMap {
  private constructor(
    readonly layer: number,
    readonly head: number,
    readonly T: number,
    /** Rows back to back: [T*(T+1)/2]. */
    readonly data: Float32Array,
  ) {}

  static fromTriangle(layer: number, head: number, tri: HeadTriangle): HeadMap {
    const n = (tri.T * (tri.T + 1)) / 2;
    if (tri.data.length !== n) throw new Error(`Head ${layer}.${head}: triangle of T=${tri.T} needs ${n} weights, got ${tri.data.length}.`);
    let data: Float32Array;
    if (tri.data instanceof Float32Array) data = tri.data;
    else {
      const table = halfTable();
      data = new Float32Array(n);
      const src = tri.data;
      for (let k = 0; k < n; k++) data[k] = table[src[k]];
    }
    return new HeadMap(layer, head, tri.T, data);
  }

  static rowStart(i: number): number {
    return (i * (i + 1)) / 2;
  }

  at(i: number, j: number): number {
    return j <= i ? this.data[HeadMap.rowStart(i) + j] : 0;
  }

  /**
   * What query i attends to: [T], zeros after i. With `dimSink`, the first token's weight is dropped and the rest
   * renormalised to sum to 1 (the "attention sink" hides the structure of many heads).
   */
  row(i: number, dimSink: boolean, out = new Float32Array(this.T)): Float32Array {
    out.fill(0);
    const base = HeadMap.rowStart(i);
    const scale = dimSink ? renorm(this.data[base]) : 1;
    for (let j = dimSink ? 1 : 0; j <= i; j++) out[j] = this.data[base + j] * scale;
    return out;
  }

  /** Who attends to key j: [T], weight of each query i >= j on j (zeros before j); sink handling as in `row`. */
  column(j: number, dimSink: boolean, out = new Float32Array(this.T)): Float32Array {
    out.fill(0);
    if (dimSink && j === 0) return out;
    for (let i = j; i < this.T; i++) {
      const base = HeadMap.rowStart(i);
      out[i] = this.data[base + j] * (dimSink ? renorm(this.data[base]) : 1);
    }
    return out;
  }
}

function renorm(sink: number): number {
  const rest = 1 - sink;
  return rest > 1e-6 ? 1 / rest : 0;
}
