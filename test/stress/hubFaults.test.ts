/**
 * Download faults of issue #22 (item 3), against the fake Hub on 127.0.0.1 (test/fixtures/fakeHub.ts):
 * - downloads cut at random byte offsets, resumed in the same call (retries) or by the next call;
 * - two processes (two VS Code windows, test/fixtures/hubChild.ts) downloading one repo into one cache at once,
 *   with a random cut, and in every other pair the lock holder killed (SIGKILL) mid-download;
 * - a full disk (ENOSPC, through the downloader's `openPartial` seam) at a random byte of a random file, then resumed;
 * - HF_HUB_OFFLINE=1 with a half-downloaded model (single file or sharded): a clear error and no request at all.
 * After every input: "data lost = 0": every blob's hash is its name, every partial file is a prefix of the real
 * bytes, every entry under snapshots/ resolves to the right bytes, and no partial file is visible there.
 *
 * Counts: HEADLIGHT_STRESS=full for the long run, else a short run for CI (well under 60 s on 2 cores).
 * HEADLIGHT_STRESS_SEED fixes the random choices (the seed used is printed). At the end one line per fault kind:
 *   STRESS|<row name>|<faults injected>|<inputs tried>|<clear errors>|<data lost>
 * (printed verbatim with `--test-reporter=spec`; the TAP reporter prefixes it with "# ").
 * Run: node --import tsx --test --test-reporter=spec test/stress/hubFaults.test.ts
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fsp, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { HeadlightError } from '../../extension/common/errors';
import { repoFolderName } from '../../extension/hub/cache';
import { PARTIAL_SUFFIX } from '../../extension/hub/hub';
import { downloadModel, resolveModel } from '../../extension/hub/modelStore';
import {
  diskWithFreeBytes,
  gitSha1Hex,
  makeModelRepo,
  makeShardedRepo,
  sha256Hex,
  startFakeHub,
  type FakeHub,
  type FakeRepo,
} from '../fixtures/fakeHub';

const FULL = process.env.HEADLIGHT_STRESS === 'full';
const COUNTS = FULL ? { cuts: 100, pairs: 20, disk: 40, offline: 20 } : { cuts: 12, pairs: 2, disk: 8, offline: 4 };
const SEED = Number(process.env.HEADLIGHT_STRESS_SEED ?? 22_003) >>> 0;
const CHILD = fileURLToPath(new URL('../fixtures/hubChild.ts', import.meta.url));

/** mulberry32: the same choices for the same seed. */
function rng(seed: number): { int(n: number): number; pick<T>(xs: readonly T[]): T } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { int: (n) => Math.floor(next() * n), pick: (xs) => xs[Math.floor(next() * xs.length)] };
}

interface Row {
  faults: number;
  inputs: number;
  clear: number;
  lost: number;
}
const ROWS = new Map<string, Row>();
function row(name: string): Row {
  let r = ROWS.get(name);
  if (!r) ROWS.set(name, (r = { faults: 0, inputs: 0, clear: 0, lost: 0 }));
  return r;
}

const homes: string[] = [];
function tempHome(): string {
  const home = mkdtempSync(join(tmpdir(), 'headlight-stress-'));
  homes.push(home);
  return home;
}

after(async () => {
  for (const h of homes) rmSync(h, { recursive: true, force: true });
  process.stdout.write(`stress mode ${FULL ? 'full' : 'short'}, seed ${SEED}\n`);
  for (const [name, r] of ROWS) process.stdout.write(`STRESS|${name}|${r.faults}|${r.inputs}|${r.clear}|${r.lost}\n`);
});

const filesOf = (repo: FakeRepo) => repo.revisions.main.files;
const dataOf = (repo: FakeRepo, path: string): Buffer => filesOf(repo).find((f) => f.path === path)!.data;
const etagOf = (f: { data: Buffer; lfs?: boolean }): string => (f.lfs ? sha256Hex(f.data) : gitSha1Hex(f.data));

/** A rejection that says what failed: a HeadlightError whose message names one of `files`. */
function isClear(err: unknown, files: string[]): boolean {
  return err instanceof HeadlightError && files.some((f) => err.message.includes(f));
}

/**
 * Everything in `repo`'s cache folder that is not what the Hub served: blobs whose content does not hash to their
 * name, partial files that are not a prefix of the real bytes, snapshot entries that do not resolve to the file's
 * bytes, and any partial or temporary file under snapshots/. Returns one line per problem.
 */
