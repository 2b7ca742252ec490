/**
 * Tests of the new families' float64 references themselves (test/reference/families) and of the Hugging Face layout
 * checkpoint writer (test/fixtures/hfCheckpoint.ts): properties that hold for the maths whatever the weights, hand
 * written formulas, and equalities between families where their maths coincide.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { HeadlightError } from '../../extension/common/errors.js';
import { llamaSpec, neoxSpec, randomWeights, writeHfCheckpoint, type CheckpointSpec } from '../fixtures/hfCheckpoint.js';
import { activation, applyRope, attentionHead, embed, layerNorm, linear, logSoftmax, matrix, ropeInvFreq, rmsNorm, type Matrix } from '../reference/families/blocks.js';
import { llamaAttention, llamaForward, llamaShape } from '../reference/families/llama.js';
import { neoxAttention, neoxForward, neoxShape } from '../reference/families/neox.js';
import type { RefConfig, RefResult, RefWeights } from '../reference/families/types.js';

const tmp = mkdtempSync(join(tmpdir(), 'headlight-family-ref-'));
after(() => fsp.rm(tmp, { recursive: true, force: true }));

const VOCAB = 96;
const ids = Array.from({ length: 14 }, (_, t) => (t * 37 + 5) % VOCAB);

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length');
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i]) && Number.isNaN(b[i])) continue;
    d = Math.max(d, Math.abs(a[i] - b[i]));
  }
  return d;
}

function model(spec: CheckpointSpec, seed = 7): { config: RefConfig; weights: RefWeights } {
  return { config: spec.config, weights: randomWeights(spec, { seed }) };
}

const small = { layers: 2, hidden: 32, heads: 4, intermediate: 48, vocab: VOCAB } as const;

/** Seeded uniform numbers in [−1, 1) for hand-made inputs. */
function uniforms(n: number, seed: number): Float64Array {
  let a = seed >>> 0;
  return Float64Array.from({ length: n }, () => {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    return a / 2 ** 31 - 1;
  });
}

function randomMatrix(rows: number, cols: number, seed: number): Matrix {
  return { rows, cols, data: uniforms(rows * cols, seed) };
}

/** Every attention map: rows sum to 1, nothing above the diagonal, and (for the writer's sizing) far from uniform. */
function checkAttention(r: RefResult, T: number): void {
  let peak = 0;
  let rows = 0;
  for (const layer of r.attention) {
    for (const p of layer) {
      assert.equal(p.length, T * T);
      for (let i = 0; i < T; i++) {
        let sum = 0;
        let max = 0;
        for (let j = 0; j < T; j++) {
          const v = p[i * T + j];
          if (j > i) assert.equal(v, 0, `future key ${j} visible to query ${i}`);
          assert.ok(v >= 0);
          sum += v;
          max = Math.max(max, v);
        }
        assert.ok(Math.abs(sum - 1) < 1e-12, `row ${i} sums to ${sum}`);
        if (i >= 6) {
          peak += max;
          rows++;
        }
      }
    }
  }
  // Uniform attention over ≥ 7 keys would put at most 1/7 on the top key.
  assert.ok(peak / rows > 0.4, `attention close to uniform: mean top probability ${peak / rows}`);
}

// ---------------------------------------------------------------- blocks by hand

describe('family references: blocks', () => {
  it('norms, linear, activations, soft-cap and log-softmax match hand-computed values', () => {
    const x: Matrix = { rows: 1, cols: 2, data: Float64Array.of(3, 4) };
    const rms = Math.sqrt(12.5); // sqrt(mean(9, 16))
    assert.deepEqual([...rmsNorm(x, [1, 2], 0).data], [3 / rms, 8 / rms]);
    assert.deepEqual([...rmsNorm(x, [0, 1], 0, true).data], [3 / rms, 8 / rms], "Gemma's (1 + w)");
    assert.deepEqual([...layerNorm(x, [1, 1], [0, 10], 0).data], [-1, 11]); // mean 3.5, variance 0.25
    // torch Linear: weight [out, in]
    const y = linear(x, { shape: [3, 2], data: Float64Array.of(1, 0, 0, 1, 1, 1) }, { shape: [3], data: Float64Array.of(0, 0, 0.5) });
    assert.deepEqual([...y.data], [3, 4, 7.5]);
    assert.ok(Math.abs(activation('silu')(1) - 1 / (1 + Math.exp(-1))) < 1e-15);
    assert.ok(Math.abs(activation('gelu')(1) - 0.8413447460685429) < 1e-12); // 1 · Φ(1)
    assert.ok(Math.abs(activation('gelu_pytorch_tanh')(1) - 0.8411919906082768) < 1e-12);
    assert.ok(Math.abs(Math.exp(logSoftmax([1, 2, 3])[2]) - Math.exp(3) / (Math.exp(1) + Math.exp(2) + Math.exp(3))) < 1e-15);
    // soft-cap: scores 0 and s → cap·tanh(s/cap) before the softmax
    const one = (v: number): Matrix => ({ rows: 2, cols: 1, data: Float64Array.of(v, v) });
    const capped = attentionHead({ rows: 2, cols: 1, data: Float64Array.of(0, 3) }, { rows: 2, cols: 1, data: Float64Array.of(0, 2) }, one(1), { scale: 1, softcap: 5 });
    const s = 5 * Math.tanh(6 / 5);
    assert.ok(Math.abs(capped.probs[3] - Math.exp(s) / (1 + Math.exp(s))) < 1e-15); // row 1: keys 0 (score 0) and 1 (score 6 capped)
  });
});

