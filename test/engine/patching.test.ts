/**
 * Activation patching against float64 references with their own patching hooks (test/reference/gpt2.ts
 * patchResidPre/patchHeadOut options; RefHooks of test/reference/families/*), on random tiny checkpoints of GPT-2,
 * Llama (GQA), Qwen3, GPT-NeoX, Gemma 2 (soft-caps, post-norms), Gemma 3 and GPT-Neo:
 *   every patched metric (resid [L, T], heads [L, H]) and both unpatched metrics ≤ 1e-3 of the reference's;
 *   patching every position of layer 0 gives the clean metric; an identical pair gives 0 difference everywhere.
 * The reference's metric is logits[at, answer] − logits[at, wrong] of its own forward with the hook applied.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpt2 } from '../reference/gpt2';
import { llamaForward } from '../reference/families/llama';
import { neoxForward } from '../reference/families/neox';
import { gemma2Spec, gemma3Spec, gemmaForward } from '../reference/families/gemma';
import { neoForward, neoSpec } from '../reference/families/neo';
import type { RefHooks } from '../reference/families/types';
import { llamaSpec, neoxSpec, type CheckpointSpec, type WriteOptions } from '../fixtures/hfCheckpoint';
import { writeRandomCheckpoint } from '../fixtures/randomCheckpoint';
import { randomIds, writeFamilyCheckpoint } from './familyCheckpoint';
import { loadEngine } from '../../extension/engine/load';
import type { Gpt2Engine } from '../../extension/engine/analyses/engine';
import { Lens } from '../../extension/engine/analyses/lens';
import type { PatchResult } from '../../extension/common/engineProtocol';
import { patchActivations, patchResidRows, type PatchProgress } from '../../extension/engine/analyses/patching';
import { HeadlightError } from '../../extension/common/errors';
import { idText, idTokenizer } from './idTokens';

const root = mkdtempSync(join(tmpdir(), 'headlight-patch-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A reference forward: logits [T·V] and the stream entering each layer, with hooks. */
type Forward = (ids: number[], hooks: RefHooks) => { logits: ArrayLike<number>; residPre: Float64Array[] };

interface Case {
  name: string;
  T: number;
  setup(dir: string): Promise<{ dir: string; vocab: number; forward: Forward }>;
}

function familyCase(name: string, spec: CheckpointSpec, write: WriteOptions, T: number, forward: typeof llamaForward): Case {
  return {
    name,
    T,
    async setup(dir) {
      const ck = await writeFamilyCheckpoint(dir, spec, write);
      return { dir: ck.dir, vocab: ck.config.vocab_size as number, forward: (ids, hooks) => forward(ck.config, ck.weights, ids, hooks) };
    },
  };
}

const CASES: Case[] = [
  {
    name: 'gpt2: LayerNorm, tied head',
    T: 10,
    async setup(dir) {
      const ck = await writeRandomCheckpoint(dir, { seed: 61, nLayer: 3, nHead: 2, nEmbd: 16, nPositions: 64, vocabSize: 300 });
      return {
        dir: ck.dir,
        vocab: ck.config.vocabSize,
        forward: (ids, hooks) => {
          const r = gpt2(ck.config, ck.weights, ids, { trace: true, patchResidPre: hooks.patchResidPre, patchHeadOut: hooks.patchHeadOut });
          return { logits: r.logits, residPre: r.trace!.residPre };
        },
      };
    },
  },
  familyCase('llama: GQA 4/2, biases', llamaSpec({ modelType: 'llama', layers: 2, hidden: 32, heads: 4, kvHeads: 2, intermediate: 48, vocab: 320, attentionBias: true, mlpBias: true }), { seed: 62 }, 9, llamaForward),
  familyCase('qwen3: q/k norms, head_dim 16', llamaSpec({ modelType: 'qwen3', layers: 2, hidden: 40, heads: 4, kvHeads: 2, headDim: 16, intermediate: 56, vocab: 300 }), { seed: 63 }, 8, llamaForward),
  familyCase('gpt_neox: parallel residual', neoxSpec({ layers: 2, hidden: 32, heads: 4, vocab: 300, rotaryPct: 0.25, useParallelResidual: true }), { seed: 64 }, 9, neoxForward),
  familyCase(
    'gemma2: soft-caps, post-norms, sliding window 4',
    gemma2Spec({ layers: 2, hidden: 32, heads: 4, kvHeads: 2, headDim: 16, intermediate: 48, vocab: 300, slidingWindow: 4, queryPreAttnScalar: 24, attnSoftcap: 4, finalSoftcap: 5, normStd: 0.3 }),
    { seed: 65 },
    9,
    gemmaForward,
  ),
  familyCase('gemma3_text: q/k norms, MQA', gemma3Spec({ layers: 3, hidden: 40, heads: 4, kvHeads: 1, headDim: 16, intermediate: 56, vocab: 320, slidingWindow: 4, slidingWindowPattern: 3, normStd: 0.3 }), { seed: 66 }, 8, gemmaForward),
  familyCase('gpt_neo: learned positions, local layers', neoSpec({ layers: 2, hidden: 32, heads: 4, vocab: 300, windowSize: 4 }), { seed: 67 }, 8, neoForward),
];

