/**
 * Experiments on the current run that every surface shares: the attention mode (plain or value-weighted), the
 * latest head ablation (the panel shows it, the editor colours its surprisal differences) and head rankings with
 * progress. No runtime `vscode` import: the webview harness drives it with a recorded run.
 *
 * The engine does the math (extension/engine/analyses/engine.ts `ablate`, `rankHeads`); this class only picks the text of
 * the run, checks that the answer lines up with the run's tokens, and tells the listeners.
 */
import type { AblationMode, AttentionMode, EngineEvents, HeadRef } from '../common/engineProtocol';
import { HeadlightError } from '../common/errors';
import type { AblationView, RankingView } from '../common/webviewProtocol';
import type { AnalysisSource, CurrentAnalysis } from './analysisSource';

export interface Disposable {
  dispose(): void;
}

/** The shape of `vscode.Event`, so these events subscribe like the controller's (listener, this, disposables). */
export type Event<T> = (listener: (e: T) => unknown, thisArgs?: unknown, disposables?: Disposable[]) => Disposable;

export class Emitter<T> {
  private readonly listeners = new Set<(e: T) => unknown>();
  readonly event: Event<T> = (listener, thisArgs, disposables) => {
    const bound = (e: T) => listener.call(thisArgs, e);
    this.listeners.add(bound);
    const d = { dispose: () => void this.listeners.delete(bound) };
    disposables?.push(d);
    return d;
  };
  fire(e: T): void {
    for (const l of [...this.listeners]) l(e);
  }
  clear(): void {
    this.listeners.clear();
  }
}

export interface HeadExperimentsDeps {
  source: AnalysisSource;
  /**
   * The characters of the run's window (from its first token's start to its last token's end), or undefined when
   * the document changed or closed. The engine re-tokenizes them; the answer must give one value per run token.
   */
  textOf: (cur: CurrentAnalysis) => string | undefined;
  /** The engine's `rankProgress` events. */
  onRankProgress: (listener: (p: EngineEvents['rankProgress']) => void) => Disposable;
  /** The attention mode at start (the setting). */
  attentionMode: AttentionMode;
  /** Persists a mode the user picked (writes the setting; its change comes back through `setAttentionMode`). */
  writeAttentionMode: (mode: AttentionMode) => unknown;
}

export interface RankProgress {
  version: number;
  done: number;
  total: number;
}

export class HeadExperiments implements Disposable {
  private mode: AttentionMode;
  private ablation: AblationView | undefined;
  private ranking: { controller: AbortController } | undefined;
  private progressSeq = 0;
  private readonly disposables: Disposable[] = [];
  private readonly modeEmitter = new Emitter<AttentionMode>();
  private readonly ablationEmitter = new Emitter<AblationView | undefined>();
  private readonly progressEmitter = new Emitter<RankProgress>();
  private readonly rankingEmitter = new Emitter<RankingView>();

  readonly onDidChangeAttentionMode = this.modeEmitter.event;
  /** A new ablation result, or undefined when it was cleared (by the user or because a new run replaced its run). */
  readonly onDidChangeAblation = this.ablationEmitter.event;
  readonly onDidRankProgress = this.progressEmitter.event;
  readonly onDidRank = this.rankingEmitter.event;

  constructor(private readonly deps: HeadExperimentsDeps) {
    this.mode = deps.attentionMode;
    deps.source.onDidChangeRun((cur) => {
      if (this.ablation && this.ablation.version !== cur.run.version) this.clearAblation();
    }, null, this.disposables);
  }

  get attentionMode(): AttentionMode {
    return this.mode;
  }

  /** The mode changed (setting). */
  setAttentionMode(mode: AttentionMode): void {
    if (mode === this.mode) return;
    this.mode = mode;
    this.modeEmitter.fire(mode);
  }

  /** The user picked a mode in a view: persist it (the setting's change then calls `setAttentionMode`). */
  requestAttentionMode(mode: AttentionMode): void {
    void this.deps.writeAttentionMode(mode);
  }

  get lastAblation(): AblationView | undefined {
    return this.ablation;
  }

  clearAblation(): void {
    if (!this.ablation) return;
    this.ablation = undefined;
    this.ablationEmitter.fire(undefined);
  }

