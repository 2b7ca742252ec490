/** Small images of every head's attention pattern, for the model view's grid. */
import type { AttentionStore } from './attentionStore';

/**
 * [L, H, size, size] bytes: each pixel is the max weight of the query×key cells it covers (so a sharp diagonal
 * stays visible when T > size), square-root scaled so weak but structured patterns still show.
 */
export function thumbnails(store: AttentionStore, size: number): Uint8Array {
  const { nLayer: L, nHead: H, length: T } = store;
  const S = Math.max(1, Math.min(size, T || 1));
  const out = new Uint8Array(L * H * S * S);
  if (T === 0) return out;
  // Key j falls in column x = ⌊j·S/T⌋: column x covers keys colStart[x]..colStart[x+1]−1.
  const colStart = new Int32Array(S + 1);
  for (let x = 0; x <= S; x++) colStart[x] = Math.ceil((x * T) / S);
  const cell = new Float32Array(S * S);
  const bits = new Uint16Array(S * S);
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      const at = (l * H + h) * S * S;
      if (store.precision === 'fp16') {
        // The bits of non-negative halves order like their values: maxima on the bits, decoded once per pixel.
        bits.fill(0);
        for (let i = 0; i < T; i++) maxInto(bits, Math.floor((i * S) / T) * S, store.rawRow(l, h, i) as Uint16Array, colStart, i);
        for (let k = 0; k < S * S; k++) out[at + k] = Math.round(Math.sqrt(store.decode(bits[k])) * 255);
      } else {
        cell.fill(0);
        for (let i = 0; i < T; i++) maxInto(cell, Math.floor((i * S) / T) * S, store.rawRow(l, h, i) as Float32Array, colStart, i);
        for (let k = 0; k < S * S; k++) out[at + k] = Math.round(Math.sqrt(cell[k]) * 255);
      }
    }
  }
  return out;
}

/** cells[base + x] = max(cells[base + x], row[colStart[x]..colStart[x+1]−1]) for the columns row i reaches. */
function maxInto<A extends Uint16Array | Float32Array>(cells: A, base: number, row: A, colStart: Int32Array, i: number): void {
  for (let x = 0; colStart[x] <= i && x < colStart.length - 1; x++) {
    const end = Math.min(colStart[x + 1], i + 1);
    let m = cells[base + x];
    for (let j = colStart[x]; j < end; j++) {
      const v = row[j];
      if (v > m) m = v;
    }
    cells[base + x] = m;
  }
}
