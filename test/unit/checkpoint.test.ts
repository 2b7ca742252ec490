import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HeadlightError } from '../../extension/common/errors.js';
import { loadCheckpoint, parseConfig } from '../../extension/engine/model/checkpoint.js';
import { openSafetensors } from '../../extension/engine/model/safetensors.js';
import { writeRandomCheckpoint, type RandomCheckpointOptions } from '../fixtures/randomCheckpoint.js';
import { writeSafetensors, type WriterTensor } from '../fixtures/safetensorsWriter.js';

const tiny: RandomCheckpointOptions = { seed: 7, nLayer: 2, nHead: 2, nEmbd: 8, nPositions: 16, vocabSize: 64 };

let root: string;
let count = 0;
before(async () => {
  root = await fsp.mkdtemp(join(tmpdir(), 'headlight-ckpt-'));
});
after(async () => {
  await fsp.rm(root, { recursive: true, force: true });
});
const freshDir = () => join(root, `c${count++}`);

async function rejectsWith(promise: Promise<unknown>, code: string, ...patterns: RegExp[]): Promise<HeadlightError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof HeadlightError, `expected a HeadlightError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  for (const p of patterns) assert.match(caught.message, p);
  return caught;
}

/** Rewrite model.safetensors through `edit`, which gets and returns the tensor list (F32 data). */
async function rewriteWeights(dir: string, edit: (tensors: WriterTensor[]) => WriterTensor[]): Promise<void> {
  const path = join(dir, 'model.safetensors');
  const f = await openSafetensors(path);
  const tensors: WriterTensor[] = [];
  for (const t of f.tensors.values()) {
    tensors.push({ name: t.name, dtype: 'F32', shape: t.shape, data: await f.readF32(t.name) });
  }
  await f.close();
  await writeSafetensors(path, edit(tensors));
}

async function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): Promise<void> {
  const path = join(dir, 'config.json');
  const c = JSON.parse(await fsp.readFile(path, 'utf8'));
  edit(c);
  await fsp.writeFile(path, JSON.stringify(c));
}

describe('parseConfig', () => {
  test('applies Hugging Face GPT2Config defaults', () => {
    assert.deepEqual(parseConfig({ model_type: 'gpt2' }, 'config.json'), {
      nLayer: 12,
      nHead: 12,
      nEmbd: 768,
      nPositions: 1024,
      vocabSize: 50257,
      nInner: 3072,
      layerNormEpsilon: 1e-5,
      activation: 'gelu_new',
      scaleAttnWeights: true,
      scaleAttnByInverseLayerIdx: false,
      bosTokenId: 50256,
      eosTokenId: 50256,
    });
  });

  test('reads every field, n_inner null means 4·n_embd, model_type may be absent', () => {
    const c = parseConfig(
      {
        n_layer: 3,
        n_head: 4,
        n_embd: 64,
        n_positions: 128,
        vocab_size: 1000,
        n_inner: null,
        layer_norm_epsilon: 1e-6,
        activation_function: 'gelu',
        scale_attn_weights: false,
        scale_attn_by_inverse_layer_idx: true,
        reorder_and_upcast_attn: true,
        bos_token_id: 1,
        eos_token_id: 2,
      },
      'config.json',
    );
    assert.equal(c.nInner, 256);
    assert.equal(c.layerNormEpsilon, 1e-6);
    assert.equal(c.activation, 'gelu');
    assert.equal(c.scaleAttnWeights, false);
    assert.equal(c.scaleAttnByInverseLayerIdx, true);
    assert.deepEqual([c.nLayer, c.nHead, c.nEmbd, c.nPositions, c.vocabSize, c.bosTokenId, c.eosTokenId], [3, 4, 64, 128, 1000, 1, 2]);
    assert.equal(parseConfig({ model_type: 'gpt2', n_embd: 64, n_head: 4, n_inner: 100 }, 'c.json').nInner, 100);
  });

  test('refuses other architectures, naming model_type', () => {
    for (const type of ['llama', 'gpt_neox', 'gptj']) {
      assert.throws(
        () => parseConfig({ model_type: type, hidden_size: 4096 }, '/x/config.json'),
        (err: unknown) =>
          err instanceof HeadlightError &&
          err.code === 'checkpoint-unsupported-architecture' &&
          err.message.includes(`"${type}"`) &&
          /only GPT-2-architecture checkpoints/.test(err.message),
      );
    }
    assert.throws(() => parseConfig({ hidden_size: 8 }, 'config.json'), /does not look like a GPT-2 config/);
  });

  test('refuses bad values with the field named', () => {
    assert.throws(() => parseConfig({ model_type: 'gpt2', activation_function: 'swiglu' }, 'config.json'), /activation_function "swiglu" is not supported/);
    assert.throws(() => parseConfig({ model_type: 'gpt2', n_layer: 0 }, 'config.json'), /"n_layer" must be a positive integer, got 0/);
    assert.throws(() => parseConfig({ model_type: 'gpt2', n_embd: 10, n_head: 3 }, 'config.json'), /n_embd \(10\) is not divisible by n_head \(3\)/);
    assert.throws(() => parseConfig({ model_type: 'gpt2', scale_attn_weights: 'yes' }, 'config.json'), /"scale_attn_weights" must be true or false/);
    assert.throws(() => parseConfig([1], 'config.json'), /expected a JSON object/);
  });
});

describe('loadCheckpoint', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    test(`loads a random ${dtype} checkpoint exactly as written`, async () => {
      const written = await writeRandomCheckpoint(freshDir(), { ...tiny, dtype });
      const ckpt = await loadCheckpoint(written.dir);
      assert.equal(ckpt.fileDtype, dtype);
      assert.deepEqual(ckpt.config, written.config);
      assert.deepEqual(ckpt.weights, written.weights);
      assert.deepEqual(ckpt.files, {
        config: join(written.dir, 'config.json'),
        weights: join(written.dir, 'model.safetensors'),
        vocab: join(written.dir, 'vocab.json'),
        merges: join(written.dir, 'merges.txt'),
      });
    });
  }

  test('the transformer. prefix, mask buffers and a tied lm_head are all accepted', async () => {
    const plain = await writeRandomCheckpoint(freshDir(), tiny);
    const dressed = await writeRandomCheckpoint(freshDir(), { ...tiny, prefix: true, buffers: true });
    const file = await openSafetensors(dressed.files.weights);
    const names = [...file.tensors.keys()];
    await file.close();
    assert.ok(names.includes('transformer.h.1.attn.bias') && names.includes('transformer.wte.weight'));
    await rewriteWeights(dressed.dir, (ts) => [
      ...ts,
      { name: 'lm_head.weight', dtype: 'F32', shape: [64, 8], data: dressed.weights.wte },
    ]);
    const a = await loadCheckpoint(plain.dir);
    const b = await loadCheckpoint(dressed.dir);
    assert.deepEqual(b.weights, a.weights);
    assert.deepEqual(b.config, a.config);
  });

  test('an untied lm_head is refused', async () => {
    const c = await writeRandomCheckpoint(freshDir(), tiny);
    const head = Float32Array.from(c.weights.wte, (v) => v * 2);
    await rewriteWeights(c.dir, (ts) => [...ts, { name: 'lm_head.weight', dtype: 'F32', shape: [64, 8], data: head }]);
    await rejectsWith(loadCheckpoint(c.dir), 'checkpoint-untied-head', /lm_head\.weight differs from wte\.weight/);
  });

  test('a wrong shape names file, tensor, expected and actual shape', async () => {
    const c = await writeRandomCheckpoint(freshDir(), tiny);
    await editConfig(c.dir, (cfg) => (cfg.n_positions = 20));
    await rejectsWith(
      loadCheckpoint(c.dir),
      'checkpoint-bad-tensor',
      /^model\.safetensors: tensor wpe\.weight has shape \[16, 8\] but config\.json implies \[20, 8\]/,
    );
    await editConfig(c.dir, (cfg) => {
      cfg.n_positions = 16;
      cfg.n_inner = 40;
    });
    await rejectsWith(loadCheckpoint(c.dir), 'checkpoint-bad-tensor', /tensor h\.0\.mlp\.c_fc\.weight has shape \[8, 32\] but config\.json implies \[8, 40\]/);
  });

  test('a missing tensor, an extra layer, and integer weights are refused', async () => {
    const c = await writeRandomCheckpoint(freshDir(), tiny);
    await rewriteWeights(c.dir, (ts) => ts.filter((t) => t.name !== 'h.1.ln_2.bias'));
    await rejectsWith(loadCheckpoint(c.dir), 'checkpoint-missing-tensor', /^model\.safetensors: no tensor h\.1\.ln_2\.bias/);

    const d = await writeRandomCheckpoint(freshDir(), tiny);
    await editConfig(d.dir, (cfg) => (cfg.n_layer = 1));
    await rejectsWith(loadCheckpoint(d.dir), 'checkpoint-bad-tensor', /has tensor h\.1\.\S+ but config\.json says n_layer is 1/);

    const e = await writeRandomCheckpoint(freshDir(), tiny);
    await rewriteWeights(e.dir, (ts) =>
      ts.map((t) => (t.name === 'ln_f.bias' ? { name: t.name, dtype: 'I32', shape: [8], bytes: new Uint8Array(32) } : t)),
    );
    await rejectsWith(loadCheckpoint(e.dir), 'checkpoint-bad-tensor', /tensor ln_f\.bias is I32; weights must be F32, F16 or BF16/);
  });

  test('config.json: missing, corrupt, or another architecture', async () => {
    const c = await writeRandomCheckpoint(freshDir(), tiny);
    await fsp.writeFile(c.files.config, '{"model_type": "gpt2", "n_layer": 2,');
    const err = await rejectsWith(loadCheckpoint(c.dir), 'checkpoint-bad-config', /^config\.json: not valid JSON/);
    assert.match(err.hint ?? '', /download/);

    await editConfigRaw(c.files.config, { model_type: 'llama', hidden_size: 8 });
    await rejectsWith(loadCheckpoint(c.dir), 'checkpoint-unsupported-architecture', /model_type is "llama"/);

    await fsp.rm(c.files.config);
    await rejectsWith(loadCheckpoint(c.dir), 'checkpoint-missing-file', /no config\.json/);
    await rejectsWith(loadCheckpoint(join(root, 'nowhere')), 'checkpoint-missing-file', /no such folder/);
  });

  test('a folder with only pickle weights is refused and says why', async () => {
    const c = await writeRandomCheckpoint(freshDir(), tiny);
    await fsp.rm(c.files.weights);
    await fsp.writeFile(join(c.dir, 'pytorch_model.bin'), 'not really a pickle');
    const err = await rejectsWith(
      loadCheckpoint(c.dir),
      'checkpoint-pickle-only',
      /pytorch_model\.bin/,
      /only safetensors weights are loaded, because pickle files can run code when read/,
    );
    assert.match(err.hint ?? '', /model\.safetensors/);
    await fsp.rm(join(c.dir, 'pytorch_model.bin'));
    await rejectsWith(loadCheckpoint(c.dir), 'checkpoint-missing-file', /no model\.safetensors/);
  });

  test('missing tokenizer files are named; tokenizer.json alone is enough', async () => {
    const c = await writeRandomCheckpoint(freshDir(), tiny);
    await fsp.rm(c.files.merges);
    await rejectsWith(loadCheckpoint(c.dir), 'checkpoint-missing-file', /no tokenizer — merges\.txt is missing/);
    await fsp.rm(c.files.vocab);
    await rejectsWith(loadCheckpoint(c.dir), 'checkpoint-missing-file', /tokenizer\.json \(or vocab\.json \+ merges\.txt\)/);
    await fsp.writeFile(join(c.dir, 'tokenizer.json'), '{}');
    const ckpt = await loadCheckpoint(c.dir);
    assert.equal(ckpt.files.tokenizerJson, join(c.dir, 'tokenizer.json'));
    assert.equal(ckpt.files.vocab, undefined);
  });

  test('a sharded checkpoint (model.safetensors.index.json) loads like a single file', async () => {
    const c = await writeRandomCheckpoint(freshDir(), tiny);
    const f = await openSafetensors(c.files.weights);
    const shards: WriterTensor[][] = [[], []];
    const weightMap: Record<string, string> = {};
    for (const t of f.tensors.values()) {
      const shard = t.name.startsWith('h.1.') || t.name.startsWith('ln_f') ? 1 : 0;
      shards[shard].push({ name: t.name, dtype: 'F32', shape: t.shape, data: await f.readF32(t.name) });
      weightMap[t.name] = `model-0000${shard + 1}-of-00002.safetensors`;
    }
    await f.close();
    await fsp.rm(c.files.weights);
    await writeSafetensors(join(c.dir, 'model-00001-of-00002.safetensors'), shards[0]);
    await writeSafetensors(join(c.dir, 'model-00002-of-00002.safetensors'), shards[1]);
    await fsp.writeFile(join(c.dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const ckpt = await loadCheckpoint(c.dir);
    assert.deepEqual(ckpt.weights, c.weights);

    await fsp.rm(join(c.dir, 'model-00002-of-00002.safetensors'));
    await rejectsWith(loadCheckpoint(c.dir), 'checkpoint-missing-file', /model-00002-of-00002\.safetensors", which is not in/);
  });

  test('an aborted signal stops the load', async () => {
    const c = await writeRandomCheckpoint(freshDir(), tiny);
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(loadCheckpoint(c.dir, { signal: controller.signal }), { name: 'AbortError' });
  });
});

async function editConfigRaw(path: string, json: unknown): Promise<void> {
  await fsp.writeFile(path, JSON.stringify(json));
}
