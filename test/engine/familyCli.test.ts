/**
 * `headlight analyze --dump` on a GQA model (qwen2, 4 query heads over 2 KV heads) keeps its format: attention.f32 is
 * [n_layer, n_query_heads, T, T] and matches the float64 reference; the text goes through a real Qwen2-style
 * tokenizer.json whose ids fit the model's vocabulary.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { maxDiff } from '../reference/compare';
import { llamaForward } from '../reference/families/llama';
import { llamaSpec, writeHfCheckpoint } from '../fixtures/hfCheckpoint';
import { runCli } from './runCli';

const root = mkdtempSync(join(tmpdir(), 'headlight-family-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));

const f32 = (path: string) => {
  const b = readFileSync(path);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};

test('analyze --dump of a qwen2 GQA model: attention [L, query heads, T, T] and log-probabilities match the reference', async () => {
  const ck = await writeHfCheckpoint(join(root, 'qwen2'), llamaSpec({ modelType: 'qwen2', layers: 2, hidden: 32, heads: 4, kvHeads: 2, intermediate: 48, vocab: 1760 }), { seed: 21 });
  copyFileSync(join(__dirname, '../fixtures/tokenizers/qwen2-style.json'), join(ck.dir, 'tokenizer.json'));
  const dump = join(root, 'dump');
  const r = await runCli('analyze', '--model', ck.dir, '--text', 'def add(a, b):\n    return a + b  # 2 + 3 = 5\n', '--dump', dump);
  assert.equal(r.code, 0, r.err);
  const meta = JSON.parse(readFileSync(join(dump, 'tokens.json'), 'utf8'));
  assert.deepEqual(meta.model, { n_layer: 2, n_head: 4, n_embd: 32, n_positions: 128, vocab_size: 1760 });
  const ids = meta.tokens.map((t: { id: number }) => t.id);
  const T = ids.length;
  assert.ok(T > 10, `${T} tokens`);
  const ref = llamaForward(ck.config, ck.weights, ids);
  const att = f32(join(dump, 'attention.f32'));
  assert.equal(att.length, 2 * 4 * T * T);
  const want = new Float64Array(att.length);
  ref.attention.flat().forEach((m, k) => want.set(m, k * T * T));
  assert.ok(maxDiff(att, want) < 1e-4, `attention differs by ${maxDiff(att, want)}`);
  assert.ok(maxDiff(f32(join(dump, 'logprobs.f32')), ref.logprobs) < 1e-4);
});
