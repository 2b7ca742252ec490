/**
 * Activation patching over the comparison in force (issue #20 part 2, the user-facing half): which version is clean
 * and which corrupted, the refusal when their token counts differ, the clean run's guesses for the metric's tokens,
 * and one patching request at a time whose cells stream to the panel. No runtime `vscode` import: the webview
 * harness drives it; patchCommand.ts adds the QuickPicks and the progress notification.
 *
 * The engine does the runs (extension/engine/analyses/patching.ts, request `patch`); this class picks the two texts
 * (the current run's window and the other version's matching slice, the same token window), checks the answer, and
 * tells the listeners: the view when the request starts, again when the engine's first progress event brings the
 * clean and corrupted metrics (before any cell), then each cell, then the result.
 */
import type { EngineEvents, PatchCell, PatchResult, Prediction } from '../common/engineProtocol';
import { HeadlightError } from '../common/errors';
import type { Token } from '../common/tokens';
import type { PatchToken, PatchView } from '../common/webviewProtocol';
import type { AnalysisSource, CurrentAnalysis } from './analysisSource';
import type { Comparison, Comparisons } from './comparison';
import { Emitter, type Disposable } from './headExperiments';

export interface PatchingDeps {
  source: AnalysisSource;
  comparisons: Comparisons;
  /** The characters of the run's window (commands.ts `runText`), or undefined when the document changed. */
  textOf: (cur: CurrentAnalysis) => string | undefined;
  /** The engine's `patchProgress` events. */
  onPatchProgress: (listener: (p: EngineEvents['patchProgress']) => void) => Disposable;
}

/** One side of a patching pair. */
export interface PatchSide {
  label: string;
  text: string;
  tokens: readonly Token[];
}

/** What the user asked: the metric's tokens, its position (default: the last token), and whether the sides swap. */
export interface PatchRequest {
  answer: PatchToken;
  wrong: PatchToken;
  at?: number;
  /** false (default): the current text is clean and the other version corrupted; true: the other way round. */
  swap?: boolean;
}

export type PatchCellEvent = PatchCell & { id: number; done: number; total: number };

/** Refuses a pair whose token counts differ, with both counts and what to do. */
export function checkEqualCounts(clean: { label: string; count: number }, corrupt: { label: string; count: number }): void {
  if (clean.count === corrupt.count) return;
  throw new HeadlightError(
    'patch-length-mismatch',
    `Activation patching needs two versions with equal token counts (position t of one stands for position t of the other), but ${clean.label} has ${clean.count} tokens and ${corrupt.label} has ${corrupt.count}.`,
    'Compare with a version that changes one word for another of the same token length (e.g. " Paris" → " Rome"), then run Patch Activations again.',
  );
}

/** The two sides of comparison `c` for patching: the current text is clean unless `swap`. Throws on unequal counts. */
export function patchSides(c: Comparison, currentText: string, swap = false): { clean: PatchSide; corrupt: PatchSide } {
  const current: PatchSide = { label: 'this version', text: currentText, tokens: c.current.tokens };
  const other: PatchSide = { label: c.label, text: c.other.text, tokens: c.other.tokens };
  const [clean, corrupt] = swap ? [other, current] : [current, other];
  checkEqualCounts({ label: `the clean side (${clean.label})`, count: clean.tokens.length }, { label: `the corrupted side (${corrupt.label})`, count: corrupt.tokens.length });
  return { clean, corrupt };
}

export class Patching implements Disposable {
  private static readonly registry = new WeakMap<Comparisons, Patching>();
  private view: PatchView | undefined;
  private last: PatchRequest | undefined;
  private inflight: AbortController | undefined;
  private seq = 0;
  private readonly disposables: Disposable[] = [];
  private readonly changeEmitter = new Emitter<PatchView | undefined>();
  private readonly cellEmitter = new Emitter<PatchCellEvent>();

  /** A request started, finished, failed or was cancelled; undefined: cleared (the comparison ended). */
  readonly onDidChange = this.changeEmitter.event;
  /** One cell of the request in flight finished. */
  readonly onDidCell = this.cellEmitter.event;

