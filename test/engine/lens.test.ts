/**
 * The logit lens and direct logit attribution against float64 references, on random tiny checkpoints of every
 * family the engine runs (GPT-2; Llama/Mistral/Qwen2/Qwen3; GPT-NeoX). The references compute both from their own
 * forward (test/reference/gpt2.ts with `trace`, test/reference/families/* RefResult's residPre/headOut/attnOut/
 * mlpOut): the final norm, frozen scale and unembedding are a few lines here, read from the checkpoint's tensors by
 * their Hugging Face names, never from the engine.
 *   lens log-probabilities ≤ 1e-4; top-1 equal wherever the reference's top two differ by more than 1e-4;
 *   the settle layer equal to the reference's; the one-token lens equal to the grid's column;
 *   attribution parts ≤ 1e-3 of the reference's, and their sum equal to the reference logit (difference) to 1e-3.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { maxDiff } from '../reference/compare';
import { gpt2 } from '../reference/gpt2';
import { llamaForward } from '../reference/families/llama';
import { neoxForward } from '../reference/families/neox';
import { gemma2Spec, gemma3Spec, gemmaForward, gemmaPrefix, gemmaShape } from '../reference/families/gemma';
import { neoForward, neoPrefix, neoShape, neoSpec } from '../reference/families/neo';
import type { RefConfig, RefWeights } from '../reference/families/types';
import { llamaSpec, neoxSpec, type CheckpointSpec, type WriteOptions } from '../fixtures/hfCheckpoint';
import { writeRandomCheckpoint } from '../fixtures/randomCheckpoint';
import { randomIds, writeFamilyCheckpoint } from './familyCheckpoint';
import { loadEngine } from '../../extension/engine/load';
import type { Gpt2Engine } from '../../extension/engine/analyses/engine';
import { Lens } from '../../extension/engine/analyses/lens';
import { attribute } from '../../extension/engine/analyses/attribution';
import { idText, idTokenizer } from './idTokens';
import { logSoftmax, refAttribution, refLogits, row, top2, type RefReadout, type Trace } from './lensReference';

const root = mkdtempSync(join(tmpdir(), 'headlight-lens-'));
after(() => rmSync(root, { recursive: true, force: true }));

interface Case {
  name: string;
  T: number;
  /** Writes the checkpoint; returns its folder, vocab, the reference trace and readout for ids. */
  setup(dir: string): Promise<{ dir: string; vocab: number; trace: (ids: number[]) => Trace; readout: RefReadout }>;
}

const get = (w: RefWeights, key: string) => {
  const t = w.get(key);
  if (!t) throw new Error(`reference: no ${key}`);
  return t.data;
};

function familyCase(name: string, spec: CheckpointSpec, write: WriteOptions, T: number, forward: typeof llamaForward, readout: (c: RefConfig, w: RefWeights) => RefReadout): Case {
  return {
    name,
    T,
    async setup(dir) {
      const ck = await writeFamilyCheckpoint(dir, spec, write);
      return { dir: ck.dir, vocab: ck.config.vocab_size as number, trace: (ids) => forward(ck.config, ck.weights, ids), readout: readout(ck.config, ck.weights) };
    },
  };
}

const llamaReadout = (c: RefConfig, w: RefWeights): RefReadout => ({
  kind: 'rms',
  w: get(w, 'model.norm.weight'),
  eps: c.rms_norm_eps as number,
  unembed: get(w, w.has('lm_head.weight') && !c.tie_word_embeddings ? 'lm_head.weight' : 'model.embed_tokens.weight'),
  softcap: null,
  attnBias: (l) => w.get(`model.layers.${l}.self_attn.o_proj.bias`)?.data,
});

const neoxReadout = (c: RefConfig, w: RefWeights): RefReadout => ({
  kind: 'layer',
  w: get(w, 'gpt_neox.final_layer_norm.weight'),
  b: get(w, 'gpt_neox.final_layer_norm.bias'),
  eps: c.layer_norm_eps as number,
  unembed: get(w, c.tie_word_embeddings ? 'gpt_neox.embed_in.weight' : 'embed_out.weight'),
  softcap: null,
  attnBias: (l) => w.get(`gpt_neox.layers.${l}.attention.dense.bias`)?.data,
});

