/**
 * Downloads against a real HTTP server on 127.0.0.1 (test/fixtures/fakeHub.ts) with injected faults. Every test
 * uses its own temporary HF_HOME, never the real cache.
 */
import assert from 'node:assert/strict';
import { promises as fsp, mkdtempSync, readdirSync, readFileSync, readlinkSync, lstatSync, existsSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HeadlightError } from '../../extension/common/errors';
import { downloadHubFile } from '../../extension/hub/hub';
import { hubEnv } from '../../extension/hub/env';
import { downloadModel, resolveModel, type DownloadProgress } from '../../extension/hub/modelStore';
import {
  fakeCommit,
  gitSha1Hex,
  makeModelRepo,
  seededBytes,
  sha256Hex,
  startFakeHub,
  type FakeHub,
  type FakeRepo,
} from '../fixtures/fakeHub';

const MB = 1 << 20;
const BIG = 20 * MB;

const homes: string[] = [];
function tempHome(): string {
  const home = mkdtempSync(join(tmpdir(), 'headlight-hub-'));
  homes.push(home);
  return home;
}

function expectCode(code: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof HeadlightError, `expected HeadlightError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

function repoFiles(repo: FakeRepo): Map<string, Buffer> {
  return new Map(repo.revisions.main.files.map((f) => [f.path, f.data]));
}

const gpt2 = { ...makeModelRepo('openai-community/gpt2', { seed: 2 }), renamedFrom: 'gpt2' };
const big = makeModelRepo('test/big', { seed: 3, weightsBytes: BIG });
const gated = { ...makeModelRepo('test/gated', { seed: 4 }), gatedToken: 'hf_secret' };
const pickleOnly = makeModelRepo('test/pickle', {
  seed: 5,
  omit: ['model.safetensors'],
  extra: [{ path: 'pytorch_model.bin', data: seededBytes(1000, 5), lfs: true }],
});
const huge = makeModelRepo('test/huge', { seed: 6 });
huge.revisions.main.files.find((f) => f.path === 'model.safetensors')!.advertisedSize = 10 ** 18;
const bpeOnly = makeModelRepo('test/bpe', { seed: 7, omit: ['tokenizer.json'] });

describe('Hub downloads against a fake Hub on 127.0.0.1', () => {
  let hub: FakeHub;
  before(async () => {
    hub = await startFakeHub([gpt2, big, gated, pickleOnly, huge, bpeOnly]);
  });
  after(async () => {
    await hub.close();
    for (const h of homes) await fsp.rm(h, { recursive: true, force: true });
  });

  it('writes the layout Python reads, file by file, under the id asked for (gpt2 -> models--gpt2)', async () => {
    const home = tempHome();
    const env = { HF_ENDPOINT: hub.endpoint, HF_HOME: home, HF_TOKEN: 'hf_user' };
    const r = await downloadModel('gpt2', { env });
    const commit = gpt2.revisions.main.commit;
    const repoDir = join(home, 'hub', 'models--gpt2');
    assert.equal(r.dir, join(repoDir, 'snapshots', commit));
    assert.equal(r.commit, commit);
    assert.equal(readFileSync(join(repoDir, 'refs', 'main'), 'utf8'), commit); // no trailing newline
    const files = repoFiles(gpt2);
    const expectedBlobs = new Set<string>();
    for (const [path, data] of files) {
      const etag = path === 'model.safetensors' ? sha256Hex(data) : gitSha1Hex(data);
      expectedBlobs.add(etag);
      const link = join(r.dir, path);
      assert.ok(lstatSync(link).isSymbolicLink(), `${path} is a symlink`);
      assert.equal(readlinkSync(link), `../../blobs/${etag}`, path);
      assert.deepEqual(readFileSync(link), data, `${path} content`);
    }
    assert.deepEqual(new Set(readdirSync(join(repoDir, 'blobs'))), expectedBlobs, 'blobs are exactly the etags');
    assert.deepEqual(readdirSync(r.dir).sort(), [...files.keys()].sort());
    assert.equal(r.files.tokenizer, join(r.dir, 'tokenizer.json'));
    assert.equal(r.files.vocab, join(r.dir, 'vocab.json'));
    // no partial or temporary files left anywhere in the repo folder
    const all = await fsp.readdir(repoDir, { recursive: true });
    assert.ok(!all.some((p) => String(p).includes('headlight-')), all.join(','));
  });

  it('sends the token to the Hub but never to the CDN host', async () => {
    const env = { HF_ENDPOINT: hub.endpoint, HF_HOME: tempHome(), HF_TOKEN: 'hf_user' };
    const first = hub.requests.length;
    await downloadModel('openai-community/gpt2', { env });
    const reqs = hub.requests.slice(first);
    const cdn = reqs.filter((q) => q.host.startsWith('localhost:'));
    const origin = reqs.filter((q) => q.host.startsWith('127.0.0.1:'));
    assert.ok(cdn.length >= 1, 'the weights came from the CDN host');
    assert.ok(cdn.every((q) => q.authorization === undefined), 'no Authorization to the CDN');
    assert.ok(origin.every((q) => q.authorization === 'Bearer hf_user'), 'token on every Hub request');
  });

  it('resolves from the cache with no connection, and offline mode opens no socket', async () => {
    const home = tempHome();
    const env = { HF_ENDPOINT: hub.endpoint, HF_HOME: home };
    await downloadModel('openai-community/gpt2@main', { env });
    const before = hub.connections();
    const cached = await resolveModel('openai-community/gpt2', { env });
    assert.equal(cached.source, 'cache');
    const viaAlias = await resolveModel('gpt2', { env: { ...env, HF_HUB_OFFLINE: '1' } });
    assert.equal(viaAlias.dir, cached.dir, 'gpt2 finds models--openai-community--gpt2');
    const offline = await downloadModel('openai-community/gpt2', { env: { ...env, TRANSFORMERS_OFFLINE: 'yes' } });
    assert.equal(offline.source, 'cache');
    await assert.rejects(resolveModel('test/big', { env: { ...env, HF_HUB_OFFLINE: 'TRUE' } }), expectCode('offline'));
    await assert.rejects(downloadModel('test/big', { env: { ...env, HF_HUB_OFFLINE: 'on' } }), expectCode('offline'));
    assert.equal(hub.connections(), before, 'no TCP connection was opened');
  });

  it('downloads vocab.json + merges.txt when the repo has no tokenizer.json, and marks it in .no_exist', async () => {
    const home = tempHome();
    const r = await downloadModel('test/bpe', { env: { HF_ENDPOINT: hub.endpoint, HF_HOME: home } });
    assert.equal(r.files.tokenizer, undefined);
    assert.ok(existsSync(r.files.vocab!) && existsSync(r.files.merges!));
    const marker = join(home, 'hub', 'models--test--bpe', '.no_exist', r.commit!, 'tokenizer.json');
    assert.equal(readFileSync(marker, 'utf8'), '');
  });

  it('a cut at any byte resumes with Range and verifies (20 MB; cuts at 0, 1, 7 MB, 13 MB, end-1)', async () => {
    const home = tempHome();
    const cuts = [0, 1, 7 * MB, 13 * MB, BIG - 1];
    hub.faults.cutAt.set('model.safetensors', [...cuts]);
    const first = hub.requests.length;
    try {
      const r = await downloadModel('test/big', { env: { HF_ENDPOINT: hub.endpoint, HF_HOME: home }, retries: 2 });
      const data = readFileSync(r.files.weights);
      assert.equal(sha256Hex(data), sha256Hex(repoFiles(big).get('model.safetensors')!));
    } finally {
      hub.faults.cutAt.delete('model.safetensors');
    }
    const gets = hub.requests.slice(first).filter((q) => q.method === 'GET' && q.host.startsWith('localhost:'));
    assert.deepEqual(
      gets.map((q) => q.range),
      [undefined, undefined, 'bytes=1-', `bytes=${7 * MB}-`, `bytes=${13 * MB}-`, `bytes=${BIG - 1}-`],
    );
  });

  it('starts over when the server answers a Range request with 200', async () => {
    const home = tempHome();
    hub.faults.cutAt.set('model.safetensors', [5 * MB]);
    hub.faults.ignoreRange = true;
    try {
      const r = await downloadModel('test/big', { env: { HF_ENDPOINT: hub.endpoint, HF_HOME: home } });
      assert.equal(sha256Hex(readFileSync(r.files.weights)), sha256Hex(repoFiles(big).get('model.safetensors')!));
    } finally {
      hub.faults.ignoreRange = false;
      hub.faults.cutAt.delete('model.safetensors');
    }
  });

  it('corrupted bytes fail the checksum and leave nothing in the cache (sha256 and git sha1)', async () => {
    for (const file of ['model.safetensors', 'config.json']) {
      const home = tempHome();
      hub.faults.corrupt.add(file);
      try {
        await assert.rejects(downloadModel('test/big', { env: { HF_ENDPOINT: hub.endpoint, HF_HOME: home } }), (err) => {
          expectCode('hub-checksum')(err);
          assert.match((err as Error).message, new RegExp(file.replace('.', '\\.')));
          return true;
        });
      } finally {
        hub.faults.corrupt.delete(file);
      }
      const repoDir = join(home, 'hub', 'models--test--big');
      const blobs = existsSync(join(repoDir, 'blobs')) ? readdirSync(join(repoDir, 'blobs')) : [];
      const bad = file === 'config.json' ? [] : [sha256Hex(repoFiles(big).get(file)!)];
      assert.ok(!blobs.some((b) => b.includes('headlight') || bad.includes(b)), `blobs: ${blobs.join(',')}`);
      if (file === 'config.json') assert.deepEqual(blobs, [], 'config.json is fetched first: nothing at all');
      assert.ok(!existsSync(join(repoDir, 'refs', 'main')), 'no ref to a broken snapshot');
    }
  });

  it('names missing files, revisions and repos (404 EntryNotFound, RevisionNotFound, RepoNotFound)', async () => {
    const env = hubEnv({ HF_ENDPOINT: hub.endpoint, HF_HOME: tempHome() });
    await assert.rejects(downloadHubFile({ env }, 'openai-community/gpt2', 'main', 'nope.bin'), (err) => {
      expectCode('hub-entry-not-found')(err);
      assert.match((err as Error).message, /nope\.bin/);
      return true;
    });
    await assert.rejects(downloadModel('openai-community/gpt2@v9', { env: { HF_ENDPOINT: hub.endpoint, HF_HOME: tempHome() } }), (err) => {
      expectCode('hub-revision-not-found')(err);
      assert.match((err as Error).message, /"v9"/);
      return true;
    });
    await assert.rejects(downloadModel('nobody/nothing', { env: { HF_ENDPOINT: hub.endpoint, HF_HOME: tempHome() } }), expectCode('hub-repo-not-found'));
  });

  it('a gated repo without a token says how to set one; the token file in HF_HOME works', async () => {
    const home = tempHome();
    await assert.rejects(downloadModel('test/gated', { env: { HF_ENDPOINT: hub.endpoint, HF_HOME: home } }), (err) => {
      expectCode('hub-auth')(err);
      assert.match((err as HeadlightError).userMessage, /HF_TOKEN=/);
      assert.match((err as HeadlightError).userMessage, new RegExp(`${home}/token`));
      return true;
    });
    writeFileSync(join(home, 'token'), 'hf_secret\n');
    const r = await downloadModel('test/gated', { env: { HF_ENDPOINT: hub.endpoint, HF_HOME: home } });
    assert.equal(r.source, 'download');
  });

  it('a stalled server fails with a clear timeout message', async () => {
    hub.faults.stallAll = true;
    const t0 = performance.now();
    try {
      await assert.rejects(
        downloadModel('openai-community/gpt2', { env: { HF_ENDPOINT: hub.endpoint, HF_HOME: tempHome() }, timeoutMs: 200 }),
        (err) => {
          expectCode('hub-timeout')(err);
          assert.match((err as Error).message, /127\.0\.0\.1:\d+ sent nothing for 0\.20 s while listing openai-community\/gpt2@main/);
          return true;
        },
      );
    } finally {
      hub.faults.stallAll = false;
    }
    assert.ok(performance.now() - t0 < 2000);
  });

  it('a stall mid-body times out, keeps the partial, and the next call resumes from it', async () => {
    const home = tempHome();
    const env = { HF_ENDPOINT: hub.endpoint, HF_HOME: home };
    hub.faults.stallBodyAt.set('model.safetensors', 3 * MB);
    try {
      await assert.rejects(downloadModel('test/big', { env, timeoutMs: 200, retries: 0 }), expectCode('hub-timeout'));
    } finally {
      hub.faults.stallBodyAt.delete('model.safetensors');
    }
    const first = hub.requests.length;
    const r = await downloadModel('test/big', { env });
    assert.equal(sha256Hex(readFileSync(r.files.weights)), sha256Hex(repoFiles(big).get('model.safetensors')!));
    const get = hub.requests.slice(first).find((q) => q.method === 'GET' && q.host.startsWith('localhost:'));
    assert.equal(get?.range, `bytes=${3 * MB}-`);
  });

  it('cancelling leaves no half file in blobs/ or snapshots/', async () => {
    const home = tempHome();
    const ac = new AbortController();
    hub.faults.throttleBytesPerSec = 20 * MB;
    let seen = 0;
    try {
      await assert.rejects(
        downloadModel('test/big', {
          env: { HF_ENDPOINT: hub.endpoint, HF_HOME: home },
          signal: ac.signal,
          onProgress: (p) => {
            seen = p.bytes;
            if (p.file === 'model.safetensors' && p.bytes > 2 * MB) ac.abort();
          },
        }),
        expectCode('cancelled'),
      );
    } finally {
      hub.faults.throttleBytesPerSec = 0;
    }
    assert.ok(seen > 2 * MB);
    const repoDir = join(home, 'hub', 'models--test--big');
    const weightsEtag = sha256Hex(repoFiles(big).get('model.safetensors')!);
    const blobs = readdirSync(join(repoDir, 'blobs'));
    assert.ok(!blobs.some((b) => b.startsWith(weightsEtag)), `blobs: ${blobs.join(',')}`);
    const snaps = await fsp.readdir(join(repoDir, 'snapshots'), { recursive: true });
    assert.ok(!snaps.some((p) => String(p).endsWith('model.safetensors')));
  });

  it('refuses a download that does not fit on the disk, with the numbers, before fetching', async () => {
    const first = hub.requests.length;
    await assert.rejects(downloadModel('test/huge', { env: { HF_ENDPOINT: hub.endpoint, HF_HOME: tempHome() } }), (err) => {
      expectCode('disk-full')(err);
      assert.match((err as Error).message, /needs .* \(1000000000000000\d+ bytes\) but only .* \(\d+ bytes\) are free/);
      return true;
    });
    assert.ok(!hub.requests.slice(first).some((q) => q.method === 'GET' && q.path.includes('/resolve/')), 'no file body fetched');
  });

  it('refuses pickle-only repos and says why', async () => {
    await assert.rejects(downloadModel('test/pickle', { env: { HF_ENDPOINT: hub.endpoint, HF_HOME: tempHome() } }), (err) => {
      expectCode('model-pickle-only')(err);
      assert.match((err as Error).message, /pytorch_model\.bin.*only model\.safetensors.*run arbitrary code/);
      return true;
    });
  });

  it('copies blobs into the snapshot where symlinks are unavailable', async () => {
    const home = tempHome();
    const r = await downloadModel('openai-community/gpt2', { env: { HF_ENDPOINT: hub.endpoint, HF_HOME: home }, symlinks: false });
    const st = lstatSync(r.files.weights);
    assert.ok(st.isFile() && !st.isSymbolicLink());
    assert.deepEqual(readFileSync(r.files.weights), repoFiles(gpt2).get('model.safetensors'));
  });

  it('reports progress: bytes rise to the total, with a rate and an ETA', async () => {
    const events: DownloadProgress[] = [];
    hub.faults.throttleBytesPerSec = 40 * MB;
    try {
      await downloadModel('test/big', { env: { HF_ENDPOINT: hub.endpoint, HF_HOME: tempHome() }, onProgress: (p) => events.push(p) });
    } finally {
      hub.faults.throttleBytesPerSec = 0;
    }
    const total = [...repoFiles(big).values()].reduce((s, d) => s + d.length, 0);
    assert.ok(events.length > 3);
    assert.ok(events.every((e) => e.total === total));
    for (let i = 1; i < events.length; i++) assert.ok(events[i].bytes >= events[i - 1].bytes, 'monotonic');
    assert.equal(events[events.length - 1].bytes, total);
    const mid = events.filter((e) => e.rateBytesPerSec > 0 && e.bytes < total);
    assert.ok(mid.length > 0, 'a rate was measured');
    assert.ok(mid.every((e) => e.rateBytesPerSec > 5 * MB && e.rateBytesPerSec < 200 * MB), `rates ${mid.map((e) => e.rateBytesPerSec)}`);
    assert.ok(mid.every((e) => e.etaSec !== undefined && e.etaSec >= 0 && e.etaSec < 10));
  });

  it('breaks a lock left by a dead process', async () => {
    const home = tempHome();
    const etag = sha256Hex(repoFiles(gpt2).get('model.safetensors')!);
    const lockDir = join(home, 'hub', '.locks', 'models--openai-community--gpt2');
    mkdirSync(lockDir, { recursive: true });
    // pid 2^22 - 1 is above Linux's default pid_max range in use here; treated as a dead process on this host
    const { hostname } = await import('node:os');
    writeFileSync(join(lockDir, `${etag}.headlight.lock`), JSON.stringify({ pid: 4194303, host: hostname(), nonce: 'x' }));
    const r = await downloadModel('openai-community/gpt2', { env: { HF_ENDPOINT: hub.endpoint, HF_HOME: home } });
    assert.deepEqual(readFileSync(r.files.weights), repoFiles(gpt2).get('model.safetensors'));
    assert.ok(!existsSync(join(lockDir, `${etag}.headlight.lock`)), 'lock released');
  });

  it('resolves a pinned commit and does not write it as a ref', async () => {
    const home = tempHome();
    const commit = gpt2.revisions.main.commit;
    const r = await downloadModel(`openai-community/gpt2@${commit}`, { env: { HF_ENDPOINT: hub.endpoint, HF_HOME: home } });
    assert.equal(r.commit, commit);
    const refs = join(home, 'hub', 'models--openai-community--gpt2', 'refs');
    assert.deepEqual(existsSync(refs) ? readdirSync(refs) : [], []);
    assert.ok(existsSync(join(r.dir, 'model.safetensors')));
    assert.equal(fakeCommit('x').length, 40);
  });
});
