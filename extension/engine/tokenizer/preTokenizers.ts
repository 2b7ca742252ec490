/**
 * Pre-tokenizers of `tokenizer.json`: they cut a normalized piece into words, which the model encodes one by one.
 * A word is a range [from, to) of a piece; pre-tokenizers that change the text (Metaspace, ByteLevel's prefix
 * space) make a new piece. Semantics follow Hugging Face's `NormalizedString::split` and the pre-tokenizers' Rust code.
 */
import { HeadlightError } from '../../common/errors.js';
import { preTokenEnd } from './bpePretokenize.js';
import { patternRegex, prependTo, replaceIn, slicePiece, type Piece } from './normalizers.js';
import { shown } from './shown.js';

export interface Word {
  piece: Piece;
  from: number;
  to: number;
}

export type PreTokenizer = (words: Word[]) => Word[];

export type Behavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';

/** Cuts `word` given the (from, to, isMatch) ranges that tile it, relative to the word, per Hugging Face's rules. */
export function splitBy(word: Word, matches: Array<[number, number, boolean]>, behavior: Behavior, out: Word[]): void {
  const parts: Array<[number, number, boolean]> = []; // [from, to, remove]
  let previous = false;
  switch (behavior) {
    case 'Isolated':
      for (const [s, e] of matches) parts.push([s, e, false]);
      break;
    case 'Removed':
      for (const m of matches) parts.push(m);
      break;
    case 'Contiguous':
      for (const [s, e, isMatch] of matches) {
        const last = parts[parts.length - 1];
        if (isMatch === previous && last) last[1] = e;
        else parts.push([s, e, false]);
        previous = isMatch;
      }
      break;
    case 'MergedWithPrevious':
      for (const [s, e, isMatch] of matches) {
        const last = parts[parts.length - 1];
        if (isMatch && !previous && last) last[1] = e;
        else parts.push([s, e, false]);
        previous = isMatch;
      }
      break;
    case 'MergedWithNext':
      for (let k = matches.length - 1; k >= 0; k--) {
        const [s, e, isMatch] = matches[k]!;
        const last = parts[parts.length - 1];
        if (isMatch && !previous && last) last[0] = s;
        else parts.push([s, e, false]);
        previous = isMatch;
      }
      parts.reverse();
      break;
  }
  for (const [s, e, remove] of parts) {
    if (!remove && e > s) out.push({ piece: word.piece, from: word.from + s, to: word.from + e });
  }
}

/** (from, to, isMatch) ranges of a global regex over `text`, tiling it (Hugging Face's `find_matches`). */
export function regexMatches(re: RegExp, text: string, invert: boolean): Array<[number, number, boolean]> {
  const out: Array<[number, number, boolean]> = [];
  if (text.length === 0) return [[0, 0, invert]];
  let prev = 0;
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const s = m.index;
    const e = s + m[0].length;
    if (e === s) re.lastIndex = s + (text.codePointAt(s)! > 0xffff ? 2 : 1); // step over empty matches as Oniguruma does
    if (prev !== s) out.push([prev, s, invert]);
    out.push([s, e, !invert]);
    prev = e;
    if (re.lastIndex > text.length) break;
  }
  if (prev !== text.length) out.push([prev, text.length, invert]);
  return out;
}

/**
 * Isolated, not inverted (the common Split): every match and every gap between matches is a word. Tries the sticky
 * regex at the current position first (no match array is allocated), and searches only when it fails.
 */
