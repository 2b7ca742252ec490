/**
 * Editor highlights: the tokens the cursor's token attends to (or, reversed, those that attend to it), in four
 * intensity buckets of contributed theme colours, and optionally every token coloured by its surprisal. Decoration
 * types are created once and rebuilt only on configuration change; only visible ranges are decorated.
 */
import * as vscode from 'vscode';
import type { AnalysisSource, CurrentAnalysis } from './analysisSource';
import type { HeadlightConfig } from './config';
import type { HostStats } from './hostStats';
import { isBenign } from './cancellation';
import { attentionLevels, groupByBucket, LEVELS, SURPRISAL_EDGES_BITS } from './intensity';

interface DecorationTypes {
  attention: vscode.TextEditorDecorationType[];
  surprisal: vscode.TextEditorDecorationType[];
  cursor: vscode.TextEditorDecorationType;
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
  };
}

function disposeTypes(t: DecorationTypes): void {
  for (const d of [...t.attention, ...t.surprisal, t.cursor]) d.dispose();
}

export class EditorHighlights implements vscode.Disposable {
  private types = createTypes();
  private readonly disposables: vscode.Disposable[] = [];
  private inflight: AbortController | undefined;
  private seq = 0;
  private scrollTimer: ReturnType<typeof setTimeout> | undefined;
  /** Token indices per attention bucket of the last update (for tests and the panel). */
  lastAttentionBuckets: number[][] = [];

  constructor(
    private readonly source: AnalysisSource,
    private config: HeadlightConfig,
    private readonly stats: HostStats,
    private readonly log: (message: string) => void,
  ) {
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
    if (!changed) return;
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
    for (const editor of fresh) {
      const inView = visibleFilter(editor);
      const ranges = (indices: number[]) => indices.map((i) => cur.run.tokens[i]).filter((t) => t && inView(t.start, t.end)).map((t) => rangeOf(editor.document, t.start, t.end));
      attention.forEach((idx, b) => editor.setDecorations(this.types.attention[b], ranges(idx)));
      surprisal.forEach((idx, b) => editor.setDecorations(this.types.surprisal[b], ranges(idx)));
      editor.setDecorations(this.types.cursor, cursor !== undefined && this.config.highlightEnabled ? ranges([cursor]) : []);
    }
    this.lastAttentionBuckets = attention;
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
      const weights = await this.source.query(method, { version: cur.run.version, sel: this.source.selection, index }, controller.signal);
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
    for (const t of [...this.types.attention, ...this.types.surprisal, this.types.cursor]) editor.setDecorations(t, []);
  }

  dispose(): void {
    clearTimeout(this.scrollTimer);
    this.inflight?.abort();
    disposeTypes(this.types);
    for (const d of this.disposables) d.dispose();
  }
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