// ---------------------------------------------------------------- attention shape

describe('family references: attention maps', () => {
  for (const modelType of ['llama', 'mistral', 'qwen2', 'qwen3'] as const) {
    it(`${modelType}: causal rows that sum to 1, far from uniform`, () => {
      const { config, weights } = model(llamaSpec({ ...small, modelType, kvHeads: 2, headDim: modelType === 'qwen3' ? 16 : undefined }));
      checkAttention(llamaForward(config, weights, ids), ids.length);
    });
  }
  it('gpt_neox: causal rows that sum to 1, far from uniform', () => {
    const { config, weights } = model(neoxSpec({ ...small }));
    checkAttention(neoxForward(config, weights, ids), ids.length);
  });

  it('mistral sliding_window w: query i sees exactly keys i−w < j ≤ i; a window ≥ T equals full attention', () => {
    const w = 4;
    const { config, weights } = model(llamaSpec({ ...small, modelType: 'mistral', slidingWindow: w }));
    const r = llamaForward(config, weights, ids);
    const T = ids.length;
    for (const layer of r.attention) {
      for (const p of layer) {
        for (let i = 0; i < T; i++) {
          for (let j = 0; j < T; j++) {
            const seen = p[i * T + j] > 0;
            assert.equal(seen, j <= i && j > i - w, `query ${i} key ${j}`);
          }
        }
      }
    }
    const wide = llamaForward({ ...config, sliding_window: T }, weights, ids);
    const full = llamaForward({ ...config, sliding_window: null }, weights, ids);
    assert.equal(maxDiff(wide.logits, full.logits), 0);
    assert.ok(maxDiff(r.logits, full.logits) > 1e-3, 'the window changes the logits');
  });

  it('qwen2: use_sliding_window windows only the layers from max_window_layers on; layer_types overrides', () => {
    const spec = llamaSpec({ ...small, modelType: 'qwen2', slidingWindow: 3, useSlidingWindow: true, maxWindowLayers: 1 });
    const { config, weights } = model(spec);
    const T = ids.length;
    const r = llamaForward(config, weights, ids);
    const farKey = (p: Float64Array) => p[(T - 1) * T + 0]; // last query, first key: outside a window of 3
    assert.ok(r.attention[0].every((p) => farKey(p) > 0), 'layer 0 is full attention');
    assert.ok(r.attention[1].every((p) => farKey(p) === 0), 'layer 1 is windowed');
    const off = llamaForward({ ...config, use_sliding_window: false }, weights, ids);
    assert.ok(off.attention[1].every((p) => farKey(p) > 0), 'use_sliding_window false: no window');
    const types = llamaForward({ ...config, layer_types: ['sliding_attention', 'full_attention'] }, weights, ids);
    assert.ok(types.attention[0].every((p) => farKey(p) === 0) && types.attention[1].every((p) => farKey(p) > 0));
  });
});

// ---------------------------------------------------------------- rotary embeddings

