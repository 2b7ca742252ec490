/**
 * Editor highlights: the tokens the cursor's token attends to (or, reversed, those that attend to it), in four
 * intensity buckets of contributed theme colours, optionally every token coloured by its surprisal, and after a head
 * ablation the change of each token's surprisal (worse/better, four levels). Decoration types are created once and
 * rebuilt only on configuration change; only visible ranges are decorated.
 */
import * as vscode from 'vscode';
import type { AnalysisSource, CurrentAnalysis } from './analysisSource';
import type { AblationView } from '../common/webviewProtocol';
import type { HeadExperiments } from './headExperiments';
import type { HeadlightConfig } from './config';
import type { HostStats } from './hostStats';
import { isBenign } from './cancellation';
import { attentionLevels, bucketOf, groupByBucket, LEVELS, SURPRISAL_EDGES_BITS } from './intensity';

/** Lower edges (bits) of the four levels of a surprisal change after an ablation. */
export const ABLATION_EDGES_BITS: readonly number[] = [0.25, 1, 2, 4];

interface DecorationTypes {
  attention: vscode.TextEditorDecorationType[];
  surprisal: vscode.TextEditorDecorationType[];
  cursor: vscode.TextEditorDecorationType;
  /** Surprisal rose (the ablated heads helped here) / fell, per level. */
  ablationWorse: vscode.TextEditorDecorationType[];
  ablationBetter: vscode.TextEditorDecorationType[];
}

function ablationType(color: string, n: number): vscode.TextEditorDecorationType {
  return vscode.window.createTextEditorDecorationType({
    borderColor: new vscode.ThemeColor(color),
    borderStyle: 'none none solid none',
    borderWidth: `0 0 ${n}px 0`,
    overviewRulerColor: n >= 3 ? new vscode.ThemeColor(color) : undefined,
    overviewRulerLane: vscode.OverviewRulerLane.Left,
  });
}

function createTypes(): DecorationTypes {
  const levels = Array.from({ length: LEVELS }, (_, i) => i + 1);
  return {
    attention: levels.map((n) => vscode.window.createTextEditorDecorationType({ backgroundColor: new vscode.ThemeColor(`headlight.attention${n}`), borderRadius: '2px' })),
    surprisal: levels.map((n) =>
      vscode.window.createTextEditorDecorationType({
        textDecoration: `underline wavy`,
        borderColor: new vscode.ThemeColor(`headlight.surprisal${n}`),
        borderStyle: 'none none solid none',
        borderWidth: `0 0 ${n === LEVELS ? 2 : 1}px 0`,
        overviewRulerColor: n >= 3 ? new vscode.ThemeColor(`headlight.surprisal${n}`) : undefined,
        overviewRulerLane: vscode.OverviewRulerLane.Right,
      }),
    ),
    cursor: vscode.window.createTextEditorDecorationType({ borderColor: new vscode.ThemeColor('headlight.cursorToken'), borderStyle: 'solid', borderWidth: '1px', borderRadius: '2px' }),
    ablationWorse: levels.map((n) => ablationType('headlight.ablationWorse', n)),
    ablationBetter: levels.map((n) => ablationType('headlight.ablationBetter', n)),
  };
}

function allTypes(t: DecorationTypes): vscode.TextEditorDecorationType[] {
  return [...t.attention, ...t.surprisal, t.cursor, ...t.ablationWorse, ...t.ablationBetter];
}

function disposeTypes(t: DecorationTypes): void {
  for (const d of allTypes(t)) d.dispose();
}

function headsLabel(a: AblationView): string {
  return a.heads.map((h) => `L${h.layer}H${h.head}`).join(', ');
}

/** Per level, the tokens whose surprisal rose (worse) or fell (better) by at least that level's edge. */
export function ablationBuckets(delta: ArrayLike<number>): { worse: number[][]; better: number[][] } {
  const worse: number[][] = ABLATION_EDGES_BITS.map(() => []);
  const better: number[][] = ABLATION_EDGES_BITS.map(() => []);
  for (let i = 0; i < delta.length; i++) {
    const d = delta[i];
    const b = bucketOf(Math.abs(d), ABLATION_EDGES_BITS);
    if (b >= 0) (d > 0 ? worse : better)[b].push(i);
  }
  return { worse, better };
}

export class EditorHighlights implements vscode.Disposable {
  private types = createTypes();
  private readonly disposables: vscode.Disposable[] = [];
  private inflight: AbortController | undefined;
  private seq = 0;
  private scrollTimer: ReturnType<typeof setTimeout> | undefined;
  /** Token indices per attention bucket of the last update (for tests and the panel). */
  lastAttentionBuckets: number[][] = [];
  /** Token indices per level of the last ablation's colours (for tests). */
  lastAblationBuckets: { worse: number[][]; better: number[][] } = { worse: [], better: [] };

  constructor(
    private readonly source: AnalysisSource,
    private config: HeadlightConfig,
    private readonly stats: HostStats,
    private readonly log: (message: string) => void,
    private readonly experiments?: HeadExperiments,
  ) {
    if (experiments) this.disposables.push(experiments.onDidChangeAblation(() => void this.update()));
    this.disposables.push(
      source.onDidChangeCursorToken(() => void this.update()),
      source.onDidChangeRun(() => void this.update()),
      source.onDidChangeSelection(() => void this.update()),
      vscode.window.onDidChangeVisibleTextEditors(() => void this.update()),
      vscode.window.onDidChangeTextEditorVisibleRanges(() => {
        clearTimeout(this.scrollTimer);
        this.scrollTimer = setTimeout(() => void this.update(), 50);
      }),
    );
  }

