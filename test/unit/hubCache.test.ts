/** Environment resolution, reading a cache laid out as Python writes it, listing, removal, model references. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { HeadlightError } from '../../extension/common/errors';
import { repoFolderName, repoIdFromFolder } from '../../extension/hub/cache';
import { hubEnv } from '../../extension/hub/env';
import {
  KNOWN_MODELS,
  findCachedModel,
  isValidRepoId,
  listCachedModels,
  parseModelRef,
  removeCachedModel,
  resolveModel,
} from '../../extension/hub/modelStore';
import { fakeCommit, gitSha1Hex, seededBytes, sha256Hex, startFakeHub } from '../fixtures/fakeHub';

const roots: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'headlight-hubcache-'));
  roots.push(d);
  return d;
}
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function code(c: string): (e: unknown) => boolean {
  return (e) => e instanceof HeadlightError && e.code === c;
}

/** Writes `models--…` exactly as Python's huggingface_hub does: blobs by etag, relative links, refs without newline. */
function writePythonCache(hubCache: string, repoId: string, files: Record<string, Buffer>, opts: { ref?: string } = {}): string {
  const repoDir = join(hubCache, repoFolderName(repoId));
  const commit = fakeCommit(repoId);
  mkdirSync(join(repoDir, 'blobs'), { recursive: true });
  mkdirSync(join(repoDir, 'refs'), { recursive: true });
  mkdirSync(join(repoDir, 'snapshots', commit), { recursive: true });
  writeFileSync(join(repoDir, 'refs', opts.ref ?? 'main'), commit);
  for (const [name, data] of Object.entries(files)) {
    const etag = name.endsWith('.safetensors') ? sha256Hex(data) : gitSha1Hex(data);
    writeFileSync(join(repoDir, 'blobs', etag), data);
    symlinkSync(`../../blobs/${etag}`, join(repoDir, 'snapshots', commit, name));
  }
  return join(repoDir, 'snapshots', commit);
}

const modelFiles = (seed: number): Record<string, Buffer> => ({
  'config.json': Buffer.from('{"n_layer":2}'),
  'model.safetensors': seededBytes(1000 + seed, seed),
  'tokenizer.json': Buffer.from('{}'),
});

describe('hubEnv', () => {
  it('follows the precedence of huggingface_hub for cache, home, token, offline and endpoint', () => {
    const home = tmp();
    const base = { HOME: home };
    assert.equal(hubEnv(base).hubCache, join(home, '.cache', 'huggingface', 'hub'));
    assert.equal(hubEnv({ ...base, XDG_CACHE_HOME: '/x' }).hubCache, '/x/huggingface/hub');
    assert.equal(hubEnv({ ...base, XDG_CACHE_HOME: '/x', HF_HOME: '/h' }).hubCache, '/h/hub');
    assert.equal(hubEnv({ ...base, HF_HOME: '/h', HUGGINGFACE_HUB_CACHE: '/legacy' }).hubCache, '/legacy');
    assert.equal(hubEnv({ ...base, HUGGINGFACE_HUB_CACHE: '/legacy', HF_HUB_CACHE: '/new' }).hubCache, '/new');
    assert.equal(hubEnv({ ...base, HF_HOME: '~/hf' }).hfHome, join(home, 'hf'));
    assert.equal(hubEnv(base).endpoint, 'https://huggingface.co');
    assert.equal(hubEnv({ HF_ENDPOINT: 'http://mirror.local/' }).endpoint, 'http://mirror.local');
    for (const v of ['1', 'ON', 'yes', 'True']) assert.equal(hubEnv({ ...base, HF_HUB_OFFLINE: v }).offline, true, v);
    assert.equal(hubEnv({ ...base, TRANSFORMERS_OFFLINE: '1' }).offline, true);
    assert.equal(hubEnv({ ...base, HF_HUB_OFFLINE: '0' }).offline, false);
    const hfHome = tmp();
    writeFileSync(join(hfHome, 'token'), 'hf_file\n');
    assert.equal(hubEnv({ HF_HOME: hfHome }).token, 'hf_file');
    assert.equal(hubEnv({ HF_HOME: hfHome, HUGGING_FACE_HUB_TOKEN: 'hf_old' }).token, 'hf_old');
    assert.equal(hubEnv({ HF_HOME: hfHome, HUGGING_FACE_HUB_TOKEN: 'hf_old', HF_TOKEN: 'hf_new' }).token, 'hf_new');
    assert.equal(hubEnv({ HF_HOME: tmp() }).token, undefined);
  });

  it('maps repo ids to folder names and back', () => {
    assert.equal(repoFolderName('openai-community/gpt2'), 'models--openai-community--gpt2');
    assert.equal(repoFolderName('gpt2'), 'models--gpt2');
    assert.equal(repoIdFromFolder('models--openai-community--gpt2'), 'openai-community/gpt2');
    assert.equal(repoIdFromFolder('datasets--x--y'), undefined);
    assert.equal(repoIdFromFolder('.locks'), undefined);
  });
});

