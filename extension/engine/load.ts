/** Loads a checkpoint folder into a ready engine: weights -> ONNX graph -> onnxruntime session, plus tokenizer. */
import { openModel, type OpenModel } from './families/registry';
import type { LoadOptions } from './families/family';
import { loadTokenizer } from './tokenizer/gpt2Tokenizer';
import { Gpt2Engine, type EngineOptions, type TextTokenizer } from './analyses/engine';

export interface LoadedModel {
  engine: Gpt2Engine;
  checkpoint: Omit<OpenModel, 'model' | 'close'> & { dir: string; modelType: string };
  loadMs: number;
}

/**
 * `tokenizer`: wraps the folder's tokenizer (e.g. tests and benchmarks that feed token ids as text). `maxWindow`:
 * the longest window for rotary families (min with max_position_embeddings; default 1024).
 */
export async function loadEngine(
  dir: string,
  opts: EngineOptions & LoadOptions & { signal?: AbortSignal; tokenizer?: (folder: TextTokenizer) => TextTokenizer } = {},
): Promise<LoadedModel> {
  const t0 = performance.now();
  const [opened, tokenizer] = await Promise.all([openModel(dir, { signal: opts.signal, maxWindow: opts.maxWindow }), loadTokenizer(dir)]);
  const { model, close, ...rest } = opened;
  try {
    // Weights go from the file straight into the ONNX model's bytes, then into onnxruntime.
    const engine = await Gpt2Engine.create(model, opts.tokenizer ? opts.tokenizer(tokenizer) : tokenizer, opts);
    return { engine, checkpoint: { dir, modelType: model.modelType, ...rest }, loadMs: performance.now() - t0 };
  } finally {
    await close();
  }
}
