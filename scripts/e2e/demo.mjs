#!/usr/bin/env node
// `npm run demo [-- --port 8080]`: a real VS Code (code-server) on 127.0.0.1 with the freshly packaged Headlight
// installed and the sample workspace open. Prints the URL and runs until Ctrl-C, then stops the server's process
// group. Same install and packaging steps as `npm run test:e2e`; same server start as the tests (test/e2e/harness.ts).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tsImport } from 'tsx/esm/api';
import { ensureAll, root } from './install.mjs';

function parsePort(argv) {
  const at = argv.indexOf('--port');
  if (at < 0) return undefined;
  const port = Number(argv[at + 1]);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    console.error(`demo: --port needs a number between 1 and 65535, got "${argv[at + 1]}"`);
    process.exit(1);
  }
  return port;
}

const port = parsePort(process.argv.slice(2));
ensureAll();
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const vsix = join(root, '.e2e', `${manifest.name}-${manifest.version}-linux-x64.vsix`);
const pack = spawnSync(process.execPath, [join(root, 'scripts', 'package.mjs'), '--no-typecheck', '--target', 'linux-x64', '--out', vsix], {
  cwd: root, stdio: ['ignore', 'ignore', 'inherit'],
});
if (pack.status !== 0) {
  console.error('demo: packaging failed; run `npm run package` to see why');
  process.exit(1);
}

const { startServer, WORKSPACE } = await tsImport('../../test/e2e/harness.ts', import.meta.url);
const server = await startServer({ vsix, port });
console.log(`demo: Headlight is installed in a real VS Code. Open:\n\n  ${server.url}/?folder=${encodeURIComponent(WORKSPACE)}\n`);
console.log(`demo: server files in ${server.runDir}. Press Ctrl-C to stop.`);

let stopping = false;
async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`\ndemo: ${signal}, stopping code-server`);
  await server.stop();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
// Keep the event loop alive until a signal arrives.
setInterval(() => undefined, 1 << 30);
