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
  const row = new Float32Array(T);
  const cell = new Float32Array(S * S);
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      cell.fill(0);
      for (let i = 0; i < T; i++) {
        store.row(l, h, i, row);
        const y = Math.floor((i * S) / T);
        for (let j = 0; j <= i; j++) {
          const x = Math.floor((j * S) / T);
          const k = y * S + x;
          if (row[j] > cell[k]) cell[k] = row[j];
        }
      }
      const base = (l * H + h) * S * S;
      for (let k = 0; k < S * S; k++) out[base + k] = Math.round(Math.sqrt(cell[k]) * 255);
    }
  }
  return out;
}