  /** The patching of these comparisons (the panel finds it here; the commands create it). */
  static of(comparisons: Comparisons | undefined): Patching | undefined {
    return comparisons && Patching.registry.get(comparisons);
  }

  constructor(private readonly deps: PatchingDeps) {
    Patching.registry.set(deps.comparisons, this);
    deps.comparisons.onDidChange((c) => {
      if (!c && this.view) {
        this.cancel();
        this.view = undefined;
        this.changeEmitter.fire(undefined);
      }
    }, null, this.disposables);
  }

  get current(): PatchView | undefined {
    return this.view;
  }

  get lastRequest(): PatchRequest | undefined {
    return this.last;
  }

  /** The comparison of the current run and both sides (refused without one, or with unequal token counts). */
  pair(swap = false): { cur: CurrentAnalysis; comparison: Comparison; clean: PatchSide; corrupt: PatchSide } {
    const cur = this.deps.source.current;
    if (!cur) throw new HeadlightError('no-run', 'Nothing has been analysed yet.', 'Run Headlight: Explain Attention, then Compare With…, then Patch Activations.');
    const comparison = this.deps.comparisons.forRun(cur);
    if (!comparison) throw new HeadlightError('no-comparison', 'Activation patching runs between two versions of a text, and no comparison is active.', 'Run Headlight: Compare With… first (e.g. "selection replaced by…" with a word of the same token length).');
    const text = this.deps.textOf(cur);
    if (text === undefined) throw new HeadlightError('stale-run', 'The document changed since this analysis.', 'Wait for the new analysis, then try again.');
    return { cur, comparison, ...patchSides(comparison, text, swap) };
  }

  /**
   * The clean run's top guesses for the token after position `at`: the live run's predictions when the current text
   * is clean, the other version's scored guesses otherwise (the scored version has none after its last token: then
   * the corrupted run's guesses, marked by `from`).
   */
  async guesses(at: number, swap = false, k = 10): Promise<{ from: 'clean' | 'corrupt'; guesses: Prediction[] }> {
    const { cur, comparison } = this.pair(swap);
    if (!swap) return { from: 'clean', guesses: await this.deps.source.query('predictions', { version: cur.run.version, index: at + 1, k }) };
    const scored = comparison.other.top[at + 1];
    if (scored?.length) return { from: 'clean', guesses: scored.slice(0, k) };
    return { from: 'corrupt', guesses: await this.deps.source.query('predictions', { version: cur.run.version, index: at + 1, k }) };
  }

