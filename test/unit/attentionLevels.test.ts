/** Editor highlight levels relative to the row shown (extension/host/intensity.ts attentionLevels). */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { attentionEdges, attentionLevels, groupByBucket, LEVELS, rowEdges } from '../../extension/host/intensity';
import { halfTable } from '../../extension/common/half';

/** Level of each index (-1: not shown). */
function levelOf(groups: number[][], n: number): number[] {
  const out = new Array<number>(n).fill(-1);
  groups.forEach((idx, level) => idx.forEach((i) => (out[i] = level)));
  return out;
}

/** Query `i`'s sources in a near-uniform model (like the bundled one): 1/(i+1) each, a few spikes, renormalized. */
function nearUniformRow(i: number, spikes: Record<number, number>): Float32Array {
  const w = new Float32Array(i + 8); // the tail is the masked future: exactly 0
  for (let j = 0; j <= i; j++) w[j] = spikes[j] ?? 1 / (i + 1);
  const sum = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / sum);
}

describe('attention levels relative to the row', () => {
  test('a near-uniform row at threshold 0.05: its strongest sources are shown, the strongest at the top level', () => {
    const i = 57;
    const w = nearUniformRow(i, { 40: 0.062, 46: 0.056, 51: 0.053, 19: 0.052, 25: 0.035 });
    const levels = levelOf(attentionLevels(w, 0.05, (j) => j === i), w.length);
    const max = w.reduce((a, b, j) => (j !== i && b > w[a] ? j : a), 0);
    assert.equal(max, 40);
    assert.equal(levels[40], LEVELS - 1, `levels ${levels}`);
    for (const j of [46, 51, 19]) assert.ok(levels[j] >= 1, `token ${j} at level ${levels[j]}`);
    // the uniform tokens (≈ 0.0165, below half the max and below twice the uniform weight) stay dark
    assert.equal(levels[3], -1);
    // 0.035 renormalized is ≈ 0.030: under twice the uniform weight (2/58 ≈ 0.034), so it does not stand out
    assert.equal(levels[25], -1);
    assert.equal(levels.filter((l) => l >= 0).length, 4);
    // the absolute scale put the same row's strongest token in the faintest level
    const absolute = levelOf(groupByBucket(w, attentionEdges(0.05), (j) => j === i), w.length);
    assert.equal(absolute[40], 0);
  });

  test('a uniform row shows nothing above the threshold, and weights at the threshold still show', () => {
    const i = 57;
    const w = nearUniformRow(i, {});
    assert.deepEqual(attentionLevels(w, 0.05, (j) => j === i).flat(), []);
    const low = levelOf(attentionLevels(w, 0.01, (j) => j === i), w.length);
    assert.equal(low.slice(0, i).filter((l) => l >= 0).length, i); // every source ≥ 0.01 shows
    assert.equal(low[i], -1); // the skipped token itself
    assert.ok(low.slice(i + 1).every((l) => l === -1), 'masked future tokens never show');
  });

  test('a sharp row keeps the threshold: weights under it that do not stand out stay dark', () => {
    const w = [0.78, 0.1, 0.04, 0.03, 0.03, 0.02];
    const levels = levelOf(attentionLevels(w, 0.05), w.length);
    assert.equal(levels[0], LEVELS - 1);
    assert.ok(levels[1] >= 0 && levels[1] < LEVELS - 1, `0.1 at ${levels[1]}`);
    assert.deepEqual(levels.slice(2), [-1, -1, -1, -1]);
    const e = rowEdges(w, 0.05).edges;
    assert.equal(e[0], 0.05);
    for (let k = 1; k < LEVELS; k++) assert.ok(e[k] > e[k - 1] && e[k] <= 0.78);
  });

  test('threshold 0 shows every positive weight; empty and all-zero rows show nothing', () => {
    const w = [0.5, 0.3, 0.2, 0, 0];
    assert.deepEqual(levelOf(attentionLevels(w, 0), 5).map((l) => l >= 0), [true, true, true, false, false]);
    assert.deepEqual(attentionLevels([], 0.05), [[], [], [], []]);
    assert.deepEqual(attentionLevels([0, 0], 0), [[], [], [], []]);
  });

  test('every row of a recorded run: levels rise with the weight, the row max is on top, every weight ≥ threshold shows', () => {
    const f = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'recorded-run.json'), 'utf8'));
    const T: number = f.run.tokens.length;
    const half = halfTable();
    let rows = 0;
    for (const b64 of f.triangles as string[]) {
      const buf = Buffer.from(b64, 'base64');
      const bits = new Uint16Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
      for (let i = 1; i < T; i++) {
        const base = (i * (i + 1)) / 2;
        const w = new Float32Array(T);
        for (let j = 0; j <= i; j++) w[j] = half[bits[base + j]];
        const levels = levelOf(attentionLevels(w, 0.05, (j) => j === i), T);
        let top = -1;
        for (let j = 0; j < i; j++) if (top < 0 || w[j] > w[top]) top = j;
        if (w[top] >= 0.05) assert.equal(levels[top], LEVELS - 1, `row ${i}: max ${w[top]}`);
        for (let j = 0; j < i; j++) {
          if (w[j] >= 0.05) assert.ok(levels[j] >= 0, `row ${i} key ${j}: ${w[j]} not shown`);
          for (let k = 0; k < i; k++) if (w[j] > w[k]) assert.ok(levels[j] >= levels[k], `row ${i}: ${w[j]} below ${w[k]}`);
        }
        rows++;
      }
    }
    assert.ok(rows > 100);
  });
});
