/** Token alignment (extension/common/tokenAlign.ts) against hand cases and a plain O(N·M) LCS table. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alignTokens, type TokenAlignment } from '../../extension/common/tokenAlign';

/** Length of the longest common subsequence by the textbook dynamic programme (the independent check). */
function lcsLength(a: number[], b: number[]): number {
  const prev = new Int32Array(b.length + 1);
  const cur = new Int32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], cur[j - 1]);
    prev.set(cur);
  }
  return prev[b.length];
}

/** Pairs are increasing, match equal ids, agree with aToB/bToA; regions cover exactly the unmatched tokens. */
function checkConsistent(a: number[], b: number[], al: TokenAlignment): void {
  let pi = -1;
  let pj = -1;
  for (const [i, j] of al.pairs) {
    assert.ok(i > pi && j > pj, 'pairs increase');
    assert.equal(a[i], b[j]);
    assert.equal(al.aToB[i], j);
    assert.equal(al.bToA[j], i);
    pi = i;
    pj = j;
  }
  const inRegionA = new Set<number>();
  const inRegionB = new Set<number>();
  for (const r of al.regions) {
    for (let i = r.a.start; i < r.a.end; i++) inRegionA.add(i);
    for (let j = r.b.start; j < r.b.end; j++) inRegionB.add(j);
  }
  for (let i = 0; i < a.length; i++) assert.equal(inRegionA.has(i), al.aToB[i] < 0, `a[${i}]`);
  for (let j = 0; j < b.length; j++) assert.equal(inRegionB.has(j), al.bToA[j] < 0, `b[${j}]`);
}

test('identical sequences: every token matched, no changed region', () => {
  const a = [5, 6, 7, 5, 6, 7, 8];
  const al = alignTokens(a, a.slice());
  assert.deepEqual(al.pairs, a.map((_, i) => [i, i]));
  assert.deepEqual(al.regions, []);
});

test('one word changed: one changed region, in the right place on both sides', () => {
  // "The cat sat on the mat" -> "The dog sat on the mat", with a BPE-like change of two tokens into one
  const a = [464, 3797, 3332, 319, 262, 2603];
  const b = [464, 3290, 3332, 319, 262, 2603];
  const al = alignTokens(a, b);
  assert.deepEqual(al.regions, [{ a: { start: 1, end: 2 }, b: { start: 1, end: 2 } }]);
  assert.equal(al.pairs.length, 5);
  const c = [464, 11, 12, 3332, 319, 262, 2603];
  assert.deepEqual(alignTokens(a, c).regions, [{ a: { start: 1, end: 2 }, b: { start: 1, end: 3 } }]);
  checkConsistent(a, c, alignTokens(a, c));
});

test('insertions and deletions give one-sided regions', () => {
  const a = [1, 2, 3, 4, 5];
  assert.deepEqual(alignTokens(a, [1, 2, 9, 9, 3, 4, 5]).regions, [{ a: { start: 2, end: 2 }, b: { start: 2, end: 4 } }]);
  assert.deepEqual(alignTokens(a, [1, 4, 5]).regions, [{ a: { start: 1, end: 3 }, b: { start: 1, end: 1 } }]);
  assert.deepEqual(alignTokens(a, [0, ...a, 6]).regions, [{ a: { start: 0, end: 0 }, b: { start: 0, end: 1 } }, { a: { start: 5, end: 5 }, b: { start: 6, end: 7 } }]);
  assert.deepEqual(alignTokens([], [1, 2]).regions, [{ a: { start: 0, end: 0 }, b: { start: 0, end: 2 } }]);
  assert.deepEqual(alignTokens([1, 2], []).regions, [{ a: { start: 0, end: 2 }, b: { start: 0, end: 0 } }]);
  assert.deepEqual(alignTokens([], []).regions, []);
  assert.deepEqual(alignTokens([1, 2], [3, 4]).regions, [{ a: { start: 0, end: 2 }, b: { start: 0, end: 2 } }]);
});

test('random edits: as many matches as the longest common subsequence, consistent pairs and regions', () => {
  let seed = 99;
  const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
  for (let trial = 0; trial < 200; trial++) {
    const a = Array.from({ length: rand(40) }, () => rand(6));
    const b = a.slice();
    for (let e = rand(8); e > 0; e--) {
      const at = rand(b.length + 1);
      if (rand(2) && b.length) b.splice(at, 1);
      else b.splice(at, 0, rand(6));
    }
    const al = alignTokens(a, b);
    assert.equal(al.pairs.length, lcsLength(a, b), `trial ${trial}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    checkConsistent(a, b, al);
  }
});

test('2 × 1,024 tokens with scattered edits align fast; wholly different ones too', () => {
  let seed = 5;
  const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
  const a = Array.from({ length: 1024 }, () => rand(50257));
  const b = a.slice();
  for (let e = 0; e < 30; e++) b[rand(1024)] = rand(50257);
  let t0 = performance.now();
  const al = alignTokens(a, b);
  const scattered = performance.now() - t0;
  assert.equal(al.pairs.length, lcsLength(a, b));
  const c = Array.from({ length: 1024 }, () => 50257 + rand(1000));
  t0 = performance.now();
  const none = alignTokens(a, c);
  const different = performance.now() - t0;
  assert.equal(none.pairs.length, 0);
  assert.deepEqual(none.regions, [{ a: { start: 0, end: 1024 }, b: { start: 0, end: 1024 } }]);
  assert.ok(scattered < 200 && different < 2000, `scattered ${scattered.toFixed(1)} ms, wholly different ${different.toFixed(1)} ms`);
});
