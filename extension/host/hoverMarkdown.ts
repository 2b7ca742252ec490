/**
 * The hover's content for one token, as Markdown: the token and its BPE piece, surprisal in bits, the model's
 * top guesses, and where the token looks (top attended tokens with bars). Pure: no `vscode`.
 */
import type { HeadScoresAnswer, HeadSelector, TokenInfo, TokenLens } from '../common/engineProtocol';
import type { Token } from '../common/tokens';
import { selectorLabel } from '../common/displayNames';
import { bar } from './intensity';

/** Whitespace made visible: spaces as ·, tabs as →, line breaks as ↵. */
export function visibleText(s: string): string {
  return s.replace(/ /g, '·').replace(/\t/g, '→').replace(/\r\n|\r|\n/g, '↵');
}

/** Escapes Markdown (and table pipes) so token text shows literally. */
export function escapeMarkdown(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+\-.!|<>~&]/g, (c) => (c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : '\\' + c));
}

function tok(s: string): string {
  return escapeMarkdown(visibleText(s)) || '∅';
}

export interface HoverContext {
  info: TokenInfo;
  /** Tokens of the run (to name the sources). */
  tokens: readonly Token[];
  selection: HeadSelector;
  /** 1-based line of a token's start, for the table. */
  lineOf: (token: Token) => number;
  /** `command:` URI that opens this token in the panel. */
  openCommand: string;
  /** The head finder's line for the selected head (see `headRoleLine`). */
  headLine?: string;
  /** The logit lens's line for the guess of this token (see `lensLine`). */
  lensLine?: string;
}

/**
 * One line on how the model came to its guess for a token, from the logit lens of the position before it (`lens`):
 * the layer from which its top-1 is the final one for good, and what the layer before that guessed —
 * "Logit lens: settles at L7 of 12 on **foo**; L6 guessed **bar**". Markdown, token texts escaped.
 */
export function lensLine(lens: TokenLens): string | undefined {
  const L = lens.top.length - 1;
  if (L < 1 || !lens.top[L]?.length) return undefined;
  const final = tok(lens.top[L][0].text);
  const s = Math.max(0, Math.min(L, lens.settles));
  if (s === 0) return `Logit lens: **${final}** from the embeddings on (layer 0 of ${L})`;
  const before = lens.top[s - 1]?.[0];
  const guessed = before ? `; L${s - 1} guessed **${tok(before.text)}**` : '';
  if (s === L) return `Logit lens: settles only at the output (L${L} of ${L}) on **${final}**${guessed}`;
  return `Logit lens: settles at L${s} of ${L} on **${final}**${guessed}`;
}

/**
 * One line on what the selected head does, from the head finder: "head 3.1: previous-token 0.94", its badge roles
 * strongest first, or its strongest score when it earns no badge. Undefined for a mean over heads.
 */
export function headRoleLine(scores: HeadScoresAnswer, sel: HeadSelector): string | undefined {
  if (typeof sel.layer !== 'number' || typeof sel.head !== 'number') return undefined;
  if (sel.layer >= scores.nLayer || sel.head >= scores.nHead) return undefined;
  const k = sel.layer * scores.nHead + sel.head;
  const all = Object.entries(scores.scores)
    .map(([role, v]) => [role, v?.[k] ?? NaN] as const)
    .filter(([, v]) => Number.isFinite(v))
    .sort((a, b) => b[1] - a[1]);
  if (!all.length) return undefined;
  const roles = scores.badges[`${sel.layer}.${sel.head}`] ?? [];
  const name = `head ${sel.layer}.${sel.head}`;
  if (roles.length) return `${name}: ${roles.map((r) => `${r} ${all.find(([role]) => role === r)?.[1].toFixed(2) ?? '—'}`).join(', ')}`;
  return `${name}: no clear role (strongest: ${all[0][0]} ${all[0][1].toFixed(2)})`;
}

export function hoverMarkdown(ctx: HoverContext): string {
  const { info, tokens, selection } = ctx;
  const out: string[] = [];
  const piece = info.piece !== info.token.text ? ` · piece **${escapeMarkdown(info.piece)}**` : '';
  out.push(`**Headlight** · token **${tok(info.token.text)}** (#${info.index})${piece}`);
  out.push('');
  out.push(Number.isFinite(info.surprisal) ? `Surprisal: **${info.surprisal.toFixed(2)} bits** (p = ${formatP(2 ** -info.surprisal)})` : 'Surprisal: — (first token of the window)');
  if (info.predictions.length) {
    out.push('');
    out.push(`Model's guesses here: ${info.predictions.map((p) => `${tok(p.text)} ${formatP(Math.exp(p.logprob))}`).join(' · ')}`);
  }
  if (ctx.lensLine) {
    out.push('');
    out.push(ctx.lensLine);
  }
  if (info.sources.length) {
    out.push('');
    if (ctx.headLine) {
      out.push(`Head finder: ${escapeMarkdown(ctx.headLine)}`);
      out.push('');
    }
    out.push(`Looks at (${selectorLabel(selection)}):`);
    out.push('');
    out.push('| token | line | weight | |');
    out.push('|---|--:|--:|---|');
    for (const s of info.sources) {
      const t = tokens[s.index];
      const name = t ? tok(t.text) : `#${s.index}`;
      const line = t ? String(ctx.lineOf(t)) : '';
      out.push(`| ${name}${s.index === info.index ? ' (itself)' : ''} | ${line} | ${s.weight.toFixed(3)} | ${bar(s.weight)} |`);
    }
  }
  out.push('');
  out.push(`[Open in the attention panel](${ctx.openCommand})`);
  return out.join('\n');
}

function formatP(p: number): string {
  if (!Number.isFinite(p)) return '—';
  if (p >= 0.01) return `${(100 * p).toFixed(1)}%`;
  return p.toExponential(1);
}