/** Gemma: (1 + w) norms, the final soft-cap, and each layer's post-attention norm (frozen in attribution). */
const gemmaReadout = (c: RefConfig, w: RefWeights): RefReadout => {
  const s = gemmaShape(c);
  const p = gemmaPrefix(w);
  const plusOne = (key: string) => get(w, key).map((x) => 1 + x);
  const head = w.get('lm_head.weight') ?? w.get('language_model.lm_head.weight');
  return {
    kind: 'rms',
    w: plusOne(`${p}norm.weight`),
    eps: s.eps,
    unembed: head && c.tie_word_embeddings === false ? head.data : get(w, `${p}embed_tokens.weight`),
    softcap: s.finalSoftcap,
    postAttn: (l) => ({ w: plusOne(`${p}layers.${l}.post_attention_layernorm.weight`), eps: s.eps }),
    attnBias: (l) => w.get(`${p}layers.${l}.self_attn.o_proj.bias`)?.data,
  };
};

const neoReadout = (c: RefConfig, w: RefWeights): RefReadout => {
  const p = neoPrefix(w);
  return {
    kind: 'layer',
    w: get(w, `${p}ln_f.weight`),
    b: get(w, `${p}ln_f.bias`),
    eps: neoShape(c).eps,
    unembed: w.get('lm_head.weight')?.data ?? get(w, `${p}wte.weight`),
    softcap: null,
    attnBias: (l) => w.get(`${p}h.${l}.attn.attention.out_proj.bias`)?.data,
  };
};

const CASES: Case[] = [
  {
    name: 'gpt2: LayerNorm with bias, tied head, c_proj bias',
    T: 20,
    async setup(dir) {
      const ck = await writeRandomCheckpoint(dir, { seed: 41, nLayer: 3, nHead: 2, nEmbd: 16, nPositions: 64, vocabSize: 400 });
      const { config, weights } = ck;
      return {
        dir: ck.dir,
        vocab: config.vocabSize,
        trace: (ids) => gpt2(config, weights, ids, { trace: true }).trace!,
        readout: {
          kind: 'layer',
          w: weights.lnF.weight,
          b: weights.lnF.bias,
          eps: config.layerNormEpsilon,
          unembed: Float64Array.from(weights.wte),
          softcap: null,
          attnBias: (l) => weights.layers[l].attnProj.bias,
        },
      };
    },
  },
  familyCase(
    'llama: GQA 4/2, o_proj and MLP biases, untied',
    llamaSpec({ modelType: 'llama', layers: 2, hidden: 32, heads: 4, kvHeads: 2, intermediate: 48, vocab: 320, attentionBias: true, mlpBias: true }),
    { seed: 42 },
    24,
    llamaForward,
    llamaReadout,
  ),
  familyCase('qwen2: tied, q/k/v biases, BF16', llamaSpec({ modelType: 'qwen2', layers: 2, hidden: 48, heads: 4, kvHeads: 2, intermediate: 64, vocab: 400, tie: true }), { seed: 43, dtype: 'BF16' }, 22, llamaForward, llamaReadout),
  familyCase('qwen3: q/k norms, head_dim 16 ≠ hidden/heads', llamaSpec({ modelType: 'qwen3', layers: 2, hidden: 40, heads: 4, kvHeads: 2, headDim: 16, intermediate: 56, vocab: 300 }), { seed: 44 }, 20, llamaForward, llamaReadout),
  familyCase('mistral: sliding window 8 < T, MQA', llamaSpec({ modelType: 'mistral', layers: 2, hidden: 32, heads: 4, kvHeads: 1, headDim: 16, intermediate: 48, vocab: 256, slidingWindow: 8 }), { seed: 45, dtype: 'F16' }, 26, llamaForward, llamaReadout),
  familyCase('gpt_neox: parallel residual, dense bias, untied', neoxSpec({ layers: 2, hidden: 32, heads: 4, vocab: 300, rotaryPct: 0.25, useParallelResidual: true }), { seed: 46 }, 22, neoxForward, neoxReadout),
  familyCase(
    'gemma2: final soft-cap 2, attention soft-cap 4, post-norms, GQA 4/2',
    gemma2Spec({ layers: 2, hidden: 32, heads: 4, kvHeads: 2, headDim: 16, intermediate: 48, vocab: 300, slidingWindow: 8, queryPreAttnScalar: 24, attnSoftcap: 4, finalSoftcap: 2, normStd: 0.3 }),
    { seed: 48 },
    24,
    gemmaForward,
    gemmaReadout,
  ),
  familyCase(
    'gemma2: untied lm_head, final soft-cap 5, BF16',
    gemma2Spec({ layers: 3, hidden: 48, heads: 2, kvHeads: 1, headDim: 32, intermediate: 64, vocab: 256, slidingWindow: 6, tie: false, attnSoftcap: 3, finalSoftcap: 5 }),
    { seed: 49, dtype: 'BF16' },
    20,
    gemmaForward,
    gemmaReadout,
  ),
  familyCase(
    'gemma3_text: no soft-caps, q/k norms, MQA, heads × head_dim ≠ hidden',
    gemma3Spec({ layers: 3, hidden: 40, heads: 4, kvHeads: 1, headDim: 16, intermediate: 56, vocab: 320, slidingWindow: 7, slidingWindowPattern: 3, normStd: 0.3 }),
    { seed: 50 },
    22,
    gemmaForward,
    gemmaReadout,
  ),
  familyCase('gpt_neo: learned positions, out_proj bias, local/global layers', neoSpec({ layers: 2, hidden: 32, heads: 4, vocab: 300, windowSize: 6 }), { seed: 53 }, 20, neoForward, neoReadout),
  familyCase('gpt_neox: sequential residual', neoxSpec({ layers: 3, hidden: 32, heads: 2, vocab: 256, rotaryPct: 0.5, useParallelResidual: false }), { seed: 47 }, 18, neoxForward, neoxReadout),
];

