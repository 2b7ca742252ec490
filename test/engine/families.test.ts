/**
 * The Llama family (llama, mistral, qwen2, qwen3) and GPT-NeoX against their float64 references
 * (test/reference/families/) on random tiny checkpoints in each family's real Hugging Face layout
 * (test/fixtures/hfCheckpoint.ts), fed token ids directly: every head's attention and the log-probabilities to 1e-4,
 * logits to 1e-3; incremental runs (append, edit in the middle) equal the reference of the new ids; ablating a query
 * head equals the reference's head mask; value norms equal a float64 ‖v_j·W_O^h‖ from the weights; Q·K breakdowns
 * read the right KV head and the un-rotated scores equal q·k of the projections.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { maxDiff } from '../reference/compare';
import { llamaForward } from '../reference/families/llama';
import { neoxForward } from '../reference/families/neox';
import { columns, layerNorm, linear, rmsNorm, type Matrix } from '../reference/families/blocks';
import type { RefConfig, RefWeights, ReferenceForward } from '../reference/families/types';
import { llamaSpec, neoxSpec, type CheckpointSpec, type HfCheckpoint, type WriteOptions } from '../fixtures/hfCheckpoint';
import { randomIds } from './familyCheckpoint';
import type { Gpt2Engine } from '../../extension/engine/analyses/engine';
import { idText } from './idTokens';
import { assertClose, assertMatches, headMaskWithout, loadFamilyCase } from './familyMatch';

const root = mkdtempSync(join(tmpdir(), 'headlight-families-'));
after(() => rmSync(root, { recursive: true, force: true }));

interface FamilyCase {
  name: string;
  spec: CheckpointSpec;
  write: WriteOptions;
  forward: ReferenceForward;
  /**
   * Query head h's projections in float64 from the residual stream entering layer l: q and k (of its KV head) before
   * the rotation, after any q/k norm, v, each [T, D], and the output-projection slice W_O^h as [E, D].
   */
  projections: (config: RefConfig, w: RefWeights, resid: Matrix, l: number, h: number) => Projections;
  T: number;
  /** A sliding window smaller than T is on some layer. */
  windowed?: boolean;
}

const tensor = (w: RefWeights, key: string) => w.get(key)!;
const asMatrix = (t: { shape: number[]; data: Float64Array }): Matrix => ({ rows: t.shape[0], cols: t.shape[1], data: t.data });

interface Projections {
  q: Matrix;
  k: Matrix;
  v: Matrix;
  wo: Matrix;
}

function llamaProjections(config: RefConfig, w: RefWeights, resid: Matrix, l: number, h: number): Projections {
  const H = config.num_attention_heads as number;
  const KVH = (config.num_key_value_heads as number) ?? H;
  const E = config.hidden_size as number;
  const D = (config.head_dim as number | undefined) ?? E / H;
  const p = `model.layers.${l}.`;
  const n = rmsNorm(resid, tensor(w, `${p}input_layernorm.weight`).data, config.rms_norm_eps as number); // [T, E]
  const project = (which: 'q' | 'k' | 'v', head: number) => {
    let x = columns(linear(n, tensor(w, `${p}self_attn.${which}_proj.weight`), w.get(`${p}self_attn.${which}_proj.bias`)), head * D, D); // [T, D]
    const norm = which !== 'v' && w.get(`${p}self_attn.${which}_norm.weight`);
    if (norm) x = rmsNorm(x, norm.data, config.rms_norm_eps as number); // qwen3
    return x;
  };
  const g = Math.floor(h / (H / KVH));
  return { q: project('q', h), k: project('k', g), v: project('v', g), wo: columns(asMatrix(tensor(w, `${p}self_attn.o_proj.weight`)), h * D, D) };
}

function neoxProjections(config: RefConfig, w: RefWeights, resid: Matrix, l: number, h: number): Projections {
  const H = config.num_attention_heads as number;
  const E = config.hidden_size as number;
  const D = E / H;
  const p = `gpt_neox.layers.${l}.`;
  const n = layerNorm(resid, tensor(w, `${p}input_layernorm.weight`).data, tensor(w, `${p}input_layernorm.bias`).data, config.layer_norm_eps as number); // [T, E]
  const qkv = linear(n, tensor(w, `${p}attention.query_key_value.weight`), w.get(`${p}attention.query_key_value.bias`)); // [T, 3E]
  const part = (k: number) => columns(qkv, h * 3 * D + k * D, D); // per head: [q_h | k_h | v_h]
  return { q: part(0), k: part(1), v: part(2), wo: columns(asMatrix(tensor(w, `${p}attention.dense.weight`)), h * D, D) };
}

