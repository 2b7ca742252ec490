import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Gpt2Config, Gpt2Weights } from '../../extension/engine/model/checkpointTypes.js';
import { randomModel, writeRandomCheckpoint, type RandomCheckpointOptions } from '../fixtures/randomCheckpoint.js';
import { erf, geluErf, geluTanh, gpt2 } from '../reference/gpt2.js';

const tiny: RandomCheckpointOptions = { seed: 1, nLayer: 2, nHead: 3, nEmbd: 12, nPositions: 16, vocabSize: 50 };
const ids = [3, 17, 42, 0, 9, 9, 31, 12, 5, 48];

function cloneWeights(w: Gpt2Weights): Gpt2Weights {
  return structuredClone(w);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('math helpers', () => {
  test('erf matches tabulated values on both branches', () => {
    const table: [number, number][] = [
      [0, 0],
      [0.1, 0.1124629160182849],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [2.9, 0.9999589021219005],
      [3.5, 0.9999992569016276],
      [5, 0.9999999999984626],
    ];
    for (const [x, want] of table) {
      assert.ok(Math.abs(erf(x) - want) < 1e-13, `erf(${x}) = ${erf(x)}, want ${want}`);
      assert.ok(Math.abs(erf(-x) + want) < 1e-13);
    }
  });

  test('the two GELUs agree closely and differ where they should', () => {
    for (const x of [-3, -1, -0.5, 0, 0.5, 1, 3]) assert.ok(Math.abs(geluTanh(x) - geluErf(x)) < 1e-3);
    assert.ok(Math.abs(geluErf(1) - 0.8413447460685429) < 1e-13); // Φ(1)
    assert.notEqual(geluTanh(1), geluErf(1));
  });
});

describe('reference GPT-2', () => {
  const { config, weights } = randomModel(tiny);
  const run = gpt2(config, weights, ids);
  const T = ids.length;
  const { nLayer: L, nHead: H, vocabSize: V } = config;

  test('attention rows are causal and sum to 1', () => {
    assert.equal(run.attention.length, L * H * T * T);
    for (let lh = 0; lh < L * H; lh++) {
      for (let i = 0; i < T; i++) {
        let sum = 0;
        for (let j = 0; j < T; j++) {
          const p = run.attention[(lh * T + i) * T + j];
          if (j > i) assert.equal(p, 0);
          else assert.ok(p > 0 && p <= 1);
          sum += p;
        }
        assert.ok(Math.abs(sum - 1) < 1e-6, `row ${i} of map ${lh} sums to ${sum}`);
      }
    }
  });

  /** Median over rows 3.. of every map of the row's largest weight. */
  function medianRowMax(attention: Float32Array): number {
    const maxima: number[] = [];
    for (let lh = 0; lh < L * H; lh++) {
      for (let i = 3; i < T; i++) {
        maxima.push(Math.max(...attention.subarray((lh * T + i) * T, (lh * T + i) * T + i + 1)));
      }
    }
    maxima.sort((a, b) => a - b);
    return maxima[maxima.length >> 1];
  }

  test('random attention is far from uniform (default qkScale), near uniform with qkScale 0', () => {
    const peaked = medianRowMax(run.attention);
    assert.ok(peaked > 0.5, `median max row weight ${peaked}`);
    const flat = randomModel({ ...tiny, qkScale: 0 });
    const flatMedian = medianRowMax(gpt2(flat.config, flat.weights, ids).attention);
    assert.ok(flatMedian < 0.4, `qkScale 0: median max row weight ${flatMedian}`);
  });

  test('logprobs are NaN at 0 and log-softmax of the previous row elsewhere', () => {
    assert.ok(Number.isNaN(run.logprobs[0]));
    for (let t = 1; t < T; t++) {
      const row = run.logits.subarray((t - 1) * V, t * V);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
      assert.ok(Math.abs(run.logprobs[t] - (row[ids[t]] - lse)) < 1e-4);
      assert.ok(run.logprobs[t] < 0);
    }
  });

  test('a prefix gives the same rows as the whole sequence (causality end to end)', () => {
    const short = gpt2(config, weights, ids.slice(0, 4));
    assert.ok(maxAbsDiff(short.logits, run.logits.subarray(0, 4 * V)) < 1e-5);
  });

  test('zeroed blocks: uniform attention and logits = ln_f(wte[id] + wpe[t]) · wteᵀ', () => {
    const one: Gpt2Config = { ...config, nLayer: 1 };
    const w = cloneWeights(weights);
    w.layers = [w.layers[0]];
    const l = w.layers[0];
    for (const part of [l.attnQkv, l.attnProj, l.mlpFc, l.mlpProj]) {
      part.weight.fill(0);
      part.bias.fill(0);
    }
    const out = gpt2(one, w, ids);
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        for (let j = 0; j <= i; j++) assert.ok(Math.abs(out.attention[(h * T + i) * T + j] - 1 / (i + 1)) < 1e-7);
      }
    }
    const E = config.nEmbd;
    for (let t = 0; t < T; t++) {
      const x = Array.from({ length: E }, (_, i) => w.wte[ids[t] * E + i] + w.wpe[t * E + i]);
      const mean = x.reduce((a, b) => a + b) / E;
      const sd = Math.sqrt(x.reduce((a, b) => a + (b - mean) ** 2, 0) / E + config.layerNormEpsilon);
      const y = x.map((v, i) => ((v - mean) / sd) * w.lnF.weight[i] + w.lnF.bias[i]);
      for (let v = 0; v < V; v++) {
        const want = y.reduce((s, yi, i) => s + yi * w.wte[v * E + i], 0);
        assert.ok(Math.abs(out.logits[t * V + v] - want) < 1e-5);
      }
    }
  });

  test('a zero head mask equals zeroed c_proj weights; a mask of ones changes nothing', () => {
    const masked = gpt2(config, weights, ids, { headMask: [[0, 0, 0], [1, 1, 1]] });
    const w = cloneWeights(weights);
    w.layers[0].attnProj.weight.fill(0);
    const zeroed = gpt2(config, w, ids);
    assert.ok(maxAbsDiff(masked.logits, zeroed.logits) < 1e-5);
    assert.ok(maxAbsDiff(masked.logits, run.logits) > 1e-2, 'masking layer 0 should matter');
    const ones = gpt2(config, weights, ids, { headMask: [[1, 1, 1], [1, 1, 1]] });
    assert.deepEqual(ones.logits, run.logits);
    // Masking one head only changes what comes after it, not that head's map in the same layer.
    const oneHead = gpt2(config, weights, ids, { headMask: [[1, 0, 1], [1, 1, 1]] });
    assert.deepEqual(oneHead.attention.subarray(0, H * T * T), run.attention.subarray(0, H * T * T));
  });

  test('scale_attn_by_inverse_layer_idx equals dividing q by (layer + 1)', () => {
    const inverse = gpt2({ ...config, scaleAttnByInverseLayerIdx: true }, weights, ids);
    const w = cloneWeights(weights);
    const E = config.nEmbd;
    w.layers.forEach((layer, l) => {
      for (let row = 0; row < E; row++) for (let c = 0; c < E; c++) layer.attnQkv.weight[row * 3 * E + c] /= l + 1;
      for (let c = 0; c < E; c++) layer.attnQkv.bias[c] /= l + 1;
    });
    const scaledQ = gpt2(config, w, ids);
    assert.ok(maxAbsDiff(inverse.attention, scaledQ.attention) < 1e-6);
    assert.ok(maxAbsDiff(inverse.logits, scaledQ.logits) < 1e-4);
    assert.ok(maxAbsDiff(inverse.attention, run.attention) > 1e-3, 'layer 1 must change');
    // Layer 0 divides by 1: identical maps.
    assert.deepEqual(inverse.attention.subarray(0, H * T * T), run.attention.subarray(0, H * T * T));
  });

  test('the activation function matters', () => {
    const exact = gpt2({ ...config, activation: 'gelu' }, weights, ids);
    const diff = maxAbsDiff(exact.logits, run.logits);
    assert.ok(diff > 1e-7 && diff < 0.1, `gelu vs gelu_new differ by ${diff}`);
  });

  test('refuses out-of-range ids and too many tokens', () => {
    assert.throws(() => gpt2(config, weights, [1, V]), /token id 50 outside/);
    assert.throws(() => gpt2(config, weights, new Array(17).fill(1)), /need 1\.\.16 tokens/);
  });
});

