/**
 * Hover on any token of the analysed document: the token and its BPE piece, surprisal, the model's guesses and where
 * the token looks. Reads the last run with one `tokenInfo` request; never starts a run.
 */
import * as vscode from 'vscode';
import { tokenAt } from '../common/text';
import type { AnalysisSource } from './analysisSource';
import type { HeadlightConfig } from './config';
import type { HostStats } from './hostStats';
import { isBenign, toAbortSignal } from './cancellation';
import { hoverMarkdown } from './hoverMarkdown';

export const TOP_K = 5;

export class AttentionHoverProvider implements vscode.HoverProvider {
  constructor(
    private readonly source: AnalysisSource,
    private readonly config: () => HeadlightConfig,
    private readonly stats: HostStats,
  ) {}

  async provideHover(doc: vscode.TextDocument, pos: vscode.Position, token: vscode.CancellationToken): Promise<vscode.Hover | undefined> {
    const cur = this.source.current;
    if (!this.config().hoverEnabled || !cur) return undefined;
    if (doc.uri.toString() !== cur.document.toString() || doc.version !== cur.documentVersion) return undefined;
    const t0 = performance.now();
    const offset = doc.offsetAt(pos);
    const tokens = cur.run.tokens;
    const index = tokenAt(tokens, offset);
    if (index < 0 || offset >= tokens[index].end) return undefined;
    const selection = this.source.selection;
    try {
      const info = await this.source.query('tokenInfo', { version: cur.run.version, sel: selection, index, k: TOP_K }, toAbortSignal(token));
      const args = encodeURIComponent(JSON.stringify([{ token: index }]));
      const md = new vscode.MarkdownString(
        hoverMarkdown({
          info,
          tokens,
          selection,
          lineOf: (t) => doc.positionAt(t.start).line + 1,
          openCommand: `command:headlight.explainAttention?${args}`,
        }),
      );
      md.isTrusted = { enabledCommands: ['headlight.explainAttention'] };
      this.stats.lastHoverMs = performance.now() - t0;
      const t = tokens[index];
      return new vscode.Hover(md, new vscode.Range(doc.positionAt(t.start), doc.positionAt(t.end)));
    } catch (err) {
      if (isBenign(err)) return undefined;
      throw err;
    }
  }
}
