/**
 * The logit lens: the residual stream entering each layer l = 0…L−1 (l = 0: the embeddings) read through the
 * model's own final norm, unembedding and final soft-cap; row L is the model's output. Per token and layer: the
 * log-probability of the actual next token and the top guesses; per token, the layer its guess settles at.
 *
 * Computed where it is looked at, never as part of the normal run: the normal run keeps every layer's residual rows
 * (RunState.residuals), and the lens sends the rows looked at through the lens head (readoutHead.ts) in blocks: one
 * token (the cursor's) is L + 1 rows; the visible tokens' grid goes CHUNK positions at a time. Attribution, which
 * also needs each head's output, makes a scratch run of the graph on the live key/value cache (`residuals`: rows
 * a..b−1 with past = a; nothing is committed).
 */
import type { LensGrid, TokenLens } from '../../common/engineProtocol';
import { HeadlightError } from '../../common/errors';
import { LENS_TOP_K } from '../graph/lensGraph';
import type { SessionOptions } from '../graph/session';
import { throwIfAborted } from './ablation';
import type { Gpt2Engine, Run } from './engine';
import { CHUNK, type GraphRunner } from './graphRunner';
import { ReadoutHead } from './readoutHead';

export type { LensGrid, TokenLens };
import type { RunState } from './runState';

/** What a scratch run over rows a..b−1 returns. */
export interface Residuals {
  /** [L+1] each [n, E]: the stream entering layer l (entry L: entering the final norm). */
  resid: Float32Array[];
  /** [L] each [H, n, D]: each head's output before the output projection (when asked). */
  headZ?: Float32Array[];
}

/** Runs positions a..b−1 of the latest run on its cache (nothing committed) and returns their residual streams. */
export async function residuals(runner: GraphRunner, state: RunState, a: number, b: number, heads = false): Promise<Residuals> {
  const L = runner.dims.nLayer;
  const names = [...Array.from({ length: L }, (_, l) => `resid_${l}`), 'resid_final', ...(heads ? Array.from({ length: L }, (_, l) => `head_z_${l}`) : [])];
  const { feeds } = runner.feeds(state.cache, state.ids, a, b);
  const out = await runner.run(feeds, names);
  return {
    resid: [...Array.from({ length: L }, (_, l) => out[`resid_${l}`].data as Float32Array), out.resid_final.data as Float32Array],
    headZ: heads ? Array.from({ length: L }, (_, l) => out[`head_z_${l}`].data as Float32Array) : undefined,
  };
}

/** The first layer l with top1[l'] = top1[L] for every l' ≥ l; top1 [L+1, n] layer-major. */
export function settleLayer(top1: ArrayLike<number>, rows: number, n: number, i: number): number {
  const final = top1[(rows - 1) * n + i];
  let l = rows - 1;
  while (l > 0 && top1[(l - 1) * n + i] === final) l--;
  return l;
}

/** The lens and attribution of one loaded model; its readout head is built on first use. */
export class Lens {
  private head: Promise<ReadoutHead> | undefined;

  constructor(
    readonly engine: Gpt2Engine,
    /** The loaded model's folder (opened again for the readout). */
    private readonly dir: string,
    private readonly opts: SessionOptions = {},
  ) {}

  readoutHead(): Promise<ReadoutHead> {
    if (!this.head) {
      this.head = ReadoutHead.open(this.dir, this.engine.dims, this.opts);
      this.head.catch(() => (this.head = undefined));
    }
    return this.head;
  }

