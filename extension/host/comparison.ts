/**
 * Compare With…: the current run against another version of its text (saved on disk, git HEAD, another editor, or
 * this text with the selection replaced). The other version is scored once by the engine on a scratch cache
 * (`score`: the live run and its cache are untouched); the current side is the live run itself, so typing updates
 * it as today and only the alignment (a diff over token ids, common/tokenAlign.ts) is redone. No runtime `vscode`
 * import: the webview harness drives it.
 *
 * A `Comparison` holds both texts, both token lists and the alignment, so activation patching between a clean and a
 * corrupted prompt can take its two aligned versions as they are.
 */
import type { Prediction, ScoreResult } from '../common/engineProtocol';
import { HeadlightError } from '../common/errors';
import { alignTokens, type TokenAlignment } from '../common/tokenAlign';
import type { Token } from '../common/tokens';
import { surprisalBits } from '../common/units';
import type { CompareView } from '../common/webviewProtocol';
import type { AnalysisSource, CurrentAnalysis } from './analysisSource';
import { Emitter, type Disposable } from './headExperiments';

export type CompareSourceKind = 'saved' | 'head' | 'editor' | 'replace';

/** The other version, as the command found it. */
export interface CompareTarget {
  kind: CompareSourceKind;
  /** "saved on disk", "git HEAD", "notes.md", "selection replaced by “dog”". */
  label: string;
  /** The other version's characters that correspond to the current run's (see `otherSlice`). */
  text: string;
  /** Offset of `text` within the other version (its tokens' offsets include it). */
  offsetBase: number;
}

export interface ComparisonSide {
  text?: string;
  tokens: readonly Token[];
  /** Bits per token ([T], NaN first). */
  surprisal: Float32Array;
}

export interface Comparison {
  /** The document (URI string) and the run version the current side is. */
  document: string;
  version: number;
  kind: CompareSourceKind;
  label: string;
  current: ComparisonSide;
  other: ComparisonSide & { text: string; offsetBase: number; logprobs: Float32Array; top: Prediction[][] };
  alignment: TokenAlignment;
  /** Per current token: other − current surprisal in bits where matched, NaN where not (or the first token). */
  delta: Float32Array;
}

/**
 * The other version's slice that corresponds to the current run: from the run's first token to its last token's
 * end shifted by the change in length (the edit is assumed to lie inside the run; a longer other slice is cut to
 * the model's window by the engine).
 */
export function otherSlice(cur: CurrentAnalysis, currentLength: number, other: string): { text: string; offsetBase: number } {
  const tokens = cur.run.tokens;
  if (tokens.length === 0) return { text: other, offsetBase: 0 };
  const start = Math.min(tokens[0].start, other.length);
  const end = Math.max(start, Math.min(other.length, tokens[tokens.length - 1].end + other.length - currentLength));
  return { text: other.slice(start, end), offsetBase: start };
}

/** Both sides aligned: what the views read. */
export function buildComparison(cur: CurrentAnalysis, target: CompareTarget, scored: ScoreResult): Comparison {
  const current = { tokens: cur.run.tokens, surprisal: cur.run.surprisal };
  const surprisal = scored.logprobs.map(surprisalBits);
  const alignment = alignTokens(cur.run.tokens.map((t) => t.id), scored.tokens.map((t) => t.id));
  const delta = new Float32Array(current.tokens.length).fill(NaN);
  for (const [i, j] of alignment.pairs) delta[i] = surprisal[j] - current.surprisal[i];
  return {
    document: cur.document.toString(),
    version: cur.run.version,
    kind: target.kind,
    label: target.label,
    current,
    other: { text: target.text, offsetBase: target.offsetBase, tokens: scored.tokens, surprisal, logprobs: scored.logprobs, top: scored.top },
    alignment,
    delta,
  };
}

