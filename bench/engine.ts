/**
 * `npm run bench [-- --json FILE] [--reps N] [--T 128,512,1024]`: the engine on a GPT-2-small-shaped random
 * checkpoint generated on the fly. For each T, one engine process (as the extension runs it) measures, side by side
 * in the same loop: `baseline` (the same network returning only logits, as a plain forward pass does), `full` (all
 * attention maps kept, surprisal, top-k predictions), `baseline16` (the baseline's step over the 17 positions an
 * edit recomputes, on a zero cache of the rest), `weights16` (only the network's weight matrix products over those 17
 * rows, in a third process: the floor under any fp32 step, see weightFloor.ts), `incremental16` (16 new tokens at the end on a cached
 * prefix, 300 ms after the prefix's run as the default debounce leaves) and `hover` (one position's top sources
 * for one head plus its row across a layer's heads), `ablate` (one head zero-ablated over the window, its plain run
 * kept) and, at T = --rank-T (256; 0 skips it), `rank` (one "which heads matter" ranking: every head ablated alone)
 * and `patch` (activation patching of every head alone at every position into a corrupted text: L·H patched runs,
 * issue #20's target is to take no longer than `rank`).
 * Prints a table and writes JSON. Not a test: no assertions, figures only.
 */
import { fork } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { engineEnv } from '../extension/host/engineClient';

const SHAPE = { seed: 124, nLayer: 12, nHead: 12, nEmbd: 768, nPositions: 1024 };
const V = 50257;
/** The pause before the measured edit: headlight.debounceMs's default. */
const EDIT_PAUSE_MS = 300;

interface Result {
  T: number;
  case: 'full' | 'baseline' | 'baseline16' | 'weights16' | 'incremental16' | 'hover' | 'ablate' | 'rank' | 'patch' | 'lens1' | 'lensGrid';
  median_ms: number;
  min_ms: number;
  runs: number;
  gflops?: number;
  gflop_per_s?: number;
  peak_rss_mb: number;
  ratio_to_baseline?: number;
}

/** The whole-window lens: (L+1)·T rows through the unembedding, 2·E·V each. */
function lensGflop(T: number): number {
  return (2 * (SHAPE.nLayer + 1) * T * SHAPE.nEmbd * V) / 1e9;
}

/** Forward FLOPs: weight matmuls, both attention matmuls over the causal square as computed, and the LM head. */
function forwardGflop(T: number, past = 0, lmHead = true): number {
  const { nLayer: L, nEmbd: E } = SHAPE;
  const S = past + T;
  const weights = 2 * T * L * 12 * E * E;
  const attention = 4 * L * T * S * E;
  return (weights + attention + (lmHead ? 2 * T * E * V : 0)) / 1e9;
}

/** The weight products alone (weightFloor.ts): per layer 12E² multiply-adds per row (c_attn 3E², attn.c_proj E²,
 * mlp.c_fc and mlp.c_proj 4E² each), then the LM head's E·V. */
