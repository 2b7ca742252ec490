/**
 * Gemma 2 (`gemma2`), Gemma 3 text (`gemma3_text`) and the language model of multimodal `gemma3` checkpoints against
 * the float64 reference (test/reference/families/gemma.ts) on random tiny checkpoints in their Hugging Face layouts,
 * fed token ids: every head's attention and the log-probabilities to 1e-4, logits to 1e-3, full and incremental.
 * The soft-caps are small (a few units) so they bend the scores and logits: a graph that skipped or misplaced them
 * fails. Sliding layers show their band (weight 0 outside), Q·K breakdowns give raw scores, capped scores and the
 * stored row, and bad checkpoints are refused before any weight is read.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { maxDiff } from '../reference/compare';
import { embedScale } from '../../extension/engine/families/gemma';
import { gemma2Spec, gemma3Spec, gemmaForward, gemmaShape, roundToDtype, softcap } from '../reference/families/gemma';
import type { CheckpointSpec, HfCheckpoint, WriteOptions } from '../fixtures/hfCheckpoint';
import { randomIds, writeFamilyCheckpoint } from './familyCheckpoint';
import { loadEngine } from '../../extension/engine/load';
import type { Gpt2Engine } from '../../extension/engine/analyses/engine';
import { idText, idTokenizer } from './idTokens';
import { allMaps, assertClose, assertMatches, configRefusal, flat, headMaskWithout, loadFamilyCase } from './familyMatch';

const root = mkdtempSync(join(tmpdir(), 'headlight-gemma-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Vision-tower and projector tensors a multimodal gemma3 checkpoint carries beside the language model. */
function withVision(spec: CheckpointSpec): CheckpointSpec {
  const vision = [
    { key: 'model.vision_tower.vision_model.embeddings.patch_embedding.weight', shape: [8, 3, 2, 2], init: { normal: 0.1 } },
    { key: 'model.vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight', shape: [8, 8], init: { normal: 0.1 } },
    { key: 'model.vision_tower.vision_model.encoder.layers.7.mlp.fc1.weight', shape: [16, 8], init: { normal: 0.1 } },
    { key: 'model.multi_modal_projector.mm_input_projection_weight', shape: [8, 48], init: { normal: 0.1 } },
    { key: 'model.multi_modal_projector.mm_soft_emb_norm.weight', shape: [8], init: { normal: 0.1 } },
  ];
  return { config: spec.config, tensors: [...spec.tensors, ...vision] };
}

interface GemmaCase {
  name: string;
  spec: CheckpointSpec;
  write: WriteOptions;
  T: number;
  /** A layer whose sliding window is smaller than T, and that window. */
  band?: { layer: number; window: number };
  /** The soft-caps are on (Gemma 2). */
  capped?: boolean;
}

const CASES: GemmaCase[] = [
  {
    name: 'gemma2: soft-caps 4 and 2, window 8 on even layers, GQA 4/2, query_pre_attn_scalar 24 ≠ head_dim, F32',
    spec: gemma2Spec({ layers: 2, hidden: 32, heads: 4, kvHeads: 2, headDim: 16, intermediate: 48, vocab: 300, slidingWindow: 8, queryPreAttnScalar: 24, attnSoftcap: 4, finalSoftcap: 2, normStd: 0.3 }),
    write: { seed: 31 },
    T: 28,
    band: { layer: 0, window: 8 },
    capped: true,
  },
  {
    name: 'gemma2: layer_types given, untied lm_head, hidden 48 (√48 → 6.9375 in bfloat16), BF16 in 2 shards',
    spec: gemma2Spec({ layers: 3, hidden: 48, heads: 2, kvHeads: 1, headDim: 32, intermediate: 64, vocab: 256, slidingWindow: 6, tie: false, attnSoftcap: 3, finalSoftcap: 5, layerTypes: ['full_attention', 'sliding_attention', 'full_attention'] }),
    write: { seed: 32, dtype: 'BF16', shards: 2 },
    T: 24,
    band: { layer: 1, window: 6 },
    capped: true,
  },
  {
    name: 'gemma3_text: MQA (1 KV head), heads × head_dim 64 ≠ hidden 40, q/k norms, local θ 1e4 vs global 1e6 with linear scaling 8, F16',
    spec: gemma3Spec({ layers: 3, hidden: 40, heads: 4, kvHeads: 1, headDim: 16, intermediate: 56, vocab: 320, slidingWindow: 7, slidingWindowPattern: 3, ropeScaling: { rope_type: 'linear', factor: 8 }, normStd: 0.3 }),
    write: { seed: 33, dtype: 'F16' },
    T: 30,
    band: { layer: 1, window: 7 },
  },
  {
    name: 'gemma3 multimodal: text_config, model.language_model. keys, vision tower ignored, v5 rope_parameters, BF16 in 3 shards',
    spec: withVision(gemma3Spec({ layers: 2, hidden: 48, heads: 2, kvHeads: 2, headDim: 24, intermediate: 64, vocab: 288, slidingWindow: 5, layerTypes: ['sliding_attention', 'full_attention'], configForm: 'v5', multimodal: true })),
    write: { seed: 34, dtype: 'BF16', shards: 3 },
    T: 20,
    band: { layer: 0, window: 5 },
  },
];

