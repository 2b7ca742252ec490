/**
 * The engine process killed with SIGKILL again and again, through a real EngineClient (default crash limit and
 * backoff, as a user has them) and the real engine on the bundled tiny model: mid-run (requests in flight), idle
 * once the host has seen the exit, and idle before it has (the next request goes to the dead process). Every
 * request must end in the same answer as before any kill or in a clear HeadlightError, and the next analyze must
 * give the surprisal of before, bit for bit. Also: run versions are never reused across processes, the latest run
 * is made again for a query that names it, `keepQueries` is given to every new process, and a process that dies
 * at every start stops being restarted.
 *
 *   node --import tsx --test --test-reporter=spec test/stress/engineKills.test.ts      (a few kills of each kind)
 *   HEADLIGHT_STRESS=full ...                                                          (100 kills)
 *
 * Prints one line per row: STRESS|<row>|<faults injected>|<inputs tried>|<clear errors>|<data lost>.
 * The engine runs from an esbuild bundle of extension/engine/server.ts (under out/, as dist/ is built) so that a
 * restart costs what it costs a user, not a TypeScript compile; a preload module reports every request a process
 * receives on its stderr, which the client passes to its log.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { EngineClient, type CrashInfo } from '../../extension/host/engineClient';
import { HeadlightError } from '../../extension/common/errors';
import type { RunSummary } from '../../extension/common/engineProtocol';
import { mulberry32 } from '../fixtures/randomCheckpoint';

const ROOT = resolve(__dirname, '../..');
const SERVER = join(ROOT, 'out', 'stress', 'engineServer.js');
const MODEL = { ref: 'bundled', dir: join(ROOT, 'models', 'headlight-tiny') };
const FULL = process.env.HEADLIGHT_STRESS === 'full';
const KILLS = FULL ? 100 : 9;
const TEXT = 'def greet(name):\n    """Say hello."""\n    return f"Hello, {name}!"\n\nprint(greet("world"))  # café 👋\n'.repeat(2);
const MEAN = { layer: 'mean', head: 'mean' } as const;
/** Errors a pending request may end in when its process is killed: each says what happened and what to do. */
const CLEAR = new Set(['engine-crashed', 'cancelled', 'stale-run']);
/** No request may stay unanswered longer than this (restart + model load + run take ~2 s here). */
const ANSWER_MS = 30_000;

/**
 * Reports every request a process receives, on its stderr: `rpc-in <pid> <method> [params of keepQueries]`. It
 * listens from the moment the server does (a 'message' listener of its own, earlier, would take the first
 * messages before the server listens).
 */
const RECORDER = `data:text/javascript,${encodeURIComponent(`
  const record = (m) => {
    if (m && m.rpc === 'req') process.stderr.write('rpc-in ' + process.pid + ' ' + m.method + (m.method === 'keepQueries' ? ' ' + JSON.stringify(m.params) : '') + '\\n');
  };
  const on = process.on;
  process.on = function (event, listener) {
    if (event === 'message') {
      process.on = on;
      on.call(process, 'message', record);
    }
    return on.call(this, event, listener);
  };
`)}`;

before(async () => {
  await build({
    entryPoints: [join(ROOT, 'extension', 'engine', 'server.ts')],
    outfile: SERVER,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['onnxruntime-node'],
    logLevel: 'warning',
  });
});

const clients: EngineClient[] = [];
after(() => {
  for (const c of clients) c.dispose();
});

interface Harness {
  client: EngineClient;
  /** Requests received, per process: [pid, method, params]. */
  received: [number, string, string][];
  starts: number[];
  crashes: CrashInfo[];
}

function harness(extra: Partial<ConstructorParameters<typeof EngineClient>[0]> = {}): Harness {
  const h: Harness = { received: [], starts: [], crashes: [] } as unknown as Harness;
  h.client = new EngineClient({
    serverPath: SERVER,
    execArgv: ['--import', RECORDER],
    log: (_level, message) => {
      const m = /^engine: rpc-in (\d+) (\w+) ?(.*)$/.exec(message);
      if (m) h.received.push([Number(m[1]), m[2], m[3]]);
    },
    ...extra,
  });
  h.client.onDidStart((pid) => h.starts.push(pid));
  h.client.onDidCrash((c) => h.crashes.push(c));
  clients.push(h.client);
  return h;
}

function nextCrash(c: EngineClient): Promise<CrashInfo> {
  return new Promise((res) => {
    const d = c.onDidCrash((info) => {
      d.dispose();
      res(info);
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Settles within ANSWER_MS or counts as lost. */
async function settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const lost = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`no answer within ${ANSWER_MS} ms`)), ANSWER_MS)));
  try {
    return { ok: true, value: await Promise.race([p, lost]) };
  } catch (error) {
    return { ok: false, error };
  } finally {
    clearTimeout(timer);
  }
}

function sameFloats(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
}

function sameRun(a: RunSummary, b: RunSummary): boolean {
  return sameFloats(a.surprisal, b.surprisal) && a.tokens.length === b.tokens.length && a.tokens.every((t, i) => t.id === b.tokens[i].id && t.start === b.tokens[i].start && t.end === b.tokens[i].end);
}