/** ‖v_j·W_O^hᵀ‖ per position j, float64. v [T, D], wo [E, D] -> [T]. */
function valueNorms(v: Matrix, wo: Matrix): Float64Array {
  const out = new Float64Array(v.rows);
  for (let j = 0; j < v.rows; j++) {
    let sq = 0;
    for (let e = 0; e < wo.rows; e++) {
      let s = 0;
      for (let d = 0; d < v.cols; d++) s += v.data[j * v.cols + d] * wo.data[e * wo.cols + d];
      sq += s * s;
    }
    out[j] = Math.sqrt(sq);
  }
  return out;
}

const llama3Scaling = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 };

const FAMILY_CASES: FamilyCase[] = [
  {
    name: 'llama: GQA 4/2, llama3 rope scaling, attention and MLP biases, untied, F32',
    spec: llamaSpec({ modelType: 'llama', layers: 2, hidden: 32, heads: 4, kvHeads: 2, intermediate: 48, vocab: 320, ropeScaling: llama3Scaling, attentionBias: true, mlpBias: true, ropeTheta: 500 }),
    write: { seed: 11 },
    forward: llamaForward,
    projections: llamaProjections,
    T: 32,
  },
  {
    name: 'llama: MHA, tied, linear rope scaling in the v5 rope_parameters form, BF16 in 3 shards',
    spec: llamaSpec({ modelType: 'llama', layers: 2, hidden: 32, heads: 2, intermediate: 40, vocab: 300, tie: true, ropeScaling: { rope_type: 'linear', factor: 2 }, configForm: 'v5' }),
    write: { seed: 12, dtype: 'BF16', shards: 3 },
    forward: llamaForward,
    projections: llamaProjections,
    T: 24,
  },
  {
    name: 'mistral: sliding window 8 < T, GQA 4/1, explicit head_dim, F16',
    spec: llamaSpec({ modelType: 'mistral', layers: 2, hidden: 32, heads: 4, kvHeads: 1, headDim: 16, intermediate: 48, vocab: 256, slidingWindow: 8 }),
    write: { seed: 13, dtype: 'F16' },
    forward: llamaForward,
    projections: llamaProjections,
    T: 30,
    windowed: true,
  },
  {
    name: 'qwen2: q/k/v biases, GQA 4/2, tied, F32 in 2 shards',
    spec: llamaSpec({ modelType: 'qwen2', layers: 2, hidden: 48, heads: 4, kvHeads: 2, intermediate: 64, vocab: 400, tie: true }),
    write: { seed: 14, shards: 2 },
    forward: llamaForward,
    projections: llamaProjections,
    T: 28,
  },
  {
    name: 'qwen3: q_norm/k_norm before RoPE, head_dim 16 ≠ hidden/heads, GQA 4/2, BF16',
    spec: llamaSpec({ modelType: 'qwen3', layers: 2, hidden: 40, heads: 4, kvHeads: 2, headDim: 16, intermediate: 56, vocab: 512 }),
    write: { seed: 15, dtype: 'BF16' },
    forward: llamaForward,
    projections: llamaProjections,
    T: 36,
  },
  {
    name: 'gpt_neox: parallel residual, rotary_pct 0.25, stale buffers, F32',
    spec: neoxSpec({ layers: 2, hidden: 64, heads: 4, vocab: 300, rotaryPct: 0.25, useParallelResidual: true, buffers: true }),
    write: { seed: 16 },
    forward: neoxForward,
    projections: neoxProjections,
    T: 30,
  },
  {
    name: 'gpt_neox: sequential residual, v5 rope_parameters (partial_rotary_factor 0.5), F16 in 2 shards',
    spec: neoxSpec({ layers: 2, hidden: 32, heads: 2, vocab: 256, rotaryPct: 0.5, useParallelResidual: false, configForm: 'v5' }),
    write: { seed: 17, dtype: 'F16', shards: 2 },
    forward: neoxForward,
    projections: neoxProjections,
    T: 22,
  },
];

