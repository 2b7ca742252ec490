/**
 * The engine against the naive reference (test/reference/gpt2.ts) on random tiny checkpoints with fixed seeds:
 * attention, logits and log-probabilities agree to 1e-4; incremental runs equal full ones to 1e-5.
 */
import { maxDiff } from '../reference/compare';
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeRandomCheckpoint, type RandomCheckpointOptions } from '../fixtures/randomCheckpoint';
import { gpt2 } from '../reference/gpt2';
import { loadEngine } from '../../extension/engine/load';
import type { Gpt2Engine, Run } from '../../extension/engine/analyses/engine';
import { HeadlightError } from '../../extension/common/errors';
import { PlainForward } from '../fixtures/plainForward';
import { idText, idTokenizer } from './idTokens';

const TEXT = 'def greet(name):\n    return f"Hello, {name}!"  # 👋 café\r\nprint(greet("world"))';


/** Every head's full map of a run, [L, H, T, T]. */
function allMaps(run: Run, L: number, H: number): Float32Array {
  const T = run.length;
  const out = new Float32Array(L * H * T * T);
  for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) out.set(run.headMap(l, h), (l * H + h) * T * T);
  return out;
}

const root = mkdtempSync(join(tmpdir(), 'headlight-engine-'));
after(() => rmSync(root, { recursive: true, force: true }));

const cases: [string, RandomCheckpointOptions][] = [
  ['F32', { seed: 1, nLayer: 2, nHead: 2, nEmbd: 16, nPositions: 64 }],
  ['F16 with transformer. prefix and mask buffers', { seed: 2, nLayer: 2, nHead: 4, nEmbd: 16, nPositions: 64, dtype: 'F16', prefix: true, buffers: true }],
  ['BF16, erf GELU, scale_attn_by_inverse_layer_idx', { seed: 3, nLayer: 3, nHead: 2, nEmbd: 8, nPositions: 48, dtype: 'BF16', activation: 'gelu', scaleAttnByInverseLayerIdx: true }],
  ['n_inner, layer_norm_epsilon, relu', { seed: 4, nLayer: 1, nHead: 1, nEmbd: 12, nPositions: 40, nInner: 20, layerNormEpsilon: 1e-3, activation: 'relu' }],
];

for (const [name, opts] of cases) {
  describe(`engine vs reference: ${name}`, () => {
    let engine: Gpt2Engine;
    let ck: Awaited<ReturnType<typeof writeRandomCheckpoint>>;
    before(async () => {
      ck = await writeRandomCheckpoint(join(root, `ck-${opts.seed}`), opts);
      engine = (await loadEngine(ck.dir, { precision: 'fp32', threads: 1, logits: true })).engine;
    });
    after(() => engine.dispose());

    test('attention, logits and log-probabilities agree to 1e-4', async () => {
      const run = await engine.analyze(TEXT, { logits: true });
      const ids = run.tokens.map((t) => t.id);
      assert.ok(ids.length > 20, 'enough tokens to mean something');
      const ref = gpt2(ck.config, ck.weights, ids);
      const { nLayer: L, nHead: H } = ck.config;
      const att = allMaps(run, L, H);
      assert.ok(maxDiff(att, ref.attention) < 1e-4, `attention differs by ${maxDiff(att, ref.attention)}`);
      assert.ok(run.logits, 'logits returned');
      assert.ok(maxDiff(run.logits, ref.logits) < 1e-4, `logits differ by ${maxDiff(run.logits, ref.logits)}`);
      assert.ok(maxDiff(run.logprobs(), ref.logprobs) < 1e-4, `logprobs differ by ${maxDiff(run.logprobs(), ref.logprobs)}`);
      // The attention is far from uniform, so agreement is not trivial.
      const peak = Math.max(...run.row({ layer: 0, head: 0 }, ids.length - 1));
      assert.ok(peak > 2 / ids.length, `peak weight ${peak} is not far above uniform`);
      // Top predictions are the reference's arg-max logits, in order.
      const V = ck.config.vocabSize;
      for (const i of [1, 5, ids.length - 1]) {
        const row = Array.from(ref.logits.subarray((i - 1) * V, i * V));
        const best = row.map((v, id) => [v, id]).sort((a, b) => b[0] - a[0]).slice(0, 3).map((p) => p[1]);
        assert.deepEqual(run.predictions(i, 3).map((p) => p.id), best);
      }
    });

    test('ablating heads matches the reference with the same head mask', async () => {
      const { nLayer: L, nHead: H } = ck.config;
      const mask = Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => ((l + h) % 2 === 0 ? 0 : 1)));
      // The engine's graph, built logits-only, under the head mask (the engine's own runs are never masked).
      const forward = await PlainForward.create(ck.config, ck.weights);
      try {
        const ids = engine.tokenizer.encode(TEXT).map((t) => t.id);
        const logits = await forward.logits(ids, { mask: mask.flat() });
        const ref = gpt2(ck.config, ck.weights, ids, { headMask: mask });
        assert.ok(maxDiff(logits, ref.logits) < 1e-4, `ablated logits differ by ${maxDiff(logits, ref.logits)}`);
        const plain = gpt2(ck.config, ck.weights, ids);
        assert.ok(maxDiff(plain.logits, ref.logits) > 1e-3, 'the ablation changed something');
      } finally {
        await forward.dispose();
      }
    });
  });
}