describe('family references: RoPE', () => {
  /** q_i · k_j for rows rotated at the given positions. */
  function scores(q: Matrix, k: Matrix, positions: number[], invFreq: Float64Array): Float64Array {
    const qr = applyRope(q, positions, invFreq);
    const kr = applyRope(k, positions, invFreq);
    const T = q.rows;
    const d = q.cols;
    const out = new Float64Array(T * T);
    for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) for (let c = 0; c < d; c++) out[i * T + j] += qr.data[i * d + c] * kr.data[j * d + c];
    return out;
  }

  for (const [label, rotaryDim, scaling] of [
    ['full rotation', 16, null],
    ['partial rotation (4 of 16 dims)', 4, null],
    ['llama3 scaling', 16, { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 }],
  ] as const) {
    it(`${label}: scores depend only on relative position`, () => {
      const inv = ropeInvFreq({ theta: 10000, rotaryDim, scaling });
      const q = randomMatrix(6, 16, 1);
      const k = randomMatrix(6, 16, 2);
      const base = scores(q, k, [0, 1, 2, 3, 4, 5], inv);
      const shifted = scores(q, k, [11, 12, 13, 14, 15, 16], inv);
      assert.ok(maxDiff(base, shifted) < 1e-12, `shift changes scores by ${maxDiff(base, shifted)}`);
      const stretched = scores(q, k, [0, 2, 4, 6, 8, 10], inv);
      assert.ok(maxDiff(base, stretched) > 1e-3, 'relative distances do matter');
    });
  }

  it('partial rotation leaves the dims past rotary_dim untouched and turns the others', () => {
    const inv = ropeInvFreq({ theta: 10000, rotaryDim: 4 });
    const x = randomMatrix(3, 16, 3);
    const r = applyRope(x, [5, 6, 7], inv);
    for (let t = 0; t < 3; t++) {
      for (let c = 4; c < 16; c++) assert.equal(r.data[t * 16 + c], x.data[t * 16 + c]);
      // pair (0, 2) turns by position·1 (the first inverse frequency is θ⁰ = 1)
      const angle = 5 + t;
      assert.ok(Math.abs(r.data[t * 16] - (x.data[t * 16] * Math.cos(angle) - x.data[t * 16 + 2] * Math.sin(angle))) < 1e-15);
    }
  });

  it('llama3 scaling keeps high frequencies, divides low ones by factor, blends the middle as modeling_rope_utils.py', () => {
    // rotaryDim 16, θ 1e4: wavelengths 2π·10^(i/2) = 6.3, 19.9, 62.8, 198.7, 628, 1987, 6283, 19869.
    // original_max 256, low_freq_factor 1, high_freq_factor 4: high-frequency wavelengths < 64, low > 256.
    const scaling = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 256 };
    const plain = ropeInvFreq({ theta: 10000, rotaryDim: 16 });
    const scaled = ropeInvFreq({ theta: 10000, rotaryDim: 16, scaling });
    for (let i = 0; i < 8; i++) assert.ok(Math.abs(plain[i] - 1 / 10000 ** (i / 8)) < 1e-15);
    for (const i of [0, 1, 2]) assert.equal(scaled[i], plain[i], `high frequency ${i}`);
    for (const i of [4, 5, 6, 7]) assert.ok(Math.abs(scaled[i] - plain[i] / 8) < 1e-18, `low frequency ${i}`);
    // i = 3 by hand: wavelen = 2π·10^1.5; smooth = (256 / wavelen − 1) / (4 − 1); (1 − smooth)·f/8 + smooth·f.
    const f3 = 10 ** -1.5;
    const wavelen = 2 * Math.PI * 10 ** 1.5;
    const smooth = (256 / wavelen - 1) / 3;
    assert.ok(Math.abs(scaled[3] - ((1 - smooth) * (f3 / 8) + smooth * f3)) < 1e-15);
    assert.ok(scaled[3] < plain[3] && scaled[3] > plain[3] / 8);
    // linear divides all; the old `type` key names it too
    const linearInv = ropeInvFreq({ theta: 10000, rotaryDim: 16, scaling: { type: 'linear', factor: 2 } });
    for (let i = 0; i < 8; i++) assert.ok(Math.abs(linearInv[i] - plain[i] / 2) < 1e-18);
    assert.throws(() => ropeInvFreq({ theta: 10000, rotaryDim: 16, scaling: { rope_type: 'yarn', factor: 2 } }), (e: unknown) => e instanceof HeadlightError && /yarn/.test(e.message));
  });

  it('rope_scaling (v4) and rope_parameters (v5) configs give the same forward', () => {
    const ropeScaling = { rope_type: 'llama3', factor: 4, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 };
    const v4 = model(llamaSpec({ ...small, modelType: 'llama', ropeScaling }));
    const v5 = model(llamaSpec({ ...small, modelType: 'llama', ropeScaling, configForm: 'v5' }));
    assert.ok(!('rope_theta' in v5.config) && 'rope_parameters' in v5.config);
    const a = llamaForward(v4.config, v4.weights, ids);
    assert.equal(maxDiff(a.logits, llamaForward(v5.config, v5.weights, ids).logits), 0);
    const unscaled = llamaForward({ ...v4.config, rope_scaling: null }, v4.weights, ids);
    assert.ok(maxDiff(a.logits, unscaled.logits) > 1e-4, 'the scaling changes the forward');
  });
});