for (const c of FAMILY_CASES) {
  describe(`family vs reference — ${c.name}`, () => {
    let engine: Gpt2Engine;
    let ck: HfCheckpoint;
    let ids: number[];
    let L: number;
    let H: number;
    before(async () => {
      ({ ck, engine, L, H } = await loadFamilyCase(join(root, `ck-${c.write.seed}`), c.spec, c.write));
      ids = randomIds(c.write.seed, c.T, ck.config.vocab_size as number);
    });
    after(() => engine.dispose());

    test('attention of every head, log-probabilities and logits agree with the float64 reference', async () => {
      const run = await engine.analyze(idText(ids), { logits: true });
      const ref = c.forward(ck.config, ck.weights, ids);
      assertMatches(run, ref, L, H);
      // Far from uniform attention, so agreement is not trivial.
      const peak = Math.max(...run.row({ layer: 0, head: 0 }, ids.length - 1));
      assert.ok(peak > 3 / ids.length, `peak weight ${peak} is not far above uniform`);
      if (c.windowed) {
        const window = ck.config.sliding_window as number;
        const row = run.row({ layer: 1, head: 0 }, ids.length - 1);
        assert.equal(Math.max(...row.subarray(0, ids.length - window)), 0, 'keys outside the sliding window get weight 0');
      }
    });

    test('incremental updates (append, then an edit in the middle) equal the reference of the new ids', async () => {
      await engine.analyze(idText(ids.slice(0, ids.length - 7)));
      const appended = await engine.update(idText(ids));
      assert.ok(appended.stats.reused > 0, 'the prefix was reused');
      assertMatches(appended, c.forward(ck.config, ck.weights, ids), L, H, false);
      const edited = ids.slice();
      edited[Math.floor(ids.length / 2)] = (edited[Math.floor(ids.length / 2)] + 5) % (ck.config.vocab_size as number);
      const run = await engine.update(idText(edited));
      assert.equal(run.stats.reused, Math.floor(ids.length / 2) - 1);
      assertMatches(run, c.forward(ck.config, ck.weights, edited), L, H, false);
    });

    test('ablating a query head equals the reference with that head masked', async () => {
      const target = { layer: L - 1, head: H - 1 };
      const result = await engine.ablate({ heads: [target], mode: 'zero' }, idText(ids));
      const headMask = headMaskWithout(L, H, target);
      const ref = c.forward(ck.config, ck.weights, ids, { headMask });
      assertClose('ablated log-probabilities', result.logprobAfter, ref.logprobs, 1e-4);
      assertClose('plain log-probabilities', result.logprobBefore, c.forward(ck.config, ck.weights, ids).logprobs, 1e-4);
      assert.ok(Math.abs(result.lossDelta) > 1e-4, 'the ablation changed the loss');
    });

    test('value norms ‖v_j·W_O^h‖ per query head equal a float64 computation from the weights', async () => {
      const run = await engine.analyze(idText(ids));
      const ref = c.forward(ck.config, ck.weights, ids);
      const E = engine.dims.nEmbd;
      for (let l = 0; l < L; l++) {
        const resid: Matrix = { rows: ids.length, cols: E, data: ref.residPre[l] };
        for (let h = 0; h < H; h++) {
          const { v, wo } = c.projections(ck.config, ck.weights, resid, l, h);
          const want = valueNorms(v, wo);
          const got = run.valueNorms(l, h);
          const scale = Math.max(...want);
          assertClose(`value norms of ${l}.${h}`, got.map((x) => x / scale), want.map((x) => x / scale), 1e-4);
        }
      }
    });

    test('Q·K breakdown: rotated scores give the stored row, the KV head is named, un-rotated scores are q·k of the projections', async () => {
      const run = await engine.analyze(idText(ids));
      const i = ids.length - 1;
      const b = await engine.qk(run, L - 1, H - 1, i);
      assertClose('q·k probabilities vs the stored row', b.probs, run.row({ layer: L - 1, head: H - 1 }, i), 1e-4);
      const groups = engine.dims.nHead / engine.dims.nKvHead;
      if (groups > 1) assert.deepEqual([b.kvHead, b.nKvHead], [Math.floor((H - 1) / groups), engine.dims.nKvHead]);
      assert.ok(b.unrotatedScores, 'un-rotated scores given');
      const ref = c.forward(ck.config, ck.weights, ids);
      const { q, k } = c.projections(ck.config, ck.weights, { rows: ids.length, cols: engine.dims.nEmbd, data: ref.residPre[L - 1] }, L - 1, H - 1);
      const D = q.cols;
      const want = Array.from({ length: i + 1 }, (_, j) => {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q.data[i * D + d] * k.data[j * D + d];
        return dot / Math.sqrt(D);
      });
      const scale = Math.max(...want.map(Math.abs));
      assertClose('un-rotated scores', b.unrotatedScores.map((x) => x / scale), want.map((x) => x / scale), 1e-4);
      assert.ok(maxDiff(b.unrotatedScores, b.scores) > 1e-2, 'the rotation changes the scores');
    });
  });
}