function isClear(err: unknown): boolean {
  return err instanceof HeadlightError && CLEAR.has(err.code) && err.message.length > 0 && (err.code !== 'engine-crashed' || !!err.hint);
}

interface Row {
  faults: number;
  inputs: number;
  clear: number;
  lost: number;
  notes: string[];
}

test(`SIGKILL ${KILLS} times, mid-run and idle (exit seen and not yet seen): clear errors, then the same result`, { timeout: FULL ? 900_000 : 120_000 }, async () => {
  const h = harness();
  const client = h.client;
  let receivedAtKill = 0;
  await client.load(MODEL);
  const base = await client.analyze({ text: TEXT, incremental: false });
  const last = base.tokens.length - 1;
  const baseRow = await client.request('row', { version: base.version, sel: MEAN, index: last });
  const rows: Record<'mid' | 'seen' | 'unseen', Row> = {
    mid: { faults: 0, inputs: 0, clear: 0, lost: 0, notes: [] },
    seen: { faults: 0, inputs: 0, clear: 0, lost: 0, notes: [] },
    unseen: { faults: 0, inputs: 0, clear: 0, lost: 0, notes: [] },
  };
  const random = mulberry32(22);
  let latest = base;

  /** Checks one request's outcome against what it must be: `expected` when answered, else a clear error. */
  const judge = <T>(row: Row, what: string, r: { ok: true; value: T } | { ok: false; error: unknown }, same: (v: T) => boolean) => {
    row.inputs++;
    if (r.ok) {
      if (!same(r.value)) {
        row.lost++;
        row.notes.push(`${what}: answered with a different result`);
      }
    } else if (isClear(r.error)) row.clear++;
    else {
      row.lost++;
      row.notes.push(`${what}: ${String(r.error)}`);
    }
  };

  for (let i = 0; i < KILLS; i++) {
    const kind = (['mid', 'seen', 'unseen'] as const)[i % 3];
    const row = rows[kind];
    await client.request('ping', {}); // a live process to kill
    const pid = client.pid!;
    const crashed = nextCrash(client);
    const pending: Promise<void>[] = [];
    if (kind === 'mid') {
      // In flight when the process dies: a run, a read of the latest run, a head ranking (never asked twice) and a
      // read the user cancels just after the kill.
      const ac = new AbortController();
      const v = latest.version;
      pending.push(
        settle(client.analyze({ text: TEXT, incremental: false })).then((r) => judge(row, 'analyze', r, (s) => sameRun(s, base))),
        settle(client.request('row', { version: v, sel: MEAN, index: last })).then((r) => judge(row, 'row', r, (x) => sameFloats(x, baseRow))),
        settle(client.request('rankHeads', { text: TEXT, mode: 'zero' })).then((r) => judge(row, 'rankHeads', r, (x) => x.ranking.length === 16)),
        settle(client.request('thumbnails', { version: v, size: 8 }, ac.signal)).then((r) => judge(row, 'thumbnails (cancelled)', r, (x) => x.data.length === 16 * 64)),
      );
      await sleep(random() % 150);
      if (h.received.some(([p, m]) => p === pid && m === 'rankHeads')) receivedAtKill++;
      process.kill(pid, 'SIGKILL');
      ac.abort();
    } else {
      process.kill(pid, 'SIGKILL');
      if (kind === 'seen') await crashed;
      // 'unseen': the next requests leave in this same tick, to the dead process.
    }
    row.faults++;
    // The user's next requests: a read of the run they were looking at ('unseen': it leaves in the kill's tick, to
    // the dead process), then a new analysis.
    const readResult = await settle(client.request('row', { version: latest.version, sel: MEAN, index: last }));
    await Promise.all(pending);
    const next = await settle(client.analyze({ text: TEXT, incremental: true }));
    judge(row, 'the next row', readResult, (x) => sameFloats(x, baseRow));
    if (kind !== 'mid' && !readResult.ok) {
      row.lost++; // nothing was in flight: the user's next read must work
      row.notes.push(`the next row after an idle kill failed: ${String(readResult.error)}`);
    }
    row.inputs++;
    if (!next.ok || !sameRun(next.value, base)) {
      row.lost++;
      row.notes.push(`the next analyze after kill ${i} (${kind}): ${next.ok ? 'a different result' : String(next.error)}`);
    } else latest = next.value;
    assert.notEqual(client.pid, pid, 'a new process answered');
    await crashed;
  }

  const names = { mid: 'engine SIGKILL mid-run', seen: 'engine SIGKILL idle, exit seen', unseen: 'engine SIGKILL idle, exit not yet seen' };
  for (const [k, r] of Object.entries(rows) as [keyof typeof rows, Row][]) console.log(`STRESS|${names[k]}|${r.faults}|${r.inputs}|${r.clear}|${r.lost}`);
  console.log(`mid-run kills with the work already received by the process: ${receivedAtKill} of ${rows.mid.faults}`);
  for (const r of Object.values(rows)) assert.deepEqual(r.notes, [], r.notes.join('\n'));
  assert.ok(receivedAtKill > 0, 'some mid-run kills hit a process at work');
  assert.ok(rows.mid.clear >= rows.mid.faults, 'the cancelled read and the head ranking end in clear errors at every mid-run kill');
});

