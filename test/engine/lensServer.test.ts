/**
 * The engine service's lens requests (extension/engine/server.ts handlers, in-process): lensAt, lensGrid with its
 * progress events, attribute; the answers agree with each other, stale versions are refused, and loading another
 * model replaces the lens.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeRandomCheckpoint } from '../fixtures/randomCheckpoint';
import { EngineService } from '../../extension/engine/server';
import { HeadlightError } from '../../extension/common/errors';

const root = mkdtempSync(join(tmpdir(), 'headlight-lens-server-'));
let dirA = '';
let dirB = '';
const service = new EngineService();
const events: { progressId: string; done: number; total: number }[] = [];
const signal = new AbortController().signal;

before(async () => {
  dirA = (await writeRandomCheckpoint(join(root, 'a'), { seed: 61, nLayer: 3, nHead: 2, nEmbd: 16, nPositions: 600 })).dir;
  dirB = (await writeRandomCheckpoint(join(root, 'b'), { seed: 62, nLayer: 2, nHead: 4, nEmbd: 16, nPositions: 64 })).dir;
  service.emit = (name, payload) => {
    if (name === 'lensProgress') events.push(payload as (typeof events)[number]);
  };
});
after(async () => {
  await service.dispose();
  rmSync(root, { recursive: true, force: true });
});

const TEXT = 'for (let i = 0; i < n; i++) {\n  total += values[i] * weights[i];\n}\n'.repeat(12);

test('lensAt, lensGrid (in runs of 256 positions, with progress) and attribute agree; stale versions are refused', async () => {
  await service.handlers.load!({ ref: 'a', dir: dirA, threads: 1 }, signal);
  const run = await service.handlers.analyze!({ text: TEXT, incremental: false }, signal);
  const T = run.tokens.length;
  assert.ok(T > 300, `a window longer than one run of 256 (${T} tokens)`);
  const grid = await service.handlers.lensGrid!({ version: run.version, start: 0, end: T, progressId: 'p1' }, signal);
  assert.equal(grid.rows, 4);
  assert.deepEqual(events.at(-1), { progressId: 'p1', done: T, total: T });
  assert.ok(events.length >= 3, 'progress at the start and after each run');
  for (const i of [0, 255, 256, T - 2, T - 1]) {
    const one = await service.handlers.lensAt!({ version: run.version, index: i }, signal);
    for (let l = 0; l < grid.rows; l++) {
      assert.equal(one.top[l][0].id, grid.top1[l * T + i], `top-1 at ${i}, layer ${l}`);
      if (i + 1 < T) assert.ok(Math.abs(one.logprob[l] - grid.logprob[l * T + i]) <= 1e-4, `log-prob at ${i}, layer ${l}`);
    }
    assert.equal(one.settles, grid.settles[i]);
    // The output row is the run's own prediction: its surprisal in bits.
    if (i + 1 < T) assert.ok(Math.abs(-one.logprob[grid.rows - 1] / Math.LN2 - run.surprisal[i + 1]) <= 1e-3);
  }
  const a = await service.handlers.attribute!({ version: run.version, index: 10 }, signal);
  const sum = a.parts.reduce((s, p) => s + p.value, 0);
  assert.ok(Math.abs(sum - a.logitTarget) <= 1e-3, `parts sum ${sum} vs logit ${a.logitTarget}`);
  assert.equal(a.heads.length, 3 * 2);
  const sub = await service.handlers.lensGrid!({ version: run.version, start: 100, end: 110 }, signal);
  assert.deepEqual(Array.from(sub.top1.subarray(0, 10)), Array.from(grid.top1.subarray(100, 110)));
  const newer = await service.handlers.analyze!({ text: TEXT + 'x', incremental: true }, signal);
  assert.ok(newer.version > run.version);
  await assert.rejects(Promise.resolve().then(() => service.handlers.lensAt!({ version: run.version, index: 0 }, signal)), (e: unknown) => e instanceof HeadlightError && e.code === 'stale-run');
  await assert.rejects(
    Promise.resolve().then(() => service.handlers.lensGrid!({ version: newer.version, start: 5, end: 5 }, signal)),
    (e: unknown) => e instanceof HeadlightError && e.code === 'bad-window',
  );
});

test('loading another model replaces the lens: its answers have the new model\'s layers', async () => {
  await service.handlers.load!({ ref: 'b', dir: dirB, threads: 1 }, signal);
  const run = await service.handlers.analyze!({ text: 'a b c d e f', incremental: false }, signal);
  const one = await service.handlers.lensAt!({ version: run.version, index: 2 }, signal);
  assert.equal(one.logprob.length, 3);
  const a = await service.handlers.attribute!({ version: run.version, index: 2, vs: 7 }, signal);
  assert.equal(a.heads.length, 2 * 4);
  assert.ok(Math.abs(a.parts.reduce((s, p) => s + p.value, 0) - (a.logitTarget - a.logitVs!)) <= 1e-3);
});
