#!/usr/bin/env node
// Builds every bundle of Headlight with esbuild.
//
//   node scripts/build.mjs                 type-check, then bundle once (development: sourcemaps, no minify)
//   node scripts/build.mjs --production    minified, no sourcemaps (what `npm run package` ships)
//   node scripts/build.mjs --watch         rebuild on change (type-check runs once at start)
//   node scripts/build.mjs --no-typecheck  skip the type-check (`tsc -b`: every layer's tsconfig, then test/ bench/ scripts/)
//
// A bundle is built only if its entry file exists, so the build works while parts are still being written.
// Layer rule enforced here too: the webviews are `platform: 'browser'`, the extension host's bundle does not mark
// onnxruntime-node external (so a stray import of it from the host fails), and the CLI does NOT mark `vscode`
// external, so a stray `import 'vscode'` outside the host fails the CLI build.
import * as esbuild from 'esbuild';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, rmSync } from "node:fs";
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const production = args.has('--production');
const watch = args.has('--watch');
const typecheck = !args.has('--no-typecheck');

/** onnxruntime-node loads its binding with a computed require: never bundle it, ship it in the VSIX. */
const ORT = 'onnxruntime-node';

const bundles = [
  { entry: 'extension/extension.ts', outfile: 'dist/extension.js', platform: 'node', format: 'cjs', external: ['vscode'] },
  { entry: 'extension/engine/server.ts', outfile: 'dist/engineServer.js', platform: 'node', format: 'cjs', external: [ORT] },
  {
    entry: 'extension/cli.ts', outfile: 'dist/cli.js', platform: 'node', format: 'cjs', external: [ORT],
    banner: { js: '#!/usr/bin/env node' },
  },
  { entry: 'webview/panel.ts', outfile: 'dist/webview/panel.js', platform: 'browser', format: 'iife', external: [] },
  { entry: 'webview/sidebar.ts', outfile: 'dist/webview/sidebar.js', platform: 'browser', format: 'iife', external: [] },
];

function runTypecheck() {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const started = Date.now();
  // The same command as `npm run typecheck`: builds the solution (tsconfig.json), one project per layer, so an
  // import across a layer boundary fails here too. Declarations go to out/types/ (git-ignored), nothing else.
  const result = spawnSync(process.execPath, [tsc, '-b'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`build: type-check failed (tsc exit ${result.status}); fix the errors above or pass --no-typecheck`);
    process.exit(1);
  }
  console.log(`build: type-check ok (${Date.now() - started} ms)`);
}

/** One esbuild configuration for every bundle; only entry, output, platform, format and externals differ. */
function options(bundle) {
  return {
    entryPoints: [join(root, bundle.entry)],
    outfile: join(root, bundle.outfile),
    bundle: true,
    platform: bundle.platform,
    format: bundle.format,
    target: bundle.platform === 'node' ? 'node20' : 'chrome120',
    external: bundle.external,
    banner: bundle.banner,
    minify: production,
    sourcemap: production ? false : 'linked',
    sourcesContent: false,
    legalComments: production ? 'none' : 'inline',
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': JSON.stringify(production ? 'production' : 'development') },
    plugins: watch ? [reportRebuilds(bundle)] : [],
  };
}

function reportRebuilds(bundle) {
  return {
    name: 'report-rebuilds',
    setup(build) {
      build.onEnd((result) => {
        const state = result.errors.length ? `failed (${result.errors.length} errors)` : 'ok';
        console.log(`build: ${bundle.outfile} ${state}`);
      });
    },
  };
}

/** Builds (or, with --watch, starts watching) one bundle; returns false when its entry does not exist yet. */
async function build(bundle) {
  if (!existsSync(join(root, bundle.entry))) return false;
  if (watch) {
    const context = await esbuild.context(options(bundle));
    await context.watch();
  } else {
    await esbuild.build(options(bundle));
  }
  if (bundle.banner) chmodSync(join(root, bundle.outfile), 0o755);
  return true;
}

async function main() {
  const started = Date.now();
  if (typecheck) runTypecheck();
  // A fresh dist/ so that no stale bundle or sourcemap of an earlier build ends up in the VSIX.
  if (!watch) rmSync(join(root, 'dist'), { recursive: true, force: true });
  const built = [];
  const skipped = [];
  for (const bundle of bundles) {
    try {
      ((await build(bundle)) ? built : skipped).push(bundle);
    } catch {
      // esbuild has already printed the errors with file and line.
      console.error(`build: ${bundle.entry} -> ${bundle.outfile} failed`);
      process.exit(1);
    }
  }
  const mode = production ? 'production' : 'development';
  for (const b of built) console.log(`build: ${b.entry} -> ${b.outfile}`);
  for (const b of skipped) console.log(`build: skipped ${b.outfile} (no ${relative(root, join(root, b.entry))} yet)`);
  console.log(`build: ${built.length} bundles, ${mode}, ${Date.now() - started} ms${watch ? ', watching…' : ''}`);
}

await main();
