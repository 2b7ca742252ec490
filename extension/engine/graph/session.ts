/** onnxruntime-node session for a built GPT-2 graph. The only module that imports onnxruntime. */
import * as ort from 'onnxruntime-node';

export interface SessionOptions {
  /** Intra-op threads; default: 2 (measured best on 2-core machines), at most the cores available. */
  threads?: number;
}

export type Feeds = Record<string, ort.Tensor>;
export type Fetched = Record<string, ort.Tensor>;

export class ModelSession {
  private constructor(private readonly session: ort.InferenceSession) {}

  /** From model bytes, or from a model file (whose external data lies beside it). */
  static async create(model: Uint8Array | string, opts: SessionOptions = {}): Promise<ModelSession> {
    const session = await ort.InferenceSession.create(model as string, {
      intraOpNumThreads: opts.threads ?? 2,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      // Measured on GPT-2 small at T=1024 (peak RSS of the engine process, with the allocator settings of
      // engineEnv): memory patterns on allocate the pattern's block beside the first run's chunks (3.1 GB), so they
      // stay off. The arena on reuses its chunks run after run (2.26 GB); off, every intermediate goes through
      // glibc, whose never-trimmed heap fragmented to 3.0 GB. HEADLIGHT_ORT_ARENA=0 turns it off.
      enableCpuMemArena: process.env.HEADLIGHT_ORT_ARENA !== '0',
      enableMemPattern: false,
      executionProviders: ['cpu'],
    });
    return new ModelSession(session);
  }

  /** Runs the graph and returns the `fetches` outputs (onnxruntime computes every node whatever is fetched; only
   * fetched outputs are copied out). */
  async run(feeds: Feeds, fetches: string[]): Promise<Fetched> {
    return (await this.session.run(feeds, fetches)) as Fetched;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

export function f32(data: Float32Array, dims: number[]): ort.Tensor {
  return new ort.Tensor('float32', data, dims);
}

export function i64(values: ArrayLike<number>, dims: number[]): ort.Tensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
  return new ort.Tensor('int64', data, dims);
}
