/** `headlight models list|pull|rm` against the fake Hub, with captured output. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runModelsCommand, type ModelsCliIo } from '../../extension/cli/models';
import { makeModelRepo, startFakeHub, type FakeHub } from '../fixtures/fakeHub';

function capture(env: Record<string, string>, tty = false): ModelsCliIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s), isTTY: tty, columns: 100 },
    env,
    out: () => out,
    err: () => err,
  };
}

describe('headlight models', () => {
  let hub: FakeHub;
  let home: string;
  let env: Record<string, string>;
  before(async () => {
    hub = await startFakeHub([makeModelRepo('org/tiny', { seed: 21, weightsBytes: 3 << 20 })]);
    home = mkdtempSync(join(tmpdir(), 'headlight-hubcli-'));
    env = { HF_ENDPOINT: hub.endpoint, HF_HOME: home };
  });
  after(async () => {
    await hub.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('list says the cache is empty, pull downloads with plain progress lines, list then shows it', async () => {
    const io0 = capture(env);
    assert.equal(await runModelsCommand(['list'], io0), 0);
    assert.equal(io0.out(), `No models in ${join(home, 'hub')}.\n`);

    const io = capture(env);
    assert.equal(await runModelsCommand(['pull', 'org/tiny@main'], io), 0, io.err());
    const dir = io.out().trim();
    assert.ok(existsSync(join(dir, 'model.safetensors')));
    assert.match(io.err(), /org\/tiny: 100% /);
    assert.ok(!io.err().includes('\r'), 'no carriage returns when not a TTY');

    const io2 = capture(env);
    assert.equal(await runModelsCommand(['list'], io2), 0);
    assert.match(io2.out(), /^Cache: .*\nREPO +SIZE +REF +LOADABLE +PATH\norg\/tiny +3\.\d+ MB +main=[0-9a-f]{8} +yes +\//m);
  });

  it('draws a bar in place on a terminal', async () => {
    const io = capture({ ...env, HF_HOME: mkdtempSync(join(tmpdir(), 'headlight-hubcli-')) }, true);
    try {
      assert.equal(await runModelsCommand(['pull', 'org/tiny'], io), 0, io.err());
      assert.match(io.err(), /\r\x1b\[K\[#+\] 100% /);
    } finally {
      rmSync(io.env!.HF_HOME!, { recursive: true, force: true });
    }
  });

  it('rm removes the repo and refuses paths; errors print a hint and exit 1; usage exits 2', async () => {
    const bad = capture(env);
    assert.equal(await runModelsCommand(['rm', '../../etc'], bad), 1);
    assert.match(bad.err(), /not a Hugging Face repo id; refusing/);
    const io = capture(env);
    assert.equal(await runModelsCommand(['rm', 'org/tiny'], io), 0);
    const hubDir = join(home, 'hub');
    assert.equal(io.out(), `removed ${join(hubDir, 'models--org--tiny')}\nremoved ${join(hubDir, '.locks', 'models--org--tiny')}\n`);
    assert.ok(!existsSync(join(hubDir, 'models--org--tiny')));
    const missing = capture(env);
    assert.equal(await runModelsCommand(['pull', 'org/absent'], missing), 1);
    assert.match(missing.err(), /^error: org\/absent was not found .*\n  Check the spelling/);
    assert.equal(await runModelsCommand(['frobnicate'], capture(env)), 2);
  });
});
