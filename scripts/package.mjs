#!/usr/bin/env node
// Makes a per-platform VSIX: `npm run package [-- --target linux-x64] [--no-typecheck] [--out FILE]`.
//
// onnxruntime-node cannot be bundled (its binding is loaded by a computed require), so it ships inside the VSIX.
// To keep the other platforms' binaries (and everything else in node_modules) out, the files the extension loads
// are staged in a temp folder and vsce packages that folder:
//   package.json (without scripts/devDependencies), README.md, LICENSE, dist/ (less cli.js), media/, models/headlight-tiny/,
//   node_modules/onnxruntime-node (dist/*.js + this platform's bin/) and onnxruntime-common (dist/cjs/*.js).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listZip } from './zipList.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** VS Code targets that onnxruntime-node 1.30 ships binaries for, with the folder under bin/napi-v6/. */
const TARGETS = {
  'linux-x64': 'linux/x64',
  'linux-arm64': 'linux/arm64',
  'darwin-arm64': 'darwin/arm64',
  'win32-x64': 'win32/x64',
  'win32-arm64': 'win32/arm64',
};

/** The bundled model: only the files the engine reads (training logs stay in the repository). */
const MODEL_DIR = 'models/headlight-tiny';

function parseArgs(argv) {
  const opts = { target: `${process.platform}-${process.arch}`, typecheck: true, out: undefined };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--target') opts.target = argv[++i];
    else if (argv[i] === '--out') opts.out = argv[++i];
    else if (argv[i] === '--no-typecheck') opts.typecheck = false;
    else fail(`unknown argument ${argv[i]}`, 'usage: node scripts/package.mjs [--target T] [--out FILE] [--no-typecheck]');
  }
  if (!TARGETS[opts.target]) {
    fail(`no onnxruntime-node binaries for target "${opts.target}"`, `use one of: ${Object.keys(TARGETS).join(', ')}`);
  }
  return opts;
}

function fail(message, hint) {
  console.error(`package: ${message}\n  ${hint}`);
  process.exit(1);
}

function run(command, args, cwd) {
  const result = spawnSync(command, args, { cwd, stdio: 'inherit' });
  if (result.status !== 0) fail(`${[command, ...args].join(' ')} exited with ${result.status}`, 'see the output above');
}

function copy(from, to) {
  mkdirSync(dirname(to), { recursive: true });
  cpSync(from, to, { recursive: true });
}

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** Copies the files of a folder (not recursive) whose names pass `keep`. */
function copyFiles(fromDir, toDir, keep) {
  mkdirSync(toDir, { recursive: true });
  for (const name of readdirSync(fromDir)) {
    const from = join(fromDir, name);
    if (statSync(from).isFile() && keep(name)) cpSync(from, join(toDir, name));
  }
}

/** The shipped manifest: the repository's package.json without what only development needs. */
function stageManifest(stage) {
  const manifest = readJson(join(root, 'package.json'));
  delete manifest.scripts;
  delete manifest.devDependencies;
  writeFileSync(join(stage, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
}

/** onnxruntime-node and onnxruntime-common, reduced to what `require('onnxruntime-node')` loads on one platform. */
function stageOnnxRuntime(stage, target) {
  const src = join(root, 'node_modules');
  const dst = join(stage, 'node_modules');
  const isJs = (name) => name.endsWith('.js');

  const node = readJson(join(src, 'onnxruntime-node', 'package.json'));
  const common = readJson(join(src, 'onnxruntime-common', 'package.json'));
  // Only the runtime dependency stays: adm-zip and global-agent serve the install script, which is not shipped.
  const nodeManifest = {
    name: node.name, version: node.version, license: node.license, author: node.author, repository: node.repository,
    main: node.main, dependencies: { 'onnxruntime-common': node.dependencies['onnxruntime-common'] },
  };
  const commonManifest = {
    name: common.name, version: common.version, license: common.license, author: common.author,
    repository: common.repository, type: common.type, main: common.main, exports: { require: common.exports.require },
  };
  mkdirSync(join(dst, 'onnxruntime-node'), { recursive: true });
  writeFileSync(join(dst, 'onnxruntime-node', 'package.json'), JSON.stringify(nodeManifest, null, 2) + '\n');
  copyFiles(join(src, 'onnxruntime-node', 'dist'), join(dst, 'onnxruntime-node', 'dist'), isJs);

  const binDir = join('bin', 'napi-v6', TARGETS[target]);
  // darwin ships the same dylib twice; the binding links libonnxruntime.1.dylib.
  const keepBinary = (name) => name !== 'libonnxruntime.1.30.0.dylib';
  copyFiles(join(src, 'onnxruntime-node', binDir), join(dst, 'onnxruntime-node', binDir), keepBinary);

  mkdirSync(join(dst, 'onnxruntime-common'), { recursive: true });
  writeFileSync(join(dst, 'onnxruntime-common', 'package.json'), JSON.stringify(commonManifest, null, 2) + '\n');
  copyFiles(join(src, 'onnxruntime-common', 'dist', 'cjs'), join(dst, 'onnxruntime-common', 'dist', 'cjs'),
    (name) => isJs(name) || name === 'package.json');
}

function stage(target) {
  const dir = mkdtempSync(join(tmpdir(), 'headlight-vsix-'));
  stageManifest(dir);
  for (const file of ['LICENSE', 'THIRD_PARTY_NOTICES.md', 'README.md', '.vscodeignore']) {
    if (existsSync(join(root, file))) copy(join(root, file), join(dir, file));
    else console.warn(`package: warning: no ${file} in the repository; the VSIX ships without it`);
  }
  // dist/cli.js is the npm command-line entry; the extension never loads it.
  cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true, filter: (src) => relative(root, src) !== join('dist', 'cli.js') });
  copy(join(root, 'media'), join(dir, 'media'));
  if (existsSync(join(root, MODEL_DIR))) {
    copyFiles(join(root, MODEL_DIR), join(dir, MODEL_DIR), () => true);
  } else {
    console.warn(`package: warning: no ${MODEL_DIR}; the VSIX ships without the bundled model`);
  }
  stageOnnxRuntime(dir, target);
  return dir;
}

function formatSize(bytes) {
  return bytes > 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  run(process.execPath, [join(root, 'scripts', 'build.mjs'), '--production', ...(opts.typecheck ? [] : ['--no-typecheck'])], root);

  const manifest = readJson(join(root, 'package.json'));
  const out = opts.out ?? join(root, `${manifest.name}-${manifest.version}-${opts.target}.vsix`);
  const dir = stage(opts.target);
  try {
    const vsce = join(root, 'node_modules', '@vscode', 'vsce', 'vsce');
    // README links stay relative: VS Code resolves them inside the installed extension (media/readme/*), and the
    // repository URL is a placeholder that vsce could not turn into absolute links anyway.
    run(process.execPath, [vsce, 'package', '--target', opts.target, '--out', out, '--no-rewrite-relative-links'], dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const entries = listZip(readFileSync(out));
  console.log(`package: contents of ${relative(process.cwd(), out)}:`);
  for (const e of entries) console.log(`  ${formatSize(e.size).padStart(10)}  ${e.name}`);
  const unpacked = entries.reduce((sum, e) => sum + e.size, 0);
  console.log(`package: ${out}: ${formatSize(statSync(out).size)} (${entries.length} files, ${formatSize(unpacked)} unpacked), ` +
    `target ${opts.target}, ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main();
