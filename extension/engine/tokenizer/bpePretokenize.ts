/**
 * GPT-2's pre-tokenizer as a hand-written scanner over UTF-16 code units.
 *
 * It splits text exactly as the pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * does in Python's `regex` and Rust's `tokenizers`, where `\s` is Unicode White_Space. JavaScript's `\s` is not:
 * it leaves out U+0085 and adds U+FEFF, which is why this scanner classifies characters itself.
 * Lone surrogates are treated as one "other" character of one code unit (the tokenizer encodes them as U+FFFD).
 */

/** Character classes of the pattern: Other is `[^\s\p{L}\p{N}]`. */
export const CharClass = { Other: 0, Letter: 1, Number: 2, Space: 3 } as const;
export type CharClass = (typeof CharClass)[keyof typeof CharClass];

/** Class of every BMP code unit, built once from the Unicode properties of this JavaScript engine. */
const BMP_CLASSES: Uint8Array = buildBmpClasses();

function buildBmpClasses(): Uint8Array {
  const table = new Uint8Array(0x10000);
  const letter = /\p{L}/u;
  const number = /\p{N}/u;
  const space = /\p{White_Space}/u;
  for (let c = 0; c < 0x10000; c++) {
    if (c >= 0xd800 && c <= 0xdfff) continue; // surrogates: Other
    const ch = String.fromCharCode(c);
    if (letter.test(ch)) table[c] = CharClass.Letter;
    else if (number.test(ch)) table[c] = CharClass.Number;
    else if (space.test(ch)) table[c] = CharClass.Space;
  }
  return table;
}

const ASTRAL_LETTER = /^\p{L}$/u;
const ASTRAL_NUMBER = /^\p{N}$/u;

/** Class of a code point (a lone surrogate counts as Other). No astral code point is White_Space. */
export function classOfCodePoint(cp: number): CharClass {
  if (cp < 0x10000) return BMP_CLASSES[cp] as CharClass;
  const ch = String.fromCodePoint(cp);
  if (ASTRAL_LETTER.test(ch)) return CharClass.Letter;
  if (ASTRAL_NUMBER.test(ch)) return CharClass.Number;
  return CharClass.Other;
}

const APOSTROPHE = 0x27;
const SPACE = 0x20;

/** Length in code units of the contraction ('s, 't, 're, 've, 'm, 'll, 'd) at `i`, or 0. Case-sensitive, like GPT-2. */
function contractionLength(text: string, i: number): number {
  if (text.charCodeAt(i) !== APOSTROPHE) return 0;
  const d = text.charCodeAt(i + 1); // NaN past the end
  if (d === 0x73 || d === 0x74 || d === 0x6d || d === 0x64) return 2; // s t m d
  const e = text.charCodeAt(i + 2);
  if ((d === 0x72 || d === 0x76) && e === 0x65) return 3; // re ve
  if (d === 0x6c && e === 0x6c) return 3; // ll
  return 0;
}

/** End (exclusive, in code units) of the run of characters of class `cls` that starts at `i`. */
function runEnd(text: string, i: number, cls: CharClass): number {
  const n = text.length;
  let j = i;
  while (j < n) {
    const c = text.charCodeAt(j);
    if (c < 0xd800 || c > 0xdfff) {
      if (BMP_CLASSES[c] !== cls) break;
      j++;
    } else {
      const cp = text.codePointAt(j)!;
      if (classOfCodePoint(cp) !== cls) break;
      j += cp > 0xffff ? 2 : 1;
    }
  }
  return j;
}

function classAt(text: string, i: number): CharClass {
  const c = text.charCodeAt(i);
  if (c < 0xd800 || c > 0xdfff) return BMP_CLASSES[c] as CharClass;
  return classOfCodePoint(text.codePointAt(i)!);
}

/**
 * End (exclusive) of the pre-token that starts at `i` (< text.length). Pre-tokens tile the text: call again at the
 * returned index for the next one.
 */
export function preTokenEnd(text: string, i: number): number {
  const contraction = contractionLength(text, i);
  if (contraction) return i + contraction;

  const n = text.length;
  let cls = classAt(text, i);
  let start = i;
  // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: one leading ASCII space joins the following run.
  if (text.charCodeAt(i) === SPACE && i + 1 < n) {
    const next = classAt(text, i + 1);
    if (next !== CharClass.Space) {
      cls = next;
      start = i + 1;
    }
  }
  if (cls !== CharClass.Space) return runEnd(text, start, cls);

  // `\s+(?!\S)|\s+`: a whitespace run followed by text leaves its last character for the next pre-token
  // (which then takes it as its leading space, or stands alone if it is not U+0020).
  const end = runEnd(text, i, CharClass.Space);
  if (end === n || end - i === 1) return end;
  return end - 1;
}

/** All pre-tokens of `text` as [start, end) pairs in code units (for tests and tools; the tokenizer streams). */
export function preTokenize(text: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < text.length; ) {
    const end = preTokenEnd(text, i);
    out.push([i, end]);
    i = end;
  }
  return out;
}