  /** A typed token: a number is an id, text must be exactly one token of the model (asked of the engine). */
  async tokenOf(typed: string, signal?: AbortSignal): Promise<PatchToken> {
    const trimmed = typed.trim();
    if (/^#?\d+$/.test(trimmed)) return { id: Number(trimmed.replace('#', '')), text: `#${trimmed.replace('#', '')}` };
    if (typed.length === 0) throw new HeadlightError('bad-token', 'No token was typed.', 'Type a word (with its leading space, e.g. " Paris") or a token id.');
    const scored = await this.deps.source.query('score', { text: typed, k: 1 }, signal);
    if (scored.tokens.length !== 1) {
      throw new HeadlightError('bad-token', `“${typed}” is ${scored.tokens.length} tokens for this model (${scored.tokens.map((t) => JSON.stringify(t.text)).join(' ')}); the metric compares single tokens.`, 'Type one token (mind the leading space: " Paris" and "Paris" differ), or its id.');
    }
    return { id: scored.tokens[0].id, text: scored.tokens[0].text };
  }

  /**
   * Patches the corrupted side with the clean side's activations: residual stream per layer and position, and every
   * head. A new request cancels the one in flight; `signal` (or `cancel()`) stops between runs.
   */
  async start(req: PatchRequest, signal?: AbortSignal): Promise<PatchView> {
    const { cur, clean, corrupt } = this.pair(req.swap);
    const T = clean.tokens.length;
    const at = req.at ?? T - 1;
    if (!(Number.isInteger(at) && at >= 0 && at < T)) throw new HeadlightError('bad-index', `Position ${at} is outside the ${T} tokens.`, `Pick a token in 0..${T - 1}.`);
    if (req.answer.id === req.wrong.id) throw new HeadlightError('bad-token', `The answer and the wrong token are both “${req.answer.text}”: their logit difference is always 0.`, 'Pick two different tokens.');
    this.inflight?.abort();
    const controller = new AbortController();
    this.inflight = controller;
    const onAbort = () => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) controller.abort();
    this.last = { ...req, at };
    const { nLayer: L, nHead: H } = cur.model;
    const id = ++this.seq;
    const view: PatchView = {
      id, version: cur.run.version,
      clean: { label: clean.label, tokens: [...clean.tokens] }, corrupt: { label: corrupt.label, tokens: [...corrupt.tokens] },
      position: at, answer: req.answer, wrong: req.wrong, nLayer: L, nHead: H,
      resid: new Float32Array(L * T).fill(NaN), // [L, T]
      heads: new Float32Array(L * H).fill(NaN), // [L, H]
      done: 0, total: 0, state: 'running',
    };
    this.view = view;
    this.changeEmitter.fire(view);
    const progressId = `patch-${cur.run.version}-${id}`;
    const sub = this.deps.onPatchProgress((p) => {
      if (p.progressId !== progressId || this.view !== view) return;
      view.done = p.done;
      view.total = p.total;
      if (view.metricClean === undefined) {
        // the engine's first event, before any run: both ends, so the view normalizes the cells as they stream in
        view.metricClean = p.metricClean;
        view.metricCorrupt = p.metricCorrupt;
        this.changeEmitter.fire(view);
      }
      if (!p.cell) return;
      const { target, layer, index, value } = p.cell;
      if (target === 'resid') view.resid[layer * T + index] = value;
      else view.heads[layer * H + index] = value;
      this.cellEmitter.fire({ ...p.cell, id, done: p.done, total: p.total });
    });
    try {
      const r = await this.deps.source.query('patch', { clean: clean.text, corrupt: corrupt.text, answer: req.answer.id, wrong: req.wrong.id, at, window: { start: 0, end: T }, progressId }, controller.signal);
      checkShape(r, L, H, T);
      Object.assign(view, { resid: r.resid.slice(), heads: r.heads.slice(), metricClean: r.metricClean, metricCorrupt: r.metricCorrupt, runs: r.runs, ms: r.ms, done: r.cells, total: r.cells, state: 'done' });
      return view;
    } catch (err) {
      const e = err as { code?: string; message?: string };
      view.state = controller.signal.aborted || e.code === 'cancelled' ? 'cancelled' : 'failed';
      view.message = view.state === 'cancelled' ? `Cancelled after ${view.done} of ${view.total} cells.` : (e.message ?? String(err));
      throw err;
    } finally {
      sub.dispose();
      signal?.removeEventListener('abort', onAbort);
      if (this.inflight === controller) this.inflight = undefined;
      if (this.view === view) this.changeEmitter.fire(view);
    }
  }

  /** The last request again with clean and corrupted swapped (the panel's Swap button). */
  swap(signal?: AbortSignal): Promise<PatchView> {
    const last = this.last;
    if (!last) throw new HeadlightError('no-patch', 'Nothing has been patched yet.', 'Run Headlight: Patch Activations… first.');
    return this.start({ ...last, swap: !last.swap }, signal);
  }

  /** Cancels the request in flight (the notification's and the panel's Cancel). */
  cancel(): void {
    this.inflight?.abort();
  }

  dispose(): void {
    this.cancel();
    Patching.registry.delete(this.deps.comparisons);
    for (const d of this.disposables.splice(0)) d.dispose();
    this.changeEmitter.clear();
    this.cellEmitter.clear();
  }
}

function checkShape(r: PatchResult, L: number, H: number, T: number): void {
  if (r.tokens !== T || r.resid.length !== L * T || r.heads.length !== L * H) {
    throw new HeadlightError('misaligned', `The engine patched ${r.tokens} tokens (${r.resid.length} residual cells, ${r.heads.length} head cells) but the comparison has ${T} tokens of a ${L}×${H} model.`, 'The window text tokenizes differently on its own (it starts inside a word); select the text to analyse and compare again.');
  }
}
