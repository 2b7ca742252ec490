/**
 * The readout of a loaded model, opened when a lens or attribution is first asked for: the checkpoint is opened
 * again (headers only), its family's `Readout` gives the final norm, the unembedding and each layer's output
 * projection; the lens head graph (graph/lensGraph.ts) gets the final norm and the unembedding, and the small
 * weights attribution multiplies in JavaScript (final norm, output projections, their biases, post-attention norms)
 * are read into memory. Nothing of this exists while no lens is open, so the normal run pays nothing.
 */
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadlightError } from '../../common/errors';
import type { ReadoutNorm } from '../families/family';
import { openModel } from '../families/registry';
import type { Weight } from '../graph/gpt2Graph';
import { appliedWeight, buildLensGraph, LENS_TOP_K } from '../graph/lensGraph';
import { f32, i64, ModelSession, type SessionOptions } from '../graph/session';
import type { ModelDims } from '../model/dims';

/** Rows per lens-head run: one [R, V] block of logits alive at a time (GPT-2: 256 × 50,257 × 4 B = 51 MB). */
export const LENS_ROW_BLOCK = 256;

/** A norm with its weight as applied (1 + w for Gemma) and its bias, in memory. */
export interface NormWeights {
  kind: 'layer' | 'rms';
  weight: Float32Array; // [E]
  bias?: Float32Array; // [E]
  eps: number;
}

/** One layer's attention output weights: W_O as [H·D, E] rows per head input (transposed from torch's layout). */
export interface LayerReadout {
  /** [H·D, E]: row h·D + d is what component d of head h adds to the residual stream. */
  oProj: Float32Array;
  oBias?: Float32Array; // [E]
  postAttnNorm?: NormWeights;
}

export interface LensAnswer {
  logprob: Float32Array; // [R]
  topLogprob: Float32Array; // [R, K]
  topIds: Int32Array; // [R, K]
}

async function read(w: Weight): Promise<Float32Array> {
  if (w instanceof Float32Array) return w;
  const bytes = new Uint8Array(w.byteLength);
  await w.write(bytes);
  return new Float32Array(bytes.buffer);
}

async function readNorm(n: ReadoutNorm): Promise<NormWeights> {
  return { kind: n.kind, weight: appliedWeight(n, await read(n.weight)), bias: n.bias && (await read(n.bias)), eps: n.eps };
}

/** [E, H·D] (torch Linear) -> [H·D, E]; a Conv1D [H·D, E] is already so. */
function rowsPerInput(w: Float32Array, layout: 'out_in' | 'in_out', E: number, HD: number): Float32Array {
  if (layout === 'in_out') return w;
  const out = new Float32Array(HD * E);
  for (let e = 0; e < E; e++) for (let i = 0; i < HD; i++) out[i * E + e] = w[e * HD + i];
  return out;
}

export class ReadoutHead {
  private constructor(
    private readonly session: ModelSession,
    readonly dims: ModelDims,
    readonly finalNorm: NormWeights,
    readonly finalSoftcap: number | null,
    readonly layers: LayerReadout[],
  ) {}

  /** Opens `dir` (the loaded model's folder) again and builds the lens head. */
  static async open(dir: string, dims: ModelDims, opts: SessionOptions = {}): Promise<ReadoutHead> {
    const opened = await openModel(dir, { maxWindow: dims.nPositions });
    const scratch = await fsp.mkdtemp(join(tmpdir(), 'headlight-lens-'));
    try {
      const { model } = opened;
      const readout = model.readout;
      if (!readout) {
        throw new HeadlightError('lens-unsupported', `The logit lens does not know model_type ${model.modelType} yet.`, 'Use a model of another family for the lens and attribution.');
      }
      const m = model.dims;
      if (m.nLayer !== dims.nLayer || m.nEmbd !== dims.nEmbd || m.vocabSize !== dims.vocabSize || m.nHead !== dims.nHead || m.headDim !== dims.headDim) {
        throw new HeadlightError('lens-model-changed', `${dir}: the checkpoint on disk no longer matches the loaded model.`, 'Load the model again.');
      }
      const { nEmbd: E, nHead: H, headDim: D } = dims;
      const finalNorm = await readNorm(readout.finalNorm);
      const layers: LayerReadout[] = [];
      for (const l of readout.layers) {
        layers.push({
          oProj: rowsPerInput(await read(l.oProj), l.oProjLayout, E, H * D),
          oBias: l.oBias && (await read(l.oBias)),
          postAttnNorm: l.postAttnNorm && (await readNorm(l.postAttnNorm)),
        });
      }
      // The unembedding goes to onnxruntime as external data (mapped, not copied through a protobuf; no 2 GB limit).
      const graph = await buildLensGraph(readout, { weight: await read(readout.finalNorm.weight), bias: readout.finalNorm.bias && (await read(readout.finalNorm.bias)) }, dims, scratch);
      await fsp.writeFile(join(scratch, 'lens.onnx'), graph.bytes);
      const session = await ModelSession.create(join(scratch, 'lens.onnx'), opts);
      return new ReadoutHead(session, dims, finalNorm, readout.finalSoftcap, layers);
    } finally {
      await opened.close();
      await fsp.rm(scratch, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** Residual rows [R, E] through the final norm and unembedding, in blocks of LENS_ROW_BLOCK rows. */
  async lens(rows: Float32Array, targets: ArrayLike<number>): Promise<LensAnswer> {
    const E = this.dims.nEmbd;
    const R = targets.length;
    const K = LENS_TOP_K;
    const out: LensAnswer = { logprob: new Float32Array(R), topLogprob: new Float32Array(R * K), topIds: new Int32Array(R * K) };
    for (let a = 0; a < R; a += LENS_ROW_BLOCK) {
      const n = Math.min(LENS_ROW_BLOCK, R - a);
      const got = await this.session.run(
        {
          rows: f32(rows.subarray(a * E, (a + n) * E), [n, E]),
          targets: i64(Array.from({ length: n }, (_, r) => targets[a + r]), [n, 1]),
          unembed_ids: i64([], [0]),
        },
        ['logprob', 'top_logprob', 'top_ids'],
      );
      out.logprob.set(got.logprob.data as Float32Array, a);
      out.topLogprob.set(got.top_logprob.data as Float32Array, a * K);
      const ids = got.top_ids.data as BigInt64Array;
      for (let i = 0; i < n * K; i++) out.topIds[a * K + i] = Number(ids[i]);
    }
    return out;
  }

  /** W_U[ids], [N, E]. */
  async unembedRows(ids: number[]): Promise<Float32Array> {
    const E = this.dims.nEmbd;
    const got = await this.session.run({ rows: f32(new Float32Array(0), [0, E]), targets: i64([], [0, 1]), unembed_ids: i64(ids, [ids.length]) }, ['unembed_rows']);
    return got.unembed_rows.data as Float32Array;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
