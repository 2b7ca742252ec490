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
import { headRoleLine, hoverMarkdown, lensLine } from './hoverMarkdown';
import type { Comparisons } from './comparison';
import { compareHoverMarkdown } from './compareHover';

export const TOP_K = 5;
/** The head finder's line waits at most this long (its first answer for a run may still be computing). */
const HEAD_LINE_WAIT_MS = 150;
/** The logit lens's line waits at most this long (one one-row scratch run of the engine, ≤ 50 ms on GPT-2 small). */
const LENS_LINE_WAIT_MS = 150;

export class AttentionHoverProvider implements vscode.HoverProvider {
  constructor(
    private readonly source: AnalysisSource,
    private readonly config: () => HeadlightConfig,
    private readonly stats: HostStats,
    /** Compare With…: the hover adds both versions' surprisal and guesses. */
    private readonly comparisons?: Comparisons,
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
      const signal = toAbortSignal(token);
      const headLine = typeof selection.head === 'number' ? this.headLine(cur.run.version, selection, signal) : Promise.resolve(undefined);
      // the guess for this token was made at the token before it: its lens says where that guess settled
      const lens = index > 0 ? this.lensLine(cur.run.version, index - 1, signal) : Promise.resolve(undefined);
      const mode = this.config().attentionMode;
      const info = await this.source.query('tokenInfo', { version: cur.run.version, sel: selection, index, k: TOP_K, mode }, signal);
      const args = encodeURIComponent(JSON.stringify([{ token: index }]));
      const md = new vscode.MarkdownString(
        hoverMarkdown({
          info,
          tokens,
          selection,
          lineOf: (t) => doc.positionAt(t.start).line + 1,
          openCommand: `command:headlight.explainAttention?${args}`,
          headLine: await headLine,
          lensLine: await lens,
        }),
      );
      if (mode === 'value-weighted' && info.sources.length) md.appendMarkdown('\n\n_Weights are value-weighted: α·‖v·W_O‖ per source, normalized (setting `headlight.attentionMode`)._');
      const compared = this.comparisons?.forRun(cur);
      if (compared) md.appendMarkdown('\n\n---\n\n' + compareHoverMarkdown(compared, index, info.predictions));
      md.isTrusted = { enabledCommands: ['headlight.explainAttention'] };
      this.stats.lastHoverMs = performance.now() - t0;
      const t = tokens[index];
      return new vscode.Hover(md, new vscode.Range(doc.positionAt(t.start), doc.positionAt(t.end)));
    } catch (err) {
      if (isBenign(err)) return undefined;
      throw err;
    }
  }

  /** The logit lens's line for the guess at `index` (the token before the hovered one), or undefined when late or failed. */
  private lensLine(version: number, index: number, signal: AbortSignal | undefined): Promise<string | undefined> {
    return withinMs(this.source.query('lensAt', { version, index }, signal).then(lensLine, () => undefined), LENS_LINE_WAIT_MS);
  }

  /** "head 3.1: previous-token 0.94", or undefined when the scores are not ready in time or failed. */
  private headLine(version: number, selection: Parameters<typeof headRoleLine>[1], signal: AbortSignal | undefined): Promise<string | undefined> {
    const scores = this.source.query('headScores', { version }, signal).then(
      (s) => headRoleLine(s, selection),
      () => undefined,
    );
    let timer: Parameters<typeof clearTimeout>[0];
    const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), HEAD_LINE_WAIT_MS)));
    return Promise.race([scores, late]).finally(() => clearTimeout(timer));
  }
}

/** `p`'s value, or undefined when it takes longer than `ms`. */
function withinMs<T>(p: Promise<T | undefined>, ms: number): Promise<T | undefined> {
  let timer: Parameters<typeof clearTimeout>[0];
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
