/**
 * Head ablation against the naive reference (test/reference/gpt2.ts) on random tiny checkpoints with fixed seeds:
 * zero and mean ablation agree to 1e-4, a layer with every head ablated leaves only its c_proj bias, the cache is
 * never reused across masks, and the "which heads matter" ranking matches single ablations and can be cancelled.
 */
import { maxDiff } from '../reference/compare';
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeRandomCheckpoint, type RandomCheckpoint, type RandomCheckpointOptions } from '../fixtures/randomCheckpoint';
import { gpt2 } from '../reference/gpt2';
import { loadEngine } from '../../extension/engine/load';
import { loadTokenizer } from '../../extension/engine/tokenizer/gpt2Tokenizer';
import { Gpt2Engine } from '../../extension/engine/analyses/engine';
import { meanLoss } from '../../extension/engine/analyses/inspect';
import { HeadlightError } from '../../extension/common/errors';
import { EngineService } from '../../extension/engine/server';
import { PlainForward } from '../fixtures/plainForward';

const TEXT = 'def greet(name):\n    return f"Hello, {name}!"  # café\nprint(greet("world"))\nprint(greet("moon"))';


/** [L][H] mask with 0 on the given heads. */
function maskOf(L: number, H: number, heads: [number, number][]): number[][] {
  const m = Array.from({ length: L }, () => new Array<number>(H).fill(1));
  for (const [l, h] of heads) m[l][h] = 0;
  return m;
}

const root = mkdtempSync(join(tmpdir(), 'headlight-ablation-'));
after(() => rmSync(root, { recursive: true, force: true }));

const cases: [string, RandomCheckpointOptions][] = [
  ['F32', { seed: 31, nLayer: 2, nHead: 2, nEmbd: 16, nPositions: 64 }],
  ['scale_attn_by_inverse_layer_idx, erf GELU', { seed: 32, nLayer: 3, nHead: 4, nEmbd: 16, nPositions: 64, activation: 'gelu', scaleAttnByInverseLayerIdx: true }],
];

