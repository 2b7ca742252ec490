/** The hover's lines about a comparison (Compare With…): both surprisals, their difference and both top-5s. Pure. */
import type { Prediction } from '../common/engineProtocol';
import type { Comparison } from './comparison';
import { escapeMarkdown, visibleText } from './hoverMarkdown';

const bits = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)} bits` : '—');
const guesses = (p: Prediction[]) => (p.length ? p.map((g) => `${escapeMarkdown(visibleText(g.text)) || '∅'} ${(100 * Math.exp(g.logprob)).toFixed(1)}%`).join(' · ') : '—');

/** Markdown for current token `index`; `currentTop`: the live run's guesses there. */
export function compareHoverMarkdown(c: Comparison, index: number, currentTop: Prediction[]): string {
  const j = c.alignment.aToB[index];
  const label = escapeMarkdown(c.label);
  const out = [`**Compared with ${label}**`, ''];
  if (j === undefined || j < 0) {
    out.push(`Changed here: this token is not in the other version. Surprisal here ${bits(c.current.surprisal[index])}.`);
  } else {
    const d = c.delta[index];
    const sign = d > 0 ? '+' : '';
    out.push(`Surprisal: this version ${bits(c.current.surprisal[index])} · other ${bits(c.other.surprisal[j])}${Number.isFinite(d) ? ` (${sign}${d.toFixed(2)})` : ''}`);
  }
  out.push('', `Guesses here, this version: ${guesses(currentTop)}`);
  if (j !== undefined && j >= 0) out.push('', `Guesses here, other version: ${guesses(c.other.top[j] ?? [])}`);
  return out.join('\n');
}
