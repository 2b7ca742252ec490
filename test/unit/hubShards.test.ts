/**
 * Sharded checkpoints, gated repos, a full disk and cut connections against the fake Hub on 127.0.0.1
 * (test/fixtures/fakeHub.ts). Every test uses its own temporary HF_HOME.
 */
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdtempSync, promises as fsp, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HeadlightError } from '../../extension/common/errors';
import { downloadModel, findCachedModel, resolveModel, shardsOfIndex } from '../../extension/hub/modelStore';
import { diskWithFreeBytes, makeModelRepo, makeShardedRepo, sha256Hex, startFakeHub, type FakeHub, type FakeRepo } from '../fixtures/fakeHub';

const homes: string[] = [];
function tempHome(): string {
  const home = mkdtempSync(join(tmpdir(), 'headlight-hubshards-'));
  homes.push(home);
  return home;
}

function rejectsWith(code: string, ...patterns: RegExp[]): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof HeadlightError, `expected a HeadlightError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const p of patterns) assert.match(err.userMessage, p);
    return true;
  };
}

function dataOf(repo: FakeRepo, path: string): Buffer {
  return repo.revisions.main.files.find((f) => f.path === path)!.data;
}

const sharded = makeShardedRepo('org/sharded', { seed: 31, shards: 3, shardBytes: 1 << 20 });
const shardNames = ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors'];
const gated401 = { ...makeModelRepo('meta-llama/Gated-1B', { seed: 32 }), gatedToken: 'hf_ok' };
const gated403 = { ...makeModelRepo('google/gated-2b', { seed: 33 }), gatedToken: 'hf_ok', gatedStatus: 403 as const };
const plain = makeModelRepo('org/plain', { seed: 34, weightsBytes: 3 << 20 });
const badIndex = makeShardedRepo('org/badindex', { seed: 35, shards: 1 });
badIndex.revisions.main.files.find((f) => f.path === 'model.safetensors.index.json')!.data = Buffer.from(
  JSON.stringify({ weight_map: { 'a.weight': '../../evil.safetensors' } }),
);

describe('sharded checkpoints, gated repos, full disks', () => {
  let hub: FakeHub;
  before(async () => {
    hub = await startFakeHub([sharded, gated401, gated403, plain, badIndex]);
  });
  after(async () => {
    await hub.close();
    for (const h of homes) rmSync(h, { recursive: true, force: true });
  });

  it('fetches the index, every shard it names and the tokenizer files, never *.bin, in the layout Python reads', async () => {
    const home = tempHome();
    const first = hub.requests.length;
    const r = await downloadModel('org/sharded', { env: { HF_ENDPOINT: hub.endpoint, HF_HOME: home } });
    assert.equal(r.files.weights, join(r.dir, 'model.safetensors.index.json'));
    assert.deepEqual(r.files.shards, shardNames.map((f) => join(r.dir, f)));
    for (const f of shardNames) {
      const link = join(r.dir, f);
      assert.ok(lstatSync(link).isSymbolicLink());
      assert.equal(readlinkSync(link), `../../blobs/${sha256Hex(dataOf(sharded, f))}`);
      assert.equal(sha256Hex(readFileSync(link)), sha256Hex(dataOf(sharded, f)), f);
    }
    const expected = ['config.json', 'model.safetensors.index.json', ...shardNames, 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json'];
    assert.deepEqual(readdirSync(r.dir).sort(), expected.sort());
    const paths = hub.requests.slice(first).map((q) => q.path);
    assert.ok(!paths.some((p) => p.includes('.bin') || p.includes('generation_config')), paths.join('\n'));
    // the reader side finds it complete, with no network
    const before = hub.connections();
    const cached = await findCachedModel('org/sharded', 'main', { env: { HF_HOME: home, HF_HUB_OFFLINE: '1' } });
    assert.deepEqual(cached?.files.shards, r.files.shards);
    assert.equal(hub.connections(), before);
  });

  it('a shard cut mid-way keeps what arrived; the next call resumes that shard with Range and refetches nothing else', async () => {
    const home = tempHome();
    const env = { HF_ENDPOINT: hub.endpoint, HF_HOME: home };
    const cut = 700_001;
    hub.faults.cutAt.set(shardNames[1], [cut]);
    const served = new Map(shardNames.map((f) => [f, hub.bodiesServed.get(f) ?? 0]));
    try {
      await assert.rejects(downloadModel('org/sharded', { env, retries: 0 }), rejectsWith('hub-cut', /model-00002-of-00003\.safetensors/, /resumes/));
    } finally {
      hub.faults.cutAt.delete(shardNames[1]);
    }
    const repoDir = join(home, 'hub', 'models--org--sharded');
    const partial = join(repoDir, 'blobs', `${sha256Hex(dataOf(sharded, shardNames[1]))}.headlight-partial`);
    assert.equal(statSync(partial).size, cut);
    const snaps = (await fsp.readdir(join(repoDir, 'snapshots'), { recursive: true })).map(String);
    assert.ok(!snaps.some((p) => p.endsWith(shardNames[1])), 'the cut shard is not in snapshots/');
    // offline, the half-downloaded model names the missing shards and how to finish, with no request
    const reqs = hub.requests.length;
    await assert.rejects(
      resolveModel('org/sharded', { env: { ...env, HF_HUB_OFFLINE: '1' } }),
      rejectsWith('offline', /partly downloaded.*: model-00002-of-00003\.safetensors, model-00003-of-00003\.safetensors, tokenizer\.json .*are missing/, /Unset HF_HUB_OFFLINE/, /will resume/),
    );
    assert.equal(hub.requests.length, reqs, 'offline: no request');
    const first = hub.requests.length;
    const r = await downloadModel('org/sharded', { env });
    for (const f of shardNames) assert.equal(sha256Hex(readFileSync(join(r.dir, f))), sha256Hex(dataOf(sharded, f)));
    const gets = hub.requests.slice(first).filter((q) => q.method === 'GET' && q.host.startsWith('localhost:'));
    assert.deepEqual(gets.map((q) => q.range), [`bytes=${cut}-`, undefined], 'resumes shard 2, then fetches shard 3 whole');
    assert.equal(hub.bodiesServed.get(shardNames[0]), served.get(shardNames[0])! + 1, 'shard 1 was fetched once');
  });

  it('refuses an index whose shard names leave the folder, naming the index', async () => {
    await assert.rejects(
      downloadModel('org/badindex', { env: { HF_ENDPOINT: hub.endpoint, HF_HOME: tempHome() } }),
      rejectsWith('model-bad-index', /model\.safetensors\.index\.json of org\/badindex@main/, /evil/),
    );
    assert.throws(() => shardsOfIndex('{"weight_map":{"a":"x.bin"}}', 'r'), rejectsWith('model-bad-index', /x\.bin/));
    assert.throws(() => shardsOfIndex('{"weight_map":{}}', 'r'), rejectsWith('model-bad-index', /names no tensor/));
    assert.throws(() => shardsOfIndex('not json', 'r'), rejectsWith('model-bad-index', /not valid JSON/));
    assert.throws(
      () => shardsOfIndex('{"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}}', 'r', new Set(['s1.safetensors'])),
      rejectsWith('model-files-missing', /s2\.safetensors/),
    );
    assert.deepEqual(shardsOfIndex('{"weight_map":{"a":"s2.safetensors","b":"s1.safetensors","c":"s2.safetensors"}}', 'r'), ['s2.safetensors', 's1.safetensors']);
  });

  for (const [status, repo] of [
    [401, gated401],
    [403, gated403],
  ] as const) {
    it(`a gated repo answering ${status} says it is gated, links its page and names HF_TOKEN`, async () => {
      const home = tempHome();
      const env: Record<string, string> = { HF_ENDPOINT: hub.endpoint, HF_HOME: home };
      if (status === 403) env.HF_TOKEN = 'hf_not_accepted';
      const page = `${hub.endpoint}/${repo.id}`.replace(/[.]/g, '\\.');
      await assert.rejects(
        downloadModel(repo.id, { env }),
        rejectsWith('hub-auth', new RegExp(`${repo.id} is gated or private.*HTTP ${status}`), new RegExp(`open ${page}`), /HF_TOKEN/, /licence/),
      );
      const r = await downloadModel(repo.id, { env: { ...env, HF_TOKEN: 'hf_ok' } });
      assert.equal(r.source, 'download');
    });
  }

  it('a full disk (ENOSPC after a short write) is a clear error; the partial is kept and the next call resumes from it', async () => {
    const home = tempHome();
    const env = { HF_ENDPOINT: hub.endpoint, HF_HOME: home };
    const config = dataOf(plain, 'config.json').length;
    const room = config + 1_234_567; // config.json fits, model.safetensors stops mid-batch
    const disk = diskWithFreeBytes(room);
    await assert.rejects(
      downloadModel('org/plain', { env, openPartial: disk.open }),
      rejectsWith('disk-full', /model\.safetensors from org\/plain stopped after 1234567 of 3145728 bytes/, /kept/, /resumes/),
    );
    assert.equal(disk.written(), room);
    const weights = dataOf(plain, 'model.safetensors');
    const repoDir = join(home, 'hub', 'models--org--plain');
    const partial = join(repoDir, 'blobs', `${sha256Hex(weights)}.headlight-partial`);
    assert.deepEqual(readFileSync(partial), weights.subarray(0, 1_234_567), 'the partial is exactly the bytes that fit');
    const snaps = (await fsp.readdir(join(repoDir, 'snapshots'), { recursive: true })).map(String);
    assert.ok(!snaps.some((p) => p.endsWith('model.safetensors')), 'nothing under snapshots/ for the failed file');
    const first = hub.requests.length;
    const r = await downloadModel('org/plain', { env });
    assert.equal(sha256Hex(readFileSync(r.files.weights)), sha256Hex(weights));
    const get = hub.requests.slice(first).find((q) => q.method === 'GET' && q.host.startsWith('localhost:'));
    assert.equal(get?.range, 'bytes=1234567-');
    assert.ok(!existsSync(partial));
  });

  it('a connection cut with no retries left is a hub-cut HeadlightError naming the file (was a bare "aborted")', async () => {
    hub.faults.cutAt.set('model.safetensors', [1000, 1000]);
    try {
      await assert.rejects(
        downloadModel('org/plain', { env: { HF_ENDPOINT: hub.endpoint, HF_HOME: tempHome() }, retries: 1 }),
        rejectsWith('hub-cut', /connection broke \(ECONNRESET\) after 1000 of 3145728 bytes while downloading model\.safetensors from org\/plain/),
      );
    } finally {
      hub.faults.cutAt.delete('model.safetensors');
    }
  });
});