describe('random checkpoints', () => {
  test('are deterministic for a seed, byte for byte, and differ across seeds', async () => {
    const root = await fsp.mkdtemp(join(tmpdir(), 'headlight-rand-'));
    try {
      const opts = { ...tiny, dtype: 'F16' as const, buffers: true };
      const a = await writeRandomCheckpoint(join(root, 'a'), opts);
      const b = await writeRandomCheckpoint(join(root, 'b'), opts);
      const c = await writeRandomCheckpoint(join(root, 'c'), { ...opts, seed: 2 });
      const bytes = (d: string) => fsp.readFile(join(d, 'model.safetensors'));
      assert.ok((await bytes(a.dir)).equals(await bytes(b.dir)));
      assert.ok(!(await bytes(a.dir)).equals(await bytes(c.dir)));
      assert.deepEqual(a.weights, b.weights);
      assert.equal(await fsp.readFile(a.files.config, 'utf8'), await fsp.readFile(b.files.config, 'utf8'));
      // LN weights near 1, biases nonzero.
      const ln = a.weights.layers[0].ln1;
      assert.ok(ln.weight.every((v) => v > 0.5 && v < 1.5) && ln.weight.some((v) => v !== 1));
      assert.ok(a.weights.layers[1].attnQkv.bias.every((v) => v !== 0));
    } finally {
      await fsp.rm(root, { recursive: true, force: true });
    }
  });
});
