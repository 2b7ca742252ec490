// Runs the in-host mocha suite (test/e2e/inhost) inside the real VS Code (code-server): the repository is loaded as
// the development extension through the workbench's `payload` parameter, with the freshly built dist/. The model is
// the bundled one when its weights exist, else a random GPT-2-vocabulary checkpoint written here.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as esbuild from 'esbuild';
import { ROOT, WORKSPACE, openWorkbench, startServer, type Server, type Workbench } from './harness.js';
import { writeRandomCheckpoint } from '../fixtures/randomCheckpoint.js';

const WORK = join(ROOT, '.e2e', 'tmp', 'inhost');
const SUITE = join(ROOT, 'out', 'test', 'inhost', 'index.js');
const RESULT = join(WORK, 'result.json');

let server: Server | undefined;
let wb: Workbench | undefined;

before(async () => {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  const build = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), '--no-typecheck'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(build.status, 0, `build failed:\n${build.stdout}${build.stderr}`);
  await esbuild.build({
    entryPoints: [join(ROOT, 'test', 'e2e', 'inhost', 'index.ts')],
    outfile: SUITE,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode', 'mocha'],
    logLevel: 'warning',
  });
  const model = await writeRandomCheckpoint(join(WORK, 'model'), { seed: 11, nLayer: 2, nHead: 4, nEmbd: 32, nPositions: 256 });
  server = await startServer({ env: { HEADLIGHT_TEST_MODEL: model.dir, HEADLIGHT_INHOST_RESULT: RESULT } });
});

after(async () => {
  await wb?.close();
  await server?.stop();
});

test('the in-host suite passes inside the real VS Code', { timeout: 300_000 }, async () => {
  const remote = (path: string) => `vscode-remote://127.0.0.1:${server!.port}${path}`;
  wb = await openWorkbench(server!, WORKSPACE, [
    ['extensionDevelopmentPath', remote(ROOT.replace(/\/$/, ''))],
    ['extensionTestsPath', remote(SUITE.replace(/\.js$/, ''))],
  ]);
  const deadline = Date.now() + 280_000;
  while (!existsSync(RESULT) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  if (!existsSync(RESULT)) {
    console.log(wb.console.filter((l) => l.includes('Extension Host')).slice(-80).join('\n'));
    assert.fail('the in-host suite wrote no result');
  }
  const result = JSON.parse(readFileSync(RESULT, 'utf8')) as { failures: number; lines: string[] };
  console.log(result.lines.join('\n'));
  assert.equal(result.failures, 0, `${result.failures} in-host test(s) failed`);
});
