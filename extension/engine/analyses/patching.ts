/**
 * Activation patching between two versions of a text with equal token counts: run the corrupted text with one
 * activation replaced by the clean run's and read the metric logit(answer) − logit(wrong) at one position.
 *   resid: the residual stream entering layer l at position t (one run per layer and position);
 *   heads: head h of layer l's output (before the output projection) at every position (one run per head).
 *
 * The metric reads two logits at one position: the final residual row there (resid_final) through the model's own
 * final norm, two rows of the unembedding and the final soft-cap, in JavaScript (2·E multiply-adds; the unembedding
 * rows come once from the readout head). log p(a) − log p(w) would give the same number, but the graph gives one
 * target's log-probability per position, so it would take two runs per cell.
 *
 * What makes the many runs cheap (all exact, by causality):
 *   - positions after `at` never change the metric: every run covers positions 0..at only, and resid cells at t > at
 *     are the corrupted metric without a run;
 *   - a patch at layer l leaves the layers before it as in the corrupted run: each run starts at layer l on the
 *     corrupted run's stored residual stream (graph inputs layer_rows/resid_rows/resid_in, as ranking heads does);
 *   - a resid patch at position t leaves positions before t as in the corrupted run: the run covers t..at on the
 *     corrupted run's keys and values of 0..t−1 (about half the rows of a full run on average);
 *   - before the first token where the texts differ, both runs are the same computation: resid cells there are the
 *     corrupted metric without a run, and a head's run covers only the first differing position..at (a one-word
 *     change near the end of a file: a few rows per run instead of all of them).
 * Head patching feeds the clean head's [T, D] rows through the graph's head_rows input (gpt2Graph.ts): the head is
 * gated off (head_mask 0, head_mean 0) and head_rows carries its clean output per position. Patching the head
 * through the residual stream would not be exact: the MLP of the same layer (GPT-2, Llama) and Gemma's
 * post-attention norm read the attention output before the next layer's residual.
 */
import type { EngineEvents, PatchCell, PatchParams, PatchResult, PatchTarget } from '../../common/engineProtocol';
import { HeadlightError } from '../../common/errors';
import type { ModelDims } from '../model/dims';
import { throwIfAborted } from './ablation';
import { normCentreAndScale } from './attribution';
import type { Gpt2Engine } from './engine';
import { CHUNK, type Ablation, type GraphRunner } from './graphRunner';
import { KvCache } from './kvCache';
import type { NormWeights, ReadoutHead } from './readoutHead';

export type { PatchCell, PatchResult, PatchTarget };

/** One progress report of patchActivations (the `patchProgress` event without its id). */
export type PatchProgress = Omit<EngineEvents['patchProgress'], 'progressId'>;

export interface PatchOptions {
  signal?: AbortSignal;
  /**
   * Once before the first patched run (done 0, no cell) and after every one (the cell it filled); each call carries
   * the clean and corrupted runs' metrics, known before any patched run.
   */
  onProgress?: (p: PatchProgress) => void;
}

/** The metric of one residual row: logit(answer) − logit(wrong) through the final norm, unembedding and soft-cap. */
export interface LogitDiff {
  (row: ArrayLike<number>): number;
}

/** logit(answer) − logit(wrong) of a final residual row [E], computed in float64. */
export function logitDiff(norm: NormWeights, unembed: Float32Array /* [2, E]: answer, wrong */, softcap: number | null): LogitDiff {
  const E = norm.weight.length;
  return (row) => {
    const { mean, scale } = normCentreAndScale(norm, row, E);
    let a = 0;
    let w = 0;
    for (let e = 0; e < E; e++) {
      const x = (row[e] - mean) * scale * norm.weight[e] + (norm.bias ? norm.bias[e] : 0); // the normed row
      a += x * unembed[e];
      w += x * unembed[E + e];
    }
    if (softcap !== null) return softcap * Math.tanh(a / softcap) - softcap * Math.tanh(w / softcap);
    return a - w;
  };
}

/** A plain run of ids[0..n−1]: the residual stream entering each layer, each head's output, the final rows, the cache. */
interface PlainRun {
  resid: Float32Array[]; // [L] × [n, E]
  headZ?: Float32Array[]; // [L] × [H, n, D]
  final: Float32Array; // [n, E]
  cache: KvCache;
}

