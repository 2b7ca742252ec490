/**
 * Pre-tokenizers of `tokenizer.json`: they cut a normalized piece into words, which the model encodes one by one.
 * A word is a range [from, to) of a piece; pre-tokenizers that change the text (Metaspace, ByteLevel's prefix
 * space) make a new piece. Semantics follow Hugging Face's `NormalizedString::split` and the pre-tokenizers' Rust code.
 */
import { HeadlightError } from '../../common/errors.js';
import { preTokenEnd } from './bpePretokenize.js';
import { patternRegex, prependTo, replaceIn, slicePiece, type Piece } from './normalizers.js';
import { shown } from './shown.js';

/** Receives one word: `piece.text[from, to)`. Words arrive in order and are never taken back. */
export type WordSink = (piece: Piece, from: number, to: number) => void;

/**
 * Cuts `piece.text[from, to)` into words and hands each to `emit`. Streaming (no word objects, no word arrays): a
 * 4 MB file is ~500,000 words, and materializing them cost a third of the tokenizer's time.
 */
export type PreTokenizer = (piece: Piece, from: number, to: number, emit: WordSink) => void;

export type Behavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';

/**
 * Cuts the word `piece[from, …)` given the (from, to, isMatch) ranges that tile it, relative to `from`, per Hugging
 * Face's rules.
 */
export function splitBy(piece: Piece, from: number, matches: Array<[number, number, boolean]>, behavior: Behavior, emit: WordSink): void {
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
    if (!remove && e > s) emit(piece, from + s, from + e);
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
function isolate(piece: Piece, from: number, to: number, sticky: RegExp, global: RegExp, emit: WordSink): void {
  const text = to - from === piece.text.length ? piece.text : piece.text.slice(from, to);
  const n = text.length;
  // Cuts are collected as (start, end) pairs first: a pattern that matches the empty string somewhere takes the
  // general path below, and the fast path's words must then be dropped, not already emitted.
  const cuts: number[] = [];
  let pos = 0;
  while (pos < n) {
    sticky.lastIndex = pos;
    if (sticky.test(text)) {
      if (sticky.lastIndex === pos) break; // an empty match: take the general path
      cuts.push(pos, sticky.lastIndex);
      pos = sticky.lastIndex;
      continue;
    }
    // No match here: the gap runs to the next match (or the end).
    global.lastIndex = pos;
    const m = global.exec(text);
    if (m !== null && m[0].length === 0) break;
    const gapEnd = m === null ? n : m.index;
    cuts.push(pos, gapEnd);
    if (m === null) {
      pos = n;
      break;
    }
    cuts.push(m.index, m.index + m[0].length);
    pos = m.index + m[0].length;
  }
  if (pos >= n) {
    for (let k = 0; k < cuts.length; k += 2) emit(piece, from + cuts[k]!, from + cuts[k + 1]!);
    return;
  }
  // Patterns that match the empty string cut words at those places too: Hugging Face's find_matches rules.
  splitBy(piece, from, regexMatches(global, text, false), 'Isolated', emit);
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

function wordText(piece: Piece, from: number, to: number): string {
  return to - from === piece.text.length ? piece.text : piece.text.slice(from, to);
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
      // Each step hands its words straight to the next one.
      const run = steps
        .map((s) => s.run)
        .reduceRight<PreTokenizer | null>((next, step) => {
          if (step === null) return next;
          if (next === null) return step;
          return (piece, from, to, emit) => step(piece, from, to, (p, f, t) => next(p, f, t, emit));
        }, null);
      return { run, byteLevel: steps.some((s) => s.byteLevel), splitsWords: steps.some((s) => s.splitsWords) };
    }
    case 'ByteLevel': {
      const prefixSpace = spec['add_prefix_space'] === true;
      const useRegex = spec['use_regex'] !== false;
      // Without a prefix space or the regex, the pre-tokenizer changes nothing: the byte-level mapping itself
      // happens in the model.
      if (!prefixSpace && !useRegex) return { run: null, byteLevel: true, splitsWords: false };
      const run: PreTokenizer = (piece, from, to, emit) => {
        if (prefixSpace && piece.text.charCodeAt(from) !== 0x20) {
          piece = prependTo(slicePiece(piece, from, to), ' ');
          from = 0;
          to = piece.text.length;
        }
        if (!useRegex) {
          emit(piece, from, to);
          return;
        }
        const text = wordText(piece, from, to);
        for (let i = 0; i < text.length; ) {
          const end = preTokenEnd(text, i);
          emit(piece, from + i, from + end);
          i = end;
        }
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
      const run: PreTokenizer =
        behavior === 'Isolated' && !invert
          ? (piece, from, to, emit) => isolate(piece, from, to, sticky, re, emit)
          : (piece, from, to, emit) => splitBy(piece, from, regexMatches(re, wordText(piece, from, to), invert), behavior, emit);
      return { run, byteLevel: false, splitsWords: true };
    }
    case 'Digits': {
      const behavior: Behavior = spec['individual_digits'] === true ? 'Isolated' : 'Contiguous';
      const run: PreTokenizer = (piece, from, to, emit) => splitBy(piece, from, charMatches(wordText(piece, from, to), isNumeric), behavior, emit);
      return { run, byteLevel: false, splitsWords: true };
    }
    case 'WhitespaceSplit': {
      const run: PreTokenizer = (piece, from, to, emit) => splitBy(piece, from, charMatches(wordText(piece, from, to), isWhitespace), 'Removed', emit);
      return { run, byteLevel: false, splitsWords: true };
    }
    case 'Whitespace': {
      // Rust regex `\w+|[^\w\s]+` (Unicode \w and \s), inverted and removed: keeps the matches only.
      const re = /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]+|[^\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}\p{White_Space}]+/gu;
      const run: PreTokenizer = (piece, from, to, emit) => splitBy(piece, from, regexMatches(re, wordText(piece, from, to), true), 'Removed', emit);
      return { run, byteLevel: false, splitsWords: true };
    }
    case 'Metaspace': {
      const replacement = typeof spec['replacement'] === 'string' ? spec['replacement'] : '▁';
      let scheme = (spec['prepend_scheme'] as string | undefined) ?? 'always';
      if (spec['add_prefix_space'] === false) scheme = 'never';
      if (!['always', 'first', 'never'].includes(scheme)) throw unsupported(where, `Metaspace with prepend_scheme ${shown(scheme)}`);
      const split = spec['split'] !== false;
      const space = / /g;
      const mark = replacement.codePointAt(0);
      const run: PreTokenizer = (original, from, to, emit) => {
        let piece = replaceIn(slicePiece(original, from, to), space, replacement);
        const starts = piece.text.startsWith(replacement);
        if (!starts && (scheme === 'always' || (scheme === 'first' && piece.start[0] === 0))) piece = prependTo(piece, replacement);
        if (split) splitBy(piece, 0, charMatches(piece.text, (cp) => cp === mark), 'MergedWithNext', emit);
        else emit(piece, 0, piece.text.length);
      };
      return { run, byteLevel: false, splitsWords: split };
    }
    default:
      throw unsupported(where, shown(spec['type']));
  }
}