  /**
   * Removes `heads` (zero or mean ablation) and re-runs the current run's text. `at`: the position whose predictions
   * are compared (default: after the last token). The result replaces the last ablation.
   */
  async ablate(params: { version?: number; heads: HeadRef[]; mode: AblationMode; at?: number }, signal?: AbortSignal): Promise<AblationView> {
    const { cur, text } = this.target(params.version);
    const { nLayer, nHead } = cur.model;
    if (params.heads.length === 0) throw new HeadlightError('no-heads', 'No head was chosen to ablate.', 'Add a head (ctrl+click one in the Heads view, or "Add selected head").');
    for (const h of params.heads) {
      if (!(Number.isInteger(h.layer) && h.layer >= 0 && h.layer < nLayer && Number.isInteger(h.head) && h.head >= 0 && h.head < nHead)) {
        throw new HeadlightError('bad-head', `Head ${h.layer}.${h.head} does not exist in ${cur.model.ref} (${nLayer} layers × ${nHead} heads).`);
      }
    }
    const T = cur.run.tokens.length;
    const at = params.at === undefined ? undefined : Math.max(0, Math.min(T, Math.round(params.at)));
    const summary = await this.deps.source.query('ablate', { text, heads: params.heads, mode: params.mode, at, k: 5 }, signal);
    checkAligned(summary.surprisalDelta.length, T, 'ablation');
    const view: AblationView = { ...summary, version: cur.run.version };
    if (this.deps.source.current?.run.version !== cur.run.version) throw new HeadlightError('stale-run', 'A newer analysis replaced the one this ablation was for.', 'Run it again.');
    this.ablation = view;
    this.ablationEmitter.fire(view);
    return view;
  }

  /**
   * "Which heads matter here": ablates every head alone on the run's text and ranks them by the change of the mean
   * loss. A new ranking cancels the one in flight; `signal` cancels between head runs.
   */
  async rankHeads(params: { version?: number; mode: AblationMode }, signal?: AbortSignal): Promise<RankingView> {
    const { cur, text } = this.target(params.version);
    if (cur.run.tokens.length < 2) throw new HeadlightError('empty-text', 'Ranking heads needs at least two tokens.', 'Analyse more text.');
    this.ranking?.controller.abort();
    const controller = new AbortController();
    this.ranking = { controller };
    const onAbort = () => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) controller.abort();
    const version = cur.run.version;
    const progressId = `rank-${version}-${++this.progressSeq}`;
    const sub = this.deps.onRankProgress((p) => {
      if (p.progressId === progressId) this.progressEmitter.fire({ version, done: p.done, total: p.total });
    });
    try {
      const summary = await this.deps.source.query('rankHeads', { text, mode: params.mode, progressId }, controller.signal);
      checkAligned(summary.deltas.length, cur.model.nLayer * cur.model.nHead, 'head ranking');
      const view: RankingView = { ...summary, version };
      this.rankingEmitter.fire(view);
      return view;
    } finally {
      sub.dispose();
      signal?.removeEventListener('abort', onAbort);
      if (this.ranking?.controller === controller) this.ranking = undefined;
    }
  }

  /** Cancels a ranking in flight (the command's notification and the panel's Cancel button). */
  cancelRanking(): void {
    this.ranking?.controller.abort();
  }

  private target(version: number | undefined): { cur: CurrentAnalysis; text: string } {
    const cur = this.deps.source.current;
    if (!cur) throw new HeadlightError('no-run', 'Nothing has been analysed yet.', 'Run Headlight: Explain Attention first.');
    if (version !== undefined && version !== cur.run.version) throw new HeadlightError('stale-run', 'A newer analysis replaced this one.', 'Try again on the new one.');
    const text = this.deps.textOf(cur);
    if (text === undefined) throw new HeadlightError('stale-run', 'The document changed since this analysis.', 'Wait for the new analysis, then try again.');
    return { cur, text };
  }

  dispose(): void {
    this.ranking?.controller.abort();
    for (const d of this.disposables.splice(0)) d.dispose();
    for (const e of [this.modeEmitter, this.ablationEmitter, this.progressEmitter, this.rankingEmitter] as Emitter<unknown>[]) e.clear();
  }
}

function checkAligned(got: number, expected: number, what: string): void {
  if (got !== expected) {
    throw new HeadlightError(
      'misaligned',
      `The ${what} covers ${got} positions but the analysis has ${expected}.`,
      'The window text tokenizes differently on its own (it starts inside a word); put the cursor elsewhere or select the text to analyse.',
    );
  }
}