/** Checks both texts' ids and the metric's tokens; returns the metric's position. */
function checkPair(clean: number[], corrupt: number[], p: { answer: number; wrong: number; at?: number }, vocab: number): number {
  if (clean.length !== corrupt.length) {
    throw new HeadlightError(
      'patch-length-mismatch',
      `The clean text has ${clean.length} tokens and the corrupted text ${corrupt.length}: activation patching needs equal token counts (position t of one stands for position t of the other).`,
      'Edit one version so that both have the same number of tokens (e.g. swap a word for another word of as many tokens).',
    );
  }
  const T = clean.length;
  if (T === 0) throw new HeadlightError('empty-text', 'There is no text to patch.', 'Give two versions of a text of at least one token.');
  for (const [name, id] of [['answer', p.answer], ['wrong', p.wrong]] as const) {
    if (!(Number.isInteger(id) && id >= 0 && id < vocab)) throw new HeadlightError('bad-token', `The ${name} token id ${id} is outside the vocabulary 0..${vocab - 1}.`, `Pick a token id in 0..${vocab - 1}.`);
  }
  if (p.answer === p.wrong) throw new HeadlightError('bad-token', `The answer and the wrong token are both ${p.answer}: their logit difference is always 0.`, 'Pick two different tokens.');
  const at = p.at ?? T - 1;
  if (!(Number.isInteger(at) && at >= 0 && at < T)) throw new HeadlightError('bad-index', `Position ${at} is outside the window's ${T} tokens.`, `Pick a position in 0..${T - 1}.`);
  return at;
}

/**
 * Activation patching of `corrupt` with `clean`'s activations (see the top of this file). Every run is queued on its
 * own behind the engine's other work, so analyses slip in between; `signal` stops between runs.
 */
export async function patchActivations(engine: Gpt2Engine, readout: () => Promise<ReadoutHead>, p: Omit<PatchParams, 'progressId'>, opts: PatchOptions = {}): Promise<PatchResult> {
  const t0 = performance.now();
  const dims = engine.dims;
  const { nLayer: L, nHead: H, headDim: D, nEmbd: E } = dims;
  const cleanAll = engine.tokenizer.encode(p.clean);
  const corruptAll = engine.tokenizer.encode(p.corrupt);
  if (cleanAll.length !== corruptAll.length && !p.window) checkPair(cleanAll.map((t) => t.id), corruptAll.map((t) => t.id), p, dims.vocabSize);
  const window = engine.chooseWindow(cleanAll.length, p.window);
  engine.chooseWindow(corruptAll.length, window);
  const clean = cleanAll.slice(window.start, window.end).map((t) => t.id);
  const corrupt = corruptAll.slice(window.start, window.end).map((t) => t.id);
  const at = checkPair(clean, corrupt, p, dims.vocabSize);
  const targets = new Set<PatchTarget>(p.targets ?? ['resid', 'heads']);
  const T = clean.length;
  const n = at + 1; // positions that can change the metric

  const head = await readout();
  const metric = logitDiff(head.finalNorm, await head.unembedRows([p.answer, p.wrong]), head.finalSoftcap);
  const scratch = <R>(job: (runner: GraphRunner) => Promise<R>): Promise<R> =>
    engine.scratch(async (runner) => {
      throwIfAborted(opts.signal);
      return job(runner);
    });

  const cleanRun = await scratch((runner) => plainRun(runner, clean.slice(0, n), targets.has('heads')));
  const corruptRun = await scratch((runner) => plainRun(runner, corrupt.slice(0, n), false));
  const metricClean = metric(cleanRun.final.subarray(at * E, n * E));
  const metricCorrupt = metric(corruptRun.final.subarray(at * E, n * E));

  const residCells = targets.has('resid') ? L * n : 0;
  const headCells = targets.has('heads') ? L * H : 0;
  const total = residCells + headCells;
  let done = 0;
  const report = (cell: PatchCell) => opts.onProgress?.({ done: ++done, total, cell, metricClean, metricCorrupt });
  opts.onProgress?.({ done, total, metricClean, metricCorrupt }); // before the first run: a view can normalize from the first cell
  const ids = corrupt.slice(0, n);
  // Before the first token that differs, the two runs are the same computation (causal attention): patching there
  // changes nothing, so those cells are the corrupted metric with no run, and a head's patched run starts there.
  let first = 0;
  while (first < n && clean[first] === corrupt[first]) first++;
  let runs = 0;

  const resid = new Float32Array(targets.has('resid') ? L * T : 0).fill(metricCorrupt); // [L, T]
  for (let l = 0; l < residCells / n; l++) {
    for (let t = 0; t < n; t++) {
      if (t < first) {
        report({ target: 'resid', layer: l, index: t, value: metricCorrupt });
        continue;
      }
      // Rows t..at of the corrupted stream entering layer l, row t the clean run's.
      const rows = corruptRun.resid[l].slice(t * E, n * E); // [n − t, E]
      rows.set(cleanRun.resid[l].subarray(t * E, (t + 1) * E), 0);
      const final = await scratch((runner) => patchedRun(runner, ids, t, corruptRun.cache, l, (a, b) => ({ resid: rows.subarray((a - t) * E, (b - t) * E) })));
      runs++;
      resid[l * T + t] = metric(final);
      report({ target: 'resid', layer: l, index: t, value: resid[l * T + t] });
    }
  }

  const heads = new Float32Array(headCells); // [L, H]
  for (let k = 0; k < headCells; k++) {
    const l = Math.floor(k / H);
    const h = k % H;
    const mask = new Float32Array(L * H).fill(1); // [L, H]
    mask[k] = 0;
    const z = cleanRun.headZ![l]; // [H, n, D]
    if (first >= n) {
      heads[k] = metricCorrupt;
      report({ target: 'heads', layer: l, index: h, value: heads[k] });
      continue;
    }
    const final = await scratch((runner) =>
      patchedRun(runner, ids, first, corruptRun.cache, l, (a, b) => {
        const rows = new Float32Array(H * (b - a) * D); // [H, b − a, D]: zeros but head h
        rows.set(z.subarray((h * n + a) * D, (h * n + b) * D), h * (b - a) * D);
        return { resid: corruptRun.resid[l].subarray(a * E, b * E), mask, rows };
      }),
    );
    runs++;
    heads[k] = metric(final);
    report({ target: 'heads', layer: l, index: h, value: heads[k] });
  }

  return { window, tokens: T, nLayer: L, nHead: H, position: at, answer: p.answer, wrong: p.wrong, metricClean, metricCorrupt, resid, heads, cells: total, runs, ms: performance.now() - t0 };
}