const TOL = 1e-3;

for (const c of CASES) {
  describe(`activation patching — ${c.name}`, () => {
    let engine: Gpt2Engine;
    let lens: Lens;
    let ref: Awaited<ReturnType<Case['setup']>>;
    let clean: number[];
    let corrupt: number[];
    let answer: number;
    let wrong: number;
    before(async () => {
      ref = await c.setup(join(root, c.name.split(':')[0]));
      engine = (await loadEngine(ref.dir, { precision: 'fp32', threads: 1, tokenizer: idTokenizer })).engine;
      lens = new Lens(engine, ref.dir, { threads: 1 });
      clean = randomIds(c.T * 11, c.T, ref.vocab);
      corrupt = clean.slice();
      const swaps = randomIds(c.T * 13, 3, ref.vocab);
      [1, Math.floor(c.T / 2), c.T - 2].forEach((t, i) => (corrupt[t] = swaps[i] === clean[t] ? swaps[i] + 1 : swaps[i]));
      [answer, wrong] = randomIds(c.T * 17, 2, ref.vocab);
      if (answer === wrong) wrong = answer + 1;
    });
    after(async () => {
      await lens.dispose();
      await engine.dispose();
    });

    const refMetric = (ids: number[], hooks: RefHooks, at: number) => {
      const { logits } = ref.forward(ids, hooks);
      return logits[at * ref.vocab + answer] - logits[at * ref.vocab + wrong];
    };

    /** Every cell of `r` (patching `cleanIds` into `corruptIds`, metric at `at`) against the reference's own patching. */
    const expectReference = (r: PatchResult, cleanIds: number[], corruptIds: number[], at: number) => {
      const { nLayer: L, nHead: H } = engine.dims;
      const T = cleanIds.length;
      // The clean run's streams and head outputs, from the reference itself.
      const cleanTrace = ref.forward(cleanIds, {});
      const z: Float64Array[][][] = Array.from({ length: L }, () => Array.from({ length: H }, () => []));
      ref.forward(cleanIds, { patchHeadOut: (l, h, t, v) => (z[l][h][t] = Float64Array.from(v)) });
      const clean0 = cleanTrace.logits[at * ref.vocab + answer] - cleanTrace.logits[at * ref.vocab + wrong];
      const corrupt0 = refMetric(corruptIds, {}, at);
      assert.ok(Math.abs(r.metricClean - clean0) <= TOL, `clean metric ${r.metricClean} vs ${clean0}`);
      assert.ok(Math.abs(r.metricCorrupt - corrupt0) <= TOL, `corrupt metric ${r.metricCorrupt} vs ${corrupt0}`);
      assert.ok(Math.abs(clean0 - corrupt0) > 1e-3, 'the pair should differ in its metric for this test to mean something');
      let worst = 0;
      for (let l = 0; l < L; l++) {
        for (let t = 0; t < T; t++) {
          const want = refMetric(corruptIds, { patchResidPre: (ll, tt, row) => ll === l && tt === t && row.set(cleanTrace.residPre[l].subarray(t * row.length, (t + 1) * row.length)) }, at);
          const d = Math.abs(r.resid[l * T + t] - want);
          worst = Math.max(worst, d);
          assert.ok(d <= TOL, `resid L${l} t${t}: ${r.resid[l * T + t]} vs reference ${want}`);
        }
        for (let h = 0; h < H; h++) {
          const want = refMetric(corruptIds, { patchHeadOut: (ll, hh, t, v) => ll === l && hh === h && v.set(z[l][h][t]) }, at);
          const d = Math.abs(r.heads[l * H + h] - want);
          worst = Math.max(worst, d);
          assert.ok(d <= TOL, `head L${l}H${h}: ${r.heads[l * H + h]} vs reference ${want}`);
        }
      }
      // Positions where the texts agree enter layer 0 the same: patching them changes nothing.
      for (let t = 0; t < T; t++) if (cleanIds[t] === corruptIds[t]) assert.ok(Math.abs(r.resid[t] - r.metricCorrupt) <= 1e-5, `layer 0, equal token at ${t}`);
      assert.ok(worst <= TOL);
    };

    test('every resid and head cell ≤ 1e-3 of the reference with its own patching', async () => {
      const { nLayer: L, nHead: H } = engine.dims;
      const T = c.T;
      const at = T - 1;
      const events: PatchProgress[] = [];
      const r = await patchActivations(engine, () => lens.readoutHead(), { clean: idText(clean), corrupt: idText(corrupt), answer, wrong }, { onProgress: (p) => events.push(p) });
      const cells = events.filter((p) => p.cell).length;
      assert.equal(r.position, at);
      assert.equal(cells, L * T + L * H);
      assert.equal(r.cells, cells);
      const firstDiff = clean.findIndex((id, i) => id !== corrupt[i]);
      assert.equal(r.runs, cells - L * firstDiff, 'resid cells before the first changed token take no run');
      // the first event comes before any run and carries both ends (a view normalizes streamed cells with them); so does every later one
      assert.equal(events[0].done, 0);
      assert.equal(events[0].cell, undefined);
      assert.equal(events[0].total, cells);
      assert.ok(Math.abs(events[0].metricClean - r.metricClean) <= 1e-9, `first event's clean metric ${events[0].metricClean} vs the result's ${r.metricClean}`);
      assert.ok(Math.abs(events[0].metricCorrupt - r.metricCorrupt) <= 1e-9, `first event's corrupted metric ${events[0].metricCorrupt} vs the result's ${r.metricCorrupt}`);
      events.forEach((p, k) => {
        assert.equal(p.done, k);
        assert.equal(p.metricClean, events[0].metricClean);
        assert.equal(p.metricCorrupt, events[0].metricCorrupt);
      });
      expectReference(r, clean, corrupt, at);
    });

    test('a one-token change near the end: cells before it take no run, heads run from it, all match the reference', async () => {
      const { nLayer: L, nHead: H } = engine.dims;
      const T = c.T;
      const late = clean.slice();
      late[T - 3] = (clean[T - 3] + 1 + (corrupt[T - 2] % (ref.vocab - 1))) % ref.vocab; // any other id
      const r = await patchActivations(engine, () => lens.readoutHead(), { clean: idText(clean), corrupt: idText(late), answer, wrong });
      assert.equal(r.cells, L * T + L * H);
      assert.equal(r.runs, L * 3 + L * H, 'resid runs at the last three positions only');
      expectReference(r, clean, late, T - 1);
    });

    test('a metric position before the end: cells after it are the corrupted metric; the rest match the reference', async () => {
      const { nLayer: L } = engine.dims;
      const T = c.T;
      const at = T - 3;
      const r = await patchActivations(engine, () => lens.readoutHead(), { clean: idText(clean), corrupt: idText(corrupt), answer, wrong, at, targets: ['resid'] });
      assert.equal(r.heads.length, 0);
      const cleanTrace = ref.forward(clean, {});
      for (let l = 0; l < L; l++) {
        for (let t = 0; t < T; t++) {
          if (t > at) {
            assert.equal(r.resid[l * T + t], Math.fround(r.metricCorrupt));
            continue;
          }
          const want = refMetric(corrupt, { patchResidPre: (ll, tt, row) => ll === l && tt === t && row.set(cleanTrace.residPre[l].subarray(t * row.length, (t + 1) * row.length)) }, at);
          assert.ok(Math.abs(r.resid[l * T + t] - want) <= TOL, `resid L${l} t${t} at ${at}: ${r.resid[l * T + t]} vs ${want}`);
        }
      }
    });

    test('patching every position of layer 0 gives the clean metric', async () => {
      const p = { clean: idText(clean), corrupt: idText(corrupt), answer, wrong };
      const all = await patchResidRows(engine, () => lens.readoutHead(), p, 0, Array.from({ length: c.T }, (_, t) => t));
      const r = await patchActivations(engine, () => lens.readoutHead(), { ...p, targets: [] });
      assert.ok(Math.abs(all - r.metricClean) <= 1e-4, `${all} vs clean ${r.metricClean}`);
      assert.ok(Math.abs(r.metricClean - r.metricCorrupt) > 1e-3);
    });

    test('an identical pair gives 0 difference everywhere', async () => {
      const r = await patchActivations(engine, () => lens.readoutHead(), { clean: idText(clean), corrupt: idText(clean), answer, wrong });
      assert.equal(r.metricClean, r.metricCorrupt);
      for (const v of [...r.resid, ...r.heads]) assert.ok(Math.abs(v - r.metricClean) <= 1e-5, `${v} vs ${r.metricClean}`);
    });
  });
}

