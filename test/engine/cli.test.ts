/** The `headlight` CLI end to end (in-process `main`), on a random tiny checkpoint, against the naive reference. */
import { runCli } from './runCli';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeRandomCheckpoint, type RandomCheckpoint } from '../fixtures/randomCheckpoint';
import { gpt2 } from '../reference/gpt2';

const root = mkdtempSync(join(tmpdir(), 'headlight-cli-'));
let ck: RandomCheckpoint;
const TEXT = 'fn main() {\n    println!("héllo, 🌍");\n}\n';

before(async () => {
  ck = await writeRandomCheckpoint(join(root, 'model'), { seed: 21, nLayer: 2, nHead: 2, nEmbd: 16, nPositions: 64 });
  writeFileSync(join(root, 'main.rs'), TEXT);
  writeFileSync(join(root, 'blob.bin'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 0, 1, 2, 3]));
});
after(() => rmSync(root, { recursive: true, force: true }));

const f32 = (path: string) => {
  const b = readFileSync(path);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};

test('analyze --dump writes tokens, attention, log-probabilities and logits that match the reference', async () => {
  const dump = join(root, 'dump');
  const r = await runCli('analyze', '--model', ck.dir, '--file', join(root, 'main.rs'), '--dump', dump, '--logits');
  assert.equal(r.code, 0, r.err);
  const meta = JSON.parse(readFileSync(join(dump, 'tokens.json'), 'utf8'));
  assert.deepEqual(meta.model, { n_layer: 2, n_head: 2, n_embd: 16, n_positions: 64, vocab_size: 50257 });
  const T = meta.tokens.length;
  assert.deepEqual(meta.window, { start: 0, end: T });
  // Offsets are UTF-16 units of the file; the tokens holding parts of 🌍 all span the whole character.
  for (const t of meta.tokens) {
    if (t.text.includes('\ufffd')) assert.match(TEXT.slice(t.start, t.end), /^ ?🌍$/u);
    else assert.equal(TEXT.slice(t.start, t.end), t.text);
  }
  assert.equal(meta.tokens.at(-1).end, TEXT.length);
  const ref = gpt2(ck.config, ck.weights, meta.tokens.map((t: { id: number }) => t.id));
  const att = f32(join(dump, 'attention.f32'));
  assert.equal(att.length, 2 * 2 * T * T);
  let d = 0;
  for (let i = 0; i < att.length; i++) d = Math.max(d, Math.abs(att[i] - ref.attention[i]));
  assert.ok(d < 1e-4, `attention differs by ${d}`);
  const lp = f32(join(dump, 'logprobs.f32'));
  assert.ok(Number.isNaN(lp[0]));
  for (let i = 1; i < T; i++) assert.ok(Math.abs(lp[i] - ref.logprobs[i]) < 1e-4);
  const logits = f32(join(dump, 'logits.f32'));
  assert.equal(logits.length, T * 50257);
  let dl = 0;
  for (let i = 0; i < logits.length; i++) dl = Math.max(dl, Math.abs(logits[i] - ref.logits[i]));
  assert.ok(dl < 1e-4, `logits differ by ${dl}`);
});

test('analyze --window analyses only that token window and says so', async () => {
  const dump = join(root, 'dump-window');
  const r = await runCli('analyze', '--model', ck.dir, '--text', 'a b c d e f g h i j', '--window', '2:6', '--dump', dump);
  assert.equal(r.code, 0, r.err);
  const meta = JSON.parse(readFileSync(join(dump, 'tokens.json'), 'utf8'));
  assert.deepEqual(meta.window, { start: 2, end: 6 });
  assert.deepEqual(meta.tokens.map((t: { text: string }) => t.text), [' c', ' d', ' e', ' f']);
  assert.equal(f32(join(dump, 'attention.f32')).length, 2 * 2 * 16);
});

test('tokenize prints ids and UTF-16 offsets', async () => {
  const r = await runCli('tokenize', '--model', ck.dir, '--text', 'Hello world');
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(JSON.parse(r.out).tokens, [
    { id: 15496, text: 'Hello', start: 0, end: 5 },
    { id: 995, text: ' world', start: 5, end: 11 },
  ]);
});