describe('reading the cache without network', () => {
  it('finds models under both namings, follows refs, and opens no connection', async () => {
    const hub = await startFakeHub([]);
    try {
      const hfHome = tmp();
      const hubCache = join(hfHome, 'hub');
      const snapLegacy = writePythonCache(hubCache, 'gpt2', modelFiles(1));
      const snapDistil = writePythonCache(hubCache, 'distilbert/distilgpt2', modelFiles(2));
      const env = { HF_HOME: hfHome, HF_ENDPOINT: hub.endpoint };
      const a = await resolveModel('openai-community/gpt2', { env });
      assert.equal(a.dir, snapLegacy, 'openai-community/gpt2 found in models--gpt2');
      assert.equal(a.source, 'cache');
      const b = await resolveModel('distilgpt2@main', { env });
      assert.equal(b.dir, snapDistil, 'distilgpt2 found in models--distilbert--distilgpt2');
      assert.equal(await findCachedModel('openai-community/gpt2', 'v2', { env }), undefined, 'unknown ref');
      const pinned = await findCachedModel('gpt2', fakeCommit('gpt2'), { env });
      assert.equal(pinned?.dir, snapLegacy, 'a commit needs no ref');
      assert.equal(hub.connections(), 0);
    } finally {
      await hub.close();
    }
  });

  it('a snapshot with a missing or dangling file is not used', async () => {
    const hfHome = tmp();
    const snap = writePythonCache(join(hfHome, 'hub'), 'org/partial', modelFiles(3));
    rmSync(join(hfHome, 'hub', 'models--org--partial', 'blobs'), { recursive: true });
    assert.ok(existsSync(join(snap, 'config.json')) === false);
    assert.equal(await findCachedModel('org/partial', 'main', { env: { HF_HOME: hfHome } }), undefined);
    await assert.rejects(
      resolveModel('org/partial', { env: { HF_HOME: hfHome }, download: false }),
      code('model-not-cached'),
    );
  });

  it('lists cached models with sizes, refs and a loadable folder', async () => {
    const hfHome = tmp();
    const hubCache = join(hfHome, 'hub');
    const snap = writePythonCache(hubCache, 'openai-community/gpt2', modelFiles(4));
    writePythonCache(hubCache, 'org/notok', { 'config.json': Buffer.from('{}') });
    mkdirSync(join(hubCache, '.locks'), { recursive: true });
    writeFileSync(join(hubCache, 'version.txt'), '1');
    const list = await listCachedModels({ env: { HF_HOME: hfHome } });
    assert.deepEqual(list.map((m) => m.repoId), ['openai-community/gpt2', 'org/notok']);
    const files = modelFiles(4);
    assert.equal(list[0].sizeBytes, Object.values(files).reduce((s, d) => s + d.length, 0));
    assert.equal(list[0].loadableDir, snap);
    assert.equal(list[0].refs.main, fakeCommit('openai-community/gpt2'));
    assert.equal(list[0].known?.id, 'gpt2');
    assert.equal(list[1].loadableDir, undefined);
    assert.deepEqual(await listCachedModels({ env: { HF_HOME: join(hfHome, 'absent') } }), []);
  });

  it('rm removes only the repo folder and refuses anything that is not a repo id', async () => {
    const hfHome = tmp();
    const hubCache = join(hfHome, 'hub');
    writePythonCache(hubCache, 'openai-community/gpt2', modelFiles(5));
    writePythonCache(hubCache, 'gpt2', modelFiles(6));
    const env = { HF_HOME: hfHome };
    for (const bad of ['../x', '/etc', 'a/b/c', 'a--b', '..', 'org/..', '', 'x/.hidden', 'bundled/']) {
      await assert.rejects(removeCachedModel(bad, { env }), code('model-ref-invalid'), bad);
    }
    await assert.rejects(removeCachedModel('org/absent', { env }), code('model-not-cached'));
    const removed = await removeCachedModel('openai-community/gpt2', { env });
    assert.deepEqual(removed, [join(hubCache, 'models--openai-community--gpt2')]);
    assert.ok(!existsSync(removed[0]));
    assert.ok(existsSync(join(hubCache, 'models--gpt2')), 'the other naming is untouched');
  });
});

