/**
 * `headlight ablate` and `headlight qk`: text reports of a head ablation and of one query's row taken apart.
 * Pure formatting over engine results (extension/engine/analyses/inspect.ts does the arithmetic).
 */
import type { Token } from '../common/tokens';
import { HeadlightError } from '../common/errors';
import { lineStarts, offsetAt, positionAt, tokenAt } from '../common/text';
import type { AblationResult, QkBreakdown } from '../common/engineProtocol';
import { LN2, surprisalBits } from '../common/units';
import { valueWeighted } from '../common/valueWeighted';
import { mostAffected, qkProducts } from '../engine/analyses/inspect';

const quote = (s: string): string => JSON.stringify(s);
const pct = (logprob: number): string => `${(Math.exp(logprob) * 100).toFixed(1)}%`;
const signed = (x: number, digits: number): string => (x >= 0 ? '+' : '') + x.toFixed(digits);

/** Loss change, predictions before/after and the `top` tokens whose surprisal changed most. */
export function formatAblation(r: AblationResult, where: (t: Token) => string, top = 10): string {
  const heads = r.heads.map((h) => `${h.layer}.${h.head}`).join(', ');
  const T = r.tokens.length;
  const lines = [`ablated ${heads} (${r.mode}) on ${T} tokens (window ${r.window.start}:${r.window.end} of ${r.totalTokens})`];
  lines.push(`loss: ${r.lossBefore.toFixed(4)} -> ${r.lossAfter.toFixed(4)} nats/token (${signed(r.lossDelta, 4)}, ${signed(r.lossDelta / LN2, 3)} bits)`);
  const preds = (p: AblationResult['predictionsBefore']) => p.map((x) => `${quote(x.text)} ${pct(x.logprob)}`).join(', ');
  const what = r.at === T ? 'next token' : `token ${r.at} ${quote(r.tokens[r.at].text)}`;
  lines.push(`${what}, before: ${preds(r.predictionsBefore)}`);
  lines.push(`${what}, after:  ${preds(r.predictionsAfter)}`);
  const affected = mostAffected(r.surprisalDelta, top);
  lines.push(`most affected tokens (surprisal change in bits, before -> after):`);
  for (const i of affected) {
    const before = surprisalBits(r.logprobBefore[i]);
    const after = surprisalBits(r.logprobAfter[i]);
    lines.push(`  ${signed(r.surprisalDelta[i], 2).padStart(7)}  ${`${quote(r.tokens[i].text)}@${i}`.padEnd(20)} ${where(r.tokens[i]).padEnd(8)} ${before.toFixed(2)} -> ${after.toFixed(2)}`);
  }
  return lines.join('\n') + '\n';
}

/** The query vector, then the top keys: score before/after softmax, value norm and the largest q⊙k products. */
export function formatQk(b: QkBreakdown, tokens: readonly Token[], where: (t: Token) => string, top = 10): string {
  const D = b.query.length;
  const tok = tokens[b.index];
  const kv = b.kvHead !== undefined && b.nKvHead !== undefined ? `, reads KV head ${b.kvHead} of ${b.nKvHead}` : '';
  const lines = [`query token ${b.index} ${quote(tok.text)} at ${where(tok)}, head ${b.layer}.${b.head} (d = ${D}, scale ${b.scale.toPrecision(4)}${kv})`];
  const norm = Math.hypot(...b.query);
  lines.push(`q (|q| = ${norm.toFixed(3)}):`);
  for (let c = 0; c < D; c += 8) lines.push('  ' + Array.from(b.query.subarray(c, c + 8), (v) => v.toFixed(3).padStart(8)).join(''));
  const products = qkProducts(b.query, b.keys); // [i+1, D]
  const vw = valueWeighted(b.probs, b.valueNorms);
  const order = Array.from(b.probs.keys()).sort((x, y) => b.probs[y] - b.probs[x] || x - y).slice(0, top);
  lines.push(`top ${order.length} of ${b.index + 1} keys by attention:`);
  lines.push('  key                   score   softmax  stored  |vW_O|  value-wt  largest q⊙k terms (dim:value)');
  for (const j of order) {
    const row = products.subarray(j * D, (j + 1) * D);
    const dims = Array.from(row.keys()).sort((x, y) => Math.abs(row[y]) - Math.abs(row[x])).slice(0, 3);
    lines.push(
      '  ' +
        `${quote(tokens[j].text)}@${j}`.padEnd(20) +
        b.scores[j].toFixed(3).padStart(8) +
        b.probs[j].toFixed(4).padStart(10) +
        b.attention[j].toFixed(4).padStart(8) +
        b.valueNorms[j].toFixed(3).padStart(8) +
        vw[j].toFixed(4).padStart(10) +
        '  ' +
        dims.map((c) => `${c}:${signed(row[c], 3)}`).join(' '),
    );
  }
  return lines.join('\n') + '\n';
}

/** `LINE:COL` (1-based) of a token's start. */
export function tokenPlace(text: string): (t: Token) => string {
  const starts = lineStarts(text);
  return (t) => {
    const p = positionAt(starts, t.start);
    return `${p.line + 1}:${p.column + 1}`;
  };
}

/** The index of the analysed token at `--at LINE:COL` (1-based). */
export function tokenAtPlace(text: string, tokens: readonly Token[], at: string): number {
  const m = /^(\d+):(\d+)$/.exec(at);
  if (!m) throw new HeadlightError('usage', `--at ${at}: expected LINE:COL, 1-based, e.g. 3:14.`);
  const starts = lineStarts(text);
  const line = Number(m[1]) - 1;
  if (line < 0 || line >= starts.length) throw new HeadlightError('usage', `--at ${at}: the file has ${starts.length} lines.`);
  const i = tokenAt(tokens, offsetAt(starts, text.length, line, Number(m[2]) - 1));
  if (i < 0) throw new HeadlightError('usage', `--at ${at}: no analysed token there.`);
  return i;
}
