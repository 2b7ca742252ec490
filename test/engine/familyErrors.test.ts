/**
 * Bad checkpoints of the new families are refused before any weight is read, each with a HeadlightError that names
 * the file and the field: sizes that disagree with the tensors, head_dim × heads against q_proj, a missing shard, an
 * index naming a tensor twice, an unsupported rope scaling, extra layers, an unknown model_type (listing the supported
 * ones). And the window: min(max_position_embeddings, maxWindow).
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadlightError } from '../../extension/common/errors';
import { openModel } from '../../extension/engine/families/registry';
import { loadEngine } from '../../extension/engine/load';
import { llamaSpec, neoxSpec, type HfCheckpoint } from '../fixtures/hfCheckpoint';
import { randomIds, writeFamilyCheckpoint } from './familyCheckpoint';
import { idText, idTokenizer } from './idTokens';

const root = mkdtempSync(join(tmpdir(), 'headlight-family-errors-'));
after(() => rmSync(root, { recursive: true, force: true }));
let count = 0;

const small = { modelType: 'llama' as const, layers: 2, hidden: 32, heads: 4, kvHeads: 2, intermediate: 48, vocab: 64 };

async function fresh(spec = llamaSpec(small), shards = 1): Promise<HfCheckpoint> {
  return writeFamilyCheckpoint(join(root, `ck-${count++}`), spec, { seed: count, shards });
}

async function editConfig(ck: HfCheckpoint, edit: Record<string, unknown>): Promise<void> {
  await fsp.writeFile(join(ck.dir, 'config.json'), JSON.stringify({ ...ck.config, ...edit }));
}

/** openModel(dir) rejects with a HeadlightError of `code` whose message matches every pattern. */
async function refused(dir: string, code: string, ...patterns: RegExp[]): Promise<HeadlightError> {
  let caught: unknown;
  try {
    const opened = await openModel(dir);
    await opened.close();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof HeadlightError, `expected a HeadlightError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  for (const p of patterns) assert.match(caught.message, p);
  assert.ok(caught.hint, 'says what to do');
  return caught;
}

describe('bad checkpoints of the new families', () => {
  test('a config whose sizes disagree with the tensors names the file, the tensor and the fields', async () => {
    const ck = await fresh();
    await editConfig(ck, { intermediate_size: 40 });
    await refused(ck.dir, 'checkpoint-bad-tensor', /^model\.safetensors: tensor model\.layers\.0\.mlp\.gate_proj\.weight has shape \[48, 32\] but config\.json implies \[40, 32\] \(intermediate_size, hidden_size\)/);
  });

  test('head_dim × heads inconsistent with q_proj', async () => {
    const ck = await fresh();
    await editConfig(ck, { head_dim: 16 });
    await refused(ck.dir, 'checkpoint-bad-tensor', /q_proj\.weight has shape \[32, 32\] but config\.json implies \[64, 32\] \(num_attention_heads × head_dim, hidden_size\)/);
    await editConfig(ck, { num_key_value_heads: 3 });
    await refused(ck.dir, 'checkpoint-bad-config', /^config\.json: "num_key_value_heads" \(3\) must divide num_attention_heads \(4\)/);
  });

  test('a missing shard and an index naming a tensor twice', async () => {
    const ck = await fresh(llamaSpec(small), 2);
    const index = join(ck.dir, 'model.safetensors.index.json');
    const text = await fsp.readFile(index, 'utf8');
    // The same tensor claimed by both shards: JSON.parse would silently keep the last.
    await fsp.writeFile(index, text.replace('"weight_map": {', '"weight_map": {\n    "model.norm.weight": "model-00001-of-00002.safetensors",'));
    await refused(ck.dir, 'checkpoint-bad-config', /^model\.safetensors\.index\.json: "weight_map" names tensor model\.norm\.weight twice/);
    await fsp.writeFile(index, text);
    await fsp.rm(ck.files[1]);
    await refused(ck.dir, 'checkpoint-missing-file', /^model\.safetensors\.index\.json: tensor \S+ is in "model-00002-of-00002\.safetensors", which is not in/);
  });

  test('an unsupported rope scaling type, old and v5 forms', async () => {
    const ck = await fresh();
    await editConfig(ck, { rope_scaling: { rope_type: 'yarn', factor: 4 } });
    await refused(ck.dir, 'checkpoint-bad-config', /^config\.json: "rope_scaling\.rope_type" is "yarn"; supported: default, linear, llama3/);
    await editConfig(ck, { rope_scaling: undefined, rope_parameters: { rope_type: 'dynamic', rope_theta: 10000, factor: 2 } });
    await refused(ck.dir, 'checkpoint-bad-config', /^config\.json: "rope_parameters\.rope_type" is "dynamic"/);
    await editConfig(ck, { rope_scaling: { type: 'linear' } });
    await refused(ck.dir, 'checkpoint-bad-config', /"rope_scaling\.factor" must be a positive number, got nothing/);
  });

  test('tensors the config does not call for: extra layers, biases, stale buffers are fine', async () => {
    const ck = await fresh();
    await editConfig(ck, { num_hidden_layers: 1 });
    await refused(ck.dir, 'checkpoint-bad-tensor', /has tensor model\.layers\.1\.\S+ but config\.json says num_hidden_layers is 1/);
    const neox = await fresh(neoxSpec({ layers: 1, hidden: 16, heads: 2, vocab: 32, buffers: true }));
    await (await openModel(neox.dir)).close(); // attention.bias (BOOL), masked_bias, rotary_emb.inv_freq are ignored
    await editConfig(neox, { attention_bias: false });
    await refused(neox.dir, 'checkpoint-bad-tensor', /has tensor gpt_neox\.layers\.0\.attention\.\S+\.bias, which config\.json does not call for/);
  });

  test('an unknown model_type lists the supported ones', async () => {
    const ck = await fresh();
    await editConfig(ck, { model_type: 'mamba' });
    await refused(ck.dir, 'checkpoint-unsupported-architecture', /^config\.json: model_type is "mamba"; supported: gpt2, llama, mistral, qwen2, qwen3, gpt_neox, gemma2, gemma3_text, gemma3, gpt_neo\./);
  });
});

describe('the window of rotary families', () => {
  test('min(max_position_embeddings, maxWindow): reported in dims, enforced on windows', async () => {
    const ck = await fresh(llamaSpec({ ...small, maxPositions: 128 }));
    const { engine } = await loadEngine(ck.dir, { threads: 1, maxWindow: 16, tokenizer: idTokenizer });
    try {
      assert.equal(engine.dims.nPositions, 16);
      const ids = randomIds(5, 20, 64);
      const run = await engine.analyze(idText(ids));
      assert.deepEqual(run.window, { start: 0, end: 16 });
      await assert.rejects(engine.analyze(idText(ids), { window: { start: 0, end: 20 } }), (e: unknown) => e instanceof HeadlightError && e.code === 'window-too-long');
    } finally {
      await engine.dispose();
    }
    const { engine: wide } = await loadEngine(ck.dir, { threads: 1, tokenizer: idTokenizer });
    assert.equal(wide.dims.nPositions, 128, 'max_position_embeddings below the default maxWindow of 1024');
    await wide.dispose();
  });
});

describe('token ids the checkpoint has no embedding for', () => {
  test('a tokenizer id ≥ vocab_size is refused by name before the graph runs; the engine keeps working', async () => {
    const ck = await fresh();
    const { engine } = await loadEngine(ck.dir, { threads: 1, tokenizer: idTokenizer });
    try {
      const good = randomIds(7, 10, 64);
      const before = await engine.analyze(idText(good));
      const expected = Array.from({ length: before.length }, (_, i) => before.logprob(i));
      let caught: unknown;
      try {
        await engine.analyze(idText([...good.slice(0, 4), 64, ...good.slice(4)]));
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof HeadlightError, `expected a HeadlightError, got ${String(caught)}`);
      assert.equal(caught.code, 'token-out-of-vocabulary');
      assert.match(caught.message, /the id 64, but the model's embedding has only 64 rows/);
      assert.ok(caught.hint);
      const again = await engine.analyze(idText(good));
      const logprobs = (run: typeof before) => Array.from({ length: run.length }, (_, i) => run.logprob(i));
      assert.deepEqual(logprobs(again), expected, 'the next request gives the same answer');
    } finally {
      await engine.dispose();
    }
  });
});
