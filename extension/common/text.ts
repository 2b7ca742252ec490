/** Checks on text before analysis, and offset <-> line/column helpers. Runs anywhere. */
import { HeadlightError } from './errors';

/**
 * Refuses binary content with a message a user can act on: a NUL byte, or a text where more than 10% of the
 * first 8,000 characters are control characters or U+FFFD replacement characters (bytes that were not UTF-8).
 */
export function checkText(text: string, what = 'The text'): void {
  const nul = text.indexOf('\0');
  if (nul >= 0) {
    throw new HeadlightError('binary', `${what} looks binary: it contains a NUL byte at offset ${nul}.`, 'Headlight analyses text; open a text file or select text.');
  }
  const sample = text.slice(0, 8000);
  let odd = 0;
  for (let i = 0; i < sample.length; i++) {
    const c = sample.charCodeAt(i);
    if ((c < 32 && c !== 9 && c !== 10 && c !== 13 && c !== 12) || c === 0xfffd) odd++;
  }
  if (sample.length >= 32 && odd / sample.length > 0.1) {
    throw new HeadlightError('binary', `${what} looks binary: ${Math.round((100 * odd) / sample.length)}% of its first characters are control bytes or not UTF-8.`, 'Headlight analyses text; open a text file or select text.');
  }
}

/** Start offsets (UTF-16 units) of every line; a line ends after \n, \r\n or a lone \r. */
export function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) starts.push(i + 1);
    else if (c === 13) {
      if (text.charCodeAt(i + 1) === 10) i++;
      starts.push(i + 1);
    }
  }
  return starts;
}

/** Offset of a 0-based line and UTF-16 column, clamped to the line. */
export function offsetAt(starts: readonly number[], textLength: number, line: number, column: number): number {
  if (line < 0 || line >= starts.length) throw new RangeError(`line ${line + 1} is outside 1..${starts.length}`);
  const end = line + 1 < starts.length ? starts[line + 1] : textLength;
  return Math.min(starts[line] + Math.max(0, column), end);
}

/** 0-based line and column of an offset. */
export function positionAt(starts: readonly number[], offset: number): { line: number; column: number } {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= offset) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo, column: offset - starts[lo] };
}

/** Index of the token whose [start, end) holds offset, else the last token starting at or before it; -1 if none. */
export function tokenAt(tokens: readonly { start: number; end: number }[], offset: number): number {
  let lo = 0;
  let hi = tokens.length - 1;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (tokens[mid].start <= offset) {
      best = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  // Tokens that share one multi-byte character overlap; prefer the first token that covers the offset.
  while (best > 0 && tokens[best - 1].end > offset && tokens[best - 1].start <= offset) best--;
  return best;
}
