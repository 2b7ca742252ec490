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

  static async create(bytes: Uint8Array, opts: SessionOptions = {}): Promise<ModelSession> {
    const session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: opts.threads ?? 2,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      enableCpuMemArena: !process.env.HL_NOARENA,
      extra: process.env.HL_NOPREPACK ? { session: { disable_prepacking: '1' } } : {},
      executionProviders: ['cpu'],
    });
    return new ModelSession(session);
  }

  /** Runs the graph, computing only what `fetches` needs. */
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

export function i32(data: Int32Array, dims: number[]): ort.Tensor {
  return new ort.Tensor('int32', data, dims);
}

export function i64(values: ArrayLike<number>, dims: number[]): ort.Tensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
  return new ort.Tensor('int64', data, dims);
}
