// `npm run bench:host [-- --edits N --max-s S --tokens T --model DIR]`: issue #4's live-typing bars measured in a real
// VS Code (code-server + Chromium, the e2e harness). Runs test/e2e/bench/hostEdits.inhost.ts inside the extension
// host with headlight.model at a GPT-2-small-shaped random checkpoint (.bench/gpt2-small-random-124, written here
// if missing, as `npm run bench` does) and prints the time from each one-character edit to its run arriving in the
// host (debounce 0), and the extension host's heap growth; then activation, hover and cursor-highlight latencies.
// Figures go to .bench/host-edits.json. A benchmark: it asserts nothing.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';
import { ROOT, WORKSPACE, openWorkbench, startServer } from '../harness.js';
import { writeRandomCheckpoint } from '../../fixtures/randomCheckpoint.js';
// @ts-expect-error: a plain .mjs script without types
import { ensureAll } from '../../../scripts/e2e/install.mjs';

const SHAPE = { seed: 124, nLayer: 12, nHead: 12, nEmbd: 768, nPositions: 1024 }; // as bench/engine.ts

const { values } = parseArgs({
  options: {
    edits: { type: 'string', default: '1000' },
    'max-s': { type: 'string', default: '1200' },
    tokens: { type: 'string', default: '1000' },
    model: { type: 'string' },
  },
});

const WORK = join(ROOT, '.bench', 'host');
const VSIX = join(WORK, 'headlight-linux-x64.vsix');
const ENTRY = join(ROOT, 'out', 'bench', 'hostEdits', 'index.js');
const RESULT = join(WORK, 'result.json');
const SUMMARY = join(ROOT, '.bench', 'host-edits.json');

async function main(): Promise<void> {
  const t0 = Date.now();
  const secs = () => `${((Date.now() - t0) / 1000).toFixed(0)} s`;
  (ensureAll as () => void)();
  const model = values.model ? resolve(values.model) : join(ROOT, '.bench', `gpt2-small-random-${SHAPE.seed}`);
  if (!existsSync(join(model, 'model.safetensors'))) {
    if (values.model) throw new Error(`no model.safetensors in ${model}`);
    mkdirSync(model, { recursive: true });
    await writeRandomCheckpoint(model, SHAPE);
    console.log(`bench:host: wrote a GPT-2-small-shaped random checkpoint to ${model} (${secs()})`);
  }
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  // The VSIX the server installs (its own path: e2e runs use .e2e/…vsix); packaging also builds dist/, which the
  // development path below loads.
  const pack = spawnSync(process.execPath, [join(ROOT, 'scripts', 'package.mjs'), '--no-typecheck', '--target', 'linux-x64', '--out', VSIX], { cwd: ROOT, encoding: 'utf8' });
  if (pack.status !== 0) throw new Error(`packaging failed:\n${pack.stdout}${pack.stderr}`);
  await esbuild.build({
    entryPoints: [join(ROOT, 'test', 'e2e', 'bench', 'hostEdits.inhost.ts')],
    outfile: ENTRY,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode'],
    logLevel: 'warning',
  });
  console.log(`bench:host: packaged and bundled (${secs()}); model ${model}`);
  const server = await startServer({
    vsix: VSIX,
    env: {
      HEADLIGHT_BENCH_MODEL: model,
      HEADLIGHT_BENCH_RESULT: RESULT,
      HEADLIGHT_BENCH_EDITS: values.edits!,
      HEADLIGHT_BENCH_MAX_S: values['max-s']!,
      HEADLIGHT_BENCH_TOKENS: values.tokens!,
    },
  });
  const remote = (path: string) => `vscode-remote://127.0.0.1:${server.port}${path}`;
  let wb: Awaited<ReturnType<typeof openWorkbench>> | undefined;
  try {
    wb = await openWorkbench(server, WORKSPACE, [
      ['extensionDevelopmentPath', remote(ROOT.replace(/\/$/, ''))],
      ['extensionTestsPath', remote(ENTRY.replace(/\.js$/, ''))],
    ]);
    const deadline = Date.now() + (Number(values['max-s']) + 600) * 1000;
    let lastProgress = '';
    while (!existsSync(RESULT) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 2000));
      const p = `${RESULT}.progress`;
      if (existsSync(p)) {
        const line = readFileSync(p, 'utf8');
        if (line !== lastProgress) console.log(`bench:host: ${line} (${secs()})`);
        lastProgress = line;
      }
    }
    if (!existsSync(RESULT)) {
      console.log(wb.console.filter((l) => l.includes('Extension Host')).slice(-60).join('\n'));
      throw new Error('the in-host bench wrote no result');
    }
  } finally {
    await wb?.close();
    await server.stop();
  }
  const r = JSON.parse(readFileSync(RESULT, 'utf8'));
  const { perEditMs, ...summary } = r;
  copyFileSync(RESULT, SUMMARY);
  if (r.error) throw new Error(`the in-host bench failed:\n${r.error}`);
  console.log(JSON.stringify({ ...summary, heapMb: { ...r.heapMb, samples: undefined } }, null, 1));
  const f = (x: number) => x.toFixed(1);
  console.log(`\nbench:host: ${r.edits} one-character edits (stopped by ${r.stoppedBy}) on ${r.document.tokens} tokens, ` +
    `model ${r.model.nLayer}×${r.model.nHead}, n_embd ${r.model.nEmbd}: edit → run in the host median ${f(r.editToRunMs.median)} ms, ` +
    `p90 ${f(r.editToRunMs.p90)} ms (engine's own total median ${f(r.engineTotalMs.median)} ms; ${r.computedTokens.median} tokens recomputed); ` +
    `extension host heap ${f(r.heapMb.first)} → ${f(r.heapMb.last)} MB (growth ${f(r.heapMb.growth)} MB, forced GC: ${r.heapMb.forcedGc}); ` +
    `${perEditMs.length} per-edit times in ${SUMMARY} (${secs()})`);
  const m = (x: { n: number; median: number; p90: number }) => `median ${f(x.median)} ms, p90 ${f(x.p90)} ms (n ${x.n})`;
  console.log(`bench:host: activation ${f(r.activationMs)} ms; hover in the host ${m(r.hoverMs)}, round trip ${m(r.hoverRoundTripMs)}; ` +
    `cursor highlight in the host ${m(r.highlightMs)}, from setting the selection ${m(r.highlightRoundTripMs)}`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