for (const c of CASES) {
  describe(`Gemma vs reference — ${c.name}`, () => {
    let engine: Gpt2Engine;
    let ck: HfCheckpoint;
    let ids: number[];
    let L: number;
    let H: number;
    before(async () => {
      ({ ck, engine, L, H } = await loadFamilyCase(join(root, `ck-${c.write.seed}`), c.spec, c.write));
      ids = randomIds(c.write.seed, c.T, gemmaShape(ck.config).vocab);
    });
    after(() => engine.dispose());

    test('attention of every head, log-probabilities and logits agree with the float64 reference; sliding layers show their band', async () => {
      const run = await engine.analyze(idText(ids), { logits: true });
      const ref = gemmaForward(ck.config, ck.weights, ids);
      assertMatches(run, ref, L, H);
      const peak = Math.max(...run.row({ layer: L - 1, head: 0 }, ids.length - 1));
      assert.ok(peak > 3 / ids.length, `peak weight ${peak} is not far above uniform`);
      if (c.band) {
        const { layer, window } = c.band;
        for (const i of [window, ids.length - 1]) {
          const row = run.row({ layer, head: H - 1 }, i);
          assert.equal(Math.max(...row.subarray(0, i - window + 1)), 0, `query ${i}: keys outside the window get weight 0`);
          assert.ok(row[i - window + 1] > 0, `query ${i}: the window's first key is seen`);
        }
      }
      if (c.capped) {
        // The caps matter here: the same weights without them give other maps and logits.
        const uncapped = gemmaForward({ ...ck.config, attn_logit_softcapping: null, final_logit_softcapping: null }, ck.weights, ids);
        assert.ok(maxDiff(allMaps(run, L, H), flat(uncapped.attention.flat())) > 1e-2, 'the attention soft-cap changes the maps');
        assert.ok(maxDiff(run.logits!, uncapped.logits) > 0.1, 'the final soft-cap changes the logits');
        const cap = ck.config.final_logit_softcapping as number;
        assert.ok(Math.max(...run.logits!.map(Math.abs)) < cap, 'capped logits stay inside ±cap');
      }
    });

    test('incremental updates (append, then an edit in the middle) equal the reference of the new ids', async () => {
      await engine.analyze(idText(ids.slice(0, ids.length - 7)));
      const appended = await engine.update(idText(ids));
      assert.ok(appended.stats.reused > 0, 'the prefix was reused');
      assertMatches(appended, gemmaForward(ck.config, ck.weights, ids), L, H, false);
      const edited = ids.slice();
      const at = Math.floor(ids.length / 2);
      edited[at] = 3 + ((edited[at] + 5) % (gemmaShape(ck.config).vocab - 3));
      const run = await engine.update(idText(edited));
      assert.equal(run.stats.reused, at - 1);
      assertMatches(run, gemmaForward(ck.config, ck.weights, edited), L, H, false);
    });

    test('ablating a query head equals the reference with that head masked', async () => {
      const target = { layer: L - 1, head: H - 1 };
      const result = await engine.ablate({ heads: [target], mode: 'zero' }, idText(ids));
      const headMask = headMaskWithout(L, H, target);
      assertClose('ablated log-probabilities', result.logprobAfter, gemmaForward(ck.config, ck.weights, ids, { headMask }).logprobs, 1e-4);
      assert.ok(Math.abs(result.lossDelta) > 1e-5, 'the ablation changed the loss');
    });

    test('Q·K breakdown: raw scores, capped scores (soft-capped layers) and probabilities that give the stored row', async () => {
      const run = await engine.analyze(idText(ids));
      const i = ids.length - 1;
      for (let l = 0; l < L; l++) {
        const b = await engine.qk(run, l, H - 1, i);
        assertClose(`layer ${l}: q·k probabilities vs the stored row`, b.probs, run.row({ layer: l, head: H - 1 }, i), 1e-4);
        assert.ok(b.unrotatedScores, 'un-rotated scores given');
        if (!c.capped) {
          assert.equal(b.cappedScores, undefined, 'no capped scores without a cap');
          continue;
        }
        const cap = ck.config.attn_logit_softcapping as number;
        assert.ok(b.cappedScores, 'capped scores given');
        assertClose('capped scores', b.cappedScores, Array.from(b.scores, (s) => softcap(s, cap)), 1e-5);
        assert.ok(Math.max(...b.scores.map(Math.abs)) > cap / 2, 'raw scores reach where the cap bends them');
      }
    });
  });
}