describe('incremental runs', () => {
  let engine: Gpt2Engine;
  const L = 2;
  const H = 2;
  before(async () => {
    const ck = await writeRandomCheckpoint(join(root, 'inc'), { seed: 7, nLayer: L, nHead: H, nEmbd: 16, nPositions: 128 });
    engine = (await loadEngine(ck.dir, { precision: 'fp32', threads: 1 })).engine;
  });
  after(() => engine.dispose());

  const base = 'The quick brown fox jumps over the lazy dog. Then it naps in the sun, dreaming of rabbits and tea.';
  const edits: [string, string][] = [
    ['typing at the end', base + ' And'],
    ['an edit in the middle', base.replace('lazy', 'sleepy')],
    ['a deletion at the end', base.slice(0, 60)],
    ['an insertion at the start', 'So: ' + base],
    ['an edit that changes the token before it', base.replace('fox', 'foxes')],
  ];
  // Over ROW_BLOCK (64) new tokens on a cache: the cache goes in as an exact copy rather than the capacity buffer.
  const long = `${base} ${base} ${base}`;
  edits.push(['a long recompute after an early edit', long.replace('lazy', 'sleepy')]);
  for (const [what, edited] of edits) {
    test(`${what} equals a full recompute to 1e-5`, async () => {
      await engine.analyze(what.startsWith('a long') ? `${base} ${base} ${base}` : base);
      const inc = await engine.update(edited);
      const incMaps = allMaps(inc, L, H);
      const incLp = inc.logprobs();
      const incPred = Array.from({ length: inc.length + 1 }, (_, i) => inc.predictions(i, 5).map((p) => p.id));
      const full = await engine.analyze(edited);
      assert.ok(inc.stale, 'the older run is marked stale');
      assert.equal(inc.length, full.length);
      assert.ok(maxDiff(incMaps, allMaps(full, L, H)) < 1e-5);
      assert.ok(maxDiff(incLp, full.logprobs()) < 1e-5);
      assert.deepEqual(incPred, Array.from({ length: full.length + 1 }, (_, i) => full.predictions(i, 5).map((p) => p.id)));
      assert.equal(inc.stats.computed + inc.stats.reused, inc.length);
      // Reused: the common prefix of token ids, less its last position (whose next-token target changed).
      const a = engine.tokenizer.encode(what.startsWith('a long') ? `${base} ${base} ${base}` : base).map((t) => t.id);
      const b = full.tokens.map((t) => t.id);
      let lcp = 0;
      while (lcp < Math.min(a.length, b.length) && a[lcp] === b[lcp]) lcp++;
      assert.equal(inc.stats.reused, lcp >= b.length ? b.length : Math.max(0, lcp - 1));
      if (what.startsWith('a long')) assert.ok(inc.stats.computed > 64 && inc.stats.reused > 0, `computed ${inc.stats.computed}`);
    });
  }

  test('the same text again computes nothing', async () => {
    await engine.analyze(base);
    const again = await engine.update(base);
    assert.equal(again.stats.computed, 0);
    assert.equal(again.length, engine.tokenizer.encode(base).length);
  });

  test('a stale run refuses queries', async () => {
    const first = await engine.analyze(base);
    await engine.update(base + '!');
    assert.throws(() => first.row({ layer: 0, head: 0 }, 1), (e: unknown) => e instanceof HeadlightError && e.code === 'stale-run');
  });

  test('a cancelled run leaves the previous one intact', async () => {
    const first = await engine.analyze(base);
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(engine.update(base + ' more', { signal: ac.signal }), (e: unknown) => e instanceof HeadlightError && e.code === 'cancelled');
    assert.equal(first.stale, false);
    assert.equal(first.row({ layer: 1, head: 1 }, 5).length, 6);
  });
});