for (const [name, opts] of cases) {
  describe(`ablation vs reference: ${name}`, () => {
    let engine: Gpt2Engine;
    /** The engine's graph built logits-only: logits under a head mask (the engine's own runs are never masked). */
    let forward: PlainForward;
    let ck: RandomCheckpoint;
    let ids: number[];
    before(async () => {
      ck = await writeRandomCheckpoint(join(root, `ck-${opts.seed}`), opts);
      engine = (await loadEngine(ck.dir, { precision: 'fp32', threads: 1, logits: true })).engine;
      forward = await PlainForward.create(ck.config, ck.weights);
      ids = engine.tokenizer.encode(TEXT).map((t) => t.id);
    });
    after(async () => {
      await engine.dispose();
      await forward.dispose();
    });

    const heads = (L: number): [number, number][] => [[0, 1], [L - 1, 0]];

    test('zero ablation: logits with the mask, and ablate() log-probabilities, match the reference to 1e-4', async () => {
      const { nLayer: L, nHead: H } = ck.config;
      const mask = maskOf(L, H, heads(L));
      const ref = gpt2(ck.config, ck.weights, ids, { headMask: mask });
      const plain = gpt2(ck.config, ck.weights, ids);
      const logits = await forward.logits(ids, { mask: mask.flat() });
      assert.ok(maxDiff(logits, ref.logits) < 1e-4, `logits differ by ${maxDiff(logits, ref.logits)}`);
      const r = await engine.ablate({ heads: heads(L).map(([layer, head]) => ({ layer, head })), mode: 'zero' }, TEXT, { at: 5 });
      assert.ok(maxDiff(r.logprobBefore, plain.logprobs) < 1e-4, `before differs by ${maxDiff(r.logprobBefore, plain.logprobs)}`);
      assert.ok(maxDiff(r.logprobAfter, ref.logprobs) < 1e-4, `after differs by ${maxDiff(r.logprobAfter, ref.logprobs)}`);
      assert.ok(maxDiff(plain.logprobs, ref.logprobs) > 1e-3, 'the ablation changed something');
      assert.ok(Math.abs(r.lossDelta - (meanLoss(ref.logprobs) - meanLoss(plain.logprobs))) < 1e-4);
      for (let i = 1; i < ids.length; i++) {
        const bits = (-ref.logprobs[i] + plain.logprobs[i]) / Math.LN2;
        assert.ok(Math.abs(r.surprisalDelta[i] - bits) < 1e-3, `surprisal delta at ${i}`);
      }
      // Predictions at position 5 are the arg-max logits at position 4, before and after.
      const V = ck.config.vocabSize;
      const best = (logits: Float32Array) => Array.from(logits.subarray(4 * V, 5 * V)).map((v, id) => [v, id]).sort((a, b) => b[0] - a[0]).slice(0, 3).map((p) => p[1]);
      assert.deepEqual(r.predictionsBefore.slice(0, 3).map((p) => p.id), best(plain.logits));
      assert.deepEqual(r.predictionsAfter.slice(0, 3).map((p) => p.id), best(ref.logits));
    });

    test('mean ablation: the plain run\'s head means and the ablated logits match the reference to 1e-4', async () => {
      const { nLayer: L, nHead: H, nEmbd: E } = ck.config;
      const D = E / H;
      const plain = gpt2(ck.config, ck.weights, ids);
      const r = await engine.ablate({ heads: heads(L).map(([layer, head]) => ({ layer, head })), mode: 'mean' }, TEXT);
      const means = r.headMeans!; // [L, H, D]: what the ablated heads output instead
      const refMeans = plain.headOutputMeans.flatMap((layer) => layer.flatMap((m) => Array.from(m)));
      assert.equal(means.length, L * H * D);
      assert.ok(maxDiff(means, refMeans) < 1e-4, `head means differ by ${maxDiff(means, refMeans)}`);
      assert.ok(Math.max(...refMeans.map(Math.abs)) > 1e-2, 'the means are not trivially zero');

      const mask = maskOf(L, H, heads(L));
      const ref = gpt2(ck.config, ck.weights, ids, { headMask: mask, headReplacement: plain.headOutputMeans });
      const zero = gpt2(ck.config, ck.weights, ids, { headMask: mask });
      assert.ok(maxDiff(ref.logits, zero.logits) > 1e-3, 'mean and zero ablation differ');
      const logits = await forward.logits(ids, { mask: mask.flat(), means });
      assert.ok(maxDiff(logits, ref.logits) < 1e-4, `logits differ by ${maxDiff(logits, ref.logits)}`);
      assert.ok(maxDiff(r.logprobAfter, ref.logprobs) < 1e-4, `after differs by ${maxDiff(r.logprobAfter, ref.logprobs)}`);
      assert.equal(r.at, ids.length);
      assert.equal(r.predictionsAfter.length, 5);
    });

    test('ablating every head of a layer leaves only that layer\'s c_proj bias', async () => {
      const { nLayer: L, nHead: H } = ck.config;
      const layer = L - 1;
      // The constructed model: layer `layer`'s c_proj weight zeroed, so its attention adds exactly the bias.
      const weights = { ...ck.weights, layers: ck.weights.layers.map((w, l) => (l === layer ? { ...w, attnProj: { weight: new Float32Array(w.attnProj.weight.length), bias: w.attnProj.bias } } : w)) };
      const tokenizer = await loadTokenizer(ck.dir);
      const biasOnly = await Gpt2Engine.create(ck.config, weights, tokenizer, { precision: 'fp32', threads: 1, logits: true });
      try {
        const expected = (await biasOnly.analyze(TEXT, { logits: true })).logits!;
        const mask = maskOf(L, H, Array.from({ length: H }, (_, h): [number, number] => [layer, h]));
        const ablated = await forward.logits(ids, { mask: mask.flat() });
        const plain = (await engine.analyze(TEXT, { logits: true })).logits!;
        assert.ok(maxDiff(ablated, expected) < 1e-5, `differs by ${maxDiff(ablated, expected)}`);
        assert.ok(maxDiff(plain, expected) > 1e-3, 'the layer\'s heads mattered before');
      } finally {
        await biasOnly.dispose();
      }
    });
  });
}