function weightGflop(T: number): number {
  const { nLayer: L, nEmbd: E } = SHAPE;
  return (2 * T * L * 12 * E * E + 2 * T * E * V) / 1e9;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * A bench worker: one engine process, as the extension runs it. `analysis` keeps every map, surprisal and top-k;
 * `baseline` is the same network built to return only logits. The parent sends jobs so that both engines' runs
 * alternate in one loop (side by side on the same noisy machine).
 */
async function worker(dir: string, kind: 'analysis' | 'baseline' | 'floor'): Promise<void> {
  if (kind === 'floor') return floorWorker();
  const { loadEngine } = await import('../extension/engine/load');
  const { idText, idTokenizer } = await import('../test/engine/idTokens');
  const { PlainForward } = await import('../test/fixtures/plainForward');
  // The baseline is the same network built to return only logits (plainForward.ts); the analysis engine reads
  // token ids written as text, so each case runs exactly the ids it names.
  const plain = kind === 'baseline' ? await PlainForward.load(dir, 2) : undefined;
  const engine = plain ? undefined : (await loadEngine(dir, { threads: 2, tokenizer: idTokenizer })).engine;
  const ids = (T: number) => {
    let seed = 7;
    return Array.from({ length: T }, () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % V));
  };
  /** Text of exactly T tokens. */
  const textOf = (T: number) => idText(ids(T));
  let lens: import('../extension/engine/analyses/lens').Lens | undefined;
  process.on('message', async (job: { case: string; T: number; past?: boolean }) => {
    const x = ids(job.T);
    const t0 = performance.now();
    let ms = 0;
    if (job.case === 'baseline' && job.past) {
      await new Promise((r) => setTimeout(r, EDIT_PAUSE_MS)); // as incremental16
      const t = performance.now();
      await plain!.logits(x, { past: job.T - 17 }); // the 17 positions an analysis recomputes after a 16-token edit
      ms = performance.now() - t;
    } else if (job.case === 'baseline') {
      await plain!.logits(x);
      ms = performance.now() - t0;
    } else if (job.case === 'full') {
      await engine!.analyze(idText(x));
      ms = performance.now() - t0;
    } else if (job.case === 'incremental16') {
      await engine!.analyze(idText(x.slice(0, job.T - 16)));
      // An edit comes at least the default debounce (300 ms) after the run before it; by then the engine has
      // collected the previous long run's garbage (memory.ts), which back to back costs the edit ~40 ms more.
      await new Promise((r) => setTimeout(r, EDIT_PAUSE_MS));
      const t = performance.now();
      const run = await engine!.update(idText(x));
      ms = performance.now() - t;
      if (run.stats.computed > 17) throw new Error(`incremental run computed ${run.stats.computed} tokens`);
    } else if (job.case === 'hover') {
      const run = await engine!.update(idText(x));
      const times: number[] = [];
      for (let q = 0; q < 20; q++) {
        const t = performance.now();
        run.topSources({ layer: 5, head: q % 12 }, job.T - 1 - q, 5);
        run.row({ layer: 5, head: 'mean' }, job.T - 1 - q);
        times.push(performance.now() - t);
      }
      ms = median(times);
    } else if (job.case === 'ablate') {
      // One head taken away (layer 5, head 1, zero) over a window of T tokens whose plain run the engine keeps (as
      // the panel's next ablation on the same text): one ablated run.
      await engine!.ablate({ heads: [{ layer: 5, head: 1 }], mode: 'zero' }, textOf(job.T), { window: { start: 0, end: job.T } });
      ms = performance.now() - t0;
    } else if (job.case === 'rank') {
      await engine!.rankHeads(textOf(job.T), { window: { start: 0, end: job.T } });
      ms = performance.now() - t0;
    } else if (job.case === 'patch') {
      // Every head patched alone (L·H runs) from a clean text into one with a quarter of its tokens changed; the
      // metric at the last token (the readout built before the clock starts, as after a first lens request).
      const { Lens } = await import('../extension/engine/analyses/lens');
      const { patchActivations } = await import('../extension/engine/analyses/patching');
      lens ??= new Lens(engine!, dir, { threads: 2 });
      await lens.readoutHead();
      const corrupt = x.map((id, i) => (i % 4 === 1 ? (id + 1) % V : id));
      const t = performance.now();
      await patchActivations(engine!, () => lens!.readoutHead(), { clean: idText(x), corrupt: idText(corrupt), answer: 11, wrong: 12, targets: ['heads'] });
      ms = performance.now() - t;
    } else if (job.case === 'lens1' || job.case === 'lensGrid') {
      // The logit lens: the cursor's token at every layer (one-row run + 13 rows through the lens head; median of
      // 10 tokens, the readout built once before), or the whole window's grid (L+1)·T unembeddings.
      const { Lens } = await import('../extension/engine/analyses/lens');
      lens ??= new Lens(engine!, dir, { threads: 2 });
      const run = await engine!.update(idText(x));
      if (job.case === 'lens1') {
        await lens.at(run, job.T - 1);
        const times: number[] = [];
        for (let q = 0; q < 10; q++) {
          const t = performance.now();
          await lens.at(run, job.T - 1 - q);
          times.push(performance.now() - t);
        }
        ms = median(times);
      } else {
        const t = performance.now();
        await lens.grid(run);
        ms = performance.now() - t;
      }
    } else if (job.case === 'peak') {
      process.send!({ peak: peakRssMb() });
      return;
    } else if (job.case === 'exit') {
      const peak = peakRssMb();
      await (engine ?? plain)!.dispose();
      exitWith(peak);
      return;
    }
    process.send!({ ms });
  });
  process.send!({ ready: true });
}

