/**
 * The pixels of a head's T×T matrix at every zoom: weights are turned into bytes once per head (0 = masked future,
 * 1..255 = colour-scale index) and max-pooled into a mip chain, so when T exceeds the pixels a sharp diagonal or a
 * single strong key still shows (averaging would wash them out). Level k is ceil(T / 2^k) square; levels past 0 and
 * their canvases are built only when a frame asks for them, and reused for the next head of the same T.
 */
import { weightToT } from '../extension/common/colorScale';
import { halfTable } from '../extension/common/half';
import type { HeadMap } from './attention';
import { pixelCanvas } from './canvas';
import type { Palette } from './theme';

export class MatrixPixels {
  /** Mip chain of colour-index bytes: level k is ceil(T / 2^k) square. */
  private bytes: Uint8Array[] = [];
  private sizes: number[] = [];
  private levels: (HTMLCanvasElement | undefined)[] = [];
  /** Buffers of the previous head's coarser levels, reused when T is unchanged. */
  private spare: Uint8Array[] = [];
  /** fp16 bits -> colour index, [linear, log]. */
  private readonly tables: (Uint8Array | undefined)[] = [];
  /** Level canvases, kept for the next head of the same T. */
  private readonly canvasPool: (HTMLCanvasElement | undefined)[] = [];
  /** Colour index -> RGBA of the current palette. */
  private packed: Uint32Array | undefined;

  constructor(private palette: Palette) {}

  /** A new palette: the level canvases are recoloured on next use (the bytes stay). */
  setPalette(p: Palette): void {
    this.palette = p;
    this.packed = undefined;
    this.levels = [];
  }

  /**
   * Takes a head (undefined: none) on the linear or log scale. Level 0 of the mip chain: [T, T] colour-index bytes
   * (0 masked, 1..255 scale index + 1), built straight from the engine's fp16 triangle through a 65,536-entry table
   * when it has one. Coarser levels are pooled on demand.
   */
  set(map: HeadMap | undefined, log: boolean): void {
    const T = map?.T ?? 0;
    // same T: reuse the level buffers (the upper triangle stays 0 = masked, every lower cell is rewritten)
    const reuse = map !== undefined && this.sizes[0] === T;
    const keep = reuse ? this.bytes : [];
    this.bytes = [];
    this.sizes = [];
    this.levels = [];
    if (map) {
      const b0 = keep[0] ?? new Uint8Array(T * T); // [T, T]
      if (map.bits) {
        const table = this.indexTable(log);
        const bits = map.bits;
        for (let i = 0, src = 0; i < T; i++) {
          const rowOff = i * T;
          for (let j = 0; j <= i; j++, src++) b0[rowOff + j] = table[bits[src]];
        }
      } else {
        for (let i = 0, src = 0; i < T; i++) {
          const rowOff = i * T;
          for (let j = 0; j <= i; j++, src++) b0[rowOff + j] = 1 + Math.round(weightToT(map.data[src], log) * 254);
        }
      }
      this.bytes.push(b0);
      this.sizes.push(T);
      this.spare = keep.slice(1);
    }
  }

  /** fp16 bits -> colour-index byte (1 + round(t · 254)), one table per scale. */
  private indexTable(log: boolean): Uint8Array {
    const have = this.tables[log ? 1 : 0];
    if (have) return have;
    const half = halfTable();
    const t = new Uint8Array(65536);
    for (let b = 0; b < 65536; b++) t[b] = 1 + Math.round(weightToT(half[b], log) * 254);
    this.tables[log ? 1 : 0] = t;
    return t;
  }

  /** Pools levels until level k exists (only the levels a frame asks for are ever built). */
  private ensureLevel(k: number): void {
    while (this.bytes.length <= k && this.sizes[this.sizes.length - 1] > 1) this.pushLevel();
  }

  /**
   * Max-pools the last level 2×2 into a new one. Causal maps are zero above the diagonal, so output cell (y, x)
   * can be non-zero only when x <= y: the rest stays 0 (masked) without being visited.
   */
  private pushLevel(): void {
    const prev = this.bytes[this.bytes.length - 1];
    const n = this.sizes[this.sizes.length - 1];
    const m = Math.ceil(n / 2);
    const spare = this.spare[this.bytes.length - 1];
    const out = spare && spare.length === m * m ? spare : new Uint8Array(m * m); // [m, m]
    for (let y = 0; y < m; y++) {
      const r0 = 2 * y * n;
      const r1 = 2 * y + 1 < n ? r0 + n : r0;
      const o = y * m;
      for (let x = 0; x <= y; x++) {
        const c0 = 2 * x;
        const c1 = c0 + 1 < n ? c0 + 1 : c0;
        let v = prev[r0 + c0];
        if (prev[r0 + c1] > v) v = prev[r0 + c1];
        if (prev[r1 + c0] > v) v = prev[r1 + c0];
        if (prev[r1 + c1] > v) v = prev[r1 + c1];
        out[o + x] = v;
      }
    }
    this.bytes.push(out);
    this.sizes.push(m);
  }

  /** Colour-index byte -> packed RGBA (little-endian), for the current palette. */
  private colours(): Uint32Array {
    if (this.packed) return this.packed;
    const lut = this.palette.lut;
    const [br, bg, bb] = this.palette.backgroundRgb;
    const out = new Uint32Array(256);
    const pack = (r: number, g: number, b: number) => ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0;
    out[0] = pack(br, bg, bb);
    for (let v = 1; v < 256; v++) {
      const l = Math.round(((v - 1) * 255) / 254) * 4;
      out[v] = pack(lut[l], lut[l + 1], lut[l + 2]);
    }
    this.packed = out;
    return out;
  }

  /** Level k as a canvas of ceil(T / 2^k) pixels a side (built, and cached until the head or palette changes). */
  canvas(k: number): HTMLCanvasElement {
    const have = this.levels[k];
    if (have) return have;
    this.ensureLevel(k);
    const n = this.sizes[k];
    const src = this.bytes[k];
    const rgba = new Uint8ClampedArray(n * n * 4);
    const px = new Uint32Array(rgba.buffer); // one write per pixel
    const colours = this.colours();
    for (let p = 0; p < n * n; p++) px[p] = colours[src[p]];
    // reuse the previous head's canvas of this level (same T, same size): no new canvas or context per switch
    const old = this.canvasPool[k];
    let c: HTMLCanvasElement;
    if (old && old.width === n && old.height === n) {
      old.getContext('2d')!.putImageData(new ImageData(rgba as Uint8ClampedArray<ArrayBuffer>, n, n), 0, 0);
      c = old;
    } else c = pixelCanvas(n, n, rgba);
    this.canvasPool[k] = c;
    this.levels[k] = c;
    return c;
  }
}