describe('the cache and head masks', () => {
  let engine: Gpt2Engine;
  let ck: RandomCheckpoint;
  before(async () => {
    ck = await writeRandomCheckpoint(join(root, 'cache'), { seed: 33, nLayer: 2, nHead: 2, nEmbd: 16, nPositions: 64 });
    engine = (await loadEngine(ck.dir, { precision: 'fp32', threads: 1 })).engine;
  });
  after(() => engine.dispose());

  test('ablated runs (zero and mean) never touch the cache: the next update reuses it and equals a full run', async () => {
    const L = 2;
    const H = 2;
    const T = engine.tokenizer.encode(TEXT).length;
    await engine.analyze(TEXT);
    assert.equal((await engine.update(TEXT)).stats.computed, 0, 'same text: all reused');
    const zero = await engine.ablate({ heads: [{ layer: 0, head: 0 }], mode: 'zero' }, TEXT + ' more');
    const mean = await engine.ablate({ heads: [{ layer: 0, head: 0 }], mode: 'mean' }, TEXT + ' more');
    assert.ok(maxDiff(mean.logprobAfter, zero.logprobAfter) > 1e-4, 'mean ablation differs from zero ablation');
    const ids = engine.tokenizer.encode(TEXT + ' more').map((t) => t.id);
    assert.ok(maxDiff(zero.logprobAfter.subarray(0, T), gpt2(ck.config, ck.weights, ids, { headMask: maskOf(L, H, [[0, 0]]) }).logprobs.subarray(0, T)) < 1e-4);
    const inc = await engine.update(TEXT + ' more');
    assert.ok(inc.stats.reused > 0, 'the plain run\'s cache is reused after ablations');
    const incLp = inc.logprobs();
    assert.ok(maxDiff(incLp, (await engine.analyze(TEXT + ' more')).logprobs()) < 1e-6);
    assert.ok(maxDiff(incLp, zero.logprobBefore) < 1e-4, 'the plain run is the ablation\'s "before"');
  });

  test('ablate() leaves the current run and its cache alone', async () => {
    const run = await engine.analyze(TEXT);
    const row = run.row({ layer: 1, head: 1 }, 10);
    await engine.ablate({ heads: [{ layer: 0, head: 1 }], mode: 'zero' }, TEXT);
    assert.equal(run.stale, false);
    assert.deepEqual(run.row({ layer: 1, head: 1 }, 10), row);
    assert.equal((await engine.update(TEXT)).stats.computed, 0);
  });

  test('bad heads and positions are refused clearly', async () => {
    await assert.rejects(engine.ablate({ heads: [{ layer: 2, head: 0 }], mode: 'zero' }, TEXT), (e: unknown) => e instanceof HeadlightError && e.code === 'bad-head' && /2\.0/.test(e.message));
    await assert.rejects(engine.ablate({ heads: [{ layer: 0, head: 0 }], mode: 'zero' }, TEXT, { at: 999 }), (e: unknown) => e instanceof HeadlightError && e.code === 'bad-index');
  });
});

