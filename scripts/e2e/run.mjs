#!/usr/bin/env node
// `npm run test:e2e [-- FILE...]`: installs what is missing (scripts/e2e/install.mjs), packages the VSIX, then runs
// test/e2e/*.e2e.ts (or the given files) with node's test runner, one file at a time. Each file starts its own
// code-server with the VSIX installed (test/e2e/harness.ts) and stops its process group when done.
// Screenshots land in artifacts/e2e/. Set HEADLIGHT_E2E_KEEP=1 to keep .e2e/run-* (server log, user data).
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureAll, root } from './install.mjs';

const started = Date.now();
const seconds = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;

ensureAll();
console.log(`e2e: tools ready (${seconds()})`);

const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const vsix = join(root, '.e2e', `${manifest.name}-${manifest.version}-linux-x64.vsix`);
// The type-check belongs to `npm test`; here we test what the package contains.
const pack = spawnSync(process.execPath, [join(root, 'scripts', 'package.mjs'), '--no-typecheck', '--target', 'linux-x64', '--out', vsix], {
  cwd: root, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8',
});
if (pack.status !== 0) {
  process.stdout.write(pack.stdout);
  console.error('e2e: packaging failed');
  process.exit(1);
}
console.log(pack.stdout.split('\n').filter((line) => line.startsWith('package: /')).join('\n'));
console.log(`e2e: packaged (${seconds()})`);

const requested = process.argv.slice(2);
const files = requested.length
  ? requested
  : readdirSync(join(root, 'test', 'e2e')).filter((f) => f.endsWith('.e2e.ts')).sort().map((f) => join('test', 'e2e', f));
const tests = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=1', ...files], {
  cwd: root, stdio: 'inherit', env: { ...process.env, HEADLIGHT_VSIX: vsix },
});
const code = tests.status ?? 1;
console.log(`e2e: ${code === 0 ? 'passed' : `FAILED (exit ${code})`} in ${seconds()}`);
process.exit(code);
