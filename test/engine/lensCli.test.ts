/**
 * `headlight lens` and `headlight attribute` end to end (in-process `main`) on a random GPT-2 checkpoint with its
 * real tokenizer and on a Llama-family one: the dumped files against the float64 reference of the same token ids.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './runCli';
import { writeRandomCheckpoint, type RandomCheckpoint } from '../fixtures/randomCheckpoint';
import { llamaSpec, type HfCheckpoint } from '../fixtures/hfCheckpoint';
import { gpt2 } from '../reference/gpt2';
import { llamaForward } from '../reference/families/llama';
import { writeFamilyCheckpoint } from './familyCheckpoint';
import { logSoftmax, refAttribution, refLogits, row, top2, type RefReadout, type Trace } from './lensReference';

const root = mkdtempSync(join(tmpdir(), 'headlight-lens-cli-'));
let ck: RandomCheckpoint;
let llama: HfCheckpoint;
const TEXT = 'def add(a, b):\n    return a + b\n\nprint(add(2, 3))\n';

before(async () => {
  ck = await writeRandomCheckpoint(join(root, 'gpt2'), { seed: 51, nLayer: 2, nHead: 2, nEmbd: 16, nPositions: 64 });
  llama = await writeFamilyCheckpoint(join(root, 'llama'), llamaSpec({ modelType: 'llama', layers: 2, hidden: 32, heads: 4, kvHeads: 2, intermediate: 48, vocab: 50257, tie: true }), { seed: 52 });
  writeFileSync(join(root, 'add.py'), TEXT);
});
after(() => rmSync(root, { recursive: true, force: true }));

const f32 = (path: string) => {
  const b = readFileSync(path);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};
const i32 = (path: string) => {
  const b = readFileSync(path);
  return new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};

function gpt2Reference(): { trace: (ids: number[]) => Trace; readout: RefReadout } {
  const { config, weights } = ck;
  return {
    trace: (ids) => gpt2(config, weights, ids, { trace: true }).trace!,
    readout: { kind: 'layer', w: weights.lnF.weight, b: weights.lnF.bias, eps: config.layerNormEpsilon, unembed: Float64Array.from(weights.wte), softcap: null, attnBias: (l) => weights.layers[l].attnProj.bias },
  };
}

function llamaReference(): { trace: (ids: number[]) => Trace; readout: RefReadout } {
  const w = llama.weights;
  return {
    trace: (ids) => llamaForward(llama.config, w, ids),
    readout: { kind: 'rms', w: w.get('model.norm.weight')!.data, eps: llama.config.rms_norm_eps as number, unembed: w.get('model.embed_tokens.weight')!.data, softcap: null, attnBias: () => undefined },
  };
}

for (const [name, dir, reference] of [
  ['gpt2', () => ck.dir, gpt2Reference],
  ['llama', () => llama.dir, llamaReference],
] as const) {
  test(`${name}: lens --dump writes tokens.json, lens_logprob.f32 and lens_top1.i32 [L+1, T] matching the reference`, async () => {
    const out = join(root, `lens-${name}`);
    const r = await runCli('lens', '--model', dir(), '--file', join(root, 'add.py'), '--dump', out, '--threads', '1');
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /GFLOP\/s/);
    const meta = JSON.parse(readFileSync(join(out, 'tokens.json'), 'utf8'));
    const ids: number[] = meta.tokens.map((t: { id: number }) => t.id);
    const T = ids.length;
    const L = meta.model.n_layer;
    const logprob = f32(join(out, 'lens_logprob.f32'));
    const top1 = i32(join(out, 'lens_top1.i32'));
    assert.equal(logprob.length, (L + 1) * T);
    assert.equal(top1.length, (L + 1) * T);
    const { trace, readout } = reference();
    const tr = trace(ids);
    const E = tr.residPre[0].length / T;
    for (let l = 0; l <= L; l++) {
      for (let t = 0; t < T; t++) {
        const logp = logSoftmax(refLogits(readout, row(tr.residPre[l], t, E)).capped);
        if (t + 1 < T) assert.ok(Math.abs(logprob[l * T + t] - logp[ids[t + 1]]) <= 1e-4, `layer ${l}, token ${t}`);
        else assert.ok(Number.isNaN(logprob[l * T + t]));
        const order = top2(logp);
        if (logp[order[0]] - logp[order[1]] > 1e-4) assert.equal(top1[l * T + t], order[0], `top-1 at layer ${l}, token ${t}`);
      }
    }
  });

  test(`${name}: attribute --at --vs --dump writes attribution.json whose parts sum to the reference logit difference`, async () => {
    const out = join(root, `attr-${name}`);
    const at = 5;
    const r = await runCli('attribute', '--model', dir(), '--file', join(root, 'add.py'), '--at', String(at), '--vs', '42', '--dump', out, '--threads', '1');
    assert.equal(r.code, 0, r.err);
    const ids: number[] = JSON.parse(readFileSync(join(out, 'tokens.json'), 'utf8')).tokens.map((t: { id: number }) => t.id);
    const a = JSON.parse(readFileSync(join(out, 'attribution.json'), 'utf8'));
    assert.equal(a.position, at);
    assert.equal(a.target, ids[at + 1]);
    assert.equal(a.vs, 42);
    const { trace, readout } = reference();
    const tr = trace(ids);
    const E = tr.residPre[0].length / ids.length;
    const want = refAttribution(readout, tr, at, E, a.target, 42);
    assert.deepEqual(a.parts.map((p: { name: string }) => p.name), [...want.parts.keys()]);
    for (const p of a.parts) assert.ok(Math.abs(p.value - want.parts.get(p.name)!) <= 1e-3, p.name);
    const sum = a.parts.reduce((s: number, p: { value: number }) => s + p.value, 0);
    assert.ok(Math.abs(sum - want.logit) <= 1e-3, `sum ${sum} vs ${want.logit}`);
    assert.ok(Math.abs(a.logit_target - a.logit_vs - want.logit) <= 1e-3);
  });
}

test('attribute without --at, with a bad --vs, and lens without --dump: one clear line, exit 2', async () => {
  const noAt = await runCli('attribute', '--model', ck.dir, '--text', 'a b c', '--dump', join(root, 'x'));
  assert.equal(noAt.code, 2);
  assert.match(noAt.err, /--at INDEX/);
  const badVs = await runCli('attribute', '--model', ck.dir, '--text', 'a b c', '--at', '0', '--vs', '999999', '--dump', join(root, 'y'));
  assert.equal(badVs.code, 2);
  assert.match(badVs.err, /vs 999999 is not a token id/);
  const badAt = await runCli('attribute', '--model', ck.dir, '--text', 'a b c', '--at', '7', '--dump', join(root, 'z'));
  assert.equal(badAt.code, 2);
  assert.match(badAt.err, /Token 7 is outside/);
  const noDump = await runCli('lens', '--model', ck.dir, '--text', 'a b c');
  assert.equal(noDump.code, 2);
  assert.match(noDump.err, /--dump OUT/);
});