describe('model references', () => {
  it('parses bundled, folders and repo ids with revisions', async () => {
    const cwd = tmp();
    mkdirSync(join(cwd, 'org', 'local'), { recursive: true });
    writeFileSync(join(cwd, 'org', 'local', 'config.json'), '{}');
    const env = { HOME: '/home/u' };
    assert.deepEqual(await parseModelRef('bundled', { cwd, env }), { kind: 'bundled' });
    assert.deepEqual(await parseModelRef('gpt2', { cwd, env }), { kind: 'hub', repoId: 'gpt2', revision: 'main' });
    assert.deepEqual(await parseModelRef('openai-community/gpt2@v1.0', { cwd, env }), {
      kind: 'hub',
      repoId: 'openai-community/gpt2',
      revision: 'v1.0',
    });
    assert.deepEqual(await parseModelRef('./m', { cwd, env }), { kind: 'local', dir: join(cwd, 'm') });
    assert.deepEqual(await parseModelRef('~/m', { cwd, env }), { kind: 'local', dir: '/home/u/m' });
    assert.deepEqual(await parseModelRef('/abs/m', { cwd, env }), { kind: 'local', dir: '/abs/m' });
    assert.deepEqual(await parseModelRef('org/local', { cwd, env }), { kind: 'local', dir: join(cwd, 'org', 'local') });
    await assert.rejects(parseModelRef('a b', { cwd, env }), code('model-ref-invalid'));
    assert.ok(isValidRepoId('distilbert/distilgpt2') && !isValidRepoId('-x') && !isValidRepoId('x.'));
  });

  it('resolves bundled and local folders, and explains pickle-only folders', async () => {
    const dir = tmp();
    for (const [n, d] of Object.entries(modelFiles(7))) writeFileSync(join(dir, n), d);
    const bundled = await resolveModel('bundled', { bundledDir: dir });
    assert.equal(bundled.source, 'bundled');
    assert.equal(bundled.files.weights, join(dir, 'model.safetensors'));
    await assert.rejects(resolveModel('bundled', {}), code('model-bundled-missing'));
    const local = await resolveModel(dir, {});
    assert.equal(local.dir, dir);
    const pickle = tmp();
    writeFileSync(join(pickle, 'config.json'), '{}');
    writeFileSync(join(pickle, 'pytorch_model.bin'), 'x');
    await assert.rejects(resolveModel(pickle, {}), (e) => {
      assert.ok(e instanceof HeadlightError && e.code === 'model-pickle-only');
      assert.match(e.message, /only model\.safetensors: pickle files \(pytorch_model\.bin\) can run arbitrary code/);
      return true;
    });
    const noTok = tmp();
    writeFileSync(join(noTok, 'config.json'), '{}');
    writeFileSync(join(noTok, 'model.safetensors'), 'x');
    await assert.rejects(resolveModel(noTok, {}), (e) => e instanceof HeadlightError && /tokenizer/.test(e.message));
  });

  it('lists the known GPT-2 checkpoints with repo ids and sizes', () => {
    const byId = new Map(KNOWN_MODELS.map((m) => [m.id, m]));
    assert.deepEqual([...byId.keys()].slice(0, 5), ['gpt2', 'distilgpt2', 'gpt2-medium', 'gpt2-large', 'gpt2-xl']);
    assert.equal(byId.get('gpt2')?.repoId, 'openai-community/gpt2');
    assert.equal(byId.get('gpt2')?.weightsBytes, 548_105_171);
    assert.equal(byId.get('distilgpt2')?.repoId, 'distilbert/distilgpt2');
    assert.equal(byId.get('distilgpt2')?.weightsBytes, 352_824_413);
    const sizes = KNOWN_MODELS.slice(0, 5).map((m) => m.weightsBytes);
    assert.deepEqual([...sizes.slice(2)].sort((a, b) => a - b), sizes.slice(2), 'medium < large < xl');
  });
});
