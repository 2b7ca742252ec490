/**
 * Editor colours of a comparison (Compare With…): matched tokens whose surprisal rose or fell by more than
 * `headlight.compare.threshold` bits in the other version, and the changed region itself. Decoration types are
 * created once (contributed theme colours headlight.compareRose / compareFell / compareChanged); the hover provider
 * explains each token.
 */
import * as vscode from 'vscode';
import type { AnalysisSource } from './analysisSource';
import { changedTokens, movedTokens, type Comparisons } from './comparison';

export class CompareHighlights implements vscode.Disposable {
  private readonly rose = underline('headlight.compareRose');
  private readonly fell = underline('headlight.compareFell');
  private readonly changed = vscode.window.createTextEditorDecorationType({
    backgroundColor: new vscode.ThemeColor('headlight.compareChanged'),
    borderRadius: '2px',
    overviewRulerColor: new vscode.ThemeColor('headlight.compareChanged'),
    overviewRulerLane: vscode.OverviewRulerLane.Center,
  });
  private readonly disposables: vscode.Disposable[] = [];
  /** Token indices of the last update, per kind (for tests). */
  last: { rose: number[]; fell: number[]; changed: number[] } = { rose: [], fell: [], changed: [] };

  constructor(
    private readonly source: AnalysisSource,
    private readonly comparisons: Comparisons,
  ) {
    this.disposables.push(
      this.rose,
      this.fell,
      this.changed,
      comparisons.onDidChange(() => this.update()),
      source.onDidChangeRun(() => this.update()),
      vscode.window.onDidChangeVisibleTextEditors(() => this.update()),
    );
  }

  /** The threshold setting changed. */
  configChanged(): void {
    this.update();
  }

  update(): void {
    const cur = this.source.current;
    const c = this.comparisons.forRun(cur);
    const editors = cur ? vscode.window.visibleTextEditors.filter((e) => e.document.uri.toString() === cur.document.toString()) : [];
    const moved = c ? movedTokens(c, this.comparisons.threshold) : { rose: [], fell: [] };
    const changed = c ? changedTokens(c) : [];
    for (const editor of editors) {
      const fresh = c && editor.document.version === cur!.documentVersion;
      const ranges = (indices: number[]) => (fresh ? indices.map((i) => cur!.run.tokens[i]).filter(Boolean).map((t) => new vscode.Range(editor.document.positionAt(t.start), editor.document.positionAt(t.end))) : []);
      editor.setDecorations(this.rose, ranges(moved.rose));
      editor.setDecorations(this.fell, ranges(moved.fell));
      editor.setDecorations(this.changed, ranges(changed));
    }
    this.last = { ...moved, changed };
  }

  dispose(): void {
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}

function underline(color: string): vscode.TextEditorDecorationType {
  return vscode.window.createTextEditorDecorationType({
    borderColor: new vscode.ThemeColor(color),
    borderStyle: 'none none dashed none',
    borderWidth: '0 0 2px 0',
    overviewRulerColor: new vscode.ThemeColor(color),
    overviewRulerLane: vscode.OverviewRulerLane.Left,
  });
}
