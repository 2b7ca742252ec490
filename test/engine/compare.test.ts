/**
 * Compare and rollout in the engine: `score` of a text equals the live analysis of the same text (log-probabilities
 * to 1e-6, the same top-5) and leaves the live run, its version and its cache alone; the rollout (row and whole
 * matrix) equals a plain float64 computation over the naive reference's attention on random tiny checkpoints.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeRandomCheckpoint, type RandomCheckpoint } from '../fixtures/randomCheckpoint';
import { gpt2 } from '../reference/gpt2';
import { maxDiff } from '../reference/compare';
import { EngineService } from '../../extension/engine/server';
import { HeadlightError } from '../../extension/common/errors';
import { loadEngine } from '../../extension/engine/load';

const root = mkdtempSync(join(tmpdir(), 'headlight-compare-'));
after(() => rmSync(root, { recursive: true, force: true }));

const TEXT = 'def greet(name):\n    return f"Hello, {name}!"  # café\nprint(greet("world"))\n';
const signal = new AbortController().signal;

/** The rollout by the book, from the reference's [L, H, T, T] attention: full T×T float64 products, no shortcuts. */
function plainRollout(attention: Float32Array, L: number, H: number, T: number): Float64Array {
  let R = new Float64Array(T * T);
  for (let i = 0; i < T; i++) R[i * T + i] = 1;
  for (let l = 0; l < L; l++) {
    const A = new Float64Array(T * T);
    for (let h = 0; h < H; h++) for (let k = 0; k < T * T; k++) A[k] += attention[(l * H + h) * T * T + k] / H;
    for (let i = 0; i < T; i++) A[i * T + i] += 1;
    for (let i = 0; i < T; i++) {
      let s = 0;
      for (let j = 0; j < T; j++) s += A[i * T + j];
      for (let j = 0; j < T; j++) A[i * T + j] /= s;
    }
    const next = new Float64Array(T * T);
    for (let i = 0; i < T; i++) for (let k = 0; k < T; k++) for (let j = 0; j < T; j++) next[i * T + j] += A[i * T + k] * R[k * T + j];
    R = next;
  }
  return R;
}

describe('score: another version of a text on a scratch cache', () => {
  let ck: RandomCheckpoint;
  let service: EngineService;
  before(async () => {
    // n_positions 400: a 300-token text runs in two chunks of 256, as the live run does
    ck = await writeRandomCheckpoint(join(root, 'score'), { seed: 41, nLayer: 2, nHead: 2, nEmbd: 16, nPositions: 400 });
    service = new EngineService();
    await service.handlers.load!({ ref: 'test', dir: ck.dir, threads: 1 }, signal);
  });
  after(() => service.dispose());

  for (const [what, text] of [['a short text', TEXT], ['a text longer than one chunk', TEXT.repeat(14)]] as const) {
    test(`${what}: equals the live analysis to 1e-6, same top-5`, async () => {
      const h = service.handlers;
      const live = await h.analyze!({ text, incremental: false }, signal);
      const T = live.tokens.length;
      const scored = await h.score!({ text, k: 5 }, signal);
      assert.deepEqual(scored.tokens, live.tokens);
      assert.deepEqual(scored.window, live.window);
      assert.equal(scored.logprobs.length, T);
      assert.ok(Number.isNaN(scored.logprobs[0]));
      const bits = Array.from(scored.logprobs, (lp) => -lp / Math.LN2);
      assert.ok(maxDiff(bits, live.surprisal) < 1e-5, `surprisal differs by ${maxDiff(bits, live.surprisal)}`);
      const ref = gpt2(ck.config, ck.weights, live.tokens.map((t) => t.id));
      assert.ok(maxDiff(scored.logprobs, ref.logprobs) < 1e-4, 'and the reference agrees');
      for (const i of [1, Math.floor(T / 2), T - 1]) {
        const preds = await h.predictions!({ version: live.version, index: i, k: 5 }, signal);
        assert.deepEqual(scored.top[i].map((p) => p.id), preds.map((p) => p.id), `top-5 at ${i}`);
        assert.ok(maxDiff(scored.top[i].map((p) => p.logprob), preds.map((p) => p.logprob)) < 1e-6);
      }
      assert.deepEqual(scored.top[0], []);
      if (what.includes('longer')) assert.ok(T > 256, `${T} tokens: two chunks`);
    });
  }

  test('engine.score: log-probabilities equal the live run\'s to 1e-6 (fp32 and fp16 maps)', async () => {
    for (const precision of ['fp32', 'fp16'] as const) {
      const { engine } = await loadEngine(ck.dir, { precision, threads: 1 });
      try {
        const text = TEXT.repeat(14);
        const run = await engine.analyze(text);
        assert.ok(run.length > 256, 'two chunks');
        const lp = run.logprobs();
        const scored = await engine.score(text);
        assert.ok(maxDiff(scored.logprobs, lp) < 1e-6, `${precision}: logprobs differ by ${maxDiff(scored.logprobs, lp)}`);
        assert.ok(!run.stale, 'the live run is still current');
      } finally {
        await engine.dispose();
      }
    }
  });

  test('the live run, its version and its cache are untouched; the other text gets its own answer', async () => {
    const h = service.handlers;
    const live = await h.analyze!({ text: TEXT, incremental: false }, signal);
    const before = await h.row!({ version: live.version, sel: { layer: 1, head: 1 }, index: live.tokens.length - 1 }, signal);
    const other = TEXT.replace('world', 'moon');
    const scored = await h.score!({ text: other, offsetBase: 100 }, signal);
    assert.equal(scored.tokens[0].start, 100, 'offsets carry offsetBase');
    // the live run still answers, with the same numbers
    const after = await h.row!({ version: live.version, sel: { layer: 1, head: 1 }, index: live.tokens.length - 1 }, signal);
    assert.deepEqual(after, before);
    const preds = await h.predictions!({ version: live.version, index: 3, k: 5 }, signal);
    assert.equal(preds.length, 5);
    // ... and its cache: typing at the end reuses everything before the edit
    const typed = await h.analyze!({ text: TEXT + 'x', incremental: true }, signal);
    assert.ok(typed.stats.reused >= live.tokens.length - 1, `reused ${typed.stats.reused} of ${live.tokens.length}`);
    // the other version's log-probabilities are its own (the reference on its ids)
    const ref = gpt2(ck.config, ck.weights, scored.tokens.map((t) => t.id));
    assert.ok(maxDiff(scored.logprobs, ref.logprobs) < 1e-4);
    const empty = await h.score!({ text: '' }, signal);
    assert.deepEqual([empty.tokens.length, empty.logprobs.length, empty.top.length], [0, 0, 0]);
  });
});

