/**
 * The model picker's memory estimates (extension/host/pickerItems.ts over extension/hub/modelMemory.ts):
 *
 * - the host's reading of a folder (config.json + safetensors headers, no engine code) gives the same plan as the
 *   engine's own (openModel: its family parsing and checked tensor list) for a checkpoint of every family, buffers the
 *   engine does not read included in the files;
 * - a known model's facts (knownModels.ts) give the same plan as the engine for the real shape bench/shapes.ts writes;
 * - the picker's descriptions: a known model, a local folder, an unreadable folder, the too-big marking under a small
 *   budget, and a folder whose headers do not come in time.
 *
 * Checkpoints of real sizes are written as headers over a hole (a sparse file): nothing is read past the header.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { planMemory, type MemoryPlan, type PlanDims, type PlannedTensor } from '../../extension/common/memoryPlan';
import { openModel } from '../../extension/engine/families/registry';
import { knownModel, KNOWN_MODELS, type KnownModel } from '../../extension/hub/knownModels';
import { knownShape, readModelShape, type ModelShape } from '../../extension/hub/modelMemory';
import { formatBytes } from '../../extension/hub/modelStore';
import { ESTIMATING, estimateText, fillEstimates, formatMemory, memoryContext, pickerEntries, type MemoryContext, type PickerEntry } from '../../extension/host/pickerItems';
import { realShapes, tinyShapes } from '../../bench/shapes';
import { llamaSpec, neoxSpec } from '../fixtures/hfCheckpoint';
import { encodeHeader } from '../fixtures/safetensorsWriter';
import { gemma3Spec } from '../reference/families/gemma';
import { writeFamilyCheckpoint } from '../engine/familyCheckpoint';

const root = mkdtempSync(join(tmpdir(), 'headlight-picker-'));
after(() => rmSync(root, { recursive: true, force: true }));
const GPT2_TOKENIZER = join(__dirname, '../fixtures/gpt2-tokenizer/tokenizer.json');
const GB = 2 ** 30;
const MB = 2 ** 20;

interface FileTensor {
  key: string;
  shape: number[];
  /** Default: the checkpoint's dtype. */
  dtype?: 'F32' | 'BF16' | 'BOOL';
}

