/**
 * `npm run bench [-- --family gpt2|llama|neox|qwen2|gemma3|gemma2|neo|all] [--tiny] [--json FILE] [--reps N]
 * [--T 128,512,1024] [--cases full,baseline,…] [--budget-mb MB]`: the engine on a random checkpoint of a real model's
 * shape (bench/shapes.ts; default GPT-2 small), generated once into .bench/. For each T, one engine process (as the
 * extension runs it) measures, side by side in the same loop: `baseline` (the same network returning only logits, as
 * a plain forward pass does), `full` (all attention maps kept, surprisal, top-k predictions), `baseline16` (the
 * baseline's step over the 17 positions an edit recomputes, on a zero cache of the rest), `weights16` (GPT-2 only:
 * only the network's weight matrix products over those 17 rows, in a third process: the floor under any fp32 step,
 * see weightFloor.ts), `incremental16` (16 new tokens at the end on a cached
 * prefix, 300 ms after the prefix's run as the default debounce leaves) and `hover` (one position's top sources
 * for one head plus its row across a layer's heads), `ablate` (one head zero-ablated over the window, its plain run
 * kept) and, at T = --rank-T (256; 0 skips it), `rank` (one "which heads matter" ranking: every head ablated alone).
 * Prints a table per family and writes JSON. Not a test: no assertions, figures only.
 *
 * Memory: before any weight is written or read, the engine's memory plan (extension/engine/model/memoryPlan.ts) is
 * made from the checkpoint's headers alone (the data still a sparse hole, bench/shapes.ts) under the budget the
 * engine would use (80% of available memory, or --budget-mb). A model that does not fit gets the engine's refusal as
 * its row; one whose engine fits but whose engine and baseline processes together do not runs them one after the
 * other (`sequential` in the JSON) instead of side by side. `--tiny` scales every family down (smoke runs).
 */
import { fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { engineEnv } from '../extension/host/engineClient';
import { ensureCheckpoint, realShapes, tinyShapes, type BenchShape, type FlopDims } from './shapes';

/** The pause before the measured edit: headlight.debounceMs's default. */
const EDIT_PAUSE_MS = 300;

type WorkerKind = 'analysis' | 'baseline' | 'floor';

type CaseName = 'full' | 'baseline' | 'baseline16' | 'weights16' | 'incremental16' | 'hover' | 'ablate' | 'rank' | 'patch' | 'lens1' | 'lensGrid';

interface Result {
  family: string;
  T: number;
  case: CaseName | 'refused';
  median_ms: number;
  min_ms: number;
  runs: number;
  gflops?: number;
  gflop_per_s?: number;
  peak_rss_mb: number;
  ratio_to_baseline?: number;
  /** The engine and the baseline ran one after the other (together they do not fit the budget). */
  sequential?: boolean;
  /** case 'refused': the engine's memory plan refusal, as a user would read it. */
  message?: string;
}

/**
 * The cases, in table order. `phase`: 1 the edit loop (then the analysis process's peak RSS is read), 2 the head
 * experiments, 'once' one run at --rank-T. `peak`: whose peak RSS the row shows. `gflop`: the work counted for GFLOP/s
 * (none: no rate). `ratio`: the case whose median the row divides by. A new case is one entry here plus its branch in
 * the worker.
 */
interface CaseDef {
  name: CaseName;
  worker: WorkerKind;
  job?: { case: string; past?: boolean };
  phase: 1 | 2 | 'once';
  peak: 'baseline' | 'floor' | 'analysis' | 'experiments';
  gflop?: (f: FlopDims, T: number) => number;
  ratio?: CaseName;
  /** Only for GPT-2 (the weight floor's graph is GPT-2's). */
  gpt2Only?: boolean;
}

const CASES: CaseDef[] = [
  { name: 'baseline', worker: 'baseline', phase: 1, peak: 'baseline', gflop: (f, T) => forwardGflop(f, T) },
  { name: 'full', worker: 'analysis', phase: 1, peak: 'analysis', gflop: (f, T) => forwardGflop(f, T), ratio: 'baseline' },
  { name: 'baseline16', worker: 'baseline', job: { case: 'baseline', past: true }, phase: 1, peak: 'baseline', gflop: (f, T) => forwardGflop(f, 17, T - 17) },
  { name: 'weights16', worker: 'floor', phase: 1, peak: 'floor', gflop: (f) => weightGflop(f, 17), gpt2Only: true },
  { name: 'incremental16', worker: 'analysis', phase: 1, peak: 'analysis', gflop: (f, T) => forwardGflop(f, 17, T - 17), ratio: 'baseline16' },
  { name: 'hover', worker: 'analysis', phase: 1, peak: 'analysis' },
  { name: 'ablate', worker: 'analysis', phase: 2, peak: 'experiments', gflop: (f, T) => forwardGflop(f, T), ratio: 'baseline' },
  { name: 'rank', worker: 'analysis', phase: 'once', peak: 'experiments' }, // one ranking: L·H ablated runs
  { name: 'patch', worker: 'analysis', phase: 'once', peak: 'experiments' }, // all heads patched: L·H runs
  { name: 'lens1', worker: 'analysis', phase: 2, peak: 'experiments' },
  // GFLOP/s of the unembeddings alone, over the whole grid's time (its scratch runs included)
  { name: 'lensGrid', worker: 'analysis', phase: 2, peak: 'experiments', gflop: lensGflop },
];
/** Phase 2 also runs the baseline again each rep (its median is over both phases' runs, as the ratios' base). */
const PHASE2_BASELINE: CaseDef = CASES[0];

/** The whole-window lens: (L+1)·T rows through the unembedding, 2·E·V each. */
function lensGflop(f: FlopDims, T: number): number {
  return (2 * (f.nLayer + 1) * T * f.nEmbd * f.vocab) / 1e9;
}

/** Multiply-adds per row of one layer's weight matrices: q and o (H·D), k and v (KVH·D), the MLP (2 or 3 of E·I). */
function layerMacs(f: FlopDims): number {
  const { nEmbd: E, nHead: H, nKvHead: KVH, headDim: D, inner: I } = f;
  return 2 * E * H * D + 2 * E * KVH * D + (f.gated ? 3 : 2) * E * I;
}

/** Forward FLOPs of T rows on `past` cached ones: weight matmuls, both attention matmuls over the causal square as
 * computed (every query head, D each), and the LM head. GPT-2 small: 12E² per layer and row, as before. */
function forwardGflop(f: FlopDims, T: number, past = 0, lmHead = true): number {
  const S = past + T;
  const weights = 2 * T * f.nLayer * layerMacs(f);
  const attention = 4 * f.nLayer * T * S * f.nHead * f.headDim;
  return (weights + attention + (lmHead ? 2 * T * f.nEmbd * f.vocab : 0)) / 1e9;
}

/** The weight products alone (weightFloor.ts, GPT-2 only): per layer 12E² multiply-adds per row (c_attn 3E²,
 * attn.c_proj E², mlp.c_fc and mlp.c_proj 4E² each), then the LM head's E·V. */
function weightGflop(f: FlopDims, T: number): number {
  return (2 * T * f.nLayer * layerMacs(f) + 2 * T * f.nEmbd * f.vocab) / 1e9;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** The shape of `--family NAME` (`--tiny`: its scaled-down twin). */
function shapeOf(family: string, tiny: boolean): BenchShape {
  const shapes = tiny ? tinyShapes() : realShapes();
  const shape = shapes.find((s) => s.family === family);
  if (!shape) throw new Error(`bench: --family ${family} is not one of ${shapes.map((s) => s.family).join(', ')}, all`);
  return shape;
}

/**
 * A bench worker: one engine process, as the extension runs it. `analysis` keeps every map, surprisal and top-k;
 * `baseline` is the same network built to return only logits. The parent sends jobs so that both engines' runs
 * alternate in one loop (side by side on the same noisy machine).
 */
async function worker(dir: string, kind: WorkerKind, shape: BenchShape, maxWindow: number): Promise<void> {
  if (kind === 'floor') return floorWorker(shape.flops);
  const { loadEngine } = await import('../extension/engine/load');
  const { idText, idTokenizer } = await import('../test/engine/idTokens');
  const { PlainForward } = await import('../test/fixtures/plainForward');
  // The baseline is the same network built to return only logits (plainForward.ts); the analysis engine reads
  // token ids written as text, so each case runs exactly the ids it names.
  // Both are built for the window T (`maxWindow`: rotary families' caches are that long; GPT-2 keeps n_positions); the
  // parent checked the memory plan before starting them, so the engine is not given a budget of its own here.
  const plain = kind === 'baseline' ? await PlainForward.load(dir, 2, { maxWindow }) : undefined;
  const engine = plain ? undefined : (await loadEngine(dir, { threads: 2, tokenizer: idTokenizer, maxWindow, budget: { bytes: 2 ** 50, source: 'bench (planned before)' } })).engine;
  const { vocabSize: V, nLayer, nHead } = (engine ?? plain)!.dims;
  const layer = Math.min(5, nLayer - 1); // the hover's and ablation's layer (5 on GPT-2 small, as before)
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
        run.topSources({ layer, head: q % nHead }, job.T - 1 - q, 5);
        run.row({ layer, head: 'mean' }, job.T - 1 - q);
        times.push(performance.now() - t);
      }
      ms = median(times);
    } else if (job.case === 'ablate') {
      // One head taken away (layer 5, head 1, zero) over a window of T tokens whose plain run the engine keeps (as
      // the panel's next ablation on the same text): one ablated run.
      await engine!.ablate({ heads: [{ layer, head: Math.min(1, nHead - 1) }], mode: 'zero' }, textOf(job.T), { window: { start: 0, end: job.T } });
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
async function floorWorker(f: FlopDims): Promise<void> {
  const { weightFloorSession } = await import('./weightFloor');
  const step = await weightFloorSession({ nLayer: f.nLayer, nEmbd: f.nEmbd, vocab: f.vocab });
  process.on('message', async (job: { case: string }) => {
    if (job.case === 'exit') return exitWith(peakRssMb());
    await new Promise((r) => setTimeout(r, EDIT_PAUSE_MS)); // as baseline16 and incremental16
    const t = performance.now();
    await step(17);
    process.send!({ ms: performance.now() - t });
  });
  process.send!({ ready: true });
}

function startWorker(dir: string, kind: WorkerKind, args: string[], mallocDefault = false) {
  const child = fork(__filename, ['--worker', kind, '--dir', dir, ...args], {
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

/** What the memory plan says of a family at window T, from the headers alone (no weight read, the data may be a hole). */
interface PlanVerdict {
  /** The engine's refusal (HeadlightError message and hint), or why the window would be shorter than T. */
  refused?: string;
  /** Estimated peak of the engine (analysis) process, and of engine plus baseline processes side by side. */
  engineBytes: number;
  pairBytes: number;
  budget: { bytes: number; source: string };
}

/**
 * The engine's own check (loadEngine: openModel's headers -> checkPlan under the budget) at window T, plus the
 * baseline process beside it: the same resident weights and packed copies, its zero cache, and its [T, V] logits
 * (output and onnxruntime's copy) and one layer's fp32 scores and probabilities.
 */
async function planFamily(dir: string, T: number, budget: { bytes: number; source: string }): Promise<PlanVerdict> {
  const { openModel } = await import('../extension/engine/families/registry');
  const { checkPlan, formatMB } = await import('../extension/engine/model/memoryPlan');
  const opened = await openModel(dir, { maxWindow: T });
  try {
    const dims = opened.model.dims;
    const input = { dims, tensors: opened.tensors };
    try {
      const { window, plan } = checkPlan(input, { maxWindow: dims.nPositions, budget, model: basename(dir), fixedWindow: opened.model.modelType === 'gpt2' });
      const baseline = plan.runtime + plan.weights + plan.packed + plan.kvCache + 2 * T * dims.vocabSize * 4 + 2 * dims.nHead * T * T * 4;
      const verdict = { engineBytes: plan.total, pairBytes: plan.total + baseline, budget };
      if (window < T) return { ...verdict, refused: `the engine fits a window of ${window} tokens only (${formatMB(plan.total)}) under ${formatMB(budget.bytes)} (${budget.source}), not ${T}` };
      return verdict;
    } catch (err) {
      const e = err as Error & { hint?: string; code?: string };
      if (e.code !== 'model-too-big') throw err;
      return { refused: `${e.message} ${e.hint ?? ''}`.trim(), engineBytes: NaN, pairBytes: NaN, budget };
    }
  } finally {
    await opened.close();
  }
}

interface RunOptions {
  Ts: number[];
  reps: number;
  rankT: number;
  cases: Set<string>;
  mallocDefault: boolean;
  tiny: boolean;
  budget: { bytes: number; source: string };
}

/** One family: its checkpoint's headers, the plan at each T, then (if it fits) its values and the measured cases. */
async function runFamily(shape: BenchShape, o: RunOptions): Promise<Result[]> {
  const { formatMB } = await import('../extension/engine/model/memoryPlan');
  const results: Result[] = [];
  const cases = CASES.filter((c) => o.cases.has(c.name) && (!c.gpt2Only || shape.family === 'gpt2'));
  const headersDir = await ensureCheckpoint(shape, { data: false });
  const allTs = o.rankT && (o.cases.has('rank') || o.cases.has('patch')) && !o.Ts.includes(o.rankT) ? [...o.Ts, o.rankT] : o.Ts;
  const verdicts = new Map<number, PlanVerdict>();
  for (const T of allTs) {
    const v = await planFamily(headersDir, T, o.budget);
    verdicts.set(T, v);
    if (v.refused) {
      console.log(`${shape.model} at T=${T}: refused by the memory plan: ${v.refused}`);
      results.push({ family: shape.family, T, case: 'refused', median_ms: NaN, min_ms: NaN, runs: 0, peak_rss_mb: NaN, message: v.refused });
    }
  }
  const runnable = allTs.filter((T) => !verdicts.get(T)!.refused);
  if (!runnable.length) return results;
  const dir = await ensureCheckpoint(shape, { data: true });
  for (const T of runnable) {
    const onlyRank = !o.Ts.includes(T);
    const v = verdicts.get(T)!;
    // Engine and baseline side by side when both fit the budget; else one after the other (the floor is small).
    const sequential = v.pairBytes > o.budget.bytes;
    if (sequential) {
      console.log(`${shape.model} at T=${T}: engine and baseline together need about ${formatMB(v.pairBytes)} (engine ${formatMB(v.engineBytes)}), over ${formatMB(o.budget.bytes)} (${o.budget.source}): running them one after the other`);
    }
    const phase = (p: CaseDef['phase']) => cases.filter((c) => c.phase === p && !(onlyRank && p !== 'once') && (p !== 'once' || o.rankT === T));
    const groups: WorkerKind[][] = sequential ? [['baseline', 'floor'], ['analysis']] : [['analysis', 'baseline', 'floor']];
    const times: Partial<Record<CaseName, number[]>> = {};
    const peaks: Partial<Record<CaseDef['peak'], number>> = {};
    const push = (c: CaseName, ms: number) => (times[c] ??= []).push(ms);
    for (const kinds of groups) {
      // Fresh engine processes per T, so each T's peak RSS is its own.
      const needed = kinds.filter((k) => cases.some((c) => c.worker === k && (phase(1).includes(c) || phase(2).includes(c) || phase('once').includes(c))) || (k === 'baseline' && phase(2).length > 0 && cases.includes(PHASE2_BASELINE)));
      const args = ['--family', shape.family, '--T', String(T), ...(o.tiny ? ['--tiny'] : [])];
      const workers = new Map(needed.map((k) => [k, startWorker(dir, k, args, o.mallocDefault)] as const));
      await Promise.all([...workers.values()].map((w) => w.ready));
      const ask = (c: CaseDef) => workers.get(c.worker)!.ask({ ...(c.job ?? { case: c.name }), T });
      const mine = (c: CaseDef) => workers.has(c.worker);
      // Warm-up of both shapes.
      if (workers.has('baseline')) await workers.get('baseline')!.ask({ case: 'baseline', T });
      if (workers.has('analysis')) await workers.get('analysis')!.ask({ case: 'full', T });
      for (let r = 0; r < o.reps; r++) for (const c of phase(1).filter(mine)) push(c.name, (await ask(c)).ms!);
      // The analysis cases' peak RSS, before the head experiments (an ablated run over the window is one unchunked
      // run, which at T=1024 peaks higher than a chunked analysis).
      if (workers.has('analysis')) peaks.analysis = (await workers.get('analysis')!.ask({ case: 'peak', T })).peak!;
      const second = phase(2).filter(mine);
      for (let r = 0; r < o.reps && phase(2).length; r++) {
        if (workers.has('baseline') && cases.includes(PHASE2_BASELINE)) push('baseline', (await ask(PHASE2_BASELINE)).ms!);
        for (const c of second) push(c.name, (await ask(c)).ms!);
      }
      for (const c of phase('once').filter(mine)) push(c.name, (await ask(c)).ms!);
      for (const [k, w] of workers) peaks[k === 'analysis' ? 'experiments' : k] = (await w.ask({ case: 'exit', T })).peak!;
    }
    peaks.analysis ??= peaks.experiments;
    for (const c of cases) {
      const ts = times[c.name];
      if (!ts?.length) continue;
      const ms = median(ts);
      const gflops = c.gflop?.(shape.flops, T);
      const base = c.ratio && times[c.ratio]?.length ? median(times[c.ratio]!) : undefined;
      results.push({
        family: shape.family,
        T,
        case: c.name,
        median_ms: round(ms, 3),
        min_ms: round(Math.min(...ts), 3),
        runs: ts.length,
        gflops: gflops && round(gflops, 2),
        gflop_per_s: gflops && round(gflops / (ms / 1000), 1),
        peak_rss_mb: Math.round(peaks[c.peak] ?? NaN),
        ratio_to_baseline: base ? round(ms / base, 3) : undefined,
        ...(sequential ? { sequential } : {}),
      });
    }
  }
  return results;
}

function heading(shape: BenchShape): string {
  const f = shape.flops;
  if (shape.family === 'gpt2' && shape.model === 'GPT-2 small') return 'GPT-2-small shapes (12 layers, 12 heads, 768, vocab 50257), random weights, 2 threads; medians';
  const heads = f.nKvHead === f.nHead ? `${f.nHead} heads` : `${f.nHead} heads, ${f.nKvHead} KV heads`;
  const mlp = `${f.gated ? 'gated ' : ''}MLP ${f.inner}`;
  return `${shape.family}: ${shape.model} shapes (${f.nLayer} layers, ${heads}, head_dim ${f.headDim}, ${f.nEmbd}, ${mlp}, vocab ${f.vocab}), random ${shape.dtype} weights, 2 threads; medians`;
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
      family: { type: 'string', default: 'gpt2' },
      tiny: { type: 'boolean', default: false },
      cases: { type: 'string' },
      'budget-mb': { type: 'string' },
    },
  });
  if (values.worker) return worker(values.dir!, values.worker as WorkerKind, shapeOf(values.family!, values.tiny!), Number(values.T));

  const names = values.family === 'all' ? (values.tiny ? tinyShapes() : realShapes()).map((s) => s.family) : values.family!.split(',');
  const shapes = names.map((n) => shapeOf(n, values.tiny!));
  const { availableMemory, memoryBudget } = await import('../extension/engine/model/memoryPlan');
  const budgetMB = values['budget-mb'] === undefined ? undefined : Number(values['budget-mb']);
  const opts: RunOptions = {
    Ts: values.T!.split(',').map(Number),
    reps: Number(values.reps),
    rankT: Number(values['rank-T']),
    cases: new Set(values.cases?.split(',') ?? CASES.map((c) => c.name)),
    mallocDefault: values.malloc === 'default',
    tiny: values.tiny!,
    // The budget the engine would choose (80% of available memory, cgroup limits read), or --budget-mb.
    budget: memoryBudget(budgetMB, availableMemory()),
  };
  const all: { family: string; model: string; shape: unknown; results: Result[] }[] = [];
  for (const shape of shapes) {
    const results = await runFamily(shape, opts); // one family's processes at a time
    all.push({ family: shape.family, model: shape.model, shape: shape.gpt2 ?? shape.spec!.config, results });
    console.log(`\n${heading(shape)}`);
    console.log('| T | case | median ms | GFLOP/s | ratio to baseline | peak RSS MB |');
    console.log('|---:|---|---:|---:|---:|---:|');
    for (const r of results) {
      if (r.case === 'refused') console.log(`| ${r.T} | refused | | | | ${r.message} |`);
      else console.log(`| ${r.T} | ${r.case} | ${r.median_ms} | ${r.gflop_per_s ?? ''} | ${r.ratio_to_baseline ?? ''} | ${r.peak_rss_mb} |`);
    }
  }
  const single = all.length === 1 ? all[0] : undefined;
  const out = values.json ?? join('.bench', single?.family === 'gpt2' && !values.tiny ? 'engine.json' : `engine-${values.family}${values.tiny ? '-tiny' : ''}.json`);
  writeFileSync(out, JSON.stringify(single ?? { families: all }, null, 2));
  console.log(`\nwrote ${out}`);
}

function round(x: number, d: number): number {
  return Math.round(x * 10 ** d) / 10 ** d;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
