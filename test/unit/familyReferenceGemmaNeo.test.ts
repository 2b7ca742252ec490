/**
 * The float64 references of Gemma 2, Gemma 3 (text) and GPT-Neo on random tiny checkpoints in their real key layouts:
 * masks, soft-caps, norms, key prefixes, rotary bases, unscaled GPT-Neo scores (one row by hand), log-probabilities,
 * the residual bookkeeping and the hooks.
 */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { HeadlightError } from '../../extension/common/errors.js';
import { randomWeights, writeHfCheckpoint, type CheckpointSpec } from '../fixtures/hfCheckpoint.js';
import { maxDiff } from '../reference/compare.js';
import { gemma2Spec, gemma3Spec, gemmaForward, type Gemma2SpecOptions, type Gemma3SpecOptions } from '../reference/families/gemma.js';
import { neoForward, neoSpec, type NeoSpecOptions } from '../reference/families/neo.js';
import type { RefConfig, RefResult, RefWeights } from '../reference/families/types.js';

const ids = [3, 17, 22, 0, 9, 9, 31, 12, 5, 28];
const T = ids.length;

const g2: Gemma2SpecOptions = { layers: 2, hidden: 48, heads: 4, kvHeads: 2, headDim: 16, intermediate: 64, vocab: 40, slidingWindow: 3 };
const g3: Gemma3SpecOptions = { layers: 3, hidden: 24, heads: 4, kvHeads: 1, headDim: 8, intermediate: 40, vocab: 40, slidingWindow: 3, slidingWindowPattern: 3 };
const neo: NeoSpecOptions = { layers: 2, hidden: 16, heads: 2, vocab: 40, windowSize: 3, maxPositions: 32 };

function build(spec: CheckpointSpec, seed = 7, config: RefConfig = spec.config): { config: RefConfig; weights: RefWeights } {
  return { config, weights: randomWeights(spec, { seed }) };
}

function rowSum(p: Float64Array, i: number): number {
  let s = 0;
  for (let j = 0; j < T; j++) s += p[i * T + j];
  return s;
}

/** Every map: rows sum to 1, nothing above the diagonal. */
function assertCausalRows(run: RefResult): void {
  for (const layer of run.attention) {
    for (const p of layer) {
      assert.equal(p.length, T * T);
      for (let i = 0; i < T; i++) {
        assert.ok(Math.abs(rowSum(p, i) - 1) < 1e-12, `row ${i} sums to ${rowSum(p, i)}`);
        for (let j = i + 1; j < T; j++) assert.equal(p[i * T + j], 0, `future key ${j} of query ${i}`);
      }
    }
  }
}

/** Sliding layers: exactly 0 at j ≤ i − window; full layers: > 0 at every j ≤ i. */
function assertWindows(run: RefResult, sliding: boolean[], window: number): void {
  run.attention.forEach((layer, l) => {
    for (const p of layer) {
      for (let i = 0; i < T; i++) {
        for (let j = 0; j <= i; j++) {
          if (sliding[l] && j <= i - window) assert.equal(p[i * T + j], 0, `layer ${l}: key ${j} outside the window of query ${i}`);
          else assert.ok(p[i * T + j] > 0, `layer ${l}: key ${j} of query ${i} has no weight`);
        }
      }
    }
  });
}

function assertLogprobs(run: RefResult, V: number): void {
  assert.ok(Number.isNaN(run.logprobs[0]));
  for (let t = 1; t < T; t++) {
    const row = run.logits.subarray((t - 1) * V, t * V);
    const lse = Math.log(row.reduce((a, x) => a + Math.exp(x), 0));
    assert.ok(Math.abs(run.logprobs[t] - (row[ids[t]] - lse)) < 1e-12, `logprob at ${t}`);
  }
}

/** residPre[l + 1] = residPre[l] + attnOut[l] + mlpOut[l]. */
function assertResidualSums(run: RefResult): void {
  run.attnOut.forEach((a, l) => {
    const next = run.residPre[l].map((x, i) => x + a[i] + run.mlpOut[l][i]);
    assert.ok(maxDiff(next, run.residPre[l + 1]) < 1e-12, `layer ${l}`);
  });
}

/** Gemma's (1 + w) RMSNorm per row, written out here. */
function rmsOnePlus(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  const n = w.length;
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    let ms = 0;
    for (let i = 0; i < n; i++) ms += x[r * n + i] ** 2 / n;
    for (let i = 0; i < n; i++) out[r * n + i] = (x[r * n + i] / Math.sqrt(ms + eps)) * (1 + w[i]);
  }
  return out;
}

