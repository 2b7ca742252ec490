/**
 * Two processes (two VS Code windows) download the same model into one cache at the same time: both succeed, the
 * file is fetched once, and exactly one intact blob is left, with no partial or lock files.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { makeModelRepo, sha256Hex, startFakeHub } from '../fixtures/fakeHub';

const child = fileURLToPath(new URL('../fixtures/hubChild.ts', import.meta.url));

function runChild(env: NodeJS.ProcessEnv, ref: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, ref], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

it('two processes downloading one file end with one good blob, fetched once, and both succeed', async () => {
  const repo = makeModelRepo('test/shared', { seed: 11, weightsBytes: 4 << 20 });
  const hub = await startFakeHub([repo]);
  const home = mkdtempSync(join(tmpdir(), 'headlight-hub2-'));
  try {
    // The body waits until both processes have asked for the metadata, so their downloads truly overlap.
    hub.faults.holdBodyUntilHeads.set('model.safetensors', 2);
    hub.faults.throttleBytesPerSec = 8 << 20;
    const env = { PATH: process.env.PATH, HOME: home, HF_HOME: home, HF_ENDPOINT: hub.endpoint };
    const [a, b] = await Promise.all([runChild(env, 'test/shared'), runChild(env, 'test/shared')]);
    assert.equal(a.code, 0, a.out + a.err);
    assert.equal(b.code, 0, b.out + b.err);
    const ra = JSON.parse(a.out) as { dir: string; weights: string };
    const rb = JSON.parse(b.out) as { dir: string; weights: string };
    assert.equal(ra.dir, rb.dir);
    const data = repo.revisions.main.files.find((f) => f.path === 'model.safetensors')!.data;
    const etag = sha256Hex(data);
    assert.equal(hub.headsSeen.get('model.safetensors'), 2, 'both processes asked');
    assert.equal(hub.bodiesServed.get('model.safetensors'), 1, 'the body was fetched once');
    const blobsDir = join(home, 'hub', 'models--test--shared', 'blobs');
    const blobs = readdirSync(blobsDir);
    assert.equal(blobs.filter((n) => n === etag).length, 1);
    assert.ok(!blobs.some((n) => n.includes('headlight')), `no partial files: ${blobs.join(',')}`);
    assert.equal(sha256Hex(readFileSync(join(blobsDir, etag))), etag);
    assert.equal(sha256Hex(readFileSync(ra.weights)), etag);
    assert.deepEqual(readdirSync(join(home, 'hub', '.locks', 'models--test--shared')), [], 'locks released');
  } finally {
    await hub.close();
    rmSync(home, { recursive: true, force: true });
  }
});
