/**
 * Normalizers of `tokenizer.json` (NFC, NFKC, NFD, NFKD, Replace, Prepend, Sequence) over text that keeps, for every
 * UTF-16 unit, the range of the original text it came from, with Hugging Face's alignment rules:
 * - a replacement's characters all take the range of the last character they replace;
 * - prepended characters take the range of the first character;
 * - a composed character takes the range of the first character it was composed from (the others vanish from the
 *   offsets), and extra characters of an expansion take the range of the character they come from.
 */
import { HeadlightError } from '../../common/errors.js';
import { escapeRegex, rustRegex } from './rustRegex.js';
import { shown } from './shown.js';

/** Text after normalization: unit i of `text` comes from the original units [start[i], end[i]). */
export interface Piece {
  text: string;
  start: Int32Array; // [text.length]
  end: Int32Array; // [text.length]
}

export type Normalizer = (piece: Piece) => Piece;

/** The original text `text[from, to)` as a piece (both units of a surrogate pair span the pair). */
export function originalPiece(text: string, from: number, to: number): Piece {
  const n = to - from;
  const start = new Int32Array(n);
  const end = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(from + i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      start[i] = start[i + 1] = from + i;
      end[i] = end[i + 1] = from + i + 2;
      i++;
    } else {
      start[i] = from + i;
      end[i] = from + i + 1;
    }
  }
  return { text: text.slice(from, to), start, end };
}

/** The sub-piece of units [from, to). */
export function slicePiece(piece: Piece, from: number, to: number): Piece {
  return { text: piece.text.slice(from, to), start: piece.start.subarray(from, to), end: piece.end.subarray(from, to) };
}

/** Builder for a piece: appends units with their original ranges. */
class PieceBuilder {
  private parts: string[] = [];
  private starts: number[] = [];
  private ends: number[] = [];

  add(text: string, start: number, end: number): void {
    this.parts.push(text);
    for (let k = 0; k < text.length; k++) {
      this.starts.push(start);
      this.ends.push(end);
    }
  }

  copy(piece: Piece, from: number, to: number): void {
    if (to <= from) return;
    this.parts.push(piece.text.slice(from, to));
    for (let k = from; k < to; k++) {
      this.starts.push(piece.start[k]!);
      this.ends.push(piece.end[k]!);
    }
  }

  build(): Piece {
    return { text: this.parts.join(''), start: Int32Array.from(this.starts), end: Int32Array.from(this.ends) };
  }
}

/** Replaces every match of `re` (global) with `content`. */
export function replaceIn(piece: Piece, re: RegExp, content: string): Piece {
  re.lastIndex = 0;
  let m = re.exec(piece.text);
  if (m === null) return piece;
  const out = new PieceBuilder();
  let last = 0;
  while (m !== null) {
    const s = m.index;
    const e = s + m[0].length;
    if (e === s) {
      re.lastIndex = e + 1;
    } else {
      out.copy(piece, last, s);
      out.add(content, piece.start[e - 1]!, piece.end[e - 1]!);
      last = e;
    }
    m = re.exec(piece.text);
  }
  out.copy(piece, last, piece.text.length);
  return out.build();
}

/** Prepends `prefix`, aligned with the first character (nothing on empty text). */
export function prependTo(piece: Piece, prefix: string): Piece {
  if (piece.text.length === 0) return piece;
  const out = new PieceBuilder();
  out.add(prefix, piece.start[0]!, piece.end[0]!);
  out.copy(piece, 0, piece.text.length);
  return out.build();
}

type Form = 'NFC' | 'NFD' | 'NFKC' | 'NFKD';

/** Characters that can join the preceding character in (de)composition: marks and Hangul medial/final jamo. */
const JOINS_PREVIOUS = /[\p{M}\u1160-\u11ff\ud7b0-\ud7ff]/u;

export function unicodeNormalize(piece: Piece, form: Form): Piece {
  const text = piece.text;
  if (text.normalize(form) === text) return piece;
  const out = new PieceBuilder();
  // Chunks: a character plus the following characters that may combine with it.
  let i = 0;
  while (i < text.length) {
    let j = i + unitLength(text, i);
    while (j < text.length && JOINS_PREVIOUS.test(String.fromCodePoint(text.codePointAt(j)!))) j += unitLength(text, j);
    normalizeChunk(piece, i, j, form, out);
    i = j;
  }
  return out.build();
}