// ---------------------------------------------------------------- grouped-query attention and Qwen3's norms

describe('family references: GQA and q/k norms', () => {
  it('GQA with 2 KV heads equals plain multi-head attention with each KV head repeated', () => {
    const { config, weights } = model(llamaSpec({ ...small, modelType: 'llama', kvHeads: 2 }));
    const d = 8;
    const E = 32;
    const mha = new Map(weights);
    for (let l = 0; l < 2; l++) {
      for (const part of ['k_proj', 'v_proj']) {
        const key = `model.layers.${l}.self_attn.${part}.weight`;
        const w = weights.get(key)!; // [2·d, E]
        const rep = new Float64Array(4 * d * E); // [4·d, E]: query head h gets KV head ⌊h / 2⌋
        for (let h = 0; h < 4; h++) rep.set(w.data.subarray(Math.floor(h / 2) * d * E, (Math.floor(h / 2) + 1) * d * E), h * d * E);
        mha.set(key, { shape: [4 * d, E], data: rep });
      }
    }
    const gqa = llamaForward(config, weights, ids);
    const plain = llamaForward({ ...config, num_key_value_heads: 4 }, mha, ids);
    assert.ok(maxDiff(gqa.logits, plain.logits) < 1e-12);
    for (let l = 0; l < 2; l++) for (let h = 0; h < 4; h++) assert.ok(maxDiff(gqa.attention[l][h], plain.attention[l][h]) < 1e-13);
    // and the grouping matters: heads 0 and 1 share keys, so swapping KV heads changes the answer
    const swapped = new Map(weights);
    for (const part of ['k_proj', 'v_proj']) {
      const key = `model.layers.0.self_attn.${part}.weight`;
      const w = weights.get(key)!.data;
      swapped.set(key, { shape: [2 * d, E], data: Float64Array.from([...w.subarray(d * E), ...w.subarray(0, d * E)]) });
    }
    assert.ok(maxDiff(gqa.logits, llamaForward(config, swapped, ids).logits) > 1e-3);
  });

  it('qwen3 with q_norm/k_norm weights of ones: scores are those of per-head RMS-normalised q and k', () => {
    const spec = llamaSpec({ ...small, modelType: 'qwen3', headDim: 16, kvHeads: 2 });
    const { config, weights } = model(spec);
    const d = 16;
    const eps = config.rms_norm_eps as number;
    for (const n of ['q_norm', 'k_norm']) weights.set(`model.layers.0.self_attn.${n}.weight`, { shape: [d], data: new Float64Array(d).fill(1) });
    const r = llamaForward(config, weights, ids);
    // By hand for query head 3 (KV head 1) of layer 0.
    const x = rmsNorm(embed(weights.get('model.embed_tokens.weight')!, ids, 'embed'), weights.get('model.layers.0.input_layernorm.weight')!.data, eps);
    const q = linear(x, weights.get('model.layers.0.self_attn.q_proj.weight')!); // [T, 4·16]
    const k = linear(x, weights.get('model.layers.0.self_attn.k_proj.weight')!); // [T, 2·16]
    const T = ids.length;
    const perHead = (m: Matrix, h: number): Matrix => {
      const out = matrix(T, d);
      for (let t = 0; t < T; t++) {
        const row = Array.from({ length: d }, (_, c) => m.data[t * m.cols + h * d + c]);
        const rms = Math.sqrt(row.reduce((a, v) => a + v * v, 0) / d + eps);
        row.forEach((v, c) => (out.data[t * d + c] = v / rms));
      }
      return out;
    };
    const inv = ropeInvFreq({ theta: config.rope_theta as number, rotaryDim: d });
    const pos = ids.map((_, t) => t);
    const qh = applyRope(perHead(q, 3), pos, inv);
    const kh = applyRope(perHead(k, 1), pos, inv);
    const i = T - 1;
    const logitsRow = Array.from({ length: T }, (_, j) => {
      let dot = 0;
      for (let c = 0; c < d; c++) dot += qh.data[i * d + c] * kh.data[j * d + c];
      return dot / Math.sqrt(d);
    });
    const z = logitsRow.reduce((a, v) => a + Math.exp(v), 0);
    const want = logitsRow.map((v) => Math.exp(v) / z);
    assert.ok(maxDiff(r.attention[0][3].subarray(i * T, i * T + T), want) < 1e-12);
    // Scale invariance: doubling q_proj leaves qwen3's attention (nearly) unchanged; without the norms it would not.
    const doubled = new Map(weights);
    const qw = weights.get('model.layers.0.self_attn.q_proj.weight')!;
    doubled.set('model.layers.0.self_attn.q_proj.weight', { shape: qw.shape, data: qw.data.map((v) => 2 * v) });
    assert.ok(maxDiff(r.attention[0][3], llamaForward(config, doubled, ids).attention[0][3]) < 1e-6);
    const asLlama = { ...config, model_type: 'llama' };
    assert.ok(maxDiff(llamaForward(asLlama, weights, ids).attention[0][3], llamaForward(asLlama, doubled, ids).attention[0][3]) > 1e-2);
  });
});

