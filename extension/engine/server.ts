/**
 * Entry of the engine child process (forked by the host with `serialization: 'advanced'`). It owns the model and
 * the last run, and answers the host's requests (extension/common/engineProtocol.ts). A native abort here costs
 * only this process; the host restarts it.
 */
import { RpcEndpoint, type Channel, type Handlers } from '../common/rpc';
import { HeadlightError } from '../common/errors';
import type { EngineEvents, EngineRequests, HeadScoresAnswer, ModelInfo, RunSummary } from '../common/engineProtocol';
import type { Gpt2Engine, Run } from './analyses/engine';
import { checkText } from '../common/text';
import { surprisalBits } from '../common/units';
import { cursorSummary } from './analyses/cursorSummary';
import { badges } from './analyses/headFinder';
import { loadEngine } from './load';
import { thumbnails } from './analyses/thumbnails';
import { Lens } from './analyses/lens';
import { attribute } from './analyses/attribution';
import { Rollout } from './analyses/rollout';
import { patchActivations, type PatchProgress } from './analyses/patching';

/** The engine's state in this process: one model, its latest run. */
export class EngineService {
  private engine: Gpt2Engine | undefined;
  private info: ModelInfo | undefined;
  private run: Run | undefined;
  private offsetBase = 0;
  /** Head-finder scores of the latest run: the panel, the sidebar and the hover all ask, the work is done once. */
  private scores: { version: number; answer: Promise<HeadScoresAnswer> } | undefined;
  /** The window and budget the loaded model was asked for (different ones reload it). */
  private loadedFor: string | undefined;
  /** The logit lens and attribution of the loaded model; its readout is built on the first lens request. */
  private lens: Lens | undefined;
  /** The rollout of the latest run (its per-layer means are built on the first row asked for). */
  private rolloutOf: { version: number; rollout: Rollout } | undefined;

  readonly handlers: Handlers<EngineRequests> = {
    load: async ({ ref, dir, threads, maxWindow, memoryBudgetMB }, signal) => {
      const asked = `${maxWindow}|${memoryBudgetMB}`;
      if (this.info?.dir === dir && this.loadedFor === asked && this.engine) return this.info;
      const loaded = await loadEngine(dir, { threads, signal, maxWindow, memoryBudgetMB });
      this.loadedFor = asked;
      await this.lens?.dispose();
      await this.engine?.dispose();
      this.engine = loaded.engine;
      this.lens = new Lens(loaded.engine, dir, { threads });
      this.run = undefined;
      const c = loaded.engine.dims;
      this.info = {
        ref,
        dir,
        nLayer: c.nLayer,
        nHead: c.nHead,
        nEmbd: c.nEmbd,
        nPositions: c.nPositions,
        vocabSize: c.vocabSize,
        fileDtype: loaded.checkpoint.fileDtype,
        loadMs: loaded.loadMs,
        modelType: loaded.checkpoint.modelType,
        nKvHead: c.nKvHead,
        headDim: c.headDim,
        maxWindow: c.nPositions,
        memory: {
          estimateBytes: loaded.memory.plan.total,
          budgetBytes: loaded.memory.budgetBytes,
          budgetSource: loaded.memory.budgetSource,
          limitedByMemory: loaded.memory.limitedBy === 'memory',
        },
      };
      return this.info;
    },
    analyze: async ({ text, offsetBase = 0, window, incremental }, signal) => {
      const engine = this.requireEngine();
      checkText(text);
      const run = incremental && this.offsetBase === offsetBase ? await engine.update(text, { window, signal }) : await engine.analyze(text, { window, signal });
      this.run = run;
      this.offsetBase = offsetBase;
      return this.summary(run);
    },
    row: ({ version, sel, index, mode }) => this.requireRun(version).row(sel, index, mode),
    column: ({ version, sel, index, mode }) => this.requireRun(version).column(sel, index, mode),
    topSources: ({ version, sel, index, k, mode }) => this.requireRun(version).topSources(sel, index, k, mode),
    predictions: ({ version, index, k }) => this.requireRun(version).predictions(index, k),
    tokenInfo: ({ version, sel, index, k, mode }) => {
      const run = this.requireRun(version);
      if (!(index >= 0 && index < run.length)) throw new HeadlightError('bad-index', `Token ${index} is outside the run's ${run.length} tokens.`);
      const t = run.tokens[index];
      const tokenizer = this.requireEngine().tokenizer;
      return {
        index,
        token: { ...t, start: t.start + this.offsetBase, end: t.end + this.offsetBase },
        piece: tokenizer.piece?.(t.id) ?? t.text,
        surprisal: run.surprisal(index),
        predictions: run.predictions(index, k),
        sources: run.topSources(sel, index, k, mode),
      };
    },
    headTriangle: ({ version, layer, head }) => {
      const run = this.requireRun(version);
      return { T: run.length, data: run.attention.triangle(layer, head) };
    },
    thumbnails: ({ version, size }) => {
      const run = this.requireRun(version);
      const data = thumbnails(run.attention, size);
      const s = Math.max(1, Math.min(size, run.length || 1));
      return { nLayer: run.attention.nLayer, nHead: run.attention.nHead, size: s, data };
    },
    headScores: ({ version }) => {
      const run = this.requireRun(version);
      if (this.scores?.version !== version) {
        const answer = this.requireEngine()
          .headScores(run)
          .then((s) => ({ nLayer: s.nLayer, nHead: s.nHead, scores: s.scores, badges: badges(s) }));
        answer.catch(() => this.scores?.answer === answer && (this.scores = undefined));
        this.scores = { version, answer };
      }
      return this.scores.answer;
    },
    cursorSummary: ({ version, index, mode }) => {
      const run = this.requireRun(version);
      if (mode !== 'value-weighted') return cursorSummary(run.attention, index);
      return cursorSummary(run.attention, index, (layer, head) => run.row({ layer, head }, index, 'value-weighted'));
    },
    ping: () => ({ pid: process.pid, rssMb: Math.round(process.memoryUsage().rss / 1e6) }),
    qk: ({ version, layer, head, index }) => this.requireEngine().qk(this.requireRun(version), layer, head, index),
    valueNorms: ({ version, layer, head }) => this.requireRun(version).valueNorms(layer, head),
    keepQueries: ({ on }) => this.requireEngine().keepQueries(on),
    ablate: async ({ text, window, heads, mode, at, k }, signal) => {
      checkText(text);
      const r = await this.requireEngine().ablate({ heads, mode }, text, { window, at, k, signal });
      const bits = (lp: Float32Array) => lp.map(surprisalBits);
      const { lossBefore, lossAfter, lossDelta, predictionsBefore, predictionsAfter } = r;
      return { heads, mode, window: r.window, surprisalBefore: bits(r.logprobBefore), surprisalAfter: bits(r.logprobAfter), surprisalDelta: r.surprisalDelta, lossBefore, lossAfter, lossDelta, at: r.at, predictionsBefore, predictionsAfter };
    },
    rankHeads: async ({ text, window, mode, progressId }, signal) => {
      checkText(text);
      const onProgress = progressId === undefined ? undefined : (p: { done: number; total: number }) => this.emit?.('rankProgress', { progressId, ...p });
      const r = await this.requireEngine().rankHeads(text, { mode, window, signal, onProgress });
      return { mode, window: r.window, lossBefore: r.lossBefore, deltas: r.deltas, ranking: r.ranking };
    },
    lensAt: ({ version, index }) => this.requireLens().at(this.requireRun(version), index),
    lensGrid: ({ version, start, end, progressId }, signal) => {
      const onProgress = progressId === undefined ? undefined : (p: { done: number; total: number }) => this.emit?.('lensProgress', { progressId, ...p });
      return this.requireLens().grid(this.requireRun(version), { start, end }, { signal, onProgress });
    },
    attribute: ({ version, index, target, vs }) => attribute(this.requireLens(), this.requireRun(version), index, { target, vs }),
    score: async ({ text, window, offsetBase = 0, k }, signal) => {
      checkText(text);
      const r = await this.requireEngine().score(text, { window, signal, k });
      return offsetBase ? { ...r, tokens: r.tokens.map((t) => ({ ...t, start: t.start + offsetBase, end: t.end + offsetBase })) } : r;
    },
    rollout: ({ version, index }) => {
      const run = this.requireRun(version);
      if (this.rolloutOf?.version !== version) this.rolloutOf = { version, rollout: new Rollout(run.attention) };
      const rollout = this.rolloutOf.rollout;
      if (index === undefined) return Float32Array.from(rollout.matrix());
      if (!(Number.isInteger(index) && index >= 0 && index < run.length)) throw new HeadlightError('bad-index', `Token ${index} is outside the run's ${run.length} tokens.`, `Ask for a token in 0..${run.length - 1}.`);
      return Float32Array.from(rollout.row(index));
    },
    patch: ({ progressId, ...params }, signal) => {
      checkText(params.clean);
      checkText(params.corrupt);
      const lens = this.requireLens();
      const onProgress = progressId === undefined ? undefined : (p: PatchProgress) => this.emit?.('patchProgress', { progressId, ...p });
      return patchActivations(this.requireEngine(), () => lens.readoutHead(), params, { signal, onProgress });
    },
  };