describe('ranking heads', () => {
  let engine: Gpt2Engine;
  let ck: RandomCheckpoint;
  before(async () => {
    ck = await writeRandomCheckpoint(join(root, 'rank'), { seed: 34, nLayer: 3, nHead: 3, nEmbd: 12, nPositions: 64 }); // layers 1, 2 start on layer 0's output
    engine = (await loadEngine(ck.dir, { precision: 'fp32', threads: 1 })).engine;
  });
  after(() => engine.dispose());

  for (const mode of ['zero', 'mean'] as const) {
    test(`every head's loss change (${mode}) matches the reference, ranked by size, with progress`, async () => {
      const { nLayer: L, nHead: H } = ck.config;
      const ids = engine.tokenizer.encode(TEXT).map((t) => t.id);
      const plain = gpt2(ck.config, ck.weights, ids);
      const progress: number[] = [];
      const r = await engine.rankHeads(TEXT, { mode, onProgress: (p) => (assert.equal(p.total, L * H), progress.push(p.done)) });
      assert.deepEqual(progress, Array.from({ length: L * H + 1 }, (_, i) => i));
      assert.ok(Math.abs(r.lossBefore - meanLoss(plain.logprobs)) < 1e-4);
      for (let l = 0; l < L; l++) {
        for (let h = 0; h < H; h++) {
          const ref = gpt2(ck.config, ck.weights, ids, { headMask: maskOf(L, H, [[l, h]]), headReplacement: mode === 'mean' ? plain.headOutputMeans : undefined });
          const want = meanLoss(ref.logprobs) - meanLoss(plain.logprobs);
          assert.ok(Math.abs(r.deltas[l * H + h] - want) < 1e-4, `head ${l}.${h}: ${r.deltas[l * H + h]} vs ${want}`);
        }
      }
      assert.equal(r.ranking.length, L * H);
      for (let k = 1; k < r.ranking.length; k++) assert.ok(Math.abs(r.ranking[k - 1].lossDelta) >= Math.abs(r.ranking[k].lossDelta));
      assert.ok(Math.abs(r.ranking[0].lossDelta) > 1e-3, 'some head matters');
    });
  }

  test('cancellation stops the ranking between runs, and the engine keeps working', async () => {
    const ac = new AbortController();
    let seen = 0;
    await assert.rejects(
      engine.rankHeads(TEXT, { signal: ac.signal, onProgress: (p) => ((seen = p.done), p.done === 2 && ac.abort()) }),
      (e: unknown) => e instanceof HeadlightError && e.code === 'cancelled',
    );
    assert.equal(seen, 2, 'no run after the abort');
    const run = await engine.analyze(TEXT);
    assert.ok(run.length > 10);
  });
});

describe('ablation over a window longer than one chunk (chunks of 256 on a scratch cache)', () => {
  // 550 tokens: chunks of 256, 256 and 38 rows; the last one is short enough to read the whole cache (ROW_BLOCK).
  const LONG = Array.from({ length: 90 }, (_, i) => `v${i % 13} = f(v${(i * 7) % 11}, ${i * 3}) # ${['a', 'b', 'c'][i % 3]}\n`).join('');
  const window = { start: 0, end: 550 };
  let engine: Gpt2Engine;
  let ck: RandomCheckpoint;
  let ids: number[];
  before(async () => {
    ck = await writeRandomCheckpoint(join(root, 'long'), { seed: 35, nLayer: 3, nHead: 2, nEmbd: 8, nPositions: 600 });
    engine = (await loadEngine(ck.dir, { precision: 'fp32', threads: 1 })).engine;
    const all = engine.tokenizer.encode(LONG).map((t) => t.id);
    assert.ok(all.length > window.end, `the text has ${all.length} tokens`);
    ids = all.slice(0, window.end);
  });
  after(() => engine.dispose());

  test('zero and mean ablation, the head means and ranked heads from a later layer match the reference to 1e-4', async () => {
    const { nLayer: L, nHead: H } = ck.config;
    const plain = gpt2(ck.config, ck.weights, ids);
    const means = (await engine.ablate({ heads: [{ layer: 0, head: 1 }], mode: 'mean' }, LONG, { window })).headMeans!; // the window's means, summed over chunks
    const refMeans = plain.headOutputMeans.flatMap((layer) => layer.flatMap((m) => Array.from(m)));
    assert.ok(maxDiff(means, refMeans) < 1e-4, `head means differ by ${maxDiff(means, refMeans)}`);
    for (const mode of ['zero', 'mean'] as const) {
      const heads: [number, number][] = [[0, 1], [2, 0]];
      const ref = gpt2(ck.config, ck.weights, ids, { headMask: maskOf(L, H, heads), headReplacement: mode === 'mean' ? plain.headOutputMeans : undefined });
      const r = await engine.ablate({ heads: heads.map(([layer, head]) => ({ layer, head })), mode }, LONG, { window });
      assert.equal(r.logprobAfter.length, window.end);
      assert.ok(maxDiff(r.logprobBefore, plain.logprobs) < 1e-4, `${mode}: before differs by ${maxDiff(r.logprobBefore, plain.logprobs)}`);
      assert.ok(maxDiff(r.logprobAfter, ref.logprobs) < 1e-4, `${mode}: after differs by ${maxDiff(r.logprobAfter, ref.logprobs)}`);
      assert.ok(maxDiff(plain.logprobs, ref.logprobs) > 1e-3, `${mode}: the ablation changed something`);
    }
    // The ranking runs each head from its own layer on the plain run's residual stream, chunk by chunk.
    const ranked = await engine.rankHeads(LONG, { window });
    for (const [l, h] of [[1, 0], [2, 1]]) {
      const ref = gpt2(ck.config, ck.weights, ids, { headMask: maskOf(L, H, [[l, h]]) });
      const want = meanLoss(ref.logprobs) - meanLoss(plain.logprobs);
      assert.ok(Math.abs(ranked.deltas[l * H + h] - want) < 1e-4, `head ${l}.${h}: ${ranked.deltas[l * H + h]} vs ${want}`);
    }
  });
});