// ---------------------------------------------------------------- GPT-NeoX

describe('family references: GPT-NeoX', () => {
  /** Llama-layout q/k/v projections (with biases) rearranged from NeoX's per-head fused query_key_value. */
  function unfuse(weights: RefWeights, E: number, H: number, layer: number, perHead: boolean): RefWeights {
    const d = E / H;
    const w = weights.get(`gpt_neox.layers.${layer}.attention.query_key_value.weight`)!.data; // [3E, E]
    const b = weights.get(`gpt_neox.layers.${layer}.attention.query_key_value.bias`)!.data; // [3E]
    const out: RefWeights = new Map();
    ['q', 'k', 'v'].forEach((part, which) => {
      const pw = new Float64Array(E * E);
      const pb = new Float64Array(E);
      for (let h = 0; h < H; h++) {
        for (let c = 0; c < d; c++) {
          // per head: row h·3d + which·d + c; the wrong reading [Q | K | V]: row which·E + h·d + c
          const src = perHead ? h * 3 * d + which * d + c : which * E + h * d + c;
          pw.set(w.subarray(src * E, src * E + E), (h * d + c) * E);
          pb[h * d + c] = b[src];
        }
      }
      out.set(`model.layers.${layer}.self_attn.${part}_proj.weight`, { shape: [E, E], data: pw });
      out.set(`model.layers.${layer}.self_attn.${part}_proj.bias`, { shape: [E], data: pb });
    });
    return out;
  }

  for (const pct of [1, 0.25]) {
    it(`attention with rotary_pct ${pct} equals the Llama reference's on the per-head-rearranged q/k/v`, () => {
      const E = 32;
      const H = 4;
      const { config, weights } = model(neoxSpec({ ...small, rotaryPct: pct }));
      const x = randomMatrix(ids.length, E, 9); // a shared normed input: the norms differ between families
      const neox = neoxAttention(neoxShape(config), weights, 1, x);
      const llamaConfig: RefConfig = { model_type: 'llama', num_hidden_layers: 2, hidden_size: E, num_attention_heads: H, intermediate_size: 48, vocab_size: VOCAB, attention_bias: true, rope_theta: 10000, partial_rotary_factor: pct };
      const llama = llamaAttention(llamaShape(llamaConfig), unfuse(weights, E, H, 1, true), 1, x);
      for (let h = 0; h < H; h++) {
        assert.ok(maxDiff(neox.probs[h], llama.probs[h]) < 1e-13);
        assert.ok(maxDiff(neox.z[h].data, llama.z[h].data) < 1e-13);
      }
      const wrong = llamaAttention(llamaShape(llamaConfig), unfuse(weights, E, H, 1, false), 1, x);
      assert.ok(maxDiff(neox.probs[0], wrong.probs[0]) > 1e-3, 'a [Q|K|V] reading differs');
    });
  }

  it('use_parallel_residual true and false: each matches its block equation, and they differ', () => {
    const { config, weights } = model(neoxSpec({ ...small, layers: 1 }));
    const E = 32;
    const eps = 1e-5;
    const ln = (key: string, x: Matrix) => layerNorm(x, weights.get(`${key}.weight`)!.data, weights.get(`${key}.bias`)!.data, eps);
    const lastRowSum = (r: RefResult) => r.residPre[1].subarray((ids.length - 1) * E).reduce((a, v) => a + v, 0);
    for (const parallel of [true, false]) {
      const r = neoxForward({ ...config, use_parallel_residual: parallel }, weights, ids);
      const x = { rows: ids.length, cols: E, data: r.residPre[0] };
      const mlpIn = parallel ? x : { rows: ids.length, cols: E, data: x.data.map((v, i) => v + r.attnOut[0][i]) };
      const a = linear(ln('gpt_neox.layers.0.post_attention_layernorm', mlpIn), weights.get('gpt_neox.layers.0.mlp.dense_h_to_4h.weight')!, weights.get('gpt_neox.layers.0.mlp.dense_h_to_4h.bias')!);
      for (let i = 0; i < a.data.length; i++) a.data[i] = 0.5 * a.data[i] * (1 + erfApprox(a.data[i] / Math.SQRT2)); // exact gelu
      const mlp = linear(a, weights.get('gpt_neox.layers.0.mlp.dense_4h_to_h.weight')!, weights.get('gpt_neox.layers.0.mlp.dense_4h_to_h.bias')!);
      assert.ok(maxDiff(mlp.data, r.mlpOut[0]) < 1e-6, `parallel=${parallel}: MLP input`);
    }
    const p = neoxForward(config, weights, ids);
    const s = neoxForward({ ...config, use_parallel_residual: false }, weights, ids);
    assert.ok(Math.abs(lastRowSum(p) - lastRowSum(s)) > 1e-6 && maxDiff(p.logits, s.logits) > 1e-3);
  });

  it('stale attention.bias / masked_bias / rotary_emb.inv_freq buffers are written and ignored; v5 config form agrees', () => {
    const plain = neoxSpec({ ...small });
    const buffered = neoxSpec({ ...small, buffers: true });
    const a = model(plain);
    const b = model(buffered);
    assert.ok(b.weights.has('gpt_neox.layers.1.attention.rotary_emb.inv_freq') && b.weights.has('gpt_neox.layers.0.attention.masked_bias'));
    assert.equal(maxDiff(neoxForward(a.config, a.weights, ids).logits, neoxForward(b.config, b.weights, ids).logits), 0);
    const v5 = model(neoxSpec({ ...small, configForm: 'v5' }));
    assert.ok(!('rotary_pct' in v5.config));
    assert.equal(maxDiff(neoxForward(a.config, a.weights, ids).logits, neoxForward(v5.config, v5.weights, ids).logits), 0);
    const full = neoxForward({ ...a.config, rotary_pct: 1 }, a.weights, ids);
    assert.ok(maxDiff(full.logits, neoxForward(a.config, a.weights, ids).logits) > 1e-3, 'rotary_pct is read');
  });
});