  /** Sends an event to the host (set once the RPC endpoint exists). */
  emit: (<K extends keyof EngineEvents>(name: K, payload: EngineEvents[K]) => void) | undefined;

  private requireEngine(): Gpt2Engine {
    if (!this.engine) throw new HeadlightError('no-model', 'No model is loaded in the engine.', 'Load a model first.');
    return this.engine;
  }

  private requireLens(): Lens {
    this.requireEngine();
    return this.lens!;
  }

  private requireRun(version: number): Run {
    const run = this.run;
    if (!run) throw new HeadlightError('no-run', 'Nothing has been analysed yet.', 'Run Headlight: Explain Attention.');
    if (run.version !== version || run.stale) throw new HeadlightError('stale-run', `Run ${version} was replaced by run ${run.version}.`, 'Ask again about the latest run.');
    return run;
  }

  private summary(run: Run): RunSummary {
    const surprisal = new Float32Array(run.length);
    for (let i = 0; i < run.length; i++) surprisal[i] = run.surprisal(i);
    const base = this.offsetBase;
    return {
      version: run.version,
      tokens: base ? run.tokens.map((t) => ({ ...t, start: t.start + base, end: t.end + base })) : [...run.tokens],
      window: run.window,
      totalTokens: run.totalTokens,
      surprisal,
      stats: run.stats,
    };
  }

  async dispose(): Promise<void> {
    await this.lens?.dispose();
    await this.engine?.dispose();
  }
}

/** A channel over this process's IPC link to its parent. */
export function parentChannel(): Channel {
  return {
    send: (m) => process.send?.(m),
    onMessage: (listener) => {
      process.on('message', listener);
      return () => process.off('message', listener);
    },
  };
}

if (require.main === module) {
  if (!process.send) {
    process.stderr.write('headlight engine: start me with child_process.fork (I talk over IPC).\n');
    process.exit(2);
  }
  const service = new EngineService();
  const rpc = new RpcEndpoint<Record<string, never>, EngineRequests, EngineEvents>(parentChannel(), service.handlers);
  service.emit = (name, payload) => rpc.emit(name, payload);
  process.on('disconnect', () => {
    rpc.dispose();
    void service.dispose().finally(() => process.exit(0));
  });
}
