/**
 * A plain forward pass of the same network the engine builds: only [T, V] logits, no attention maps, caches or
 * top-k kept (the graph builder's logits-only options). The benchmark's baseline, and the tests' way to read logits
 * under a head mask. `past` > 0 runs only ids[past..] on a cache of zeros (the same work as a real cache).
 */
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Weight } from '../extension/engine/graph/gpt2Graph';
import { buildGpt2Graph } from '../extension/engine/graph/gpt2Graph';
import { ModelSession } from '../extension/engine/graph/session';
import { GraphRunner } from '../extension/engine/analyses/graphRunner';
import { KvCache } from '../extension/engine/analyses/kvCache';
import type { Gpt2Config, Gpt2Weights } from '../extension/engine/model/checkpointTypes';
import { modelDims } from '../extension/engine/model/dims';
import { openCheckpoint } from '../extension/engine/model/checkpoint';

export class PlainForward {
  /** Keys and values of zeros, per layer [H, n_positions, D], allocated once: a fresh 75 MB one per call would be
   * timed with the step it stands under. */
  private zeros: KvCache | undefined;

  private constructor(private readonly runner: GraphRunner) {}

  static async create(config: Gpt2Config, weights: Gpt2Weights<Weight>, threads = 1): Promise<PlainForward> {
    const graph = await buildGpt2Graph(config, weights, { attention: 'none', analysis: false, logits: true });
    const session = await ModelSession.create(graph.bytes, { threads });
    return new PlainForward(new GraphRunner(modelDims(config), session, new Set(graph.inputs)));
  }

  /**
   * From a checkpoint folder, with the weights as external data that onnxruntime maps, as the engine loads them
   * (Gpt2Engine.create), so that both processes' memory compares.
   */
  static async load(dir: string, threads = 2): Promise<PlainForward> {
    const { config, weights, close } = await openCheckpoint(dir);
    const scratch = await fsp.mkdtemp(join(tmpdir(), 'headlight-plain-'));
    try {
      const graph = await buildGpt2Graph(config, weights, { attention: 'none', analysis: false, logits: true, externalDir: scratch });
      await fsp.writeFile(join(scratch, 'model.onnx'), graph.bytes);
      const session = await ModelSession.create(join(scratch, 'model.onnx'), { threads });
      return new PlainForward(new GraphRunner(modelDims(config), session, new Set(graph.inputs)));
    } finally {
      await close();
      await fsp.rm(scratch, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** [T − past, V] logits of ids[past..]; heads with 0 in `mask` [L, H] output `means` [L, H, D] (zeros default). */
  async logits(ids: number[], opts: { past?: number; mask?: ArrayLike<number>; means?: Float32Array } = {}): Promise<Float32Array> {
    const dims = this.runner.dims;
    const past = opts.past ?? 0;
    let cache = new KvCache(dims);
    if (past > 0) {
      if (!this.zeros) {
        this.zeros = new KvCache(dims);
        for (let l = 0; l < dims.nLayer; l++) {
          const z = new Float32Array(dims.nHead * dims.nPositions * dims.headDim); // [H, n_positions, D]
          this.zeros.keys.push(z);
          this.zeros.values.push(z);
        }
      }
      cache = this.zeros;
    }
    const ablation = opts.mask && { mask: Float32Array.from(opts.mask), means: opts.means ?? new Float32Array(dims.nLayer * dims.nHead * dims.headDim) };
    const { feeds } = this.runner.feeds(cache, ids, past, ids.length, ablation);
    return (await this.runner.run(feeds, ['logits'])).logits.data as Float32Array;
  }

  dispose(): Promise<void> {
    return this.runner.release();
  }
}