/** config.json, a tokenizer and a model.safetensors of the right size whose data is a hole (or, with `shards`, N files and the index). */
async function writeSparse(dir: string, config: object, tensors: FileTensor[], dtype: 'F32' | 'BF16', shards = 1): Promise<string> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, torch_dtype: dtype === 'F32' ? 'float32' : 'bfloat16' }));
  copyFileSync(GPT2_TOKENIZER, join(dir, 'tokenizer.json'));
  const per = Math.ceil(tensors.length / shards);
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = shards === 1 ? 'model.safetensors' : `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    let offset = 0;
    for (const t of tensors.slice(s * per, (s + 1) * per)) {
      const d = t.dtype ?? dtype;
      const bytes = t.shape.reduce((a, n) => a * n, 1) * (d === 'F32' ? 4 : d === 'BF16' ? 2 : 1);
      header[t.key] = { dtype: d, shape: t.shape, data_offsets: [offset, offset + bytes] };
      weightMap[t.key] = file;
      offset += bytes;
    }
    const h = encodeHeader(header);
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(h.length));
    const path = join(dir, file);
    await fsp.writeFile(path, Buffer.concat([prefix, h]));
    await fsp.truncate(path, 8 + h.length + offset); // a hole: nothing written, nothing to read
  }
  if (shards > 1) writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return dir;
}

/** The engine's plan input for a folder: its family's dims and the tensors it reads, and its window cap. */
async function engineShape(dir: string): Promise<{ dims: PlanDims; tensors: PlannedTensor[]; nPositions: number }> {
  const opened = await openModel(dir, { maxWindow: 1 << 30 });
  await opened.close();
  return { dims: opened.model.dims, tensors: opened.tensors, nPositions: opened.model.dims.nPositions };
}

const planOf = (s: { dims: PlanDims; tensors: PlannedTensor[] }, window: number): MemoryPlan => planMemory({ dims: s.dims, tensors: s.tensors, window });

/** Hugging Face's GPT-2 file layout (Conv1D weights in x out), with the mask buffers and a stored copy of the tied head. */
function gpt2FileTensors(L: number, E: number, V: number, P: number): FileTensor[] {
  const t: FileTensor[] = [{ key: 'wte.weight', shape: [V, E] }, { key: 'wpe.weight', shape: [P, E] }];
  for (let l = 0; l < L; l++) {
    const h = `h.${l}.`;
    t.push({ key: `${h}ln_1.weight`, shape: [E] }, { key: `${h}ln_1.bias`, shape: [E] });
    t.push({ key: `${h}attn.bias`, shape: [1, 1, P, P] }, { key: `${h}attn.masked_bias`, shape: [] });
    t.push({ key: `${h}attn.c_attn.weight`, shape: [E, 3 * E] }, { key: `${h}attn.c_attn.bias`, shape: [3 * E] });
    t.push({ key: `${h}attn.c_proj.weight`, shape: [E, E] }, { key: `${h}attn.c_proj.bias`, shape: [E] });
    t.push({ key: `${h}ln_2.weight`, shape: [E] }, { key: `${h}ln_2.bias`, shape: [E] });
    t.push({ key: `${h}mlp.c_fc.weight`, shape: [E, 4 * E] }, { key: `${h}mlp.c_fc.bias`, shape: [4 * E] });
    t.push({ key: `${h}mlp.c_proj.weight`, shape: [4 * E, E] }, { key: `${h}mlp.c_proj.bias`, shape: [E] });
  }
  t.push({ key: 'ln_f.weight', shape: [E] }, { key: 'ln_f.bias', shape: [E] }, { key: 'lm_head.weight', shape: [V, E] });
  return t;
}

const GPT2_CONFIG = (L: number, H: number, E: number, P: number, V = 50257) => ({ model_type: 'gpt2', n_layer: L, n_head: H, n_embd: E, n_positions: P, n_ctx: P, vocab_size: V, layer_norm_epsilon: 1e-5, activation_function: 'gelu_new' });

/** bench/shapes.ts's real shapes with the known model of the same facts. */
const SAME_FACTS: Record<string, string> = {
  gpt2: 'gpt2',
  smollm2: 'HuggingFaceTB/SmolLM2-135M',
  pythia: 'EleutherAI/pythia-160m',
  qwen2: 'Qwen/Qwen2.5-0.5B',
  gemma3: 'google/gemma-3-270m',
  gemma2: 'google/gemma-2-2b',
  neo: 'roneneldan/TinyStories-33M',
};

/** The real shapes written as sparse checkpoints once (GPT-2 small in the Hub's layout, the others as bench/shapes.ts). */
const realDirs = new Map<string, Promise<string>>();
function realDir(name: string): Promise<string> {
  if (!realDirs.has(name)) {
    const shape = realShapes().find((s) => s.name === name)!;
    const dir = join(root, `real-${name}`);
    realDirs.set(
      name,
      shape.gpt2
        ? writeSparse(dir, GPT2_CONFIG(12, 12, 768, 1024), gpt2FileTensors(12, 768, 50257, 1024), 'F32')
        : writeSparse(dir, shape.spec!.config, shape.spec!.tensors.map((t) => ({ key: t.key, shape: t.shape, dtype: t.rawDtype })), shape.dtype),
    );
  }
  return realDirs.get(name)!;
}

describe('the host reads a folder as the engine does', () => {
  const cases: { name: string; write: (dir: string) => Promise<string> }[] = [
    { name: 'gpt2 (mask buffers, stored tied head)', write: (dir) => writeSparse(dir, GPT2_CONFIG(3, 4, 64, 256, 1000), gpt2FileTensors(3, 64, 1000, 256), 'F32') },
    ...tinyShapes()
      .filter((s) => s.spec)
      .map((s) => ({ name: s.name, write: (dir: string) => writeSparse(dir, s.spec!.config, s.spec!.tensors.map((t) => ({ key: t.key, shape: t.shape, dtype: t.rawDtype })), s.dtype) })),
    {
      name: 'llama, tied, with a stored lm_head copy and rotary buffers, in 3 shards',
      write: (dir) => {
        const spec = llamaSpec({ modelType: 'llama', layers: 2, hidden: 64, heads: 4, kvHeads: 2, intermediate: 128, vocab: 1000, tie: true, maxPositions: 4096 });
        const extra = [{ key: 'lm_head.weight', shape: [1000, 64] }, { key: 'model.layers.0.self_attn.rotary_emb.inv_freq', shape: [8] }];
        return writeSparse(dir, spec.config, [...spec.tensors.map((t) => ({ key: t.key, shape: t.shape })), ...extra], 'BF16', 3);
      },
    },
    {
      name: 'gpt_neox untied, with mask and rotary buffers',
      write: (dir) => {
        const spec = neoxSpec({ layers: 2, hidden: 64, heads: 4, intermediate: 128, vocab: 1000, rotaryPct: 0.25, maxPositions: 512 });
        const extra: FileTensor[] = [0, 1].flatMap((l) => [
          { key: `gpt_neox.layers.${l}.attention.bias`, shape: [1, 1, 512, 512], dtype: 'BOOL' as const },
          { key: `gpt_neox.layers.${l}.attention.masked_bias`, shape: [] },
          { key: `gpt_neox.layers.${l}.attention.rotary_emb.inv_freq`, shape: [4] },
        ]);
        return writeSparse(dir, spec.config, [...spec.tensors.map((t) => ({ key: t.key, shape: t.shape, dtype: t.rawDtype })), ...extra], 'F32');
      },
    },
    {
      name: 'gemma3 multimodal (text_config, a vision tower)',
      write: (dir) => {
        const spec = gemma3Spec({ layers: 2, hidden: 64, heads: 4, kvHeads: 1, headDim: 16, intermediate: 128, vocab: 1024, slidingWindow: 32, maxPositions: 2048, multimodal: true });
        const vision = [{ key: 'model.vision_tower.vision_model.embeddings.patch_embedding.weight', shape: [64, 3, 14, 14] }, { key: 'model.multi_modal_projector.mm_input_projection_weight', shape: [64, 64] }];
        return writeSparse(dir, spec.config, [...spec.tensors.map((t) => ({ key: t.key, shape: t.shape })), ...vision], 'BF16');
      },
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const dir = await c.write(join(root, `same-${c.name.split(' ')[0]}-${cases.indexOf(c)}`));
      const host = await readModelShape(dir);
      const engine = await engineShape(dir);
      assert.deepEqual(host.dims, { nLayer: engine.dims.nLayer, nHead: engine.dims.nHead, nKvHead: engine.dims.nKvHead, headDim: engine.dims.headDim, nEmbd: engine.dims.nEmbd, vocabSize: engine.dims.vocabSize });
      assert.equal(host.context, engine.nPositions, 'the window cap');
      assert.deepEqual(host.tensors.map((t) => t.name).sort(), engine.tensors.map((t) => t.name).sort(), 'the tensors the engine reads');
      for (const window of [64, Math.min(1024, host.context)]) assert.deepEqual(planOf(host, window), planOf(engine, window), `plan at ${window}`);
    });
  }
});

describe('a known model not yet downloaded', () => {
  for (const [name, id] of Object.entries(SAME_FACTS)) {
    it(`${id}: its facts give the engine's plan for bench/shapes.ts's ${name} shape`, async () => {
      const k = knownModel(id)!;
      const engine = await engineShape(await realDir(name));
      const known = knownShape(k);
      assert.equal(known.context, engine.nPositions);
      assert.equal(known.fixedWindow, name === 'gpt2');
      for (const window of [64, 1024, Math.min(4096, known.context)]) assert.deepEqual(planOf(known, window), planOf(engine, window), `plan at ${window}`);
    });
  }

  it('every known model has facts the plan can use', () => {
    for (const k of KNOWN_MODELS) {
      const total = planOf(knownShape(k), Math.min(1024, k.context)).total;
      assert.ok(Number.isFinite(total) && total > k.weightsBytes, `${k.repoId}: ${total}`);
    }
  });
});

const roomy: MemoryContext = { windowTokens: 1024, budgetBytes: 1024 * GB, budgetLabel: 'test' };
const entriesFor = (current: string, memory: MemoryContext, known: readonly KnownModel[] = KNOWN_MODELS) =>
  pickerEntries({ current, bundledDir: join(root, 'no-bundled-model'), cached: [], known, memory, formatBytes });

async function filled(entries: PickerEntry[], memory: MemoryContext, opts?: Parameters<typeof fillEstimates>[3]): Promise<PickerEntry[]> {
  const updated: PickerEntry[] = [];
  await fillEstimates(entries, memory, (e) => updated.push(e), opts);
  return updated;
}

describe('the picker items', () => {
  it("a known model: its description gives the engine's estimate for the configured window", async () => {
    const engine = await engineShape(await realDir('smollm2'));
    for (const windowTokens of [1024, 4096]) {
      const entry = entriesFor('bundled', { ...roomy, windowTokens }).find((e) => e.label.includes('HuggingFaceTB/SmolLM2-135M'))!;
      const expected = `≈ ${formatMemory(planOf(engine, windowTokens).total)} at ${windowTokens.toLocaleString('en-US')} tokens`;
      assert.equal(entry.description, `Llama (SmolLM2) · ${expected} · download ≈${formatBytes(knownModel('HuggingFaceTB/SmolLM2-135M')!.weightsBytes)} · 30 layers × 9 heads (3 KV)`);
    }
    // GPT-2's window is its context whatever the setting; a window longer than a model's context is cut to it.
    const gpt2 = entriesFor('bundled', { ...roomy, windowTokens: 256 }).find((e) => e.label.endsWith(' openai-community/gpt2'))!;
    assert.match(gpt2.description!, /^GPT-2 · ≈ [\d.,]+ (GB|MB) at 1,024 tokens · download /);
    const pythia = entriesFor('bundled', { ...roomy, windowTokens: 8192 }).find((e) => e.label.endsWith(' EleutherAI/pythia-160m'))!;
    assert.match(pythia.description!, /^GPT-NeoX \(Pythia\) · ≈ [\d.,]+ (GB|MB) at 2,048 tokens · /);
  });

  it('a local folder: estimating at once, then its estimate from its headers', async () => {
    const dir = join(root, 'local-llama');
    await writeFamilyCheckpoint(dir, llamaSpec({ modelType: 'llama', layers: 2, hidden: 64, heads: 4, kvHeads: 2, intermediate: 128, vocab: 50257, maxPositions: 512 }), { seed: 3 });
    const memory = { ...roomy, windowTokens: 1024 };
    const entries = entriesFor(dir, memory);
    const local = entries.find((e) => e.detail === dir)!;
    assert.equal(local.label, '$(check) local-llama');
    assert.deepEqual(local.action, { kind: 'use', ref: dir });
    assert.equal(local.description, `local folder · ${ESTIMATING}`, 'the picker opens before any header is read');
    const updated = await filled(entries, memory);
    assert.ok(updated.includes(local));
    const engine = await engineShape(dir);
    assert.equal(local.description, `local folder · ≈ ${formatMemory(planOf(engine, 512).total)} at 512 tokens`, 'the window is the folder context (512), under the setting');

    // The same folder as a Hugging Face cache snapshot: listed under Downloaded, its size on disk after the estimate.
    const gpt2 = knownModel('gpt2')!;
    const cached = [{ repoId: 'gpt2', folder: root, sizeBytes: 123_456_789, refs: {}, snapshots: [], lastModifiedMs: 0, loadableDir: dir, known: gpt2 }];
    const withCache = pickerEntries({ current: 'gpt2', bundledDir: join(root, 'no-bundled-model'), cached, known: KNOWN_MODELS, memory, formatBytes });
    const row = withCache.find((e) => e.detail === dir)!;
    assert.equal(row.label, '$(check) gpt2');
    assert.equal(row.description, `GPT-2 · ${ESTIMATING} · 123.5 MB on disk`);
    assert.ok(!withCache.some((e) => e.action?.kind === 'download' && e.action.repoId === gpt2.repoId), 'not offered for download again');
    await filled(withCache, memory);
    assert.equal(row.description, `GPT-2 · ≈ ${formatMemory(planOf(engine, 512).total)} at 512 tokens · 123.5 MB on disk`);
  });

  it('an unreadable folder: "estimate unavailable" with the reason, no crash', async () => {
    const missing = join(root, 'gone');
    const broken = join(root, 'broken-header');
    await writeSparse(broken, GPT2_CONFIG(1, 2, 8, 16, 10), gpt2FileTensors(1, 8, 10, 16), 'F32');
    const weights = join(broken, 'model.safetensors');
    const bytes = await fsp.readFile(weights);
    bytes.writeBigUInt64LE(BigInt(bytes.length * 2), 0); // a header length past the file's end
    await fsp.writeFile(weights, bytes);
    const unsupported = join(root, 'unsupported');
    await writeSparse(unsupported, { model_type: 'bert', hidden_size: 8 }, [{ key: 'x', shape: [2, 2] }], 'F32');
    const reasons: Record<string, RegExp> = {
      [missing]: /^local folder · estimate unavailable: config\.json in gone: not found\.$/,
      [broken]: /^local folder · estimate unavailable: model\.safetensors: the header says it is \d+ bytes long but the file has only \d+ bytes after the length field/,
      [unsupported]: /^local folder · estimate unavailable: config\.json: model_type is "bert"; Headlight runs gpt2, llama/,
    };
    for (const [dir, reason] of Object.entries(reasons)) {
      const entries = entriesFor(dir, roomy, []);
      await filled(entries, roomy);
      assert.match(entries.find((e) => e.detail === dir)!.description!, reason);
      assert.match(entries[0].description!, /^bundled, works offline · estimate unavailable: config\.json in no-bundled-model: not found\.$/);
    }
  });

  it('too big: marked with what it needs and the budget, and what the engine will do instead', () => {
    const available = { bytes: 3.2 * GB, source: 'test' };
    const gemma2 = knownModel('google/gemma-2-2b')!;
    const needs = planOf(knownShape(gemma2), 1024).total;
    const auto = memoryContext(1024, 0, available);
    assert.equal(auto.budgetBytes, Math.floor(0.8 * available.bytes));
    const entry = entriesFor('bundled', auto).find((e) => e.label.includes('google/gemma-2-2b'))!;
    assert.ok(entry.description!.startsWith(`Gemma 2 · $(warning) needs ${formatMemory(needs)} at 1,024 tokens, 3.2 GB free, 80% of it planned: too big to load · download `), entry.description);

    // A rotary model over a budget set between its 64- and 1,024-token plans runs a shorter window; GPT-2 cannot.
    const smol = knownShape(knownModel('HuggingFaceTB/SmolLM2-135M')!);
    const budgetMB = Math.floor((planOf(smol, 256).total + planOf(smol, 320).total) / 2 / MB);
    const set = memoryContext(1024, budgetMB, { bytes: 64 * GB, source: 'test' });
    assert.equal(set.budgetBytes, budgetMB * MB);
    const text = estimateText(smol, set);
    assert.match(text, new RegExp(`^\\$\\(warning\\) needs ${formatMemory(planOf(smol, 1024).total).replace('.', '\\.')} at 1,024 tokens, budget [\\d,.]+ (MB|GB) \\(headlight\\.memoryBudgetMB\\): runs at 256 tokens \\(≈ [\\d,.]+ (MB|GB)\\)$`));
    const gpt2 = knownShape(knownModel('gpt2')!);
    const small = memoryContext(1024, Math.floor(planOf(gpt2, 1024).total / MB) - 1, { bytes: 64 * GB, source: 'test' });
    assert.match(estimateText(gpt2, small), /^\$\(warning\) needs .* at 1,024 tokens, budget .*: too big to load$/);
    assert.match(estimateText(gpt2, memoryContext(1024, Math.ceil(planOf(gpt2, 1024).total / MB), { bytes: 64 * GB, source: 'test' })), /^≈ /, 'just enough fits');

    // A budget over what is free: the engine plans with what is free.
    const over = memoryContext(1024, 100_000, available);
    assert.equal(over.budgetBytes, available.bytes);
    assert.equal(over.budgetLabel, '3.2 GB free');
  });

  it('folders are read once each, in parallel, and one that hangs says so after the time limit', async () => {
    const calls: string[] = [];
    let inFlight = 0;
    let most = 0;
    const entries: PickerEntry[] = ['a', 'b', 'a', 'c'].map((dir) => ({ label: dir, description: ESTIMATING, estimateOf: { dir, prefix: `${dir} · `, suffix: ' · on disk' } }));
    const read = async (dir: string): Promise<ModelShape> => {
      calls.push(dir);
      most = Math.max(most, ++inFlight);
      if (dir === 'c') return new Promise<never>(() => undefined); // never answers
      await new Promise((r) => setTimeout(r, 20));
      inFlight--;
      return knownShape(knownModel('distilgpt2')!);
    };
    const t0 = performance.now();
    const updated = await filled(entries, roomy, { read, timeoutMs: 200 });
    const ms = performance.now() - t0;
    assert.deepEqual(calls.sort(), ['a', 'b', 'c'], 'each folder once');
    assert.equal(most, 3, 'all at once');
    assert.equal(updated.length, 4);
    assert.ok(ms < 2000, `${ms} ms`);
    assert.match(entries[0].description!, /^a · ≈ [\d.,]+ (MB|GB) at 1,024 tokens · on disk$/);
    assert.equal(entries[2].description, entries[0].description);
    assert.equal(entries[3].description, 'c · estimate unavailable: reading the headers took over 0.2 s · on disk');
  });
});