describe('engine requests (EngineService in process)', () => {
  test('qk, value-weighted rows, ablate and rankHeads with progress events', async () => {
    const ck = await writeRandomCheckpoint(join(root, 'service'), { seed: 35, nLayer: 2, nHead: 2, nEmbd: 8, nPositions: 64 });
    const service = new EngineService();
    const events: { progressId: string; done: number; total: number }[] = [];
    service.emit = (name, payload) => name === 'rankProgress' && events.push(payload as (typeof events)[number]);
    const h = service.handlers;
    const signal = new AbortController().signal;
    try {
      await h.load!({ ref: 'test', dir: ck.dir, threads: 1 }, signal);
      const run = await h.analyze!({ text: TEXT, incremental: false }, signal);
      const T = run.tokens.length;
      const b = await h.qk!({ version: run.version, layer: 1, head: 0, index: T - 1 }, signal);
      assert.equal(b.probs.length, T);
      assert.ok(maxDiff(b.probs, b.attention) < 2e-3, 'fp16 storage rounds the stored row');
      const vw = await h.row!({ version: run.version, sel: { layer: 1, head: 0 }, index: T - 1, mode: 'value-weighted' }, signal);
      const raw = Array.from(b.probs, (p, j) => p * b.valueNorms[j]);
      const sum = raw.reduce((a, x) => a + x, 0);
      assert.ok(maxDiff(vw, raw.map((x) => x / sum)) < 2e-3);
      const norms = await h.valueNorms!({ version: run.version, layer: 1, head: 0 }, signal);
      assert.deepEqual(norms, b.valueNorms, 'the valueNorms request answers what qk does, for every token');
      await h.keepQueries!({ on: true }, signal);
      const next = await h.analyze!({ text: TEXT + ' more', incremental: true }, signal);
      await h.keepQueries!({ on: false }, signal);
      assert.ok(next.stats.reused > 0);
      const bNext = await h.qk!({ version: next.version, layer: 1, head: 0, index: T - 1 }, signal);
      assert.ok(maxDiff(bNext.probs, b.probs) < 1e-6, 'the same query in the longer run');
      const again = await h.analyze!({ text: TEXT, incremental: false }, signal);
      const plainRow = await h.row!({ version: again.version, sel: { layer: 1, head: 0 }, index: T - 1 }, signal);
      assert.ok(maxDiff(plainRow, b.attention) === 0, 'mode defaults to attention');
      const a = await h.ablate!({ text: TEXT, heads: [{ layer: 0, head: 1 }], mode: 'mean', at: 4 }, signal);
      assert.equal(a.surprisalDelta.length, T);
      assert.ok(Math.abs(a.surprisalAfter[5] - a.surprisalBefore[5] - a.surprisalDelta[5]) < 1e-4);
      assert.ok(Math.abs(a.lossDelta - (a.lossAfter - a.lossBefore)) < 1e-9);
      const r = await h.rankHeads!({ text: TEXT, mode: 'zero', progressId: 'p1' }, signal);
      assert.equal(r.deltas.length, 4);
      assert.deepEqual(events.map((e) => e.done), [0, 1, 2, 3, 4]);
      assert.ok(events.every((e) => e.progressId === 'p1' && e.total === 4));
      // The run the panel shows is still current.
      assert.equal((await h.row!({ version: again.version, sel: { layer: 0, head: 0 }, index: 2 }, signal)).length, 3);
    } finally {
      await service.dispose();
    }
  });
});
