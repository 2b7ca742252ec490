/** Loads a checkpoint folder into a ready engine: weights -> ONNX graph -> onnxruntime session, plus tokenizer. */
import { openCheckpoint, type Checkpoint } from './model/checkpoint';
import { loadTokenizer } from './tokenizer/gpt2Tokenizer';
import { Gpt2Engine, type EngineOptions, type TextTokenizer } from './analyses/engine';

export interface LoadedModel {
  engine: Gpt2Engine;
  checkpoint: Omit<Checkpoint, 'weights'>;
  loadMs: number;
}

/** `tokenizer`: wraps the folder's tokenizer (e.g. tests and benchmarks that feed token ids as text). */
export async function loadEngine(dir: string, opts: EngineOptions & { signal?: AbortSignal; tokenizer?: (folder: TextTokenizer) => TextTokenizer } = {}): Promise<LoadedModel> {
  const t0 = performance.now();
  const [checkpoint, tokenizer] = await Promise.all([openCheckpoint(dir, { signal: opts.signal }), loadTokenizer(dir)]);
  const { weights, close, ...rest } = checkpoint;
  try {
    // Weights go from the file straight into the ONNX model's bytes, then into onnxruntime.
    const engine = await Gpt2Engine.create(checkpoint.config, weights, opts.tokenizer ? opts.tokenizer(tokenizer) : tokenizer, opts);
    return { engine, checkpoint: rest, loadMs: performance.now() - t0 };
  } finally {
    await close();
  }
}