test('Gemma 3 rotates local and global layers with their own frequencies', async () => {
  // Layer 0 global, layer 1 local: the engine matches the reference, and a reference with either base changed
  // differs from it exactly in the layers of that type (so a single rotary for both would fail).
  const spec = gemma3Spec({ layers: 2, hidden: 32, heads: 2, kvHeads: 1, headDim: 16, intermediate: 32, vocab: 128, slidingWindow: 64, layerTypes: ['full_attention', 'sliding_attention'] });
  const ck = await writeFamilyCheckpoint(join(root, 'rope'), spec, { seed: 35 });
  const ids = randomIds(35, 20, 128);
  const engine = (await loadEngine(ck.dir, { precision: 'fp32', threads: 1, tokenizer: idTokenizer })).engine;
  try {
    const run = await engine.analyze(idText(ids));
    const ref = gemmaForward(ck.config, ck.weights, ids);
    assertMatches(run, ref, 2, 2, false);
    const local = gemmaForward({ ...ck.config, rope_local_base_freq: 1e6 }, ck.weights, ids);
    assertClose('global layer 0 unchanged by the local base', local.attention[0][0], ref.attention[0][0], 1e-12);
    assert.ok(maxDiff(run.headMap(1, 0), local.attention[1][0]) > 1e-2, 'the local base (1e4, not rope_theta) rotates layer 1');
    const global = gemmaForward({ ...ck.config, rope_theta: 1e4 }, ck.weights, ids);
    assert.ok(maxDiff(run.headMap(0, 0), global.attention[0][0]) > 1e-2, 'rope_theta (1e6) rotates layer 0');
  } finally {
    engine.dispose();
  }
});

test('the embedding scale is √hidden_size rounded to the weights dtype, as transformers holds it', () => {
  for (const hidden of [48, 40, 640, 1152, 2304, 2560, 3584]) {
    for (const dtype of ['float32', 'float16', 'bfloat16'] as const) assert.equal(embedScale(hidden, dtype), roundToDtype(Math.sqrt(hidden), dtype), `${hidden} ${dtype}`);
  }
  assert.equal(embedScale(48, 'bfloat16'), 6.9375);
  assert.equal(embedScale(2304, 'bfloat16'), 48);
});

describe('bad Gemma checkpoints are refused before any weight is read, naming file and field', () => {
  const base = { layers: 2, hidden: 32, heads: 4, kvHeads: 2, headDim: 8, intermediate: 48, vocab: 64, slidingWindow: 4 };
  const refused = configRefusal(root, 40);

  test('head_dim against q_proj, in a multimodal text_config', async () => {
    const spec = gemma3Spec({ ...base, multimodal: true });
    await refused(
      spec,
      (c) => ({ ...c, text_config: { ...(c.text_config as object), head_dim: 16 } }),
      'checkpoint-bad-tensor',
      /^model\.safetensors: tensor model\.language_model\.layers\.0\.self_attn\.q_proj\.weight has shape \[32, 32\] but config\.json implies \[64, 32\] \(num_attention_heads × head_dim/,
    );
  });

  test('a gemma3 config without text_config; a bad soft-cap; layer_types of the wrong length', async () => {
    await refused(gemma3Spec({ ...base, multimodal: true }), (c) => ({ ...c, text_config: undefined }), 'checkpoint-bad-config', /config\.json: "text_config" is missing/);
    await refused(gemma2Spec(base), (c) => ({ ...c, attn_logit_softcapping: -1 }), 'checkpoint-bad-config', /config\.json: "attn_logit_softcapping" must be a positive number, got -1/);
    await refused(gemma3Spec({ ...base, multimodal: true }), (c) => ({ ...c, text_config: { ...(c.text_config as object), layer_types: ['full_attention'] } }), 'checkpoint-bad-config', /"text_config\.layer_types" must list/);
  });

  test('vision tensors in a text-only checkpoint are unexpected; q_norm missing from a Gemma 3 checkpoint is named', async () => {
    const textOnly = gemma3Spec(base);
    await refused(withVision(textOnly), (c) => c, 'checkpoint-bad-tensor', /has tensor model\.vision_tower\..*which config\.json does not call for/);
    await refused(gemma2Spec(base), (c) => ({ ...c, model_type: 'gemma3_text' }), 'checkpoint-missing-tensor', /no tensor model\.layers\.0\.self_attn\.q_norm\.weight/);
  });

  test('layers beyond num_hidden_layers', async () => {
    await refused(gemma2Spec(base), (c) => ({ ...c, num_hidden_layers: 1 }), 'checkpoint-bad-tensor', /has tensor model\.layers\.1\..* but config\.json says num_hidden_layers is 1/);
  });
});