function isolate(w: Word, sticky: RegExp, global: RegExp, out: Word[]): void {
  const text = w.to - w.from === w.piece.text.length ? w.piece.text : wordText(w);
  const n = text.length;
  const mark = out.length;
  let pos = 0;
  while (pos < n) {
    sticky.lastIndex = pos;
    if (sticky.test(text)) {
      if (sticky.lastIndex === pos) break; // an empty match: take the general path
      out.push({ piece: w.piece, from: w.from + pos, to: w.from + sticky.lastIndex });
      pos = sticky.lastIndex;
      continue;
    }
    // No match here: the gap runs to the next match (or the end).
    global.lastIndex = pos;
    const m = global.exec(text);
    if (m !== null && m[0].length === 0) break;
    const gapEnd = m === null ? n : m.index;
    out.push({ piece: w.piece, from: w.from + pos, to: w.from + gapEnd });
    if (m === null) return;
    out.push({ piece: w.piece, from: w.from + m.index, to: w.from + m.index + m[0].length });
    pos = m.index + m[0].length;
  }
  if (pos >= n) return;
  // Patterns that match the empty string cut words at those places too: Hugging Face's find_matches rules.
  out.length = mark;
  splitBy(w, regexMatches(global, text, false), 'Isolated', out);
}

/** Ranges of the characters for which `test` holds, each alone, and the runs between them (Rust's char patterns). */
function charMatches(text: string, test: (cp: number) => boolean): Array<[number, number, boolean]> {
  const out: Array<[number, number, boolean]> = [];
  let last = 0;
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i)!;
    const len = cp > 0xffff ? 2 : 1;
    if (test(cp)) {
      if (last < i) out.push([last, i, false]);
      out.push([i, i + len, true]);
      last = i + len;
    }
    i += len;
  }
  if (last < text.length) out.push([last, text.length, false]);
  return out;
}

const NUMERIC = /\p{N}/u;
const isNumeric = (cp: number): boolean => (cp < 0x80 ? cp >= 0x30 && cp <= 0x39 : NUMERIC.test(String.fromCodePoint(cp)));
const WHITESPACE = /\p{White_Space}/u;
const isWhitespace = (cp: number): boolean => WHITESPACE.test(String.fromCodePoint(cp));

function wordText(w: Word): string {
  return w.piece.text.slice(w.from, w.to);
}

function unsupported(where: string, what: string): HeadlightError {
  return new HeadlightError(
    'tokenizer-unsupported',
    `${where}: the pre-tokenizer ${what} is not supported.`,
    'Headlight reads the pre-tokenizers of GPT-2, Llama, Qwen, Gemma, SmolLM and Pythia tokenizers (ByteLevel, Split, Digits, Metaspace, Whitespace, Sequence); please open an issue with the model name.',
  );
}

/** What the pipeline needs to know besides the function: whether words reach the model as byte-level text. */
export interface BuiltPreTokenizer {
  run: PreTokenizer | null;
  byteLevel: boolean;
  /** GPT-2's ByteLevel regex is applied (so words are short and worth caching). */
  splitsWords: boolean;
}