/** erf by its Maclaurin series (|x| small here), written apart from the reference's. */
function erfApprox(x: number): number {
  if (Math.abs(x) > 5) return Math.sign(x);
  let sum = 0;
  let term = x;
  for (let n = 0; n < 200; n++) {
    sum += term / (2 * n + 1);
    term *= (-x * x) / (n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

// ---------------------------------------------------------------- outputs and hooks

describe('family references: outputs and hooks', () => {
  const cases: [string, () => { config: RefConfig; weights: RefWeights }, typeof llamaForward][] = [
    ['llama (biases, tied head)', () => model(llamaSpec({ ...small, modelType: 'llama', attentionBias: true, mlpBias: true, tie: true, kvHeads: 2 })), llamaForward],
    ['qwen2', () => model(llamaSpec({ ...small, modelType: 'qwen2', kvHeads: 2 })), llamaForward],
    ['gpt_neox', () => model(neoxSpec({ ...small })), neoxForward],
  ];
  for (const [label, make, forward] of cases) {
    it(`${label}: logprobs are log_softmax(logits) at the next id; the stream adds up`, () => {
      const { config, weights } = make();
      const r = forward(config, weights, ids);
      const V = VOCAB;
      const T = ids.length;
      const E = 32;
      assert.ok(Number.isNaN(r.logprobs[0]));
      for (let t = 1; t < T; t++) {
        const row = r.logits.subarray((t - 1) * V, t * V);
        const z = row.reduce((a, v) => a + Math.exp(v), 0);
        assert.ok(Math.abs(r.logprobs[t] - Math.log(Math.exp(row[ids[t]]) / z)) < 1e-12);
      }
      for (let l = 0; l < 2; l++) {
        for (let i = 0; i < T * E; i++) {
          assert.ok(Math.abs(r.residPre[l + 1][i] - (r.residPre[l][i] + r.attnOut[l][i] + r.mlpOut[l][i])) < 1e-12);
        }
        const headSum = new Float64Array(T * E);
        for (const h of r.headOut[l]) h.forEach((v, i) => (headSum[i] += v));
        const bias = weights.get(`model.layers.${l}.self_attn.o_proj.bias`) ?? weights.get(`gpt_neox.layers.${l}.attention.dense.bias`);
        for (let i = 0; i < T * E; i++) assert.ok(Math.abs(r.attnOut[l][i] - headSum[i] - (bias ? bias.data[i % E] : 0)) < 1e-12);
      }
    });

    it(`${label}: a head mask of ones and patches with the run's own values change nothing; a zero mask does`, () => {
      const { config, weights } = make();
      const r = forward(config, weights, ids);
      const ones = [Array(4).fill(1), Array(4).fill(1)];
      assert.equal(maxDiff(r.logits, forward(config, weights, ids, { headMask: ones }).logits), 0);
      const E = 32;
      const own = forward(config, weights, ids, {
        patchResidPre: (l, t, row) => row.set(r.residPre[l].subarray(t * E, t * E + E)),
        patchHeadOut: () => undefined,
      });
      assert.equal(maxDiff(r.logits, own.logits), 0);
      const masked = forward(config, weights, ids, { headMask: [[1, 0, 1, 1], [1, 1, 1, 1]] });
      assert.ok(masked.headOut[0][1].every((v) => v === 0));
      assert.ok(maxDiff(r.logits, masked.logits) > 1e-4);
      const patched = forward(config, weights, ids, { patchResidPre: (l, t, row) => l === 1 && t === 3 && row.fill(0) });
      assert.ok(patched.residPre[1].subarray(3 * E, 4 * E).every((v) => v === 0));
      assert.equal(maxDiff(r.residPre[0], patched.residPre[0]), 0);
      assert.ok(maxDiff(r.logits.subarray(3 * VOCAB), patched.logits.subarray(3 * VOCAB)) > 1e-4);
      assert.equal(maxDiff(r.logits.subarray(0, 3 * VOCAB), patched.logits.subarray(0, 3 * VOCAB)), 0, 'causal: earlier rows untouched');
    });
  }

  it('tie_word_embeddings reads embed_tokens as the head; untied reads lm_head', () => {
    const tied = model(llamaSpec({ ...small, modelType: 'llama', tie: true }));
    assert.ok(!tied.weights.has('lm_head.weight'));
    const r = llamaForward(tied.config, tied.weights, ids);
    const untiedWeights = new Map(tied.weights).set('lm_head.weight', tied.weights.get('model.embed_tokens.weight')!);
    assert.equal(maxDiff(r.logits, llamaForward({ ...tied.config, tie_word_embeddings: false }, untiedWeights, ids).logits), 0);
    assert.throws(() => llamaForward({ ...tied.config, tie_word_embeddings: false }, tied.weights, ids), (e: unknown) => e instanceof HeadlightError && /lm_head\.weight/.test(e.message));
  });

  it('bad input names the tensor or field', () => {
    const { config, weights } = model(llamaSpec({ ...small, modelType: 'qwen2' }));
    const noBias = new Map(weights);
    noBias.delete('model.layers.1.self_attn.k_proj.bias');
    assert.throws(() => llamaForward(config, noBias, ids), (e: unknown) => e instanceof HeadlightError && /model\.layers\.1\.self_attn\.k_proj\.bias/.test(e.message));
    assert.throws(() => llamaForward({ ...config, num_key_value_heads: 3 }, weights, ids), (e: unknown) => e instanceof HeadlightError && /num_key_value_heads/.test(e.message));
    assert.throws(() => llamaForward({ ...config, head_dim: 4 }, weights, ids), (e: unknown) => e instanceof HeadlightError && /q_proj\.weight has shape/.test(e.message));
    assert.throws(() => llamaForward(config, weights, [1, VOCAB]), (e: unknown) => e instanceof HeadlightError && /token id 96/.test(e.message));
    assert.throws(() => llamaForward({ ...config, model_type: 'gpt2' }, weights, ids), HeadlightError);
    assert.throws(() => llamaForward({ ...config, hidden_act: 'mish' }, weights, ids), (e: unknown) => e instanceof HeadlightError && /mish/.test(e.message));
  });
});

// ---------------------------------------------------------------- the checkpoint writer

/** A minimal safetensors reader, independent of the engine's and the writer: header JSON, then little-endian data. */
async function readSafetensors(path: string): Promise<Map<string, { dtype: string; shape: number[]; values: Float64Array }>> {
  const buf = await fsp.readFile(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const base = 8 + n;
  const out = new Map<string, { dtype: string; shape: number[]; values: Float64Array }>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const bytes = buf.subarray(base + t.data_offsets[0], base + t.data_offsets[1]);
    const count = t.shape.reduce((a, d) => a * d, 1);
    const values = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      if (t.dtype === 'F32') values[i] = bytes.readFloatLE(4 * i);
      else if (t.dtype === 'BF16') values[i] = Buffer.from([0, 0, bytes[2 * i], bytes[2 * i + 1]]).readFloatLE(0);
      else if (t.dtype === 'F16') values[i] = halfToNumber(bytes.readUInt16LE(2 * i));
      else if (t.dtype === 'BOOL') values[i] = bytes[i];
      else throw new Error(`reader: dtype ${t.dtype}`);
    }
    out.set(name, { dtype: t.dtype, shape: t.shape, values });
  }
  return out;
}

/** IEEE half: sign, 5-bit exponent (bias 15), 10-bit fraction; subnormals below exponent 1. */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

describe('hfCheckpoint writer', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    it(`${dtype}: one file and 3 shards hold the same tensors as the returned weights`, async () => {
      const spec = llamaSpec({ ...small, modelType: 'qwen3', headDim: 16, kvHeads: 2 });
      const one = await writeHfCheckpoint(join(tmp, `one-${dtype}`), spec, { seed: 3, dtype });
      const sharded = await writeHfCheckpoint(join(tmp, `sharded-${dtype}`), spec, { seed: 3, dtype, shards: 3 });
      assert.deepEqual(one.files.map((f) => f.split('/').pop()), ['model.safetensors']);
      const names = sharded.files.map((f) => f.split('/').pop());
      assert.deepEqual(names, ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
      const index = JSON.parse(await fsp.readFile(join(sharded.dir, 'model.safetensors.index.json'), 'utf8')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
      const fromOne = await readSafetensors(one.files[0]);
      let dataBytes = 0;
      const seen = new Set<string>();
      for (const [s, file] of sharded.files.entries()) {
        const tensors = await readSafetensors(file);
        assert.ok(tensors.size > 0, `shard ${s + 1} is empty`);
        for (const [name, t] of tensors) {
          assert.equal(index.weight_map[name], names[s], `${name} in the index`);
          assert.ok(!seen.has(name));
          seen.add(name);
          assert.equal(t.dtype, dtype);
          dataBytes += t.values.length * (dtype === 'F32' ? 4 : 2);
          assert.deepEqual(t.values, fromOne.get(name)!.values, name);
          assert.deepEqual(t.values, sharded.weights.get(name)!.data, `${name}: returned weights are what the file holds`);
          assert.deepEqual(t.shape, sharded.weights.get(name)!.shape);
        }
      }
      assert.deepEqual([...seen].sort(), [...one.weights.keys()].sort());
      assert.equal(Object.keys(index.weight_map).length, seen.size);
      assert.equal(index.metadata.total_size, dataBytes);
      const config = JSON.parse(await fsp.readFile(join(one.dir, 'config.json'), 'utf8')) as RefConfig;
      assert.equal(config.model_type, 'qwen3');
      assert.equal(config.head_dim, 16);
      assert.equal(config.torch_dtype, { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype]);
      if (dtype !== 'F32') {
        const w = one.weights.get('model.layers.0.mlp.up_proj.weight')!.data;
        const f32 = model(spec, 3).weights.get('model.layers.0.mlp.up_proj.weight')!.data;
        assert.ok(maxDiff(w, f32) > 0 && maxDiff(w, f32) < 0.02, 'rounded to the dtype');
      }
    });
  }

  it('deterministic for a seed; NeoX buffers round-trip (BOOL mask)', async () => {
    const spec = neoxSpec({ ...small, buffers: true, maxPositions: 16 });
    const a = await writeHfCheckpoint(join(tmp, 'neox-a'), spec, { seed: 11, shards: 2 });
    const b = randomWeights(spec, { seed: 11 });
    const c = randomWeights(spec, { seed: 12 });
    for (const [k, t] of a.weights) assert.deepEqual(t.data, b.get(k)!.data, k);
    assert.ok(maxDiff(a.weights.get('embed_out.weight')!.data, c.get('embed_out.weight')!.data) > 0.1);
    const files = await Promise.all(a.files.map(readSafetensors));
    const mask = files.map((f) => f.get('gpt_neox.layers.0.attention.bias')).find(Boolean)!;
    assert.equal(mask.dtype, 'BOOL');
    assert.deepEqual(mask.shape, [1, 1, 16, 16]);
    assert.equal(mask.values[0 * 16 + 1], 0);
    assert.equal(mask.values[5 * 16 + 5], 1);
  });
});
