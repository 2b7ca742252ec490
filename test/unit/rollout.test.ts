/** Attention rollout (extension/engine/analyses/rollout.ts) against a hand computation on 2 layers × 2 heads × 3 tokens. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttentionStore } from '../../extension/engine/analyses/attentionStore';
import { Rollout } from '../../extension/engine/analyses/rollout';

function store(rows: number[][][][]): AttentionStore {
  const L = rows.length;
  const H = rows[0].length;
  const T = rows[0][0].length;
  const s = new AttentionStore(L, H, 'fp32', T);
  s.resize(0, T);
  for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) for (let i = 0; i < T; i++) s.writeRow(l, h, i, Float32Array.from(rows[l][h][i]));
  return s;
}

// Layer 0: head means [1], [.75 .25], [.1 .15 .75]; plus I and halved: Â0 = [1], [.375 .625], [.05 .075 .875].
// Layer 1: both heads look at token 0 from token 2: Â1 = [1], [0 1], [.5 0 .5].
// R = Â1·Â0: row 0 [1 0 0]; row 1 = Â0 row 1 = [.375 .625 0]; row 2 = .5·Â0 row 0 + .5·Â0 row 2 = [.525 .0375 .4375].
const HAND = [
  [1, 0, 0],
  [0.375, 0.625, 0],
  [0.525, 0.0375, 0.4375],
];
const ATTENTION = [
  [
    [[1], [0.5, 0.5], [0.2, 0.3, 0.5]],
    [[1], [1, 0], [0, 0, 1]],
  ],
  [
    [[1], [0, 1], [1, 0, 0]],
    [[1], [0, 1], [1, 0, 0]],
  ],
];

test('rollout of a 3-token example equals the hand computation, row by row and as a matrix', () => {
  const r = new Rollout(store(ATTENTION));
  const m = r.matrix();
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) assert.ok(Math.abs(m[i * 3 + j] - HAND[i][j]) < 1e-7, `R[${i}][${j}] = ${m[i * 3 + j]}, expected ${HAND[i][j]}`);
    const row = r.row(i);
    assert.equal(row.length, i + 1);
    for (let j = 0; j <= i; j++) assert.ok(Math.abs(row[j] - HAND[i][j]) < 1e-7, `row ${i}[${j}] = ${row[j]}`);
  }
  assert.throws(() => r.row(3), /outside the run's 3 tokens/);
});

test('one layer of uniform attention: token i keeps half of itself plus half of the mean', () => {
  const T = 4;
  const uniform = Array.from({ length: T }, (_, i) => Array.from({ length: i + 1 }, () => 1 / (i + 1)));
  const r = new Rollout(store([[uniform]]));
  for (let i = 0; i < T; i++) {
    const row = r.row(i);
    for (let j = 0; j <= i; j++) assert.ok(Math.abs(row[j] - (0.5 / (i + 1) + (i === j ? 0.5 : 0))) < 1e-7);
  }
});