test('explain names the token, its surprisal, guesses and sources per layer', async () => {
  const r = await runCli('explain', '--model', ck.dir, '--file', join(root, 'main.rs'), '--at', '2:5');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^token \d+ " println" \(id 44872\) at 2:4/m);
  assert.match(r.out, /surprisal: \d+\.\d\d bits/);
  assert.match(r.out, /model expected: (".*" \d+\.\d%(, )?){5}/);
  assert.match(r.out, /layer  0: /);
  assert.match(r.out, /layer  1: /);
  const head = await runCli('explain', '--model', ck.dir, '--file', join(root, 'main.rs'), '--at', '1:1', '--head', '1.0');
  assert.match(head.out, /surprisal: n\/a \(first token of the window\)/);
  assert.match(head.out, /attends to \(head 1\.0\): "fn"@0 1\.00/);
});

test('bad input: one clear line on stderr and a non-zero exit', async () => {
  const cases: [string[], RegExp][] = [
    [['analyze', '--model', join(root, 'nope'), '--text', 'x', '--dump', join(root, 'd')], /nope/],
    [['analyze', '--model', ck.dir, '--file', join(root, 'blob.bin'), '--dump', join(root, 'd')], /looks binary/],
    [['analyze', '--model', ck.dir, '--text', 'short', '--window', '0:99', '--dump', join(root, 'd')], /outside the text/],
    [['analyze', '--model', ck.dir, '--text', 'short'], /needs --dump/],
    [['analyze', '--model', ck.dir, '--file', join(root, 'missing.txt'), '--dump', join(root, 'd')], /Cannot read/],
    [['explain', '--model', ck.dir, '--file', join(root, 'main.rs'), '--at', '99:1'], /has 4 lines/],
    [['frobnicate'], /Unknown command/],
    [['analyze', '--bogus'], /bogus/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(...args);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.err, message, args.join(' '));
    assert.match(r.err, /^headlight: /);
    assert.doesNotMatch(r.err, /\n\s+at \S+.*:\d+:\d+\)?\n/, 'no stack trace'); // a frame "at fn (file:line:col)", not the usage's "  attribute …"
  }
});

test('heads prints a score row and badges for every head', async () => {
  const r = await runCli('heads', '--model', ck.dir, '--text', 'one two three one two three one two three four five');
  assert.equal(r.code, 0, r.err);
  const rows = r.out.split('\n').filter((l) => /^\d+\.\d+ /.test(l));
  assert.deepEqual(rows.map((l) => l.split(/\s+/)[0]), ['0.0', '0.1', '1.0', '1.1']);
  for (const row of rows) {
    const cells = row.trim().split(/\s+/).slice(1, 6);
    for (const c of cells) assert.ok(c === '-' || (Number(c) >= 0 && Number(c) <= 1), `cell ${c}`);
  }
});

test('rollout --dump writes tokens.json as analyze does and rollout.f32 [T, T] whose rows sum to 1, as the reference gives', async () => {
  const dump = join(root, 'dump-rollout');
  const r = await runCli('rollout', '--model', ck.dir, '--file', join(root, 'main.rs'), '--dump', dump);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /rollout of \d+ tokens/);
  const meta = JSON.parse(readFileSync(join(dump, 'tokens.json'), 'utf8'));
  assert.deepEqual(meta.model, { n_layer: 2, n_head: 2, n_embd: 16, n_positions: 64, vocab_size: 50257 });
  const T = meta.tokens.length;
  const R = f32(join(dump, 'rollout.f32'));
  assert.equal(R.length, T * T);
  for (let i = 0; i < T; i++) {
    let sum = 0;
    for (let j = 0; j < T; j++) {
      if (j > i) assert.equal(R[i * T + j], 0, `R[${i}][${j}] above the diagonal`);
      sum += R[i * T + j];
    }
    assert.ok(Math.abs(sum - 1) < 1e-5, `row ${i} sums to ${sum}`);
  }
  // the same recursion over the reference's attention, in float64 from the first layer up
  const ref = gpt2(ck.config, ck.weights, meta.tokens.map((t: { id: number }) => t.id));
  let roll: number[][] = Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, j) => (i === j ? 1 : 0)));
  for (let l = 0; l < 2; l++) {
    const a = Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, j) => ((ref.attention[(l * 2) * T * T + i * T + j] + ref.attention[(l * 2 + 1) * T * T + i * T + j]) / 2 + (i === j ? 1 : 0)) / 2));
    roll = a.map((row) => Array.from({ length: T }, (_, j) => row.reduce((s, w, k) => s + w * roll[k][j], 0)));
  }
  let d = 0;
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) d = Math.max(d, Math.abs(R[i * T + j] - roll[i][j]));
  assert.ok(d < 1e-4, `rollout differs from the reference's by ${d}`);
  const bad = await runCli('rollout', '--model', ck.dir, '--text', 'x');
  assert.notEqual(bad.code, 0);
  assert.match(bad.err, /^headlight: rollout needs --dump/);
});