describe('activation patching — errors and cancellation', () => {
  let engine: Gpt2Engine;
  let lens: Lens;
  before(async () => {
    const ck = await writeRandomCheckpoint(join(root, 'errors'), { seed: 68, nLayer: 2, nHead: 2, nEmbd: 16, nPositions: 64, vocabSize: 200 });
    engine = (await loadEngine(ck.dir, { precision: 'fp32', threads: 1, tokenizer: idTokenizer })).engine;
    lens = new Lens(engine, ck.dir, { threads: 1 });
  });
  after(async () => {
    await lens.dispose();
    await engine.dispose();
  });
  const readout = () => lens.readoutHead();

  test('different token counts: an error that says so and what to do', async () => {
    await assert.rejects(patchActivations(engine, readout, { clean: '5 6 7', corrupt: '5 6', answer: 1, wrong: 2 }), (e: unknown) => {
      assert.ok(e instanceof HeadlightError);
      assert.equal(e.code, 'patch-length-mismatch');
      assert.match(e.message, /3 tokens.*2/);
      assert.match(e.hint ?? '', /same number of tokens/);
      return true;
    });
  });

  test('bad answer, equal tokens, bad position', async () => {
    const p = { clean: '5 6 7', corrupt: '5 9 7' };
    await assert.rejects(patchActivations(engine, readout, { ...p, answer: 200, wrong: 2 }), /answer token id 200 is outside/);
    await assert.rejects(patchActivations(engine, readout, { ...p, answer: 3, wrong: 3 }), /both 3/);
    await assert.rejects(patchActivations(engine, readout, { ...p, answer: 3, wrong: 4, at: 3 }), /Position 3 is outside/);
  });

  test('cancel stops between runs', async () => {
    const ac = new AbortController();
    let seen = 0;
    const p = patchActivations(engine, readout, { clean: '5 6 7 8 9', corrupt: '5 6 1 8 9', answer: 3, wrong: 4 }, { signal: ac.signal, onProgress: (x) => x.cell && ++seen === 3 && ac.abort() });
    await assert.rejects(p, (e: unknown) => e instanceof HeadlightError && e.code === 'cancelled');
    assert.equal(seen, 3);
  });
});
