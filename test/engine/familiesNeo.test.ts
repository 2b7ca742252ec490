/**
 * GPT-Neo (`gpt_neo`: TinyStories, gpt-neo-125m) against the float64 reference (test/reference/families/neo.ts) on
 * random tiny checkpoints in GPTNeoForCausalLM's layout, fed token ids: every head's attention and the
 * log-probabilities to 1e-4, logits to 1e-3, full and incremental; local layers show their band; the Q·K view has
 * the unscaled scores (factor 1) and no rotary part; bad checkpoints are refused before any weight is read.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { neoForward, neoSpec } from '../reference/families/neo';
import type { CheckpointSpec, HfCheckpoint, WriteOptions } from '../fixtures/hfCheckpoint';
import { randomIds, writeFamilyCheckpoint } from './familyCheckpoint';
import { HeadlightError } from '../../extension/common/errors';
import { openModel } from '../../extension/engine/families/registry';
import type { Gpt2Engine } from '../../extension/engine/analyses/engine';
import { idText } from './idTokens';
import { assertClose, assertMatches, configRefusal, headMaskWithout, loadFamilyCase } from './familyMatch';

const root = mkdtempSync(join(tmpdir(), 'headlight-neo-'));
after(() => rmSync(root, { recursive: true, force: true }));

interface NeoCase {
  name: string;
  spec: CheckpointSpec;
  write: WriteOptions;
  T: number;
  window: number;
}

const CASES: NeoCase[] = [
  {
    name: 'TinyStories-like: [[global, local], 2], window 6, mask buffers stored, F32',
    spec: neoSpec({ layers: 4, hidden: 32, heads: 4, vocab: 300, windowSize: 6, buffers: true }),
    write: { seed: 51 },
    T: 26,
    window: 6,
  },
  {
    name: 'gpt-neo-125m-like: [[global], 1] + [[local], 1] written as two entries, intermediate 80, F16 in 2 shards',
    spec: neoSpec({ layers: 2, hidden: 48, heads: 3, vocab: 256, windowSize: 5, intermediate: 80, attentionTypes: [[['global'], 1], [['local'], 1]] }),
    write: { seed: 52, dtype: 'F16', shards: 2 },
    T: 22,
    window: 5,
  },
];

for (const c of CASES) {
  describe(`GPT-Neo vs reference — ${c.name}`, () => {
    let engine: Gpt2Engine;
    let ck: HfCheckpoint;
    let ids: number[];
    let L: number;
    let H: number;
    before(async () => {
      ({ ck, engine, L, H } = await loadFamilyCase(join(root, `ck-${c.write.seed}`), c.spec, c.write));
      ids = randomIds(c.write.seed, c.T, ck.config.vocab_size as number);
    });
    after(() => engine.dispose());

    test('attention of every head, log-probabilities and logits agree with the float64 reference; local layers show their band', async () => {
      const run = await engine.analyze(idText(ids), { logits: true });
      assertMatches(run, neoForward(ck.config, ck.weights, ids), L, H);
      const peak = Math.max(...run.row({ layer: 0, head: 0 }, ids.length - 1));
      assert.ok(peak > 3 / ids.length, `peak weight ${peak} is not far above uniform`);
      const i = ids.length - 1;
      const local = run.row({ layer: 1, head: H - 1 }, i);
      assert.equal(Math.max(...local.subarray(0, i - c.window + 1)), 0, 'keys outside the local window get weight 0');
      assert.ok(local[i - c.window + 1] > 0, "the window's first key is seen");
      assert.ok(run.row({ layer: 0, head: H - 1 }, i)[0] > 0, 'a global layer sees the first key');
    });

    test('incremental updates (append, then an edit in the middle) equal the reference of the new ids', async () => {
      await engine.analyze(idText(ids.slice(0, ids.length - 7)));
      const appended = await engine.update(idText(ids));
      assert.ok(appended.stats.reused > 0, 'the prefix was reused');
      assertMatches(appended, neoForward(ck.config, ck.weights, ids), L, H, false);
      const edited = ids.slice();
      const at = Math.floor(ids.length / 2);
      edited[at] = 3 + ((edited[at] + 5) % ((ck.config.vocab_size as number) - 3));
      const run = await engine.update(idText(edited));
      assert.equal(run.stats.reused, at - 1);
      assertMatches(run, neoForward(ck.config, ck.weights, edited), L, H, false);
    });

    test('ablating a query head equals the reference with that head masked', async () => {
      const target = { layer: L - 1, head: 0 };
      const result = await engine.ablate({ heads: [target], mode: 'zero' }, idText(ids));
      const headMask = headMaskWithout(L, H, target);
      assertClose('ablated log-probabilities', result.logprobAfter, neoForward(ck.config, ck.weights, ids, { headMask }).logprobs, 1e-4);
      assert.ok(Math.abs(result.lossDelta) > 1e-5, 'the ablation changed the loss');
    });

    test('Q·K breakdown: unscaled scores (factor 1), no rotary part, probabilities that give the stored row', async () => {
      const run = await engine.analyze(idText(ids));
      const i = ids.length - 1;
      for (let l = 0; l < L; l++) {
        const b = await engine.qk(run, l, 0, i);
        assert.equal(b.scale, 1);
        assert.equal(b.unrotatedScores, undefined);
        assertClose(`layer ${l}: probabilities vs the stored row`, b.probs, run.row({ layer: l, head: 0 }, i), 1e-4);
      }
    });
  });
}

describe('bad GPT-Neo checkpoints are refused before any weight is read, naming file and field', () => {
  const base = { layers: 2, hidden: 16, heads: 2, vocab: 64, windowSize: 4 };
  const refused = configRefusal(root, 60);

  test('attention_types that do not expand to num_layers, or disagree with attention_layers', async () => {
    await refused(neoSpec(base), (c) => ({ ...c, attention_types: [[['global', 'local'], 2]] }), 'checkpoint-bad-config', /config\.json: "attention_types" expands to 4 layers, but num_layers is 2/);
    await refused(neoSpec(base), (c) => ({ ...c, attention_layers: ['local', 'global'] }), 'checkpoint-bad-config', /"attention_layers" is \["local","global"\], but attention_types expands to/);
  });

  test('max_position_embeddings against wpe; layers beyond num_layers', async () => {
    await refused(neoSpec(base), (c) => ({ ...c, max_position_embeddings: 32 }), 'checkpoint-bad-tensor', /tensor transformer\.wpe\.weight has shape \[64, 16\] but config\.json implies \[32, 16\] \(max_position_embeddings, hidden_size\)/);
    await refused(neoSpec({ ...base, layers: 4 }), (c) => ({ ...c, num_layers: 2, attention_types: [[['global', 'local'], 1]], attention_layers: undefined }), 'checkpoint-bad-tensor', /has tensor transformer\.h\.2\..* but config\.json says num_layers is 2/);
  });
});

test('the model is listed: an unknown model_type names gemma2, gemma3_text, gemma3 and gpt_neo among the supported', async () => {
  const ck = await writeFamilyCheckpoint(join(root, 'unknown'), neoSpec({ layers: 2, hidden: 16, heads: 2, vocab: 64, windowSize: 4 }), { seed: 70 });
  await fsp.writeFile(join(ck.dir, 'config.json'), JSON.stringify({ ...ck.config, model_type: 'gpt_j' }));
  await assert.rejects(openModel(ck.dir), (err: unknown) => err instanceof HeadlightError && /supported: .*gemma2, gemma3_text, gemma3, gpt_neo/.test(err.message));
});