/**
 * The raw metric with the clean residual stream entering `layer` patched in at several positions at once (the
 * check that patching every position of layer 0 gives back the clean run; a building block for coarser views).
 */
export async function patchResidRows(engine: Gpt2Engine, readout: () => Promise<ReadoutHead>, p: Omit<PatchParams, 'progressId' | 'targets' | 'window'>, layer: number, positions: number[]): Promise<number> {
  const { nLayer: L, nEmbd: E, vocabSize } = engine.dims;
  const clean = engine.tokenizer.encode(p.clean).map((t) => t.id);
  const corrupt = engine.tokenizer.encode(p.corrupt).map((t) => t.id);
  const at = checkPair(clean, corrupt, p, vocabSize);
  if (!(Number.isInteger(layer) && layer >= 0 && layer < L)) throw new HeadlightError('bad-layer', `Layer ${layer} is outside the model's ${L} layers.`, `Pick a layer in 0..${L - 1}.`);
  const n = at + 1;
  const head = await readout();
  const metric = logitDiff(head.finalNorm, await head.unembedRows([p.answer, p.wrong]), head.finalSoftcap);
  const cleanRun = await engine.scratch((runner) => plainRun(runner, clean.slice(0, n), false));
  const corruptRun = await engine.scratch((runner) => plainRun(runner, corrupt.slice(0, n), false));
  const inside = positions.filter((t) => t < n);
  if (!inside.length) return metric(corruptRun.final.subarray(at * E, n * E));
  const start = Math.min(...inside);
  const rows = corruptRun.resid[layer].slice(start * E, n * E); // [n − start, E]
  for (const t of inside) rows.set(cleanRun.resid[layer].subarray(t * E, (t + 1) * E), (t - start) * E);
  const final = await engine.scratch((runner) => patchedRun(runner, corrupt.slice(0, n), start, corruptRun.cache, layer, (a, b) => ({ resid: rows.subarray((a - start) * E, (b - start) * E) })));
  return metric(final);
}

