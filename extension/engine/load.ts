/**
 * Loads a checkpoint folder into a ready engine: config and tensor headers -> memory plan (the window that fits, or a
 * refusal before any weight is read) -> weights -> ONNX graph -> onnxruntime session, plus tokenizer.
 */
import { basename } from 'node:path';
import { openModel, type OpenModel } from './families/registry';
import type { LoadOptions } from './families/family';
import { availableMemory, checkPlan, memoryBudget, type MemoryPlan } from './model/memoryPlan';
import { loadTokenizer } from './tokenizer/gpt2Tokenizer';
import { Gpt2Engine, type EngineOptions, type TextTokenizer } from './analyses/engine';

/** The longest window the engine chooses on its own, whatever the model's context (attention grows with T²). */
export const MAX_WINDOW = 8192;

export interface LoadedModel {
  engine: Gpt2Engine;
  checkpoint: Omit<OpenModel, 'model' | 'close' | 'tensors'> & { dir: string; modelType: string };
  /** The plan the window was chosen by: its estimate, the budget, and what limited the window. */
  memory: {
    plan: MemoryPlan;
    budgetBytes: number;
    budgetSource: string;
    /** `memory`: the window is shorter than the model's context (capped at maxWindow) because of the budget. */
    limitedBy: 'context' | 'memory';
  };
  loadMs: number;
}

export interface MemoryOptions {
  /** headlight.memoryBudgetMB: 0 or absent = 80% of the available memory. */
  memoryBudgetMB?: number;
  /** The budget in bytes with where it comes from, instead of reading the machine (tests). */
  budget?: { bytes: number; source: string };
}

/**
 * `tokenizer`: wraps the folder's tokenizer (e.g. tests and benchmarks that feed token ids as text). `maxWindow`:
 * the longest window for rotary families (min with max_position_embeddings; default MAX_WINDOW), shortened to what
 * fits the memory budget. A model that does not fit even a short window is refused before any weight is read.
 */
export async function loadEngine(
  dir: string,
  opts: EngineOptions & LoadOptions & MemoryOptions & { signal?: AbortSignal; tokenizer?: (folder: TextTokenizer) => TextTokenizer } = {},
): Promise<LoadedModel> {
  const t0 = performance.now();
  const cap = opts.maxWindow ?? MAX_WINDOW;
  const [first, tokenizer] = await Promise.all([openModel(dir, { signal: opts.signal, maxWindow: cap }), loadTokenizer(dir)]);
  let opened = first;
  let memory: LoadedModel['memory'];
  try {
    const budget = opts.budget ?? memoryBudget(opts.memoryBudgetMB, availableMemory());
    const dims = opened.model.dims;
    const { window, plan } = checkPlan(
      { dims, tensors: opened.tensors, precision: opts.precision },
      { maxWindow: dims.nPositions, budget, model: basename(dir), fixedWindow: opened.model.modelType === 'gpt2' },
    );
    memory = { plan, budgetBytes: budget.bytes, budgetSource: budget.source, limitedBy: window < dims.nPositions ? 'memory' : 'context' };
    if (window < dims.nPositions) {
      // Headers only so far: open again with the shorter window (the caches and graph are sized by it).
      await opened.close();
      opened = await openModel(dir, { signal: opts.signal, maxWindow: window });
    }
  } catch (err) {
    await opened.close();
    throw err;
  }
  const { model, close, tensors: _tensors, ...rest } = opened;
  try {
    // Weights go from the file straight into the ONNX model's bytes, then into onnxruntime.
    const engine = await Gpt2Engine.create(model, opts.tokenizer ? opts.tokenizer(tokenizer) : tokenizer, opts);
    return { engine, checkpoint: { dir, modelType: model.modelType, ...rest }, memory, loadMs: performance.now() - t0 };
  } finally {
    await close();
  }
}