async function dataLost(hubCache: string, repo: FakeRepo): Promise<string[]> {
  const folder = join(hubCache, repoFolderName(repo.id));
  if (!existsSync(folder)) return [];
  const byEtag = new Map(filesOf(repo).map((f) => [etagOf(f), f]));
  const byPath = new Map(filesOf(repo).map((f) => [f.path, f]));
  const problems: string[] = [];
  for (const name of await fsp.readdir(join(folder, 'blobs')).catch(() => [] as string[])) {
    const bytes = await fsp.readFile(join(folder, 'blobs', name));
    if (name.endsWith(PARTIAL_SUFFIX)) {
      const f = byEtag.get(name.slice(0, -PARTIAL_SUFFIX.length));
      if (!f || bytes.length > f.data.length || !f.data.subarray(0, bytes.length).equals(bytes)) problems.push(`partial ${name} is not a prefix`);
      continue;
    }
    const f = byEtag.get(name);
    const hash = f?.lfs ? sha256Hex(bytes) : gitSha1Hex(bytes);
    if (!f || hash !== name) problems.push(`blob ${name} holds bytes hashing to ${hash}`);
  }
  const snapRoot = join(folder, 'snapshots');
  for (const commit of await fsp.readdir(snapRoot).catch(() => [] as string[])) {
    for (const rel of (await fsp.readdir(join(snapRoot, commit), { recursive: true })).map(String)) {
      const p = join(snapRoot, commit, rel);
      const st = await fsp.stat(p).catch(() => undefined);
      if (rel.includes('headlight-')) problems.push(`partial/temporary file visible under snapshots/: ${rel}`);
      else if (!st) problems.push(`snapshots/${commit}/${rel} is a dangling link`);
      else if (st.isFile() && !byPath.get(rel)?.data.equals(await fsp.readFile(p))) problems.push(`snapshots/${commit}/${rel} has wrong bytes`);
    }
  }
  return problems;
}

async function checkNoLoss(name: string, home: string, repo: FakeRepo): Promise<void> {
  const problems = await dataLost(join(home, 'hub'), repo);
  row(name).lost += problems.length;
  assert.deepEqual(problems, [], `${name}: data lost`);
}

async function assertComplete(dir: string, repo: FakeRepo, paths: string[]): Promise<void> {
  for (const p of paths) assert.equal(sha256Hex(await fsp.readFile(join(dir, p))), sha256Hex(dataOf(repo, p)), p);
}

const cdnGets = (hub: FakeHub, from: number) => hub.requests.slice(from).filter((q) => q.method === 'GET' && !q.path.startsWith('/api/models/'));

