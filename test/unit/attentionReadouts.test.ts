/**
 * The head finder's text scores and the model view's thumbnails read the attention store on every run; they read
 * stored values directly (fp16 bits). Both must equal a plain computation over decoded weights, in both precisions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttentionStore, type Precision } from '../../extension/engine/analyses/attentionStore';
import { LOCAL_SPAN, scoreText } from '../../extension/engine/analyses/headFinder';
import { thumbnails } from '../../extension/engine/analyses/thumbnails';
import { f32ToF16Bits } from '../fixtures/half';

const L = 2;
const H = 3;

function randomStore(precision: Precision, T: number, seed: number): AttentionStore {
  let s = seed;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const store = new AttentionStore(L, H, precision, 1024);
  store.resize(0, T);
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const w = Array.from({ length: i + 1 }, () => rand() ** 6); // heavy-tailed, like attention
        const sum = w.reduce((a, b) => a + b, 0);
        const row = w.map((x) => x / sum);
        store.writeRow(l, h, i, precision === 'fp16' ? Uint16Array.from(row, f32ToF16Bits) : Float32Array.from(row));
      }
    }
  }
  return store;
}

/** The thumbnail as its doc says: max weight over the cells of each pixel, square-root scaled, over decoded rows. */
function plainThumbnails(store: AttentionStore, size: number): Uint8Array {
  const T = store.length;
  const S = Math.max(1, Math.min(size, T));
  const out = new Uint8Array(L * H * S * S);
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      const cell = new Array<number>(S * S).fill(0);
      for (let i = 0; i < T; i++) {
        for (let j = 0; j <= i; j++) {
          const k = Math.floor((i * S) / T) * S + Math.floor((j * S) / T);
          cell[k] = Math.max(cell[k], store.at(l, h, i, j));
        }
      }
      cell.forEach((v, k) => (out[(l * H + h) * S * S + k] = Math.round(Math.sqrt(v) * 255)));
    }
  }
  return out;
}

/** The head finder's text scores from their definitions, over decoded rows. */
function plainScores(store: AttentionStore, ids: number[]): Record<string, number[]> {
  const T = store.length;
  const out: Record<string, number[]> = { 'previous-token': [], 'first-token': [], local: [], 'duplicate-token': [] };
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      let p = 0, f = 0, loc = 0, d = 0, dq = 0;
      for (let t = 1; t < T; t++) {
        const r = store.row(l, h, t);
        p += r[t - 1];
        f += r[0];
        if (t >= 2 * LOCAL_SPAN) for (let j = t - LOCAL_SPAN + 1; j <= t; j++) loc += r[j];
        const earlier = ids.slice(0, t).flatMap((id, j) => (id === ids[t] ? [j] : []));
        for (const j of earlier) d += r[j];
        if (earlier.length) dq++;
      }
      out['previous-token'].push(p / (T - 1));
      out['first-token'].push(f / (T - 1));
      out.local.push(loc / (T - 2 * LOCAL_SPAN));
      out['duplicate-token'].push(d / dq);
    }
  }
  return out;
}

for (const precision of ['fp16', 'fp32'] as const) {
  test(`thumbnails equal the plain max-pooling of decoded weights (${precision}; T below, equal to and above the size)`, () => {
    for (const [T, size] of [[5, 8], [8, 8], [37, 8], [100, 48], [131, 7]]) {
      const store = randomStore(precision, T, T * 7 + size);
      assert.deepEqual(thumbnails(store, size), plainThumbnails(store, size), `T=${T} size=${size}`);
    }
  });

  test(`head-finder text scores equal their definitions over decoded weights (${precision})`, () => {
    const T = 90;
    const store = randomStore(precision, T, 99);
    const ids = Array.from({ length: T }, (_, i) => (i * 7) % 23); // repeats, so duplicate-token has cases
    const got = scoreText(store, ids).scores;
    const want = plainScores(store, ids);
    for (const [role, values] of Object.entries(want)) {
      const g = got[role as keyof typeof got]!;
      values.forEach((v, k) => assert.ok(Math.abs(g[k] - v) < 1e-6, `${role} head ${k}: ${g[k]} vs ${v}`));
    }
  });
}