test('run versions are the client’s: a dead process’s version never names its successor’s run; the latest run is made again, once', { timeout: 60_000 }, async () => {
  const h = harness();
  const c = h.client;
  await c.load(MODEL);
  const a = await c.analyze({ text: TEXT, incremental: false });
  const rowA = await c.request('row', { version: a.version, sel: MEAN, index: 3 });
  const tri = await c.request('headTriangle', { version: a.version, layer: 1, head: 2 });

  // The process dies while idle; three views ask about the run they show: it is made again once, same answers.
  let crashed = nextCrash(c);
  process.kill(c.pid!, 'SIGKILL');
  await crashed;
  const [r1, t1, r2] = await Promise.all([
    c.request('row', { version: a.version, sel: MEAN, index: 3 }),
    c.request('headTriangle', { version: a.version, layer: 1, head: 2 }),
    c.request('row', { version: a.version, sel: MEAN, index: 3 }),
  ]);
  assert.ok(sameFloats(r1, rowA) && sameFloats(r2, rowA), 'the same row from the restarted process');
  assert.deepEqual(Array.from(t1.data), Array.from(tri.data), 'the same triangle');
  const second = h.starts.at(-1)!;
  await sleep(200); // the recorder's lines travel on stderr, beside the answers
  assert.deepEqual(h.received.filter(([pid, m]) => pid === second && m === 'analyze').length, 1, 'the run is made again once, for three queries');

  // A new run on the new process gets a new version; the old one is refused, not answered from the new text.
  const b = await c.analyze({ text: 'something else entirely', incremental: true });
  assert.ok(b.version > a.version);
  crashed = nextCrash(c);
  process.kill(c.pid!, 'SIGKILL');
  await crashed;
  const d = await c.analyze({ text: 'a third text', incremental: false }); // new process: its own run
  await assert.rejects(c.request('row', { version: a.version, sel: MEAN, index: 1 }), (e: HeadlightError) => e.code === 'stale-run');
  await assert.rejects(c.request('row', { version: b.version, sel: MEAN, index: 1 }), (e: HeadlightError) => e.code === 'stale-run');
  const rowD = await c.request('row', { version: d.version, sel: MEAN, index: 1 });
  assert.equal(rowD.length, 2);
});

test('keepQueries is given to every new process after the model, and to a new model', { timeout: 60_000 }, async () => {
  const h = harness();
  const c = h.client;
  await c.load(MODEL);
  await c.request('keepQueries', { on: true });
  const crashed = nextCrash(c);
  process.kill(c.pid!, 'SIGKILL');
  await crashed;
  await c.request('ping', {});
  const pid = c.pid!;
  await c.load({ ...MODEL }); // a load on the running process (a new model there starts without queries)
  await sleep(200); // the recorder's lines travel on stderr, beside the answers
  const got = h.received.filter(([p, m]) => p === pid && m !== 'ping').map(([, m, params]) => `${m} ${params}`.trim());
  assert.deepEqual(got, ['load', 'keepQueries {"on":true}', 'load', 'keepQueries {"on":true}']);
  await c.request('keepQueries', { on: false });
  process.kill(pid, 'SIGKILL');
  await c.request('ping', {});
  await sleep(200);
  const third = h.received.filter(([p, m]) => p === c.pid && m === 'keepQueries').map(([, , params]) => params);
  assert.deepEqual(third, ['{"on":false}'], 'the latest state, not the first');
});

test('a process that dies at every start: restarts stop at the crash limit, a retry resets nothing, a request starts at most two', { timeout: 60_000 }, async () => {
  const h = harness({ restartBackoffMs: [20], crashLimit: 3 });
  const c = h.client;
  await c.load(MODEL);
  let killing = true;
  c.onDidStart((pid) => killing && process.kill(pid, 'SIGKILL'));
  process.kill(c.pid!, 'SIGKILL'); // crash 1; every restart dies too
  for (let waited = 0; !h.crashes.at(-1)?.gaveUp; waited += 20) {
    assert.ok(waited < 20_000, 'the crash limit stops the automatic restarts');
    await sleep(20);
  }
  assert.equal(h.crashes.length, 3);
  assert.equal(h.starts.length, 3, 'the first process and two automatic restarts');
  const err = await c.analyze({ text: TEXT, incremental: false }).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof HeadlightError && err.code === 'engine-crashed' && /twice/.test(err.message), `a clear error, got ${String(err)}`);
  assert.match(err.hint ?? '', /not restarted by itself/);
  assert.equal(h.starts.length, 5, 'the request started one process and its retry one more');
  await sleep(1000);
  assert.equal(h.starts.length, 5, 'no process starts while nobody asks');
  assert.equal(h.crashes.length, 5);
  killing = false;
  const run = await c.analyze({ text: TEXT, incremental: false }); // the user asks again: a fresh start
  assert.ok(run.tokens.length > 0);
});