describe(`Hub download faults (${FULL ? 'full' : 'short'} run, seed ${SEED})`, { timeout: FULL ? 900_000 : 120_000 }, () => {
  const MB = 1 << 20;
  const single = makeModelRepo('stress/single', { seed: 41, weightsBytes: 2 * MB + 12_345 });
  const pair = makeModelRepo('stress/pair', { seed: 42, weightsBytes: 4 * MB + 777 });
  const sharded = makeShardedRepo('stress/sharded', { seed: 43, shards: 3, shardBytes: 600_000 });
  const ORDER = ['config.json', 'model.safetensors', 'tokenizer.json', 'vocab.json', 'merges.txt'];
  let hub: FakeHub;

  before(async () => {
    hub = await startFakeHub([single, pair, sharded]);
  });
  after(async () => hub?.close());

  it(`cut at random byte offsets, resumed (${COUNTS.cuts} downloads)`, async () => {
    const name = 'cut at random offsets, resumed';
    const r = rng(SEED ^ 1);
    for (let t = 0; t < COUNTS.cuts; t++) {
      const home = tempHome();
      const env = { HF_ENDPOINT: hub.endpoint, HF_HOME: home };
      // the weights (sha256, via the CDN) or config.json (git sha1, from the Hub itself)
      const file = r.int(4) === 0 ? 'config.json' : 'model.safetensors';
      const size = dataOf(single, file).length;
      const cuts = [...new Set(Array.from({ length: 1 + r.int(3) }, () => r.int(size)))].sort((a, b) => a - b);
      const inProcess = r.int(2) === 0; // retried inside one call, or each cut fails the call and the next resumes
      hub.faults.cutAt.set(file, [...cuts]);
      row(name).faults += cuts.length;
      row(name).inputs++;
      const first = hub.requests.length;
      let result;
      try {
        for (let call = 0; call <= cuts.length && !result; call++) {
          try {
            result = await downloadModel('stress/single', { env, retries: inProcess ? cuts.length : 0 });
          } catch (err) {
            assert.ok(isClear(err, [file]), `cut download of ${file} at ${cuts}: ${String(err)}`);
            assert.equal((err as HeadlightError).code, 'hub-cut');
            row(name).clear++;
            await checkNoLoss(name, home, single);
          }
        }
      } finally {
        hub.faults.cutAt.delete(file);
      }
      assert.ok(result, `download of ${file} cut at ${cuts} never completed`);
      await assertComplete(result.dir, single, ORDER);
      await checkNoLoss(name, home, single);
      const path = file === 'config.json' ? `/stress/single/resolve/` : '/cdn/';
      const ranges = cdnGets(hub, first)
        .filter((q) => q.path.startsWith(path) && (file !== 'config.json' || q.path.endsWith('/config.json')))
        .map((q) => q.range);
      assert.deepEqual(ranges, [undefined, ...cuts.map((c) => (c === 0 ? undefined : `bytes=${c}-`))], `${file} cut at ${cuts}`);
    }
  });

  it(`two processes download one repo into one cache at once (${COUNTS.pairs} pairs)`, async () => {
    const name = 'two processes, one blob';
    const r = rng(SEED ^ 2);
    const weights = dataOf(pair, 'model.safetensors');
    const etag = sha256Hex(weights);
    for (let t = 0; t < COUNTS.pairs; t++) {
      const home = tempHome();
      const env = { PATH: process.env.PATH, HOME: home, HF_HOME: home, HF_ENDPOINT: hub.endpoint };
      const kill = t % 2 === 1;
      const cut = r.int(weights.length);
      hub.faults.cutAt.set('model.safetensors', [cut]);
      hub.faults.holdBodyUntilHeads.set('model.safetensors', (hub.headsSeen.get('model.safetensors') ?? 0) + 2);
      hub.faults.throttleBytesPerSec = 12 * MB;
      row(name).faults += 2 + (kill ? 1 : 0); // the concurrent writer, the cut, the kill
      row(name).inputs++;
      const children = [runChild(env), runChild(env)];
      let killed: number | undefined;
      try {
        // batches reach the disk in 1 MiB steps: kill somewhere in the first half, before the last batch
        if (kill) killed = await killLockHolder(home, etag, r.int(2 * MB), children);
        const results = await Promise.all(children.map((c) => c.done));
        for (const [i, res] of results.entries()) {
          if (children[i].proc.pid === killed) {
            assert.equal(res.signal, 'SIGKILL');
            continue;
          }
          assert.equal(res.code, 0, `pair ${t}: ${res.out} ${res.err}`);
          const json = JSON.parse(res.out) as { ok: boolean; dir: string };
          await assertComplete(json.dir, pair, ORDER);
        }
        if (kill) assert.ok(killed !== undefined, 'a lock holder was killed');
      } finally {
        hub.faults.cutAt.delete('model.safetensors');
        hub.faults.holdBodyUntilHeads.delete('model.safetensors');
        hub.faults.throttleBytesPerSec = 0;
        for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
      }
      const blobs = await fsp.readdir(join(home, 'hub', repoFolderName(pair.id), 'blobs'));
      assert.equal(blobs.filter((b) => b.startsWith(etag)).length, 1, `one blob, no partial: ${blobs}`);
      await checkNoLoss(name, home, pair);
    }
  });

  it(`disk full (ENOSPC) at a random byte of a random file, then resumed (${COUNTS.disk} downloads)`, async () => {
    const name = 'disk full (ENOSPC)';
    const r = rng(SEED ^ 3);
    for (let t = 0; t < COUNTS.disk; t++) {
      const home = tempHome();
      const env = { HF_ENDPOINT: hub.endpoint, HF_HOME: home };
      const at = r.int(ORDER.length);
      const file = ORDER[at];
      const before = ORDER.slice(0, at).reduce((s, f) => s + dataOf(single, f).length, 0);
      const kept = r.int(dataOf(single, file).length);
      const disk = diskWithFreeBytes(before + kept);
      row(name).faults++;
      row(name).inputs++;
      await assert.rejects(downloadModel('stress/single', { env, openPartial: disk.open }), (err) => {
        assert.ok(isClear(err, [file]), `ENOSPC in ${file} at ${kept}: ${String(err)}`);
        assert.equal((err as HeadlightError).code, 'disk-full');
        assert.match((err as Error).message, new RegExp(`stopped after ${kept} of `));
        return true;
      });
      row(name).clear++;
      const repoDir = join(home, 'hub', repoFolderName(single.id));
      const partial = join(repoDir, 'blobs', `${etagOf(filesOf(single).find((f) => f.path === file)!)}${PARTIAL_SUFFIX}`);
      assert.deepEqual(await fsp.readFile(partial), dataOf(single, file).subarray(0, kept), `${file}: the partial keeps the bytes that fit`);
      const snaps = (await fsp.readdir(join(repoDir, 'snapshots'), { recursive: true }).catch(() => [])).map(String);
      assert.ok(!snaps.some((p) => p.endsWith(file)), `${file} is not under snapshots/`);
      await checkNoLoss(name, home, single);
      const first = hub.requests.length;
      const res = await downloadModel('stress/single', { env });
      await assertComplete(res.dir, single, ORDER);
      // (a same-host redirect, as for vocab.json, repeats the Range header on the second hop)
      const ranges = new Set(hub.requests.slice(first).filter((q) => q.range).map((q) => q.range));
      assert.deepEqual([...ranges], kept > 0 ? [`bytes=${kept}-`] : [], `${file} resumed at ${kept}`);
      await checkNoLoss(name, home, single);
    }
  });

  it(`HF_HUB_OFFLINE=1 with a half-downloaded model (${COUNTS.offline} models)`, async () => {
    const name = 'offline, half downloaded';
    const r = rng(SEED ^ 4);
    for (let t = 0; t < COUNTS.offline; t++) {
      const home = tempHome();
      const env = { HF_ENDPOINT: hub.endpoint, HF_HOME: home };
      const repo = t % 2 === 0 ? single : sharded;
      const weightFiles = filesOf(repo).filter((f) => f.path.endsWith('.safetensors')).map((f) => f.path);
      const file = r.pick(weightFiles);
      hub.faults.cutAt.set(file, [r.int(dataOf(repo, file).length)]);
      try {
        await assert.rejects(downloadModel(repo.id, { env, retries: 0 }), (err) => isClear(err, [file]));
      } finally {
        hub.faults.cutAt.delete(file);
      }
      row(name).faults++;
      row(name).inputs++;
      const requests = hub.requests.length;
      const connections = hub.connections();
      const offline = { ...env, HF_HUB_OFFLINE: '1' };
      for (const attempt of [() => resolveModel(repo.id, { env: offline }), () => downloadModel(repo.id, { env: offline })]) {
        await assert.rejects(attempt(), (err) => {
          assert.ok(isClear(err, [file]), `offline with ${file} half downloaded: ${String(err)}`);
          assert.equal((err as HeadlightError).code, 'offline');
          assert.match((err as HeadlightError).userMessage, /Unset HF_HUB_OFFLINE/);
          return true;
        });
        row(name).clear++;
      }
      assert.equal(hub.requests.length, requests, 'offline: the fake Hub saw no request');
      assert.equal(hub.connections(), connections, 'offline: no connection');
      await checkNoLoss(name, home, repo);
      const res = await downloadModel(repo.id, { env });
      await assertComplete(res.dir, repo, filesOf(repo).filter((f) => !/\.bin|generation_config/.test(f.path)).map((f) => f.path));
      await checkNoLoss(name, home, repo);
    }
  });

  it('every row lost no data', () => {
    for (const [n, rw] of ROWS) assert.equal(rw.lost, 0, n);
    assert.equal(ROWS.size, 4);
  });
});