/** Current tokens whose surprisal moved by more than `threshold` bits (matched ones), rose and fell. */
export function movedTokens(c: Comparison, threshold: number): { rose: number[]; fell: number[] } {
  const rose: number[] = [];
  const fell: number[] = [];
  c.delta.forEach((d, i) => {
    if (d > threshold) rose.push(i);
    else if (d < -threshold) fell.push(i);
  });
  return { rose, fell };
}

/** Current tokens inside a changed region (the edit itself). */
export function changedTokens(c: Comparison): number[] {
  return c.alignment.regions.flatMap((r) => Array.from({ length: r.a.end - r.a.start }, (_, k) => r.a.start + k));
}

export function compareView(c: Comparison, threshold: number): CompareView {
  return {
    version: c.version,
    sourceLabel: c.label,
    threshold,
    current: { label: 'this version', tokens: [...c.current.tokens], surprisal: c.current.surprisal.slice() },
    other: { label: c.label, tokens: [...c.other.tokens], surprisal: c.other.surprisal.slice() },
    aToB: c.alignment.aToB.slice(),
    regions: c.alignment.regions,
  };
}

export interface ComparisonsDeps {
  source: AnalysisSource;
  /** `headlight.compare.threshold`, bits. */
  threshold: () => number;
}

/** The comparison in force (one at a time) and its events. */
export class Comparisons implements Disposable {
  private comparison: Comparison | undefined;
  private target: CompareTarget | undefined;
  private seq = 0;
  private readonly disposables: Disposable[] = [];
  private readonly emitter = new Emitter<Comparison | undefined>();

  /** A new comparison, the current side updated (typing), or `undefined`: stopped. */
  readonly onDidChange = this.emitter.event;

  constructor(private readonly deps: ComparisonsDeps) {
    deps.source.onDidChangeRun((cur) => this.onRun(cur), null, this.disposables);
  }

  get current(): Comparison | undefined {
    return this.comparison;
  }

  get threshold(): number {
    return this.deps.threshold();
  }

  /** The comparison for this run, if it is the one compared (same document, same run version). */
  forRun(cur: CurrentAnalysis | undefined): Comparison | undefined {
    const c = this.comparison;
    return c && cur && c.document === cur.document.toString() && c.version === cur.run.version ? c : undefined;
  }

  /** Scores the other version and compares the current run with it (replacing any comparison). */
  async start(target: CompareTarget, signal?: AbortSignal): Promise<Comparison> {
    const cur = this.deps.source.current;
    if (!cur) throw new HeadlightError('no-run', 'Nothing has been analysed yet.', 'Run Headlight: Explain Attention first, then Compare With….');
    const seq = ++this.seq;
    const scored = await this.deps.source.query('score', { text: target.text, offsetBase: target.offsetBase, k: 5 }, signal);
    if (seq !== this.seq) throw new HeadlightError('cancelled', 'A newer comparison replaced this one.');
    const now = this.deps.source.current;
    if (!now || now.document.toString() !== cur.document.toString()) throw new HeadlightError('stale-run', 'The analysis moved to another document while comparing.', 'Run Compare With… again.');
    this.target = target;
    this.comparison = buildComparison(now, target, scored);
    this.emitter.fire(this.comparison);
    return this.comparison;
  }

  stop(): void {
    this.seq++;
    if (!this.comparison) return;
    this.comparison = undefined;
    this.target = undefined;
    this.emitter.fire(undefined);
  }

  /** Live: a new run of the same document is the new current side; the other side (already scored) stays. */
  private onRun(cur: CurrentAnalysis): void {
    const c = this.comparison;
    if (!c || !this.target || c.document !== cur.document.toString() || c.version === cur.run.version) return;
    this.comparison = buildComparison(cur, this.target, { tokens: [...c.other.tokens], window: { start: 0, end: c.other.tokens.length }, totalTokens: c.other.tokens.length, logprobs: c.other.logprobs, top: c.other.top });
    this.emitter.fire(this.comparison);
  }

  dispose(): void {
    for (const d of this.disposables.splice(0)) d.dispose();
    this.emitter.clear();
  }
}
