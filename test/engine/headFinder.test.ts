/**
 * The head finder on a checkpoint built by hand so that head 0.0 is a previous-token head and head 0.1 attends
 * uniformly: the finder must name exactly head 0.0 as previous-token.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSafetensors } from '../fixtures/safetensorsWriter';
import { loadEngine } from '../../extension/engine/load';
import { badges, HEAD_ROLES } from '../../extension/engine/analyses/headFinder';
import type { Gpt2Engine } from '../../extension/engine/analyses/engine';

const P = 16; // positions
const E = 2 * P; // n_embd: position t is coded as e_{2t} − e_{2t+1} (zero mean, so LayerNorm only rescales it)
const H = 2;
const D = E / H;
const V = 50257;
const ALPHA = 8; // query/key magnitude: scores α²/√D = 16 on the previous token, 0 elsewhere

/** Writes the hand-made checkpoint. Everything not named below is zero (LayerNorm gains are one). */
async function writePrevTokenCheckpoint(dir: string): Promise<void> {
  const zeros = (n: number) => new Float32Array(n);
  const ones = (n: number) => new Float32Array(n).fill(1);
  const wpe = zeros(P * E); // [P, E]
  for (let t = 0; t < P; t++) {
    wpe[t * E + 2 * t] = 1;
    wpe[t * E + 2 * t + 1] = -1;
  }
  // LayerNorm turns e_{2t} − e_{2t+1} into √(E/2)·(e_{2t} − e_{2t+1}) = 4·(…) for E = 32.
  const lnScale = Math.sqrt(E / 2);
  const cAttn = zeros(E * 3 * E); // [E, 3E]: q | k | v columns; head 0 uses q/k columns 0..D−1
  for (let t = 0; t < D; t++) cAttn[2 * t * 3 * E + t] = ALPHA / lnScale; // q_t = α·e_t
  for (let s = 0; s + 1 < D; s++) cAttn[2 * s * 3 * E + E + s + 1] = ALPHA / lnScale; // k_s = α·e_{s+1}
  const tensors = [
    { name: 'wte.weight', dtype: 'F32' as const, shape: [V, E], data: zeros(V * E) },
    { name: 'wpe.weight', dtype: 'F32' as const, shape: [P, E], data: wpe },
    { name: 'h.0.ln_1.weight', dtype: 'F32' as const, shape: [E], data: ones(E) },
    { name: 'h.0.ln_1.bias', dtype: 'F32' as const, shape: [E], data: zeros(E) },
    { name: 'h.0.attn.c_attn.weight', dtype: 'F32' as const, shape: [E, 3 * E], data: cAttn },
    { name: 'h.0.attn.c_attn.bias', dtype: 'F32' as const, shape: [3 * E], data: zeros(3 * E) },
    { name: 'h.0.attn.c_proj.weight', dtype: 'F32' as const, shape: [E, E], data: zeros(E * E) },
    { name: 'h.0.attn.c_proj.bias', dtype: 'F32' as const, shape: [E], data: zeros(E) },
    { name: 'h.0.ln_2.weight', dtype: 'F32' as const, shape: [E], data: ones(E) },
    { name: 'h.0.ln_2.bias', dtype: 'F32' as const, shape: [E], data: zeros(E) },
    { name: 'h.0.mlp.c_fc.weight', dtype: 'F32' as const, shape: [E, 4 * E], data: zeros(E * 4 * E) },
    { name: 'h.0.mlp.c_fc.bias', dtype: 'F32' as const, shape: [4 * E], data: zeros(4 * E) },
    { name: 'h.0.mlp.c_proj.weight', dtype: 'F32' as const, shape: [4 * E, E], data: zeros(4 * E * E) },
    { name: 'h.0.mlp.c_proj.bias', dtype: 'F32' as const, shape: [E], data: zeros(E) },
    { name: 'ln_f.weight', dtype: 'F32' as const, shape: [E], data: ones(E) },
    { name: 'ln_f.bias', dtype: 'F32' as const, shape: [E], data: zeros(E) },
  ];
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'gpt2', n_layer: 1, n_head: H, n_embd: E, n_positions: P, vocab_size: V }));
  for (const f of ['vocab.json', 'merges.txt']) copyFileSync(join('models/headlight-tiny', f), join(dir, f));
}

const root = mkdtempSync(join(tmpdir(), 'headlight-heads-'));
let engine: Gpt2Engine;
before(async () => {
  await writePrevTokenCheckpoint(root);
  engine = (await loadEngine(root, { threads: 1 })).engine;
});
after(async () => {
  await engine.dispose();
  rmSync(root, { recursive: true, force: true });
});

const TEXT = 'the cat sat on the mat and the dog sat on the log';

test('the hand-built previous-token head is found, and only it', async () => {
  const run = await engine.analyze(TEXT);
  assert.ok(run.length >= 12 && run.length <= P);
  const scores = await engine.headScores(run);
  const prev = scores.scores['previous-token']!;
  assert.ok(prev[0] > 0.99, `head 0.0 previous-token score ${prev[0]}`);
  assert.ok(prev[1] < 0.3, `head 0.1 previous-token score ${prev[1]}`);
  const b = badges(scores);
  assert.deepEqual(Object.keys(b).filter((k) => b[k].includes('previous-token')), ['0.0']);
  assert.equal(b['0.0'][0], 'previous-token', 'strongest role first');
  assert.ok(!b['0.1']?.includes('local'), 'a uniform head is not called local');
});

test('scores lie in [0, 1] and do not change when the same text is analysed again', async () => {
  const first = await engine.headScores(await engine.analyze(TEXT));
  await engine.update(TEXT + ' and');
  const again = await engine.headScores(await engine.update(TEXT));
  for (const role of HEAD_ROLES) {
    const a = first.scores[role]!;
    const b = again.scores[role]!;
    for (let k = 0; k < a.length; k++) {
      if (Number.isNaN(a[k])) continue;
      assert.ok(a[k] >= 0 && a[k] <= 1, `${role} ${k} = ${a[k]}`);
      assert.ok(Math.abs(a[k] - b[k]) < 1e-3, `${role} ${k}: ${a[k]} vs ${b[k]}`);
    }
  }
});

test('duplicate-token scores exist when a token repeats; induction is measured on its own diagnostic', async () => {
  const scores = await engine.headScores(await engine.analyze(TEXT));
  assert.ok(!Number.isNaN(scores.scores['duplicate-token']![0]));
  // A previous-token head is not an induction head: from the second copy it looks one back, not one ahead.
  assert.ok(scores.scores.induction![0] < 0.1, `induction ${scores.scores.induction![0]}`);
});