/** Largest log(p_ij / p_ik) over the visible keys of any row: bounded by 2·cap under a soft-cap. */
function maxLogRatio(run: RefResult): number {
  let worst = 0;
  for (const layer of run.attention) {
    for (const p of layer) {
      for (let i = 0; i < T; i++) {
        const logs = Array.from({ length: i + 1 }, (_, j) => p[i * T + j]).filter((x) => x > 0).map(Math.log);
        worst = Math.max(worst, Math.max(...logs) - Math.min(...logs));
      }
    }
  }
  return worst;
}

interface HandRow {
  prefix: string;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** query_pre_attn_scalar. */
  qpas: number;
  theta: number;
  cap: number | null;
  window: number | null;
  qkNorm: boolean;
}

/**
 * Layer 0, head h, query i of a Gemma model worked out from the definitions: embed·fround(√E), (1 + w) RMSNorm,
 * q/k rows of the torch-layout weights (k from kv head ⌊h / (H/KV)⌋), optional q/k norms, rotate-half RoPE,
 * q·k·qpas^-½, tanh soft-cap, sliding window, softmax.
 */
function gemmaRowByHand(weights: RefWeights, o: HandRow, h: number, i: number): number[] {
  const w = (k: string) => weights.get(`${o.prefix}${k}`)!.data;
  const { hidden: E, headDim: d } = o;
  const rmsNormed = (v: number[], gain: Float64Array) => {
    const ms = v.reduce((a, b) => a + b * b, 0) / v.length;
    return v.map((b, e) => (b / Math.sqrt(ms + 1e-6)) * (1 + gain[e]));
  };
  const normed = (t: number) =>
    rmsNormed(Array.from({ length: E }, (_, e) => w('embed_tokens.weight')[ids[t] * E + e] * Math.fround(Math.sqrt(E))), w('layers.0.input_layernorm.weight'));
  const rows = (name: string, head: number, v: number[]) =>
    Array.from({ length: d }, (_, c) => v.reduce((a, vi, e) => a + vi * w(`layers.0.self_attn.${name}.weight`)[(head * d + c) * E + e], 0));
  const rotate = (v: number[], t: number) =>
    v.map((x, c) => {
      const pair = c < d / 2 ? c : c - d / 2;
      const angle = t * o.theta ** ((-2 * pair) / d);
      return c < d / 2 ? x * Math.cos(angle) - v[c + d / 2] * Math.sin(angle) : x * Math.cos(angle) + v[c - d / 2] * Math.sin(angle);
    });
  const g = Math.floor(h / (o.heads / o.kvHeads));
  const qRaw = rows('q_proj', h, normed(i));
  const q = rotate(o.qkNorm ? rmsNormed(qRaw, w('layers.0.self_attn.q_norm.weight')) : qRaw, i);
  const scores: number[] = [];
  for (let j = 0; j <= i; j++) {
    const kRaw = rows('k_proj', g, normed(j));
    const k = rotate(o.qkNorm ? rmsNormed(kRaw, w('layers.0.self_attn.k_norm.weight')) : kRaw, j);
    const s = q.reduce((a, qc, c) => a + qc * k[c], 0) / Math.sqrt(o.qpas);
    scores.push(o.window !== null && j <= i - o.window ? -Infinity : o.cap === null ? s : o.cap * Math.tanh(s / o.cap));
  }
  const m = Math.max(...scores);
  const e = scores.map((v) => Math.exp(v - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

describe('Gemma 2 reference', () => {
  const { config, weights } = build(gemma2Spec(g2));
  const run = gemmaForward(config, weights, ids);
  const E = g2.hidden;

  test('attention rows sum to 1 and are causal; even layers slide, odd ones see everything', () => {
    assertCausalRows(run);
    assertWindows(run, [true, false], g2.slidingWindow!);
  });

  test('one row worked by hand: query_pre_attn_scalar, RoPE, GQA, soft-cap and window', () => {
    const opts = { ...g2, queryPreAttnScalar: 20, attnSoftcap: 3, qkScale: 12, ropeTheta: 50 };
    const m = build(gemma2Spec(opts));
    const r = gemmaForward(m.config, m.weights, ids);
    const hand: HandRow = { prefix: 'model.', hidden: 48, heads: 4, kvHeads: 2, headDim: 16, qpas: 20, theta: 50, cap: 3, window: 3, qkNorm: false };
    for (let h = 0; h < 4; h++) {
      for (const i of [2, T - 1]) {
        const got = Array.from(r.attention[0][h].subarray(i * T, i * T + i + 1));
        assert.ok(maxDiff(got, gemmaRowByHand(m.weights, hand, h, i)) < 1e-12, `head ${h} row ${i}: ${got}`);
      }
    }
  });

  test('layer_types, when given, decides which layers slide', () => {
    const flipped = gemmaForward({ ...config, layer_types: ['full_attention', 'sliding_attention'] }, weights, ids);
    assertWindows(flipped, [false, true], g2.slidingWindow!);
  });

  test('the attention soft-cap bounds the scores: log-ratios within a row stay under 2·cap', () => {
    const sharp = build(gemma2Spec({ ...g2, qkScale: 40, attnSoftcap: 1 }));
    const capped = gemmaForward(sharp.config, sharp.weights, ids);
    assert.ok(maxLogRatio(capped) <= 2 + 1e-9, `log-ratio ${maxLogRatio(capped)}`);
    const free = gemmaForward({ ...sharp.config, attn_logit_softcapping: null }, sharp.weights, ids);
    assert.ok(maxLogRatio(free) > 4, `uncapped log-ratio ${maxLogRatio(free)}: the bound above says nothing`);
  });

  test('the final soft-cap bounds the logits', () => {
    const capped = gemmaForward({ ...config, final_logit_softcapping: 0.5 }, weights, ids);
    assert.ok(capped.logits.every((x) => Math.abs(x) < 0.5));
    const free = gemmaForward({ ...config, final_logit_softcapping: null }, weights, ids);
    assert.ok(free.logits.some((x) => Math.abs(x) > 0.5));
  });

  test('a huge cap equals no cap; a small one does not', () => {
    const off = gemmaForward({ ...config, attn_logit_softcapping: null, final_logit_softcapping: null }, weights, ids);
    const huge = gemmaForward({ ...config, attn_logit_softcapping: 1e8, final_logit_softcapping: 1e8 }, weights, ids);
    const small = gemmaForward({ ...config, attn_logit_softcapping: 2, final_logit_softcapping: 2 }, weights, ids);
    assert.ok(maxDiff(huge.attention[1][0], off.attention[1][0]) < 1e-12);
    assert.ok(maxDiff(huge.logits, off.logits) < 1e-12);
    assert.ok(maxDiff(small.attention[1][0], off.attention[1][0]) > 1e-3);
    assert.ok(maxDiff(small.logits, off.logits) > 1e-3);
  });

  test('headOut is taken before the post-attention norm: norm(Σ headOut) = attnOut', () => {
    for (let l = 0; l < g2.layers; l++) {
      const sum = new Float64Array(T * E);
      for (const h of run.headOut[l]) h.forEach((x, i) => (sum[i] += x));
      const w = weights.get(`model.layers.${l}.post_attention_layernorm.weight`)!.data;
      assert.ok(maxDiff(rmsOnePlus(sum, w, 1e-6), run.attnOut[l]) < 1e-12, `layer ${l}`);
    }
    assertResidualSums(run);
  });

  test('(1 + w) norms with w = 0 are plain RMS normalisation: every block output has unit RMS', () => {
    const rms = (x: Float64Array, t: number) => Math.sqrt(x.subarray(t * E, (t + 1) * E).reduce((a, v) => a + v * v, 0) / E);
    // With the random w the post norms rescale rows, so unit RMS is not a given.
    assert.ok(run.attnOut.some((a) => Math.abs(rms(a, 0) - 1) > 1e-3));
    const zeroed = new Map(weights);
    for (const [key, t] of weights) if (key.endsWith('norm.weight')) zeroed.set(key, { shape: t.shape, data: new Float64Array(t.data.length) });
    const plain = gemmaForward(config, zeroed, ids);
    for (let l = 0; l < g2.layers; l++) {
      for (let t = 0; t < T; t++) {
        assert.ok(Math.abs(rms(plain.attnOut[l], t) - 1) < 1e-5, `attnOut layer ${l} position ${t}`);
        assert.ok(Math.abs(rms(plain.mlpOut[l], t) - 1) < 1e-5, `mlpOut layer ${l} position ${t}`);
      }
    }
  });

  test('embeddings are scaled by √hidden rounded to the weights dtype (√48 → 6.9375 in bfloat16)', () => {
    const table = weights.get('model.embed_tokens.weight')!.data;
    const scaleOf = (dtype: string) => {
      const r = gemmaForward({ ...config, torch_dtype: dtype }, weights, ids);
      return r.residPre[0][1] / table[ids[0] * E + 1];
    };
    assert.equal(scaleOf('float32'), Math.fround(Math.sqrt(48)));
    assert.equal(scaleOf('bfloat16'), 6.9375);
    assert.equal(scaleOf('float16'), 6.9296875);
  });

  test('logprobs are log_softmax(logits) at the next id', () => assertLogprobs(run, g2.vocab));

  test('hooks: a head mask of ones changes nothing; a zero removes that head; a no-op patch changes nothing', () => {
    const ones = gemmaForward(config, weights, ids, { headMask: [[1, 1, 1, 1], [1, 1, 1, 1]] });
    assert.deepEqual(ones.logits, run.logits);
    assert.deepEqual(ones.attention, run.attention);
    const noop = gemmaForward(config, weights, ids, { patchHeadOut: () => {}, patchResidPre: () => {} });
    assert.deepEqual(noop.logits, run.logits);
    const ablated = gemmaForward(config, weights, ids, { headMask: [[1, 1, 1, 1], [1, 1, 0, 1]] });
    assert.ok(ablated.headOut[1][2].every((x) => x === 0));
    assert.ok(maxDiff(ablated.logits, run.logits) > 1e-6);
  });

  test('bad input says what is wrong', () => {
    const missing = new Map(weights);
    missing.delete('model.layers.1.pre_feedforward_layernorm.weight');
    assert.throws(() => gemmaForward(config, missing, ids), (e: unknown) => e instanceof HeadlightError && /layers\.1\.pre_feedforward_layernorm/.test(e.message));
    assert.throws(() => gemmaForward({ ...config, model_type: 'gemma' }, weights, ids), (e: unknown) => e instanceof HeadlightError && /model_type/.test(e.message));
    assert.throws(() => gemmaForward({ ...config, layer_types: ['full_attention'] }, weights, ids), (e: unknown) => e instanceof HeadlightError && /layer_types/.test(e.message));
    assert.throws(() => gemmaForward(config, weights, [1, 40]), (e: unknown) => e instanceof HeadlightError && /40/.test(e.message));
  });
});

describe('Gemma 3 reference', () => {
  const spec = gemma3Spec(g3);
  const { config, weights } = build(spec);
  const run = gemmaForward(config, weights, ids);

  test('MQA with heads × head_dim ≠ hidden: causal rows; sliding_window_pattern 3 makes layer 2 full', () => {
    assert.equal(run.attention[0].length, g3.heads);
    assertCausalRows(run);
    assertWindows(run, [true, true, false], g3.slidingWindow!);
    assertResidualSums(run);
    assertLogprobs(run, g3.vocab);
  });

  test('one row worked by hand: q_norm/k_norm, the local rotary base, MQA', () => {
    const hand: HandRow = { prefix: 'model.', hidden: 24, heads: 4, kvHeads: 1, headDim: 8, qpas: 8, theta: 1e4, cap: null, window: 3, qkNorm: true };
    for (const h of [0, 3]) {
      const got = Array.from(run.attention[0][h].subarray((T - 1) * T, T * T));
      assert.ok(maxDiff(got, gemmaRowByHand(weights, hand, h, T - 1)) < 1e-12, `head ${h}: ${got}`);
    }
  });

  test('layer_types equals the sliding_window_pattern it spells out', () => {
    const { sliding_window_pattern: _, ...rest } = config;
    const explicit = gemmaForward({ ...rest, layer_types: ['sliding_attention', 'sliding_attention', 'full_attention'] }, weights, ids);
    assert.deepEqual(explicit.logits, run.logits);
    const other = gemmaForward({ ...rest, layer_types: ['full_attention', 'sliding_attention', 'sliding_attention'] }, weights, ids);
    assertWindows(other, [false, true, true], g3.slidingWindow!);
  });

  test('the multimodal layout (model.language_model. keys, text_config) gives the same result as model.', () => {
    const mm = gemma3Spec({ ...g3, multimodal: true });
    assert.equal(mm.config.model_type, 'gemma3');
    const renamed = (prefix: string) => new Map([...weights].map(([k, t]) => [k.replace(/^model\./, prefix), t]));
    for (const prefix of ['model.language_model.', 'language_model.model.']) {
      const other = gemmaForward(mm.config, renamed(prefix), ids);
      assert.deepEqual(other.logits, run.logits, prefix);
      assert.deepEqual(other.attention, run.attention, prefix);
    }
  });

  test('sliding layers rotate with rope_local_base_freq, full layers with rope_theta (v4 and v5 configs agree)', () => {
    const base = { ...g3, layerTypes: ['full_attention', 'sliding_attention', 'sliding_attention'] as const };
    const a = gemmaForward(gemma3Spec({ ...base, layerTypes: [...base.layerTypes] }).config, weights, ids);
    const local = gemmaForward(gemma3Spec({ ...base, layerTypes: [...base.layerTypes], ropeLocalBaseFreq: 77 }).config, weights, ids);
    const global = gemma3Spec({ ...base, layerTypes: [...base.layerTypes], ropeTheta: 77 }).config;
    assert.deepEqual(local.attention[0], a.attention[0]); // layer 0 is full: untouched by the local base
    assert.ok(maxDiff(local.attention[1][0], a.attention[1][0]) > 1e-6);
    assert.ok(maxDiff(gemmaForward(global, weights, ids).attention[0][0], a.attention[0][0]) > 1e-6);
    const scaled = { ...base, layerTypes: [...base.layerTypes], ropeScaling: { rope_type: 'linear', factor: 8 } };
    const v4 = gemmaForward(gemma3Spec(scaled).config, weights, ids);
    const v5 = gemmaForward(gemma3Spec({ ...scaled, configForm: 'v5' }).config, weights, ids);
    assert.deepEqual(v5.logits, v4.logits);
    assert.ok(maxDiff(v4.attention[0][0], a.attention[0][0]) > 1e-6); // linear scaling acts on the full layer
  });

  test('no soft-caps by default, and q_norm/k_norm use (1 + w)', () => {
    assert.equal(config.attn_logit_softcapping, null);
    const zeroed = new Map(weights);
    for (const key of weights.keys()) if (/[qk]_norm\.weight$/.test(key)) zeroed.set(key, { shape: [g3.headDim], data: new Float64Array(g3.headDim).fill(-1) });
    // (1 + w) = 0 zeroes q and k: every score is 0, so attention is uniform over the visible keys.
    const flat = gemmaForward(config, zeroed, ids);
    const p = flat.attention[2][0];
    for (let i = 0; i < T; i++) for (let j = 0; j <= i; j++) assert.ok(Math.abs(p[i * T + j] - 1 / (i + 1)) < 1e-12);
  });
});

describe('GPT-Neo reference', () => {
  const { config, weights } = build(neoSpec(neo));
  const run = neoForward(config, weights, ids);
  const E = neo.hidden;
  const d = E / neo.heads;

  test('rows sum to 1 and are causal; the local layer gives exactly 0 outside its window, the global one does not', () => {
    assert.deepEqual(config.attention_layers, ['global', 'local']);
    assertCausalRows(run);
    assertWindows(run, [false, true], neo.windowSize);
  });

  test('scores are the unscaled q·k (one row worked by hand)', () => {
    const w = (k: string) => weights.get(`transformer.${k}`)!.data;
    const x = (t: number) => Array.from({ length: E }, (_, e) => w('wte.weight')[ids[t] * E + e] + w('wpe.weight')[t * E + e]);
    const ln1 = (v: number[]) => {
      const mean = v.reduce((a, b) => a + b, 0) / E;
      const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / E;
      return v.map((b, e) => ((b - mean) / Math.sqrt(variance + 1e-5)) * w('h.0.ln_1.weight')[e] + w('h.0.ln_1.bias')[e]);
    };
    const h = 1;
    const proj = (name: string, v: number[]) =>
      Array.from({ length: d }, (_, c) => v.reduce((a, vi, i) => a + vi * w(`h.0.attn.attention.${name}.weight`)[(h * d + c) * E + i], 0));
    const i = T - 1;
    const q = proj('q_proj', ln1(x(i)));
    const scores = Array.from({ length: i + 1 }, (_, j) => proj('k_proj', ln1(x(j))).reduce((a, kc, c) => a + kc * q[c], 0));
    const softmax = (s: number[]) => {
      const m = Math.max(...s);
      const e = s.map((v) => Math.exp(v - m));
      const z = e.reduce((a, b) => a + b, 0);
      return e.map((v) => v / z);
    };
    const want = softmax(scores);
    const got = Array.from(run.attention[0][h].subarray(i * T, i * T + i + 1));
    assert.ok(maxDiff(got, want) < 1e-12, `got ${got}, want ${want}`);
    assert.ok(maxDiff(got, softmax(scores.map((s) => s / Math.sqrt(d)))) > 1e-3, 'the 1/√d version would be indistinguishable');
  });

  test('attnOut = Σ headOut + out_proj.bias; the residual sums; logprobs', () => {
    for (let l = 0; l < neo.layers; l++) {
      const bias = weights.get(`transformer.h.${l}.attn.attention.out_proj.bias`)!.data;
      const sum = new Float64Array(T * E).map((_, i) => bias[i % E]);
      for (const h of run.headOut[l]) h.forEach((x, i) => (sum[i] += x));
      assert.ok(maxDiff(sum, run.attnOut[l]) < 1e-12);
    }
    assertResidualSums(run);
    assertLogprobs(run, neo.vocab);
  });

  test('mask buffers in the checkpoint are ignored, and the keys may come without transformer.', () => {
    const withBuffers = randomWeights(neoSpec({ ...neo, buffers: true }), { seed: 7 });
    assert.ok(withBuffers.has('transformer.h.1.attn.attention.masked_bias'));
    assert.deepEqual(neoForward(config, withBuffers, ids).logits, run.logits);
    const bare = new Map([...weights].map(([k, t]) => [k.replace(/^transformer\./, ''), t]));
    assert.deepEqual(neoForward(config, bare, ids).logits, run.logits);
  });

  test('hooks: ones change nothing; patching the whole stream entering layer 1 with another run\'s gives its logits', () => {
    const ones = neoForward(config, weights, ids, { headMask: [[1, 1], [1, 1]] });
    assert.deepEqual(ones.logits, run.logits);
    const otherIds = ids.map((id) => (id * 7 + 3) % neo.vocab);
    const other = neoForward(config, weights, otherIds);
    assert.ok(maxDiff(other.logits, run.logits) > 1e-3);
    const patched = neoForward(config, weights, otherIds, {
      patchResidPre: (l, t, row) => {
        if (l === 1) row.set(run.residPre[1].subarray(t * E, (t + 1) * E));
      },
    });
    assert.ok(maxDiff(patched.logits, run.logits) < 1e-12);
    assert.ok(Number.isFinite(patched.logprobs[1]));
  });

  test('config: attention_types expands per layer; contradictions and long inputs are HeadlightErrors', () => {
    const four = neoSpec({ ...neo, layers: 4, attentionTypes: [[['global'], 1], [['local', 'global'], 1], [['local'], 1]] });
    assert.deepEqual(four.config.attention_layers, ['global', 'local', 'global', 'local']);
    const is = (re: RegExp) => (e: unknown) => e instanceof HeadlightError && re.test(e.message);
    assert.throws(() => neoForward({ ...config, attention_layers: ['local', 'local'] }, weights, ids), is(/attention_layers/));
    assert.throws(() => neoForward({ ...config, num_layers: 3 }, weights, ids), is(/attention_types/));
    assert.throws(() => neoForward(config, weights, new Array(33).fill(1)), is(/33/));
    const missing = new Map(weights);
    missing.delete('transformer.h.0.attn.attention.out_proj.bias');
    assert.throws(() => neoForward(config, missing, ids), is(/h\.0\.attn\.attention\.out_proj\.bias/));
  });
});

describe('written with hfCheckpoint.ts', () => {
  test('a BF16 multimodal Gemma 3 and a GPT-Neo with mask buffers round-trip into the references', async () => {
    const dir = await fsp.mkdtemp(join(tmpdir(), 'hl-gemma-neo-'));
    try {
      const gemma = await writeHfCheckpoint(join(dir, 'gemma3'), gemma3Spec({ ...g3, multimodal: true }), { seed: 3, dtype: 'BF16', shards: 2 });
      const config = JSON.parse(await fsp.readFile(join(dir, 'gemma3', 'config.json'), 'utf8')) as RefConfig;
      assert.equal(config.torch_dtype, 'bfloat16');
      const r = gemmaForward(config, gemma.weights, ids);
      const table = gemma.weights.get('model.language_model.embed_tokens.weight')!.data;
      assert.equal(r.residPre[0][2] / table[ids[0] * g3.hidden + 2], 4.90625); // √24 = 4.899 in bfloat16
      assertCausalRows(r);
      const neoCkpt = await writeHfCheckpoint(join(dir, 'neo'), neoSpec({ ...neo, buffers: true }), { seed: 3, dtype: 'F16' });
      assert.equal(neoCkpt.weights.get('transformer.h.0.attn.attention.bias')!.shape.length, 4);
      assertLogprobs(neoForward(neoCkpt.config, neoCkpt.weights, ids), neo.vocab);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