describe('attention rollout', () => {
  for (const [name, opts] of [
    ['2 layers × 2 heads', { seed: 51, nLayer: 2, nHead: 2, nEmbd: 16, nPositions: 64 }],
    ['3 layers × 4 heads, scaled by layer', { seed: 52, nLayer: 3, nHead: 4, nEmbd: 16, nPositions: 64, scaleAttnByInverseLayerIdx: true }],
  ] as const) {
    test(`${name}: rows and the whole matrix equal a plain float64 rollout of the reference's attention`, async () => {
      const ck = await writeRandomCheckpoint(join(root, `rollout-${opts.seed}`), opts);
      const service = new EngineService();
      const h = service.handlers;
      try {
        await h.load!({ ref: 'test', dir: ck.dir, threads: 1 }, signal);
        const run = await h.analyze!({ text: TEXT, incremental: false }, signal);
        const T = run.tokens.length;
        const ref = gpt2(ck.config, ck.weights, run.tokens.map((t) => t.id));
        const expected = plainRollout(ref.attention, opts.nLayer, opts.nHead, T);
        const matrix = await h.rollout!({ version: run.version }, signal);
        assert.equal(matrix.length, T * T);
        // the engine stores fp16 maps by default: agreement to 2e-3 there, and 1e-4 is checked by the CLI's fp32 dump
        assert.ok(maxDiff(matrix, expected) < 2e-3, `matrix differs by ${maxDiff(matrix, expected)}`);
        for (const i of [0, 1, Math.floor(T / 2), T - 1]) {
          const row = await h.rollout!({ version: run.version, index: i }, signal);
          assert.equal(row.length, i + 1);
          assert.ok(maxDiff(row, matrix.subarray(i * T, i * T + i + 1)) < 1e-6, `row ${i} = matrix row`);
          assert.ok(Math.abs(row.reduce((a, x) => a + x, 0) - 1) < 1e-5, `row ${i} sums to 1`);
        }
        // not trivially the identity or uniform: the last row spreads over several tokens
        const last = expected.subarray((T - 1) * T, T * T);
        assert.ok(Math.max(...last) < 0.9 && last.filter((x) => x > 0.01).length > 3);
        await assert.rejects(async () => h.rollout!({ version: run.version, index: T }, signal), (e: unknown) => e instanceof HeadlightError && e.code === 'bad-index' && /outside/.test(e.message));
        await assert.rejects(async () => h.rollout!({ version: run.version + 1, index: 0 }, signal), (e: unknown) => e instanceof HeadlightError && e.code === 'stale-run');
      } finally {
        await service.dispose();
      }
    });
  }
});
