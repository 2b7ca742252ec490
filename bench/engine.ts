/**
 * `npm run bench [-- --json FILE] [--reps N] [--T 128,512,1024]`: the engine on a GPT-2-small-shaped random
 * checkpoint generated on the fly. For each T, one engine process (as the extension runs it) measures, side by side
 * in the same loop: `baseline` (the same network returning only logits, as a plain forward pass does), `full` (all
 * attention maps kept, surprisal, top-k predictions), `incremental16` (16 new tokens at the end on a cached
 * prefix) and `hover` (one position's top sources for one head plus its row across a layer's heads).
 * Prints a table and writes JSON. Not a test: no assertions, figures only.
 */
import { fork } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const SHAPE = { seed: 124, nLayer: 12, nHead: 12, nEmbd: 768, nPositions: 1024 };
const V = 50257;

interface Result {
  T: number;
  case: 'full' | 'baseline' | 'incremental16' | 'hover';
  median_ms: number;
  min_ms: number;
  runs: number;
  gflops?: number;
  gflop_per_s?: number;
  peak_rss_mb: number;
  ratio_to_baseline?: number;
}

/** Forward FLOPs: weight matmuls, both attention matmuls over the causal square as computed, and the LM head. */
function forwardGflop(T: number, past = 0, lmHead = true): number {
  const { nLayer: L, nEmbd: E } = SHAPE;
  const S = past + T;
  const weights = 2 * T * L * 12 * E * E;
  const attention = 4 * L * T * S * E;
  return (weights + attention + (lmHead ? 2 * T * E * V : 0)) / 1e9;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function worker(dir: string, T: number, reps: number): Promise<void> {
  const { loadEngine } = await import('../extension/engine/load');
  const { engine } = await loadEngine(dir, { threads: 2 });
  let seed = 7;
  const ids = Array.from({ length: T }, () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % V));
  const times: Record<string, number[]> = { baseline: [], full: [], incremental16: [], hover: [] };
  // Warm-up: one of each shape.
  await engine.forwardLogits(ids);
  await engine.analyzeIds(ids);
  for (let r = 0; r < reps; r++) {
    let t = performance.now();
    await engine.forwardLogits(ids);
    times.baseline.push(performance.now() - t);
    t = performance.now();
    await engine.analyzeIds(ids);
    times.full.push(performance.now() - t);
    await engine.analyzeIds(ids.slice(0, T - 16));
    t = performance.now();
    const run = await engine.analyzeIds(ids, { incremental: true });
    times.incremental16.push(performance.now() - t);
    if (run.stats.computed > 17) throw new Error(`incremental run computed ${run.stats.computed} tokens`);
    for (let q = 0; q < 20; q++) {
      t = performance.now();
      const i = T - 1 - q;
      run.topSources({ layer: 5, head: q % 12 }, i, 5);
      run.row({ layer: 5, head: 'mean' }, i);
      times.hover.push(performance.now() - t);
    }
  }
  const peak = process.resourceUsage().maxRSS / 1024;
  await engine.dispose();
  process.send!({ T, times, peak });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: 'string' },
      reps: { type: 'string', default: '5' },
      T: { type: 'string', default: '128,512,1024' },
      worker: { type: 'boolean' },
      dir: { type: 'string' },
    },
  });
  if (values.worker) return worker(values.dir!, Number(values.T), Number(values.reps));

  const dir = resolve('.bench', `gpt2-small-random-${SHAPE.seed}`);
  if (!existsSync(join(dir, 'model.safetensors'))) {
    const t = performance.now();
    mkdirSync(dir, { recursive: true });
    const { writeRandomCheckpoint } = await import('../test/fixtures/randomCheckpoint');
    await writeRandomCheckpoint(dir, SHAPE);
    console.log(`generated a GPT-2-small-shaped random checkpoint in ${((performance.now() - t) / 1000).toFixed(1)} s: ${dir}`);
  }
  const results: Result[] = [];
  for (const T of values.T!.split(',').map(Number)) {
    const child = fork(__filename, ['--worker', '--dir', dir, '--T', String(T), '--reps', values.reps!], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295' },
      serialization: 'advanced',
    });
    const msg = await new Promise<{ T: number; times: Record<string, number[]>; peak: number }>((res, rej) => {
      child.once('message', (m) => res(m as never));
      child.once('exit', (code) => code && rej(new Error(`bench worker for T=${T} exited with ${code}`)));
    });
    const base = median(msg.times.baseline);
    for (const c of ['baseline', 'full', 'incremental16', 'hover'] as const) {
      const ms = median(msg.times[c]);
      const gflops = c === 'hover' ? undefined : c === 'incremental16' ? forwardGflop(16, T - 16) : forwardGflop(T);
      results.push({
        T,
        case: c,
        median_ms: round(ms, 3),
        min_ms: round(Math.min(...msg.times[c]), 3),
        runs: msg.times[c].length,
        gflops: gflops && round(gflops, 2),
        gflop_per_s: gflops && round(gflops / (ms / 1000), 1),
        peak_rss_mb: Math.round(msg.peak),
        ratio_to_baseline: c === 'full' ? round(ms / base, 3) : undefined,
      });
    }
  }
  console.log('\nGPT-2-small shapes (12 layers, 12 heads, 768, vocab 50257), random weights, 2 threads; medians');
  console.log('| T | case | median ms | GFLOP/s | ratio to baseline | peak RSS MB |');
  console.log('|---:|---|---:|---:|---:|---:|');
  for (const r of results) {
    console.log(`| ${r.T} | ${r.case} | ${r.median_ms} | ${r.gflop_per_s ?? ''} | ${r.ratio_to_baseline ?? ''} | ${r.peak_rss_mb} |`);
  }
  const out = values.json ?? join('.bench', 'engine.json');
  writeFileSync(out, JSON.stringify({ shape: SHAPE, results }, null, 2));
  console.log(`\nwrote ${out}`);
}

function round(x: number, d: number): number {
  return Math.round(x * 10 ** d) / 10 ** d;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