describe('windows and odd input', () => {
  let engine: Gpt2Engine;
  before(async () => {
    const ck = await writeRandomCheckpoint(join(root, 'win'), { seed: 11, nLayer: 1, nHead: 2, nEmbd: 8, nPositions: 32 });
    engine = (await loadEngine(ck.dir, { precision: 'fp16', threads: 1 })).engine;
  });
  after(() => engine.dispose());

  const long = 'one two three four five six seven eight nine ten '.repeat(20);

  test('text longer than the context is windowed, and the run says which window', async () => {
    const run = await engine.analyze(long);
    assert.equal(run.length, 32);
    assert.deepEqual(run.window, { start: 0, end: 32 });
    assert.ok(run.totalTokens > 100);
    const later = await engine.analyze(long, { window: { start: 40, end: 70 } });
    assert.equal(later.length, 30);
    assert.equal(later.tokens[0].start, engine.tokenizer.encode(long)[40].start);
  });

  test('a window outside the text or longer than the context is refused clearly', async () => {
    await assert.rejects(engine.analyze('short text', { window: { start: 0, end: 50 } }), (e: unknown) => e instanceof HeadlightError && e.code === 'bad-window' && /outside/.test(e.message));
    await assert.rejects(engine.analyze(long, { window: { start: 0, end: 40 } }), (e: unknown) => e instanceof HeadlightError && e.code === 'window-too-long' && /at most 32/.test(e.message));
  });

  test('empty text is an empty run, not an error', async () => {
    const run = await engine.analyze('');
    assert.equal(run.length, 0);
    assert.deepEqual(run.window, { start: 0, end: 0 });
    assert.deepEqual(run.predictions(0), []);
  });

  test('fp16 storage stays within half precision of the fp32 answer', async () => {
    const run16 = await engine.analyze(long.slice(0, 100));
    const row16 = run16.row({ layer: 0, head: 1 }, run16.length - 1);
    const sum = row16.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 5e-3, `row sums to ${sum}`);
  });
});

describe('long runs: the LM head in row blocks, the window in chunks', () => {
  // 600 positions: three LM-head blocks of 256 rows; GPT-2's vocabulary, where onnxruntime's TopK dies on a block
  // with no rows unless the graph skips it. Two threads, as the extension runs.
  let engine: Gpt2Engine;
  let ck: Awaited<ReturnType<typeof writeRandomCheckpoint>>;
  before(async () => {
    ck = await writeRandomCheckpoint(join(root, 'lm-blocks'), { seed: 21, nLayer: 1, nHead: 2, nEmbd: 8, nPositions: 600 });
    engine = (await loadEngine(ck.dir, { precision: 'fp32', threads: 2, tokenizer: idTokenizer })).engine;
  });
  after(() => engine.dispose());
  const ids = Array.from({ length: 300 }, (_, i) => (i * 7919) % 50257);

  test('log-probabilities and predictions agree with the reference across blocks and with empty blocks', async () => {
    const ref = gpt2(ck.config, ck.weights, ids);
    for (const T of [300, 10, 1]) {
      const run = await engine.analyze(idText(ids.slice(0, T)));
      const want = ref.logprobs.subarray(0, T); // ln p(ids[t] | ids[<t]) needs only the first T tokens
      assert.ok(maxDiff(run.logprobs(), want) < 1e-4, `T=${T}: logprobs differ by ${maxDiff(run.logprobs(), want)}`);
      if (T === 300) {
        // Computed as two chunks (256 + 44 positions, the second on the first's cache): the maps are whole.
        const att = allMaps(run, 1, 2);
        assert.ok(maxDiff(att, ref.attention) < 1e-4, `attention differs by ${maxDiff(att, ref.attention)}`);
      }
      const V = ck.config.vocabSize;
      for (const i of [1, T - 1, T].filter((i) => i >= 1)) {
        const row = Array.from(ref.logits.subarray((i - 1) * V, i * V));
        const best = row.map((v, id) => [v, id]).sort((a, b) => b[0] - a[0]).slice(0, 3).map((p) => p[1]);
        assert.deepEqual(run.predictions(i, 3).map((p) => p.id), best, `T=${T}, predictions after position ${i - 1}`);
      }
    }
  });

  test('a run cancelled between chunks stops there, and the next update reuses the chunk it stored', async () => {
    const old = await engine.analyze(idText(ids.slice(0, 20).reverse()));
    let reads = 0;
    // Not aborted when the run starts nor when its first chunk is stored; aborted when the second is about to start.
    const signal = { get aborted() { return ++reads > 2; } } as AbortSignal;
    await assert.rejects(engine.analyze(idText(ids), { signal }), (e: unknown) => e instanceof HeadlightError && e.code === 'cancelled');
    assert.equal(old.stale, true, 'the first chunk replaced the older run');
    const next = await engine.update(idText(ids));
    assert.equal(next.stats.reused, 255, 'the stored chunk (less its last position) is reused');
    assert.equal(next.stats.computed, 45);
    const lp = next.logprobs();
    const full = await engine.analyze(idText(ids));
    assert.ok(maxDiff(lp, full.logprobs()) < 1e-5);
  });

  test('an incremental run past a block boundary equals a full one', async () => {
    await engine.analyze(idText(ids.slice(0, 250)));
    const inc = await engine.update(idText(ids));
    assert.equal(inc.stats.computed, 51);
    const lp = inc.logprobs();
    const full = await engine.analyze(idText(ids));
    assert.ok(maxDiff(lp, full.logprobs()) < 1e-5);
  });
});
