/**
 * `headlight patch` end to end (in-process `main`) on a random GPT-2 checkpoint with its real tokenizer: patch.json
 * against the float64 reference's own patching of the same token ids; a length mismatch is an error that says so.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './runCli';
import { writeRandomCheckpoint, type RandomCheckpoint } from '../fixtures/randomCheckpoint';
import { gpt2 } from '../reference/gpt2';
import { loadTokenizer } from '../../extension/engine/tokenizer/gpt2Tokenizer';

const root = mkdtempSync(join(tmpdir(), 'headlight-patch-cli-'));
let ck: RandomCheckpoint;
const CLEAN = 'The capital of France is';
const CORRUPT = 'The capital of Italy is';

before(async () => {
  ck = await writeRandomCheckpoint(join(root, 'gpt2'), { seed: 71, nLayer: 2, nHead: 2, nEmbd: 16, nPositions: 64 });
  writeFileSync(join(root, 'clean.txt'), CLEAN);
  writeFileSync(join(root, 'corrupt.txt'), CORRUPT);
  writeFileSync(join(root, 'longer.txt'), 'The capital city of Italy is');
});
after(() => rmSync(root, { recursive: true, force: true }));

test('patch --dump writes patch.json: resid_pre [L][T] and head_out [L][H] equal to the reference within 1e-3', async () => {
  const out = join(root, 'out');
  const answer = 6342; // any two ids: the model is random
  const wrong = 8031;
  const r = await runCli('patch', '--model', ck.dir, '--clean', join(root, 'clean.txt'), '--corrupt', join(root, 'corrupt.txt'), '--answer', String(answer), '--wrong', String(wrong), '--dump', out, '--threads', '1');
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /patched \d+ cells in \d+ runs/);
  const json = JSON.parse(readFileSync(join(out, 'patch.json'), 'utf8'));
  const tok = await loadTokenizer(ck.dir);
  const clean = tok.encode(CLEAN).map((t) => t.id);
  const corrupt = tok.encode(CORRUPT).map((t) => t.id);
  const T = clean.length;
  const { nLayer: L, nHead: H, vocabSize: V } = ck.config;
  assert.equal(corrupt.length, T);
  assert.equal(json.position, T - 1);
  const metric = (logits: ArrayLike<number>) => logits[(T - 1) * V + answer] - logits[(T - 1) * V + wrong];
  const cleanRef = gpt2(ck.config, ck.weights, clean, { trace: true });
  const z: Float64Array[][][] = Array.from({ length: L }, () => Array.from({ length: H }, () => []));
  gpt2(ck.config, ck.weights, clean, { patchHeadOut: (l, h, t, v) => (z[l][h][t] = Float64Array.from(v)) });
  assert.ok(Math.abs(json.metric_clean - metric(cleanRef.logits)) <= 1e-3);
  assert.ok(Math.abs(json.metric_corrupt - metric(gpt2(ck.config, ck.weights, corrupt).logits)) <= 1e-3);
  assert.equal(json.resid_pre.length, L);
  assert.equal(json.head_out.length, L);
  for (let l = 0; l < L; l++) {
    assert.equal(json.resid_pre[l].length, T);
    assert.equal(json.head_out[l].length, H);
    for (let t = 0; t < T; t++) {
      const resid = cleanRef.trace!.residPre[l];
      const want = metric(gpt2(ck.config, ck.weights, corrupt, { patchResidPre: (ll, tt, row) => ll === l && tt === t && row.set(resid.subarray(t * row.length, (t + 1) * row.length)) }).logits);
      assert.ok(Math.abs(json.resid_pre[l][t] - want) <= 1e-3, `resid L${l} t${t}: ${json.resid_pre[l][t]} vs ${want}`);
    }
    for (let h = 0; h < H; h++) {
      const want = metric(gpt2(ck.config, ck.weights, corrupt, { patchHeadOut: (ll, hh, t, v) => ll === l && hh === h && v.set(z[l][h][t]) }).logits);
      assert.ok(Math.abs(json.head_out[l][h] - want) <= 1e-3, `head L${l}H${h}: ${json.head_out[l][h]} vs ${want}`);
    }
  }
});

test('patch: different token counts fail with a message that says so; missing flags are usage errors', async () => {
  const out = join(root, 'bad');
  const r = await runCli('patch', '--model', ck.dir, '--clean', join(root, 'clean.txt'), '--corrupt', join(root, 'longer.txt'), '--answer', '1', '--wrong', '2', '--dump', out);
  assert.equal(r.code, 2);
  assert.match(r.err, /clean text has 5 tokens and the corrupted text 6.*equal token counts/);
  assert.ok(!existsSync(join(out, 'patch.json')));
  const noWrong = await runCli('patch', '--model', ck.dir, '--clean', join(root, 'clean.txt'), '--corrupt', join(root, 'corrupt.txt'), '--answer', '1', '--dump', out);
  assert.equal(noWrong.code, 2);
  assert.match(noWrong.err, /--wrong ID/);
});