/** Runs ids from scratch in chunks of CHUNK positions: the stream entering every layer, head outputs if asked, the cache. */
async function plainRun(runner: GraphRunner, ids: number[], withHeads: boolean): Promise<PlainRun> {
  const { nLayer: L, nHead: H, headDim: D, nEmbd: E } = runner.dims;
  const n = ids.length;
  const cache = new KvCache(runner.dims);
  const resid = Array.from({ length: L }, () => new Float32Array(n * E)); // [L] × [n, E]
  const headZ = withHeads ? Array.from({ length: L }, () => new Float32Array(H * n * D)) : undefined; // [L] × [H, n, D]
  const final = new Float32Array(n * E); // [n, E]
  const layers = Array.from({ length: L }, (_, l) => l);
  for (let past = 0; past < n; past += CHUNK) {
    const end = Math.min(n, past + CHUNK);
    const m = end - past;
    const { feeds } = runner.feeds(cache, ids, past, end);
    const fetches = ['resid_final', ...layers.flatMap((l) => [`resid_${l}`, `present_k_${l}`, `present_v_${l}`, ...(withHeads ? [`head_z_${l}`] : [])])];
    const out = await runner.run(feeds, fetches);
    final.set(out.resid_final.data as Float32Array, past * E);
    for (let l = 0; l < L; l++) {
      resid[l].set(out[`resid_${l}`].data as Float32Array, past * E);
      cache.store(l, out, past, m);
      if (!headZ) continue;
      const z = out[`head_z_${l}`].data as Float32Array; // [1, H, m, D]
      for (let h = 0; h < H; h++) headZ[l].set(z.subarray(h * m * D, (h + 1) * m * D), (h * n + past) * D);
    }
  }
  return { resid, headZ, final, cache };
}

/**
 * Runs positions start..ids.length−1 from `layer` on `base` (the corrupted run's keys and values; positions before
 * `start` are read from it), each chunk's layer input and head replacement from `inputs(a, b)`. Returns the last
 * position's final residual row [E]. A run longer than a chunk writes its own keys and values into a copy of `base`.
 */
async function patchedRun(
  runner: GraphRunner,
  ids: number[],
  start: number,
  base: KvCache,
  layer: number,
  inputs: (a: number, b: number) => { resid: Float32Array; mask?: Float32Array; rows?: Float32Array },
): Promise<Float32Array> {
  const { nLayer: L, nEmbd: E } = runner.dims;
  const n = ids.length;
  const cache = n - start > CHUNK ? fork(base, runner.dims, layer) : base;
  const keepAll = new Float32Array(L * runner.dims.nHead).fill(1);
  const noMeans = new Float32Array(L * runner.dims.nHead * runner.dims.headDim);
  const layers = Array.from({ length: L }, (_, l) => l);
  let last = new Float32Array(E);
  for (let past = start; past < n; past += CHUNK) {
    const end = Math.min(n, past + CHUNK);
    const more = end < n;
    const got = inputs(past, end);
    const ablation: Ablation = { mask: got.mask ?? keepAll, means: noMeans, from: { layer, resid: got.resid }, rows: got.rows };
    const { feeds } = runner.feeds(cache, ids, past, end, ablation);
    const out = await runner.run(feeds, ['resid_final', ...(more ? layers.filter((l) => l >= layer).flatMap((l) => [`present_k_${l}`, `present_v_${l}`]) : [])]);
    for (let l = layer; more && l < L; l++) cache.store(l, out, past, end - past);
    if (!more) last = (out.resid_final.data as Float32Array).slice((end - past - 1) * E, (end - past) * E);
  }
  return last;
}

/** A cache for one patched run: layers from `layer` on copied from base (they are rewritten), the ones before shared. */
function fork(base: KvCache, dims: ModelDims, layer: number): KvCache {
  const cache = new KvCache(dims);
  for (let l = 0; l < dims.nLayer; l++) {
    cache.keys[l] = l < layer ? base.keys[l] : base.keys[l].slice();
    cache.values[l] = l < layer ? base.values[l] : base.values[l].slice();
  }
  return cache;
}