const peakRssMb = (): number => process.resourceUsage().maxRSS / 1024;

/** A worker's last answer: its peak RSS; it exits once the answer is out (a worker left waiting on its channel kept
 * running after the bench ended). */
function exitWith(peak: number): void {
  process.send!({ peak }, () => process.exit(0));
}

/** The weight-floor worker: answers `weights16` (the weight products over 17 rows) and `exit`. */
async function floorWorker(): Promise<void> {
  const { weightFloorSession } = await import('./weightFloor');
  const step = await weightFloorSession({ nLayer: SHAPE.nLayer, nEmbd: SHAPE.nEmbd, vocab: V });
  process.on('message', async (job: { case: string }) => {
    if (job.case === 'exit') return exitWith(peakRssMb());
    await new Promise((r) => setTimeout(r, EDIT_PAUSE_MS)); // as baseline16 and incremental16
    const t = performance.now();
    await step(17);
    process.send!({ ms: performance.now() - t });
  });
  process.send!({ ready: true });
}

function startWorker(dir: string, kind: 'analysis' | 'baseline' | 'floor', mallocDefault = false) {
  const child = fork(__filename, ['--worker', kind, '--dir', dir], {
    execArgv: ['--import', 'tsx'],
    serialization: 'advanced',
    // The extension's engine environment (allocator settings included); `--malloc default` drops GLIBC_TUNABLES.
    env: engineEnv(process.env, mallocDefault ? { GLIBC_TUNABLES: undefined } : {}),
  });
  let failed: Error | undefined;
  child.once('exit', (code) => code && (failed = new Error(`bench ${kind} worker exited with ${code}`)));
  const ask = (job: { case: string; T: number; past?: boolean }) =>
    new Promise<{ ms?: number; peak?: number }>((res, rej) => {
      if (failed) return rej(failed);
      const onExit = () => rej(failed ?? new Error(`bench ${kind} worker exited`));
      child.once('exit', onExit);
      child.once('message', (m) => {
        child.off('exit', onExit);
        res(m as never);
      });
      child.send(job);
    });
  const ready = new Promise<void>((res, rej) => {
    child.once('message', () => res());
    child.once('exit', () => rej(failed ?? new Error(`bench ${kind} worker exited before it was ready`)));
  });
  return { ask, ready };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: 'string' },
      reps: { type: 'string', default: '5' },
      T: { type: 'string', default: '128,512,1024' },
      worker: { type: 'string' },
      dir: { type: 'string' },
      malloc: { type: 'string', default: 'engine' },
      'rank-T': { type: 'string', default: '256' },
    },
  });
  if (values.worker) return worker(values.dir!, values.worker as 'analysis' | 'baseline' | 'floor');

  const dir = resolve('.bench', `gpt2-small-random-${SHAPE.seed}`);
  if (!existsSync(join(dir, 'model.safetensors'))) {
    const t = performance.now();
    mkdirSync(dir, { recursive: true });
    const { writeRandomCheckpoint } = await import('../test/fixtures/randomCheckpoint');
    await writeRandomCheckpoint(dir, SHAPE);
    console.log(`generated a GPT-2-small-shaped random checkpoint in ${((performance.now() - t) / 1000).toFixed(1)} s: ${dir}`);
  }
  const results: Result[] = [];
  const reps = Number(values.reps);
  const Ts = values.T!.split(',').map(Number);
  const rankT = Number(values['rank-T']);
  for (const T of rankT && !Ts.includes(rankT) ? [...Ts, rankT] : Ts) {
    const onlyRank = !Ts.includes(T);
    // Fresh engine processes per T, so each T's peak RSS is its own.
    const analysis = startWorker(dir, 'analysis', values.malloc === 'default');
    const baseline = startWorker(dir, 'baseline', values.malloc === 'default');
    const floor = onlyRank ? undefined : startWorker(dir, 'floor', values.malloc === 'default');
    await Promise.all([analysis.ready, baseline.ready, floor?.ready]);
    const times: Record<string, number[]> = { baseline: [], full: [], baseline16: [], weights16: [], incremental16: [], hover: [], ablate: [], lens1: [], lensGrid: [] };
    await baseline.ask({ case: 'baseline', T }); // warm-up of both shapes
    await analysis.ask({ case: 'full', T });
    for (let r = 0; r < (onlyRank ? 0 : reps); r++) {
      times.baseline.push((await baseline.ask({ case: 'baseline', T })).ms!);
      times.full.push((await analysis.ask({ case: 'full', T })).ms!);
      times.baseline16.push((await baseline.ask({ case: 'baseline', T, past: true })).ms!);
      times.weights16.push((await floor!.ask({ case: 'weights16', T })).ms!);
      times.incremental16.push((await analysis.ask({ case: 'incremental16', T })).ms!);
      times.hover.push((await analysis.ask({ case: 'hover', T })).ms!);
    }
    // The analysis cases' peak RSS, before the head experiments (an ablated run over the window is one unchunked
    // run, which at T=1024 peaks higher than a chunked analysis).
    const peak = (await analysis.ask({ case: 'peak', T })).peak!;
    for (let r = 0; r < (onlyRank ? 0 : reps); r++) {
      times.baseline.push((await baseline.ask({ case: 'baseline', T })).ms!);
      times.ablate.push((await analysis.ask({ case: 'ablate', T })).ms!);
      times.lens1.push((await analysis.ask({ case: 'lens1', T })).ms!);
      times.lensGrid.push((await analysis.ask({ case: 'lensGrid', T })).ms!);
    }
    if (rankT === T) times.rank = [(await analysis.ask({ case: 'rank', T })).ms!]; // one ranking: L·H ablated runs
    if (rankT === T) times.patch = [(await analysis.ask({ case: 'patch', T })).ms!]; // all heads patched: L·H runs
    const experimentsPeak = (await analysis.ask({ case: 'exit', T })).peak!;
    const basePeak = (await baseline.ask({ case: 'exit', T })).peak!;
    const floorPeak = floor ? (await floor.ask({ case: 'exit', T })).peak! : 0;
    const base = median(times.baseline);
    for (const c of ['baseline', 'full', 'baseline16', 'weights16', 'incremental16', 'hover', 'ablate', 'rank', 'patch', 'lens1', 'lensGrid'] as const) {
      if (!times[c]?.length) continue;
      const ms = median(times[c]);
      const gflops =
        c === 'lensGrid'
          ? lensGflop(T) // the unembeddings alone, over the whole grid's time (its scratch runs included)
          : c === 'hover' || c === 'rank' || c === 'patch' || c === 'lens1'
            ? undefined
            : c === 'weights16'
              ? weightGflop(17)
              : c === 'incremental16' || c === 'baseline16'
                ? forwardGflop(17, T - 17)
                : forwardGflop(T);
      results.push({
        T,
        case: c,
        median_ms: round(ms, 3),
        min_ms: round(Math.min(...times[c]), 3),
        runs: times[c].length,
        gflops: gflops && round(gflops, 2),
        gflop_per_s: gflops && round(gflops / (ms / 1000), 1),
        peak_rss_mb: Math.round(
          c === 'baseline' || c === 'baseline16' ? basePeak : c === 'weights16' ? floorPeak : c === 'ablate' || c === 'rank' || c === 'patch' || c === 'lens1' || c === 'lensGrid' ? experimentsPeak : peak,
        ),
        ratio_to_baseline: c === 'full' || c === 'ablate' ? round(ms / base, 3) : c === 'incremental16' ? round(ms / median(times.baseline16), 3) : undefined,
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