interface ChildRun {
  proc: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>;
}

function runChild(env: NodeJS.ProcessEnv): ChildRun {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, 'stress/pair'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) =>
    proc.on('close', (code, signal) => resolve({ code, signal, out, err })),
  );
  return { proc, done };
}

/**
 * Waits until the weights' partial file holds more than `atBytes`, then SIGKILLs the child that holds the blob's
 * lock (its pid is in the lock file). Returns the pid killed, or undefined if the download finished first.
 */
async function killLockHolder(home: string, etag: string, atBytes: number, children: ChildRun[]): Promise<number | undefined> {
  const repoDir = join(home, 'hub', 'models--stress--pair');
  const partial = join(repoDir, 'blobs', `${etag}${PARTIAL_SUFFIX}`);
  const lock = join(home, 'hub', '.locks', 'models--stress--pair', `${etag}.headlight.lock`);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (existsSync(join(repoDir, 'blobs', etag))) return undefined;
    const size = (await fsp.stat(partial).catch(() => undefined))?.size ?? -1;
    if (size > atBytes) {
      const holder = await fsp.readFile(lock, 'utf8').then((t) => (JSON.parse(t) as { pid: number }).pid, () => undefined);
      const child = children.find((c) => c.proc.pid === holder);
      if (child) {
        child.proc.kill('SIGKILL');
        return holder;
      }
    }
    await new Promise((res) => setTimeout(res, 5));
  }
  return undefined;
}
