// Installs what the real-VS-Code tests need, once, into caches outside node_modules:
//   Debian chromium + ripgrep + libkrb5-dev + fonts (apt-get, only when /usr/bin/chromium is missing),
//   code-server 4.100.3 (= VS Code 1.100.3, the last release that runs on Node 20) into .e2e/code-server/,
//   playwright-core (a devDependency; no browser download, Debian's chromium is used).
// Facts behind the flags: /work/shared/notes/e2e-real-vscode.md.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CODE_SERVER_VERSION = '4.100.3';
export const cacheDir = join(root, '.e2e');
export const codeServerDir = join(cacheDir, 'code-server');
export const codeServerBin = join(codeServerDir, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
export const CHROMIUM = '/usr/bin/chromium';

/** @vscode/ripgrep downloads rg from GitHub unless it finds this archive in its cache folder under TMPDIR. */
const RIPGREP_CACHE = join('vscode-ripgrep-cache-1.15.11', 'ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz');

function log(message) {
  console.log(`e2e-install: ${message}`);
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', ...options });
  if (result.status !== 0) {
    throw new Error(`e2e-install: \`${command} ${args.join(' ')}\` exited with ${result.status ?? result.signal}`);
  }
}

export function ensureChromium() {
  if (existsSync(CHROMIUM) && existsSync('/usr/bin/rg')) return;
  log('installing Debian chromium, ripgrep, libkrb5-dev, fonts-dejavu-core (apt-get, ≈50 s)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env });
  run('apt-get', ['install', '-y', '-qq', 'chromium', 'ripgrep', 'libkrb5-dev', 'fonts-dejavu-core'], { env });
}

function installedCodeServerVersion() {
  const manifest = join(codeServerDir, 'node_modules', 'code-server', 'package.json');
  if (!existsSync(manifest) || !existsSync(codeServerBin)) return undefined;
  return JSON.parse(readFileSync(manifest, 'utf8')).version;
}

export function ensureCodeServer() {
  const version = installedCodeServerVersion();
  if (version === CODE_SERVER_VERSION) return;
  log(`installing code-server ${CODE_SERVER_VERSION} into ${codeServerDir} (≈60 s, ≈300 MB)`);
  const started = Date.now();
  const tmp = join(cacheDir, 'tmp');
  mkdirSync(join(tmp, dirname(RIPGREP_CACHE)), { recursive: true });
  // Debian's rg, packed the way @vscode/ripgrep's postinstall expects its download to look.
  run('tar', ['-czf', join(tmp, RIPGREP_CACHE), '-C', '/usr/bin', 'rg']);
  mkdirSync(codeServerDir, { recursive: true });
  const env = {
    ...process.env,
    TMPDIR: tmp,
    npm_config_unsafe_perm: 'true', // its postinstall refuses to run as root otherwise
    npm_config_nodedir: '/usr', // node-gyp builds argon2/kerberos against the local Node headers
    npm_config_yes: 'true', // one install step calls npx
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
  };
  run('npm', ['install', '--no-save', '--no-package-lock', '--prefix', codeServerDir, `code-server@${CODE_SERVER_VERSION}`], {
    env, cwd: codeServerDir,
  });
  if (installedCodeServerVersion() !== CODE_SERVER_VERSION) {
    throw new Error(`e2e-install: code-server ${CODE_SERVER_VERSION} did not install into ${codeServerDir}; ` +
      `delete that folder and run again, and read the npm output above`);
  }
  log(`code-server installed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

export function ensurePlaywright() {
  if (existsSync(join(root, 'node_modules', 'playwright-core', 'package.json'))) return;
  const wanted = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).devDependencies?.['playwright-core'];
  if (!wanted) throw new Error('e2e-install: playwright-core is not a devDependency; run `npm install -D playwright-core@1.65.1`');
  log(`installing playwright-core@${wanted} (declared in devDependencies, missing from node_modules)`);
  run('npm', ['install', '--no-save', `playwright-core@${wanted}`], { cwd: root });
}

/** Everything the e2e run and the demo need. */
export function ensureAll() {
  ensureChromium();
  ensureCodeServer();
  ensurePlaywright();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) ensureAll();