function unitLength(text: string, i: number): number {
  return text.codePointAt(i)! > 0xffff ? 2 : 1;
}

/** Aligns the normalized chunk text[from, to) with its input characters, as the Rust normalizer does. */
function normalizeChunk(piece: Piece, from: number, to: number, form: Form, out: PieceBuilder): void {
  const chunk = piece.text.slice(from, to);
  const normalized = chunk.normalize(form);
  if (normalized === chunk) {
    out.copy(piece, from, to);
    return;
  }
  const inputs: number[] = []; // unit index of each input character
  for (let k = from; k < to; k += unitLength(piece.text, k)) inputs.push(k);
  let p = 0; // next input character not yet consumed
  let lastUnit = from;
  for (const ch of normalized) {
    let q = -1;
    for (let r = p + 1; r <= inputs.length; r++) {
      const prefix = piece.text.slice(inputs[p]!, r < inputs.length ? inputs[r] : to).normalize(form);
      if (prefix.startsWith(ch)) {
        q = r;
        break;
      }
    }
    if (q < 0 || p >= inputs.length) {
      // An extra character of an expansion: the range of the previous input character.
      out.add(ch, piece.start[lastUnit]!, piece.end[lastUnit]!);
      continue;
    }
    lastUnit = inputs[p]!;
    out.add(ch, piece.start[lastUnit]!, piece.end[lastUnit]!);
    p = q;
  }
}

function unsupported(where: string, what: string): HeadlightError {
  return new HeadlightError(
    'tokenizer-unsupported',
    `${where}: the normalizer ${what} is not supported.`,
    'Headlight reads the normalizers of Llama, Qwen, Gemma, Pythia and GPT-2 tokenizers (NFC, NFKC, NFD, NFKD, Replace, Prepend, Sequence); please open an issue with the model name.',
  );
}

/** A pattern of Replace/Split: `{ String }` or `{ Regex }`, as a global JavaScript regex. */
export function patternRegex(pattern: unknown, where: string): RegExp {
  const p = pattern as { String?: unknown; Regex?: unknown } | null;
  if (p && typeof p.String === 'string') return new RegExp(escapeRegex(p.String), 'gu');
  if (p && typeof p.Regex === 'string') return rustRegex(p.Regex, where);
  throw new HeadlightError('tokenizer-corrupt', `${where}: "pattern" must be {"String": …} or {"Regex": …}, not ${shown(pattern)}.`, 'The tokenizer file is damaged: download the model again.');
}

/** Builds the normalizer of a `normalizer` JSON object (null: none). `where` names the file and field in errors. */
export function buildNormalizer(json: unknown, where: string): Normalizer | null {
  if (json === null || json === undefined) return null;
  const spec = json as Record<string, unknown>;
  switch (spec['type']) {
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD': {
      const form = spec['type'] as Form;
      return (p) => unicodeNormalize(p, form);
    }
    case 'Replace': {
      const re = patternRegex(spec['pattern'], `${where}.pattern`);
      const content = String(spec['content'] ?? '');
      return (p) => replaceIn(p, re, content);
    }
    case 'Prepend': {
      const prefix = String(spec['prepend'] ?? '');
      return (p) => prependTo(p, prefix);
    }
    case 'Sequence': {
      const list = spec['normalizers'];
      if (!Array.isArray(list)) throw unsupported(where, 'Sequence without a "normalizers" list');
      const steps = list.map((n, k) => buildNormalizer(n, `${where}.normalizers[${k}]`)).filter((n): n is Normalizer => n !== null);
      return (p) => steps.reduce((acc, step) => step(acc), p);
    }
    default:
      throw unsupported(where, shown(spec['type']));
  }
}

/** Normalizes a plain string (for added tokens' content), dropping the alignment. */
export function normalizeString(normalizer: Normalizer | null, text: string): string {
  return normalizer ? normalizer(originalPiece(text, 0, text.length)).text : text;
}