export function buildPreTokenizer(json: unknown, where: string): BuiltPreTokenizer {
  if (json === null || json === undefined) return { run: null, byteLevel: false, splitsWords: false };
  const spec = json as Record<string, unknown>;
  switch (spec['type']) {
    case 'Sequence': {
      const list = spec['pretokenizers'];
      if (!Array.isArray(list)) throw unsupported(where, 'Sequence without a "pretokenizers" list');
      const steps = list.map((p, k) => buildPreTokenizer(p, `${where}.pretokenizers[${k}]`));
      const runs = steps.map((s) => s.run).filter((r): r is PreTokenizer => r !== null);
      return {
        run: (words) => runs.reduce((acc, step) => step(acc), words),
        byteLevel: steps.some((s) => s.byteLevel),
        splitsWords: steps.some((s) => s.splitsWords),
      };
    }
    case 'ByteLevel': {
      const prefixSpace = spec['add_prefix_space'] === true;
      const useRegex = spec['use_regex'] !== false;
      const run: PreTokenizer = (words) => {
        if (!prefixSpace && !useRegex) return words; // the byte-level mapping itself happens in the model
        const out: Word[] = [];
        for (let w of words) {
          if (prefixSpace && w.piece.text.charCodeAt(w.from) !== 0x20) {
            const piece = prependTo(slicePiece(w.piece, w.from, w.to), ' ');
            w = { piece, from: 0, to: piece.text.length };
          }
          if (!useRegex) {
            if (prefixSpace) out.push(w);
            continue;
          }
          const text = w.to - w.from === w.piece.text.length ? w.piece.text : wordText(w);
          for (let i = 0; i < text.length; ) {
            const end = preTokenEnd(text, i);
            out.push({ piece: w.piece, from: w.from + i, to: w.from + end });
            i = end;
          }
        }
        return out;
      };
      return { run, byteLevel: true, splitsWords: useRegex };
    }
    case 'Split': {
      const re = patternRegex(spec['pattern'], `${where}.pattern`);
      const behavior = spec['behavior'] as Behavior;
      if (!['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'].includes(behavior)) {
        throw unsupported(where, `Split with behavior ${shown(behavior)}`);
      }
      const invert = spec['invert'] === true;
      const sticky = new RegExp(re.source, 'yu');
      const run: PreTokenizer = (words) => {
        const out: Word[] = [];
        for (const w of words) {
          if (behavior === 'Isolated' && !invert) isolate(w, sticky, re, out);
          else splitBy(w, regexMatches(re, wordText(w), invert), behavior, out);
        }
        return out;
      };
      return { run, byteLevel: false, splitsWords: true };
    }
    case 'Digits': {
      const behavior: Behavior = spec['individual_digits'] === true ? 'Isolated' : 'Contiguous';
      const run: PreTokenizer = (words) => {
        const out: Word[] = [];
        for (const w of words) splitBy(w, charMatches(wordText(w), isNumeric), behavior, out);
        return out;
      };
      return { run, byteLevel: false, splitsWords: true };
    }
    case 'WhitespaceSplit': {
      const run: PreTokenizer = (words) => {
        const out: Word[] = [];
        for (const w of words) splitBy(w, charMatches(wordText(w), isWhitespace), 'Removed', out);
        return out;
      };
      return { run, byteLevel: false, splitsWords: true };
    }
    case 'Whitespace': {
      // Rust regex `\w+|[^\w\s]+` (Unicode \w and \s), inverted and removed: keeps the matches only.
      const re = /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]+|[^\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}\p{White_Space}]+/gu;
      const run: PreTokenizer = (words) => {
        const out: Word[] = [];
        for (const w of words) splitBy(w, regexMatches(re, wordText(w), true), 'Removed', out);
        return out;
      };
      return { run, byteLevel: false, splitsWords: true };
    }
    case 'Metaspace': {
      const replacement = typeof spec['replacement'] === 'string' ? spec['replacement'] : '▁';
      let scheme = (spec['prepend_scheme'] as string | undefined) ?? 'always';
      if (spec['add_prefix_space'] === false) scheme = 'never';
      if (!['always', 'first', 'never'].includes(scheme)) throw unsupported(where, `Metaspace with prepend_scheme ${shown(scheme)}`);
      const split = spec['split'] !== false;
      const space = / /g;
      const run: PreTokenizer = (words) => {
        const out: Word[] = [];
        for (const w of words) {
          let piece = replaceIn(slicePiece(w.piece, w.from, w.to), space, replacement);
          const starts = piece.text.startsWith(replacement);
          if (!starts && (scheme === 'always' || (scheme === 'first' && piece.start[0] === 0))) piece = prependTo(piece, replacement);
          const whole: Word = { piece, from: 0, to: piece.text.length };
          if (split) splitBy(whole, charMatches(piece.text, (cp) => cp === replacement.codePointAt(0)), 'MergedWithNext', out);
          else out.push(whole);
        }
        return out;
      };
      return { run, byteLevel: false, splitsWords: split };
    }
    default:
      throw unsupported(where, shown(spec['type']));
  }
}
