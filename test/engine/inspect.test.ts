/**
 * Inside a head, on random tiny checkpoints with fixed seeds: the q·k breakdown reproduces the stored attention row
 * and the reference's queries/keys/values, value-weighted attention equals a direct computation from q, k, v and
 * W_O written here with plain loops, and both survive incremental runs.
 */
import { runCli } from './runCli';
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeRandomCheckpoint, type RandomCheckpoint } from '../fixtures/randomCheckpoint';
import { gpt2, layerNorm, linear, matrix } from '../reference/gpt2';
import { loadEngine } from '../../extension/engine/load';
import type { Gpt2Engine, Run } from '../../extension/engine/analyses/engine';
import type { QkBreakdown } from '../../extension/common/engineProtocol';
import { qkProducts } from '../../extension/engine/analyses/inspect';

const TEXT = 'The quick brown fox jumps over the lazy dog. Then the fox naps, and the dog naps too.';

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length');
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

const root = mkdtempSync(join(tmpdir(), 'headlight-inspect-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** ‖v·W_O^h‖ with plain loops: W_O^h are rows h·D..h·D+D−1 of c_proj's [E, E] weight. */
function valueNorm(v: ArrayLike<number>, proj: Float32Array, h: number, D: number, E: number): number {
  let sq = 0;
  for (let e = 0; e < E; e++) {
    let s = 0;
    for (let c = 0; c < D; c++) s += v[c] * proj[(h * D + c) * E + e];
    sq += s * s;
  }
  return Math.sqrt(sq);
}

/** softmax(q·k_j·scale) with plain loops, from a breakdown's q and keys. */
function softmaxRow(b: QkBreakdown, D: number): number[] {
  const scores: number[] = [];
  for (let j = 0; j <= b.index; j++) {
    let dot = 0;
    for (let c = 0; c < D; c++) dot += b.query[c] * b.keys[j * D + c];
    scores.push(dot * b.scale);
  }
  const max = Math.max(...scores);
  const e = scores.map((s) => Math.exp(s - max));
  const sum = e.reduce((a, x) => a + x, 0);
  return e.map((x) => x / sum);
}

describe('inside a head', () => {
  let engine: Gpt2Engine;
  let ck: RandomCheckpoint;
  let run: Run;
  const L = 2;
  const H = 3;
  const E = 24;
  const D = E / H;
  before(async () => {
    ck = await writeRandomCheckpoint(join(root, 'ck'), { seed: 41, nLayer: L, nHead: H, nEmbd: E, nPositions: 96, scaleAttnByInverseLayerIdx: true });
    engine = (await loadEngine(ck.dir, { precision: 'fp32', threads: 1 })).engine;
  });
  after(() => engine.dispose());

  test('softmax of the q·k scores is the stored attention row, and the reference\'s, to 1e-5', async () => {
    run = await engine.analyze(TEXT);
    const ids = run.tokens.map((t) => t.id);
    const T = ids.length;
    const ref = gpt2(ck.config, ck.weights, ids);
    for (const [l, h, i] of [[0, 0, T - 1], [1, 2, T - 1], [1, 1, 7], [0, 2, 0]]) {
      const b = await engine.qk(run, l, h, i);
      assert.equal(b.query.length, D);
      assert.equal(b.keys.length, (i + 1) * D);
      assert.equal(b.scale, 1 / Math.sqrt(D) / (l + 1));
      assert.ok(maxDiff(b.probs, b.attention) < 1e-5, `probs vs stored row: ${maxDiff(b.probs, b.attention)}`);
      assert.ok(maxDiff(softmaxRow(b, D), b.attention) < 1e-5);
      const refRow = ref.attention.subarray(((l * H + h) * T + i) * T, ((l * H + h) * T + i) * T + i + 1);
      assert.ok(maxDiff(b.probs, refRow) < 1e-5, `probs vs reference: ${maxDiff(b.probs, refRow)}`);
      // Products sum to the scores.
      const prod = qkProducts(b.query, b.keys);
      for (let j = 0; j <= i; j++) {
        let s = 0;
        for (let c = 0; c < D; c++) s += prod[j * D + c];
        assert.ok(Math.abs(s * b.scale - b.scores[j]) < 1e-5);
      }
    }
    const peak = Math.max(...(await engine.qk(run, 1, 0, T - 1)).probs);
    assert.ok(peak > 3 / T, 'attention far from uniform');
  });

  test('layer 0\'s q, k and v are the reference\'s (ln_1 then c_attn of the embeddings)', async () => {
    const ids = run.tokens.map((t) => t.id);
    const T = ids.length;
    const x = matrix(T, E);
    for (let t = 0; t < T; t++) for (let e = 0; e < E; e++) x.data[t * E + e] = ck.weights.wte[ids[t] * E + e] + ck.weights.wpe[t * E + e];
    const qkv = linear(layerNorm(x, ck.weights.layers[0].ln1, ck.config.layerNormEpsilon), ck.weights.layers[0].attnQkv); // [T, 3E]
    const h = 1;
    const i = T - 3;
    const b = await engine.qk(run, 0, h, i);
    const col = (t: number, part: number) => Array.from(qkv.data.subarray(t * 3 * E + part * E + h * D, t * 3 * E + part * E + (h + 1) * D));
    assert.ok(maxDiff(b.query, col(i, 0)) < 1e-5);
    assert.ok(maxDiff(b.keys, Array.from({ length: i + 1 }, (_, j) => col(j, 1)).flat()) < 1e-5);
    assert.ok(maxDiff(b.values, Array.from({ length: i + 1 }, (_, j) => col(j, 2)).flat()) < 1e-5);
  });

  test('value norms and value-weighted rows equal a direct computation from q, k, v and W_O', async () => {
    const T = run.length;
    for (let l = 0; l < L; l++) {
      const proj = ck.weights.layers[l].attnProj.weight;
      const perHead: number[][] = []; // [H][i+1] α·‖v W_O^h‖ for query T−1
      for (let h = 0; h < H; h++) {
        const b = await engine.qk(run, l, h, T - 1);
        const norms = Array.from({ length: T }, (_, j) => valueNorm(b.values.subarray(j * D, (j + 1) * D), proj, h, D, E));
        assert.ok(maxDiff(b.valueNorms, norms) < 1e-4 * Math.max(...norms), `value norms, layer ${l} head ${h}`);
        assert.ok(maxDiff(run.valueNorms(l, h), norms) < 1e-4 * Math.max(...norms));
        const alpha = softmaxRow(b, D);
        const raw = alpha.map((a, j) => a * norms[j]);
        perHead.push(raw);
        const sum = raw.reduce((a, x) => a + x, 0);
        const vw = run.row({ layer: l, head: h }, T - 1, 'value-weighted');
        assert.ok(maxDiff(vw, raw.map((x) => x / sum)) < 1e-5, `value-weighted row, layer ${l} head ${h}: ${maxDiff(vw, raw.map((x) => x / sum))}`);
        assert.ok(maxDiff(vw, run.row({ layer: l, head: h }, T - 1)) > 1e-3, 'value weighting changes the row');
      }
      // A layer's mean: the heads' α·‖v W_O‖ summed, then normalized.
      const total = perHead.flat().reduce((a, x) => a + x, 0);
      const want = Array.from({ length: T }, (_, j) => perHead.reduce((a, r) => a + r[j], 0) / total);
      assert.ok(maxDiff(run.row({ layer: l, head: 'mean' }, T - 1, 'value-weighted'), want) < 1e-5);
    }
  });

  test('value-weighted columns agree with rows, and top sources follow them', async () => {
    const T = run.length;
    for (const sel of [{ layer: 1, head: 2 }, { layer: 0, head: 'mean' }, { layer: 'mean', head: 'mean' }] as const) {
      for (const j of [0, 3, T - 2]) {
        const colVw = run.column(sel, j, 'value-weighted');
        const want = Array.from({ length: T }, (_, i) => (i < j ? 0 : run.row(sel, i, 'value-weighted')[j]));
        assert.ok(maxDiff(colVw, want) < 1e-6, `column ${j} of ${JSON.stringify(sel)}`);
      }
      const top = run.topSources(sel, T - 1, 3, 'value-weighted');
      const row = run.row(sel, T - 1, 'value-weighted');
      assert.equal(top[0].weight, Math.max(...row));
    }
  });

  test('after an incremental edit, queries, value norms and value-weighted rows equal a full recompute', async () => {
    const base = await engine.analyze(TEXT);
    engine.keepQueries(true); // the Inside-a-head view is open: every run keeps its queries
    await engine.qk(base, 0, 0, 0);
    const edited = TEXT.replace('lazy', 'sleepy') + ' The end.';
    const inc = await engine.update(edited);
    assert.ok(inc.stats.reused > 0 && inc.stats.computed < inc.length, `reused ${inc.stats.reused}`);
    const T = inc.length;
    const got = [await engine.qk(inc, 1, 1, T - 1), await engine.qk(inc, 0, 2, 5)];
    const vw = inc.row({ layer: 'mean', head: 'mean' }, T - 1, 'value-weighted');
    const col = inc.column({ layer: 1, head: 0 }, 2, 'value-weighted');
    const full = await engine.analyze(edited);
    const want = [await engine.qk(full, 1, 1, T - 1), await engine.qk(full, 0, 2, 5)];
    for (let k = 0; k < 2; k++) {
      assert.ok(maxDiff(got[k].query, want[k].query) < 1e-5);
      assert.ok(maxDiff(got[k].keys, want[k].keys) < 1e-5);
      assert.ok(maxDiff(got[k].valueNorms, want[k].valueNorms) < 1e-5);
      assert.ok(maxDiff(got[k].probs, got[k].attention) < 1e-5);
    }
    assert.ok(maxDiff(vw, full.row({ layer: 'mean', head: 'mean' }, T - 1, 'value-weighted')) < 1e-5);
    assert.ok(maxDiff(col, full.column({ layer: 1, head: 0 }, 2, 'value-weighted')) < 1e-5);
    engine.keepQueries(false);
  });

  test('a bad head or position is refused clearly', async () => {
    const r = await engine.analyze(TEXT);
    await assert.rejects(engine.qk(r, 0, 3, 1), /Head 0\.3 is not in this model/);
    await assert.rejects(engine.qk(r, 0, 0, r.length), /outside the run/);
  });
});

describe('CLI: ablate and qk', () => {
  let ck: RandomCheckpoint;
  const file = join(root, 'main.py');
  before(async () => {
    ck = await writeRandomCheckpoint(join(root, 'cli'), { seed: 42, nLayer: 2, nHead: 2, nEmbd: 16, nPositions: 64 });
    writeFileSync(file, 'def f(x):\n    return x + 1\n\nprint(f(2))\n');
  });

  test('ablate prints the reference\'s loss change and the most affected tokens', async () => {
    const r = await runCli('ablate', '--model', ck.dir, '--file', file, '--heads', '0.1,1.0', '--mode', 'zero');
    assert.equal(r.code, 0, r.err);
    const ids = (await loadEngine(ck.dir, { threads: 1 }).then(async ({ engine }) => { const t = engine.tokenizer.encode(readFileSync(file, 'utf8')); await engine.dispose(); return t; })).map((t) => t.id);
    const plain = gpt2(ck.config, ck.weights, ids);
    const ab = gpt2(ck.config, ck.weights, ids, { headMask: [[1, 0], [0, 1]] });
    const loss = (lp: Float32Array) => -lp.slice(1).reduce((a, x) => a + x, 0) / (lp.length - 1);
    const m = /loss: ([\d.]+) -> ([\d.]+) nats\/token/.exec(r.out);
    assert.ok(m, r.out);
    assert.ok(Math.abs(Number(m[1]) - loss(plain.logprobs)) < 1e-3 && Math.abs(Number(m[2]) - loss(ab.logprobs)) < 1e-3, r.out);
    assert.match(r.out, /most affected tokens/);
    assert.equal((await runCli('ablate', '--model', ck.dir, '--file', file, '--heads', '7.0')).code, 2);
    assert.equal((await runCli('ablate', '--model', ck.dir, '--file', file, '--heads', '0.1', '--mode', 'half')).code, 2);
  });

  test('qk prints the query and the top keys with scores before and after the softmax', async () => {
    const r = await runCli('qk', '--model', ck.dir, '--file', file, '--at', '4:7', '--head', '1.1');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^query token \d+ "f" at 4:7, head 1\.1 \(d = 8/);
    const rows = r.out.split('\n').filter((l) => /^ {2}".*"@\d+ /.test(l));
    assert.ok(rows.length > 3);
    const probs = rows.map((l) => Number(/"@\d+\s+(\S+)\s+(\S+)/.exec(l)![2]));
    assert.ok(probs.every((p) => p >= 0 && p <= 1) && probs[0] > 0.05, r.out);
    for (let k = 1; k < probs.length; k++) assert.ok(probs[k - 1] >= probs[k], 'sorted by attention');
    assert.equal((await runCli('qk', '--model', ck.dir, '--file', file, '--at', '4:7')).code, 2);
  });
});