for (const c of CASES) {
  describe(`logit lens and attribution — ${c.name}`, () => {
    let engine: Gpt2Engine;
    let lens: Lens;
    let ref: Awaited<ReturnType<Case['setup']>>;
    let ids: number[];
    before(async () => {
      ref = await c.setup(join(root, c.name.split(':')[0] + '-' + c.T));
      engine = (await loadEngine(ref.dir, { precision: 'fp32', threads: 1, tokenizer: idTokenizer })).engine;
      lens = new Lens(engine, ref.dir, { threads: 1 });
      ids = randomIds(c.T * 7, c.T, ref.vocab);
    });
    after(async () => {
      await lens.dispose();
      await engine.dispose();
    });

    test('lens grid: log-probabilities ≤ 1e-4, top-1 where the reference is decided, settle layers; one token equals its column', async () => {
      const run = await engine.analyze(idText(ids));
      const grid = await lens.grid(run);
      const tr = ref.trace(ids);
      const { nLayer: L, nEmbd: E } = engine.dims;
      const T = ids.length;
      assert.equal(grid.rows, L + 1);
      let compared = 0;
      let decided = 0;
      const refTop1 = new Int32Array((L + 1) * T);
      for (let l = 0; l <= L; l++) {
        for (let t = 0; t < T; t++) {
          const logp = logSoftmax(refLogits(ref.readout, row(tr.residPre[l], t, E)).capped);
          const order = top2(logp);
          refTop1[l * T + t] = order[0];
          if (t + 1 < T) {
            const d = Math.abs(grid.logprob[l * T + t] - logp[ids[t + 1]]);
            assert.ok(d <= 1e-4, `lens log-prob at layer ${l}, token ${t} differs by ${d}`);
            compared++;
          } else assert.ok(Number.isNaN(grid.logprob[l * T + t]), 'no next token at the last position: NaN');
          if (logp[order[0]] - logp[order[1]] > 1e-4) {
            assert.equal(grid.top1[l * T + t], order[0], `top-1 at layer ${l}, token ${t}`);
            decided++;
          }
        }
      }
      assert.ok(decided > 0.9 * (L + 1) * T, `top-1 compared at ${decided} of ${(L + 1) * T} cells`);
      // Row L is the model's own output.
      const outLogprobs = run.logprobs();
      assert.ok(maxDiff(Array.from({ length: T - 1 }, (_, t) => grid.logprob[L * T + t]), outLogprobs.subarray(1)) <= 1e-4, 'row L equals the run\'s next-token log-probabilities');
      // The lens is not trivial: early layers disagree with the output somewhere.
      assert.ok(Array.from({ length: T }, (_, t) => grid.top1[t] !== grid.top1[L * T + t]).some(Boolean), 'the embeddings row guesses differently from the output somewhere');
      for (let t = 0; t < T; t++) {
        let want = L;
        while (want > 0 && refTop1[(want - 1) * T + t] === refTop1[L * T + t]) want--;
        assert.equal(grid.settles[t], want, `settle layer of token ${t}`);
      }
      for (const i of [0, Math.floor(T / 2), T - 1]) {
        const one = await lens.at(run, i);
        for (let l = 0; l <= L; l++) {
          if (i + 1 < T) assert.ok(Math.abs(one.logprob[l] - grid.logprob[l * T + i]) <= 1e-5, `one-token lens at ${i}, layer ${l}`);
          assert.equal(one.top[l][0].id, grid.top1[l * T + i]);
        }
        assert.equal(one.settles, grid.settles[i]);
        assert.equal(one.target, i + 1 < T ? ids[i + 1] : null);
      }
      assert.ok(compared > 0);
    });

    test('lens after an incremental edit reads the live cache: equals the reference of the new ids', async () => {
      await engine.analyze(idText(ids));
      const edited = ids.slice();
      const at = Math.floor(ids.length / 2);
      edited[at] = 3 + ((edited[at] + 5) % (ref.vocab - 3));
      const run = await engine.update(idText(edited));
      assert.ok(run.stats.reused > 0);
      const tr = ref.trace(edited);
      const E = engine.dims.nEmbd;
      const i = edited.length - 2;
      const one = await lens.at(run, i);
      for (let l = 0; l <= engine.dims.nLayer; l++) {
        const logp = logSoftmax(refLogits(ref.readout, row(tr.residPre[l], i, E)).capped);
        assert.ok(Math.abs(one.logprob[l] - logp[edited[i + 1]]) <= 1e-4, `layer ${l}`);
      }
    });

    test('attribution: parts ≤ 1e-3 of the reference and sum to the logit (difference); default target and a contrast', async () => {
      const run = await engine.analyze(idText(ids));
      const tr = ref.trace(ids);
      const { nEmbd: E } = engine.dims;
      const T = ids.length;
      for (const [i, vs] of [[Math.floor(T / 2), null], [T - 3, 'second'], [T - 1, null]] as const) {
        let vsId: number | null = null;
        if (vs === 'second') vsId = (await lens.at(run, i)).top[engine.dims.nLayer].find((p) => p.id !== ids[i + 1])!.id;
        const got = await attribute(lens, run, i, vsId === null ? {} : { vs: vsId });
        const target = i + 1 < T ? ids[i + 1] : (await lens.at(run, i)).top[engine.dims.nLayer][0].id;
        assert.equal(got.target, target);
        const want = refAttribution(ref.readout, tr, i, E, target, vsId);
        assert.deepEqual(got.parts.map((p) => p.name), [...want.parts.keys()], 'the parts, in order');
        for (const p of got.parts) assert.ok(Math.abs(p.value - want.parts.get(p.name)!) <= 1e-3, `${p.name}: ${p.value} vs ${want.parts.get(p.name)}`);
        const sum = got.parts.reduce((a, p) => a + p.value, 0);
        assert.ok(Math.abs(sum - want.logit) <= 1e-3, `parts sum to ${sum}, the reference logit${vsId === null ? '' : ' difference'} is ${want.logit}`);
        const engineLogit = got.logitTarget - (got.logitVs ?? 0);
        assert.ok(Math.abs(engineLogit - want.logit) <= 1e-3, `logit_target − logit_vs ${engineLogit} vs ${want.logit}`);
        assert.ok(got.parts.some((p) => p.name.includes('H') && Math.abs(p.value) > 1e-3), 'some head contributes');
      }
    });
  });
}
