/**
 * The real engine process (extension/engine/server.ts, forked with tsx) through the host's EngineClient: load a
 * random checkpoint, analyse, incremental runs, queries, stale versions, cancellation, and restarts after kill -9.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeRandomCheckpoint } from '../fixtures/randomCheckpoint';
import { EngineClient, type CrashInfo } from '../../extension/host/engineClient';
import { HeadlightError } from '../../extension/common/errors';
import { halfTable } from '../../extension/common/half';

const SERVER = resolve(__dirname, '../../extension/engine/server.ts');
const root = mkdtempSync(join(tmpdir(), 'headlight-server-'));
let dir = '';

function client(extra: Partial<ConstructorParameters<typeof EngineClient>[0]> = {}): EngineClient {
  return new EngineClient({ serverPath: SERVER, execArgv: ['--import', 'tsx'], ...extra });
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<HeadlightError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof HeadlightError, `expected a HeadlightError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected a ${code} error`);
}

function nextCrash(c: EngineClient): Promise<CrashInfo> {
  return new Promise((res) => {
    const d = c.onDidCrash((info) => {
      d.dispose();
      res(info);
    });
  });
}

const TEXT = 'def greet(name):\n    return f"Hello, {name}!"  # 👋 café\r\nprint(greet("world"))\n'.repeat(3);

before(async () => {
  const ckpt = await writeRandomCheckpoint(join(root, 'tiny'), { seed: 7, nLayer: 2, nHead: 2, nEmbd: 16, nPositions: 128 });
  dir = ckpt.dir;
});
after(() => rmSync(root, { recursive: true, force: true }));

describe('engine process through EngineClient', () => {
  let c: EngineClient;
  before(() => {
    c = client();
  });
  after(() => c.dispose());

  test('a request before any model is loaded fails with no-model', async () => {
    await rejectsWith(c.request('analyze', { text: 'hi', incremental: false }), 'no-model');
  });

  test('load reports the model', async () => {
    const info = await c.load({ ref: 'random', dir });
    assert.equal(info.nLayer, 2);
    assert.equal(info.nHead, 2);
    assert.equal(info.nPositions, 128);
    assert.equal(c.loadedModel?.dir, dir);
    assert.ok(c.pid && c.pid !== process.pid, 'runs in a child process');
  });

  test('analyze, then an incremental edit near the end recomputes fewer tokens', async () => {
    const full = await c.analyze({ text: TEXT, incremental: false });
    assert.equal(full.tokens.length, full.window.end - full.window.start);
    assert.equal(full.surprisal.length, full.tokens.length);
    assert.ok(full.surprisal instanceof Float32Array, 'typed arrays cross as binary');
    assert.ok(Number.isNaN(full.surprisal[0]));
    assert.equal(full.stats.computed, full.tokens.length);
    const edited = TEXT.slice(0, -3) + 'X' + TEXT.slice(-3);
    const inc = await c.analyze({ text: edited, incremental: true });
    assert.ok(inc.version > full.version);
    assert.ok(inc.stats.computed < inc.tokens.length, `computed ${inc.stats.computed} of ${inc.tokens.length}`);
    assert.equal(inc.stats.reused + inc.stats.computed, inc.tokens.length);
  });

  test('offsetBase shifts every token offset', async () => {
    const run = await c.analyze({ text: 'hello world', offsetBase: 1000, incremental: false });
    assert.equal(run.tokens[0].start, 1000);
    assert.equal(run.tokens[run.tokens.length - 1].end, 1000 + 'hello world'.length);
    const info = await c.request('tokenInfo', { version: run.version, sel: { layer: 0, head: 0 }, index: 1, k: 3 });
    assert.equal(info.token.start, run.tokens[1].start);
  });

  test('tokenInfo, headTriangle, thumbnails, row and column answer for the latest run', async () => {
    const run = await c.analyze({ text: TEXT, incremental: false });
    const T = run.tokens.length;
    const info = await c.request('tokenInfo', { version: run.version, sel: { layer: 1, head: 0 }, index: 5, k: 5 });
    assert.equal(info.index, 5);
    assert.equal(info.token.text, run.tokens[5].text);
    assert.equal(info.predictions.length, 5);
    assert.ok(info.sources.length > 0 && info.sources.every((s) => s.index <= 5 && s.weight >= 0 && s.weight <= 1));
    assert.ok(Math.abs(info.surprisal - run.surprisal[5]) < 1e-6);
    const tri = await c.request('headTriangle', { version: run.version, layer: 1, head: 1 });
    assert.equal(tri.T, T);
    assert.equal(tri.data.length, (T * (T + 1)) / 2);
    // Each row of a head's triangle is a probability distribution.
    const row3 = Array.from(tri.data.subarray(6, 10), (v) => (tri.data instanceof Uint16Array ? halfTable()[v] : v));
    assert.ok(Math.abs(row3.reduce((a, b) => a + b, 0) - 1) < 5e-3, `row 3 sums to ${row3}`);
    const row = await c.request('row', { version: run.version, sel: { layer: 'mean', head: 'mean' }, index: T - 1 });
    assert.ok(row instanceof Float32Array);
    assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 5e-3);
    const col = await c.request('column', { version: run.version, sel: { layer: 0, head: 'mean' }, index: 0 });
    assert.equal(col.length, T);
    const th = await c.request('thumbnails', { version: run.version, size: 8 });
    assert.equal(th.data.length, th.nLayer * th.nHead * th.size * th.size);
  });

  test('headScores: scores in [0, 1] per role and head, badges at the threshold; cursorSummary matches the rows', async () => {
    const run = await c.analyze({ text: TEXT, incremental: false });
    const s = await c.request('headScores', { version: run.version });
    assert.equal(s.nLayer * s.nHead, 4);
    for (const role of ['previous-token', 'first-token', 'duplicate-token', 'local', 'induction'] as const) {
      const v = s.scores[role];
      assert.ok(v instanceof Float32Array && v.length === 4, `${role} is a [L*H] Float32Array`);
      for (const x of v) assert.ok(x >= 0 && x <= 1, `${role} score ${x}`);
    }
    for (let k = 0; k < 4; k++) {
      const key = `${Math.floor(k / 2)}.${k % 2}`;
      const expected = Object.entries(s.scores).filter(([, v]) => v![k] >= 0.5).map(([r]) => r).sort();
      assert.deepEqual([...(s.badges[key] ?? [])].sort(), expected, `badges of ${key}`);
    }
    // The first-token score is the mean weight on token 0 over queries 1..T−1: check one head against its rows.
    const T = run.tokens.length;
    let sum = 0;
    for (let i = 1; i < T; i++) sum += (await c.request('row', { version: run.version, sel: { layer: 1, head: 1 }, index: i }))[0];
    assert.ok(Math.abs(s.scores['first-token']![3] - sum / (T - 1)) < 2e-3);

    const index = T - 2;
    const sum2 = await c.request('cursorSummary', { version: run.version, index });
    assert.equal(sum2.index, index);
    for (let k = 0; k < 4; k++) {
      const row = await c.request('row', { version: run.version, sel: { layer: Math.floor(k / 2), head: k % 2 }, index });
      const rest = Array.from(row.subarray(1));
      const best = Math.max(...rest);
      assert.equal(sum2.sink[k], row[0]);
      assert.equal(sum2.peak[k], best);
      assert.equal(sum2.peakIndex[k], 1 + rest.indexOf(best));
    }
    // Value-weighted: the same summary over each head's value-weighted row.
    const vw = await c.request('cursorSummary', { version: run.version, index, mode: 'value-weighted' });
    for (let k = 0; k < 4; k++) {
      const row = await c.request('row', { version: run.version, sel: { layer: Math.floor(k / 2), head: k % 2 }, index, mode: 'value-weighted' });
      const rest = Array.from(row.subarray(1));
      assert.equal(vw.sink[k], row[0]);
      assert.equal(vw.peak[k], Math.max(...rest));
      assert.equal(vw.peakIndex[k], 1 + rest.indexOf(Math.max(...rest)));
    }
    assert.ok(Array.from(vw.peak).some((p, k) => Math.abs(p - sum2.peak[k]) > 1e-4), 'value-weighted peaks differ from plain ones');
    await rejectsWith(c.request('cursorSummary', { version: run.version, index: T }), 'bad-index');
  });

  test('a stale version is refused', async () => {
    const a = await c.analyze({ text: 'one two three', incremental: false });
    const b = await c.analyze({ text: 'one two four', incremental: true });
    assert.ok(b.version > a.version);
    await rejectsWith(c.request('tokenInfo', { version: a.version, sel: { layer: 0, head: 0 }, index: 1, k: 3 }), 'stale-run');
    const ok = await c.request('predictions', { version: b.version, index: 1, k: 2 });
    assert.equal(ok.length, 2);
  });

  test('a superseded analyze is cancelled; the latest wins', async () => {
    const first = c.analyze({ text: TEXT + ' first', incremental: false });
    const second = c.analyze({ text: 'second text', incremental: false });
    await rejectsWith(first, 'cancelled');
    const run = await second;
    assert.equal(run.tokens.map((t) => t.text).join(''), 'second text');
    // The run the engine keeps is the latest one.
    const info = await c.request('tokenInfo', { version: run.version, sel: { layer: 0, head: 0 }, index: 0, k: 1 });
    assert.equal(info.token.text, run.tokens[0].text);
  });

  test('an aborted signal cancels a request', async () => {
    const ac = new AbortController();
    const p = c.analyze({ text: TEXT, incremental: false }, ac.signal);
    ac.abort();
    await rejectsWith(p, 'cancelled');
  });

  test('kill -9: a pending analyze is asked again on the restarted engine, which re-loads the model', async () => {
    const pid = c.pid!;
    const crashed = nextCrash(c);
    const pending = c.analyze({ text: TEXT, incremental: false });
    process.kill(pid, 'SIGKILL');
    assert.ok((await pending).tokens.length > 0, 'answered by the restarted engine (see test/stress/engineKills.test.ts)');
    const info = await crashed;
    assert.equal(info.signal, 'SIGKILL');
    assert.equal(info.gaveUp, false);
    const run = await c.analyze({ text: 'after the crash', incremental: true });
    assert.ok(run.tokens.length > 0);
    assert.notEqual(c.pid, pid);
    assert.equal(c.loadedModel?.dir, dir, 'model re-loaded after restart');
  });
});

describe('crash limit', () => {
  test('three crashes within the window stop automatic restarts; the next request starts it again', async () => {
    const c = client({ restartBackoffMs: [20], crashLimit: 3, crashWindowMs: 60_000 });
    try {
      await c.load({ ref: 'random', dir });
      const infos: CrashInfo[] = [];
      for (let i = 0; i < 3; i++) {
        await c.request('ping', {});
        const crashed = nextCrash(c);
        process.kill(c.pid!, 'SIGKILL');
        infos.push(await crashed);
      }
      assert.deepEqual(infos.map((i) => [i.recentCrashes, i.gaveUp]), [[1, false], [2, false], [3, true]]);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(c.pid, undefined, 'no automatic restart after giving up');
      const pong = await c.request('ping', {});
      assert.equal(pong.pid, c.pid);
    } finally {
      c.dispose();
    }
  });

  test('dispose stops the engine process', async () => {
    const c = client();
    await c.load({ ref: 'random', dir });
    const pid = c.pid!;
    c.dispose();
    await new Promise((r) => setTimeout(r, 500));
    assert.throws(() => process.kill(pid, 0), /ESRCH/);
    await rejectsWith(c.request('ping', {}), 'disposed');
  });
});