  configChanged(next: HeadlightConfig): void {
    const prev = this.config;
    this.config = next;
    const changed =
      prev.highlightEnabled !== next.highlightEnabled ||
      prev.highlightDirection !== next.highlightDirection ||
      prev.highlightThreshold !== next.highlightThreshold ||
      prev.surprisalEnabled !== next.surprisalEnabled;
    if (!changed) {
      if (prev.attentionMode !== next.attentionMode) void this.update();
      return;
    }
    disposeTypes(this.types); // removes every decoration of the old types
    this.types = createTypes();
    void this.update();
  }

  /** Recomputes the highlights of the editors showing the current run's document; failures go to the log. */
  async update(): Promise<void> {
    try {
      await this.doUpdate();
    } catch (err) {
      this.log(`highlights: ${(err as Error).message}`);
    }
  }

  private async doUpdate(): Promise<void> {
    const t0 = performance.now();
    const seq = ++this.seq;
    this.inflight?.abort();
    const cur = this.source.current;
    const editors = cur ? vscode.window.visibleTextEditors.filter((e) => e.document.uri.toString() === cur.document.toString()) : [];
    if (!cur || editors.length === 0) return;
    const fresh = editors.filter((e) => e.document.version === cur.documentVersion);
    const stale = editors.filter((e) => e.document.version !== cur.documentVersion);
    for (const e of stale) this.clear(e);
    if (fresh.length === 0) return;

    const attention = await this.attentionBuckets(cur, seq);
    if (seq !== this.seq) return;
    const surprisal = this.config.surprisalEnabled ? groupByBucket(cur.run.surprisal, SURPRISAL_EDGES_BITS) : SURPRISAL_EDGES_BITS.map(() => []);
    const cursor = this.source.cursorToken;
    const ablation = this.experiments?.lastAblation;
    const ablated = ablation?.version === cur.run.version ? ablation : undefined;
    const changes = ablated ? ablationBuckets(ablated.surprisalDelta) : { worse: [], better: [] };
    for (const editor of fresh) {
      const inView = visibleFilter(editor);
      const ranges = (indices: number[]) => indices.map((i) => cur.run.tokens[i]).filter((t) => t && inView(t.start, t.end)).map((t) => rangeOf(editor.document, t.start, t.end));
      attention.forEach((idx, b) => editor.setDecorations(this.types.attention[b], ranges(idx)));
      surprisal.forEach((idx, b) => editor.setDecorations(this.types.surprisal[b], ranges(idx)));
      editor.setDecorations(this.types.cursor, cursor !== undefined && this.config.highlightEnabled ? ranges([cursor]) : []);
      const explained = (indices: number[]): vscode.DecorationOptions[] =>
        indices.filter((i) => cur.run.tokens[i] && inView(cur.run.tokens[i].start, cur.run.tokens[i].end)).map((i) => ({
          range: rangeOf(editor.document, cur.run.tokens[i].start, cur.run.tokens[i].end),
          hoverMessage: ablated && ablationHover(ablated, i),
        }));
      this.types.ablationWorse.forEach((t, b) => editor.setDecorations(t, explained(changes.worse[b] ?? [])));
      this.types.ablationBetter.forEach((t, b) => editor.setDecorations(t, explained(changes.better[b] ?? [])));
    }
    this.lastAttentionBuckets = attention;
    this.lastAblationBuckets = changes;
    this.stats.lastHighlightMs = performance.now() - t0;
    this.stats.highlightUpdates++;
  }

  private async attentionBuckets(cur: CurrentAnalysis, seq: number): Promise<number[][]> {
    const empty = Array.from({ length: LEVELS }, () => [] as number[]);
    const index = this.source.cursorToken;
    if (!this.config.highlightEnabled || index === undefined) return empty;
    const controller = new AbortController();
    this.inflight = controller;
    const method = this.config.highlightDirection === 'sources' ? 'row' : 'column';
    try {
      const weights = await this.source.query(method, { version: cur.run.version, sel: this.source.selection, index, mode: this.config.attentionMode }, controller.signal);
      if (seq !== this.seq) return empty;
      return attentionLevels(weights, this.config.highlightThreshold, (i) => i === index); // relative to this row
    } catch (err) {
      if (isBenign(err)) return empty;
      throw err;
    } finally {
      if (this.inflight === controller) this.inflight = undefined;
    }
  }

  private clear(editor: vscode.TextEditor): void {
    for (const t of allTypes(this.types)) editor.setDecorations(t, []);
  }

  dispose(): void {
    clearTimeout(this.scrollTimer);
    this.inflight?.abort();
    disposeTypes(this.types);
    for (const d of this.disposables) d.dispose();
  }
}

function ablationHover(a: AblationView, i: number): vscode.MarkdownString {
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');
  const d = a.surprisalDelta[i];
  return new vscode.MarkdownString(`Headlight: ablating ${headsLabel(a)} (${a.mode}) changes this token's surprisal ${f(a.surprisalBefore[i])} → ${f(a.surprisalAfter[i])} bits (${d > 0 ? '+' : ''}${f(d)}).`);
}

function rangeOf(doc: vscode.TextDocument, start: number, end: number): vscode.Range {
  return new vscode.Range(doc.positionAt(start), doc.positionAt(end));
}

/** A test for "overlaps the editor's visible ranges" (a few lines of margin). */
function visibleFilter(editor: vscode.TextEditor): (start: number, end: number) => boolean {
  const doc = editor.document;
  const spans = editor.visibleRanges.map((r) => {
    const startLine = Math.max(0, r.start.line - 5);
    const endLine = Math.min(doc.lineCount - 1, r.end.line + 5);
    return [doc.offsetAt(new vscode.Position(startLine, 0)), doc.offsetAt(doc.lineAt(endLine).range.end)];
  });
  if (spans.length === 0) return () => true;
  return (s, e) => spans.some(([a, b]) => e >= a && s <= b);
}