  /** Token `index` of `run` at every layer: its L + 1 kept residual rows through the lens head. */
  async at(run: Run, index: number): Promise<TokenLens> {
    checkIndex(run, index);
    const head = await this.readoutHead();
    const { nLayer: L } = this.engine.dims;
    const K = LENS_TOP_K;
    const ids = run.tokens.map((t) => t.id);
    const target = index + 1 < ids.length ? ids[index + 1] : null;
    const answer = await this.engine.scratch(async (_runner, state) => {
      if (run.stale) throw staleRun();
      return head.lens(state.residualRows(index, index + 1), new Array(L + 1).fill(target ?? 0));
    });
    if (target === null) answer.logprob.fill(NaN);
    const decode = (id: number) => this.engine.tokenizer.decode([id]);
    const top = Array.from({ length: L + 1 }, (_, l) =>
      Array.from({ length: K }, (_, k) => ({ id: answer.topIds[l * K + k], text: decode(answer.topIds[l * K + k]), logprob: answer.topLogprob[l * K + k] })),
    );
    const top1 = Int32Array.from({ length: L + 1 }, (_, l) => answer.topIds[l * K]);
    return { index, target, logprob: answer.logprob, top, settles: settleLayer(top1, L + 1, 1, 0) };
  }

  /**
   * Positions start..end−1 of `run` at every layer, up to CHUNK positions through the lens head at a time (each queued
   * on its own, so other requests slip in between); `signal` stops between them.
   */
  async grid(run: Run, span: { start: number; end: number } = { start: 0, end: run.length }, opts: { signal?: AbortSignal; onProgress?: (p: { done: number; total: number }) => void } = {}): Promise<LensGrid> {
    const { start, end } = span;
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start < end && end <= run.length)) {
      throw new HeadlightError('bad-window', `Lens range ${start}:${end} is outside the run's ${run.length} tokens.`, `Pick a range within 0:${run.length}.`);
    }
    const t0 = performance.now();
    const head = await this.readoutHead();
    const { nLayer: L, nEmbd: E, vocabSize: V } = this.engine.dims;
    const rows = L + 1;
    const K = LENS_TOP_K;
    const n = end - start;
    const ids = run.tokens.map((t) => t.id);
    const grid: LensGrid = {
      start,
      end,
      rows,
      logprob: new Float32Array(rows * n),
      top1: new Int32Array(rows * n),
      topIds: new Int32Array(rows * n * K),
      topLogprob: new Float32Array(rows * n * K),
      settles: new Int32Array(n),
      gflops: 0,
      ms: 0,
    };
    let lensMs = 0;
    opts.onProgress?.({ done: 0, total: n });
    for (let a = start; a < end; a += CHUNK) {
      const b = Math.min(end, a + CHUNK);
      const m = b - a;
      const targets = Array.from({ length: rows * m }, (_, r) => ids[a + (r % m) + 1] ?? 0);
      const answer = await this.engine.scratch(async (_runner, state) => {
        throwIfAborted(opts.signal);
        if (run.stale) throw staleRun();
        const t1 = performance.now();
        const got = await head.lens(state.residualRows(a, b), targets);
        lensMs += performance.now() - t1;
        return got;
      });
      for (let l = 0; l < rows; l++) {
        for (let i = 0; i < m; i++) {
          const cell = l * n + (a - start) + i;
          const r = l * m + i;
          grid.logprob[cell] = a + i + 1 < ids.length ? answer.logprob[r] : NaN;
          grid.top1[cell] = answer.topIds[r * K];
          grid.topIds.set(answer.topIds.subarray(r * K, (r + 1) * K), cell * K);
          grid.topLogprob.set(answer.topLogprob.subarray(r * K, (r + 1) * K), cell * K);
        }
      }
      opts.onProgress?.({ done: b - start, total: n });
    }
    for (let i = 0; i < n; i++) grid.settles[i] = settleLayer(grid.top1, rows, n, i);
    grid.ms = performance.now() - t0;
    grid.gflops = (2 * rows * n * E * V) / (lensMs * 1e6);
    return grid;
  }

  async dispose(): Promise<void> {
    const head = this.head;
    this.head = undefined;
    await (await head?.catch(() => undefined))?.release();
  }
}

export function checkIndex(run: Run, index: number): void {
  if (!(Number.isInteger(index) && index >= 0 && index < run.length)) {
    throw new HeadlightError('bad-index', `Token ${index} is outside the run's ${run.length} tokens.`, `Pick a token within 0:${run.length}.`);
  }
}

export function staleRun(): HeadlightError {
  return new HeadlightError('stale-run', 'This analysis was replaced by a newer one.', 'Ask again about the latest run.');
}
