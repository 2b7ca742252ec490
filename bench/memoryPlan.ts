/**
 * `node --import tsx bench/memoryPlan.ts [--T 1024] [--only gpt2,smollm2,pythia,qwen2]`: the memory plan's estimate
 * (extension/common/memoryPlan.ts, as the engine's load and the model picker make it) against the measured peak RSS
 * of an engine process (forked with the extension's engine environment, as bench/engine.ts does) that loads a random
 * checkpoint of a real model's shape and runs two full analyses of its window: T tokens, or the model's fixed window
 * (GPT-2's n_positions) when it has one. Shapes (bench/shapes.ts): GPT-2 small, SmolLM2-135M, Pythia-160m,
 * Qwen2.5-0.5B, Gemma 3 270M and TinyStories-33M by default; Gemma 2 2B by `--only gemma2`. Checkpoints are written
 * once into .bench/ (git-ignored). Not a test: figures only; the plan is meant to stay within 25% of each measurement
 * (bench/RESULTS.md, "Memory plan").
 */
import { fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { engineEnv } from '../extension/host/engineClient';
import { ensureCheckpoint, realShapes } from './shapes';

/** The shapes the plan was calibrated on (bench/shapes.ts has Gemma 2 2B too: `--only gemma2`, 10.5 GB). */
const CALIBRATED = ['gpt2', 'smollm2', 'pythia', 'qwen2', 'gemma3', 'neo'];

/** The worker: load (the plan at window T, no budget limit), two full analyses of the window's random ids, then peak RSS. */
async function worker(dir: string, T: number): Promise<void> {
  const { loadEngine } = await import('../extension/engine/load');
  const { idText, idTokenizer } = await import('../test/engine/idTokens');
  const loaded = await loadEngine(dir, { threads: 2, tokenizer: idTokenizer, maxWindow: T, budget: { bytes: 2 ** 50, source: 'bench' } });
  const afterLoad = process.resourceUsage().maxRSS * 1024;
  const { vocabSize: V, nPositions: window } = loaded.engine.dims; // the window the plan was made for
  let seed = 11;
  for (let rep = 0; rep < 2; rep++) {
    const ids = Array.from({ length: window }, () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), 3 + (seed % (V - 3))));
    await loaded.engine.analyze(idText(ids));
  }
  const peak = process.resourceUsage().maxRSS * 1024;
  process.send!({ plan: loaded.memory.plan, window: loaded.engine.dims.nPositions, afterLoad, peak }, () => process.exit(0));
}

function runWorker(dir: string, T: number): Promise<{ plan: Record<string, number>; window: number; afterLoad: number; peak: number }> {
  return new Promise((res, rej) => {
    const child = fork(__filename, ['--worker', '--dir', dir, '--T', String(T)], { execArgv: ['--import', 'tsx'], serialization: 'advanced', env: engineEnv(process.env) });
    child.once('message', (m) => res(m as never));
    child.once('exit', (code) => code && rej(new Error(`memoryPlan worker for ${dir} exited with ${code}`)));
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { worker: { type: 'boolean' }, dir: { type: 'string' }, T: { type: 'string', default: '1024' }, only: { type: 'string' } } });
  const T = Number(values.T);
  if (values.worker) return worker(values.dir!, T);
  const only = values.only?.split(',');
  const MB = (b: number) => Math.round(b / 2 ** 20);
  const rows: Record<string, unknown>[] = [];
  console.log(`| shape | window | weights MB | estimate MB | measured peak RSS MB | after load MB | estimate / measured |`);
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const shape of realShapes().filter((s) => (only ? only.includes(s.name) || only.includes(s.family) : CALIBRATED.includes(s.name)))) {
    const dir = await ensureCheckpoint(shape, { data: true });
    const r = await runWorker(dir, T);
    const ratio = r.plan.total / r.peak;
    rows.push({ shape: shape.name, T, window: r.window, plan: r.plan, peak: r.peak, afterLoad: r.afterLoad, ratio });
    console.log(`| ${shape.name} | ${r.window} | ${MB(r.plan.weights)} | ${MB(r.plan.total)} | ${MB(r.peak)} | ${MB(r.afterLoad)} | ${ratio.toFixed(2)} |`);
    console.log(`  plan: ${Object.entries(r.plan).map(([k, v]) => `${k} ${MB(v)}`).join(', ')}`);
  }
  writeFileSync(join('.bench', 'memoryPlan.json'), JSON.stringify(rows, null, 2));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
