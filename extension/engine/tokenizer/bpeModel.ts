/**
 * The BPE model of `tokenizer.json`: one word in, tokens with their ranges in the word out. Covers byte-level
 * vocabularies (GPT-2, Llama 3, Qwen) and SentencePiece-style ones with `byte_fallback` (Llama 2, Gemma), `unk_token`
 * with `fuse_unk`, `ignore_merges`, `continuing_subword_prefix` and `end_of_word_suffix`, as Hugging Face's
 * `BPE::merge_word` does. Merging reuses the heap merge of bpeMerge.ts (O(n log n) on long words).
 */
import { HeadlightError } from '../../common/errors.js';
import { byteToUnicode, MergeRanks, mergeSymbols, PAIR_BASE } from './bpeMerge.js';
import { shown } from './shown.js';
import { forEachUtf8Byte } from './utf8Bytes.js';

export interface BpeOptions {
  vocab: Map<string, number>;
  merges: Array<[string, string]>;
  /** Words reach the model as byte-level text (a ByteLevel pre-tokenizer ran). */
  byteLevel: boolean;
  byteFallback: boolean;
  unkToken: string | null;
  fuseUnk: boolean;
  ignoreMerges: boolean;
  continuingSubwordPrefix: string;
  endOfWordSuffix: string;
  /** The file, for errors. */
  source: string;
}

const BYTE_CHARS = byteToUnicode();

export class BpeModel {
  private readonly vocab: Map<string, number>;
  private readonly ranks: MergeRanks;
  private readonly byteLevel: boolean;
  private readonly byteIds = new Int32Array(256).fill(-1); // [256] byte -> id of its byte-level char, or of <0xXX>
  private readonly unkId: number;
  private readonly opts: BpeOptions;
  // Scratch per word, grown on demand: symbol ids, lengths (in initial symbols), and per initial symbol its unit range.
  private ids = new Int32Array(256);
  private lens = new Int32Array(256);
  private unitStart = new Int32Array(256);
  private unitEnd = new Int32Array(256);

  constructor(opts: BpeOptions) {
    this.opts = opts;
    this.vocab = opts.vocab;
    this.byteLevel = opts.byteLevel;
    const { vocab, source } = opts;
    for (const [piece, id] of vocab) {
      if (!Number.isInteger(id) || id < 0 || id >= PAIR_BASE) {
        throw corrupt(source, `model.vocab gives ${shown(piece)} the id ${shown(id)}; ids must be integers from 0 to ${PAIR_BASE - 1}`);
      }
    }
    if (opts.byteFallback) {
      const missing: string[] = [];
      for (let b = 0; b < 256; b++) {
        const id = vocab.get(byteToken(b));
        if (id === undefined) missing.push(byteToken(b));
        else this.byteIds[b] = id;
      }
      if (missing.length > 0) {
        throw corrupt(source, `model.byte_fallback is true but model.vocab has no byte tokens ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ` (and ${missing.length - 4} more)` : ''}`);
      }
    } else if (opts.byteLevel) {
      for (let b = 0; b < 256; b++) this.byteIds[b] = vocab.get(BYTE_CHARS[b]!) ?? -1;
    }
    this.unkId = opts.unkToken === null ? -1 : (vocab.get(opts.unkToken) ?? -1);
    if (opts.unkToken !== null && this.unkId < 0) throw corrupt(source, `model.unk_token ${shown(opts.unkToken)} is not in model.vocab`);

    const prefixLength = opts.continuingSubwordPrefix.length;
    const rules = opts.merges.map(([left, right], rank): [number, number, number] => {
      const merged = left + right.slice(prefixLength);
      const l = vocab.get(left);
      const r = vocab.get(right);
      const m = vocab.get(merged);
      if (l === undefined || r === undefined || m === undefined) {
        const missing = l === undefined ? left : r === undefined ? right : merged;
        throw corrupt(source, `model.merges[${rank}] (${JSON.stringify(left)} ${JSON.stringify(right)}) uses ${JSON.stringify(missing)}, which is not in model.vocab`);
      }
      return [l, r, m];
    });
    this.ranks = new MergeRanks(rules);
  }

  /**
   * Tokens of the word `text[from, to)` as [id, start, end] triples, start/end in UTF-16 units relative to `from`.
   * A token holding part of a character (a byte) spans the whole character.
   */
  tokenize(text: string, from: number, to: number): Int32Array {
    const opts = this.opts;
    if (opts.ignoreMerges) {
      const whole = this.vocab.get(this.modelText(text, from, to));
      if (whole !== undefined) return Int32Array.of(whole, 0, to - from);
    }
    this.reserve(4 * (to - from) + 2);
    const n = this.byteLevel && !opts.continuingSubwordPrefix && !opts.endOfWordSuffix ? this.byteSymbols(text, from, to) : this.charSymbols(text, from, to);
    const m = mergeSymbols(this.ids, this.lens, n, this.ranks);
    const out = new Int32Array(3 * m); // [m, 3] id, start, end
    let at = 0;
    for (let k = 0; k < m; k++) {
      out[3 * k] = this.ids[k]!;
      out[3 * k + 1] = this.unitStart[at]!;
      at += this.lens[k]!;
      out[3 * k + 2] = this.unitEnd[at - 1]!;
    }
    return out;
  }

  /** The word as the vocabulary spells it: byte-level characters when the words are byte-level. */
  private modelText(text: string, from: number, to: number): string {
    if (!this.byteLevel) return text.slice(from, to);
    // Printable ASCII ('!'..'~') is its own byte-level character: most words of code need no mapping at all.
    let plain = true;
    for (let i = from; i < to && plain; i++) {
      const c = text.charCodeAt(i);
      plain = c >= 0x21 && c <= 0x7e;
    }
    if (plain) return text.slice(from, to);
    let out = '';
    forEachUtf8Byte(text, from, to, (b) => {
      out += BYTE_CHARS[b];
    });
    return out;
  }

  /** One symbol per UTF-8 byte (the byte-level alphabet). Returns the number of symbols. */
  private byteSymbols(text: string, from: number, to: number): number {
    // ASCII words (most of code) are one byte per unit: no UTF-8 encoding, no callback.
    const { ids, lens, unitStart, unitEnd, byteIds } = this;
    let ascii = 0;
    for (let i = from; i < to; i++) {
      const c = text.charCodeAt(i);
      const id = c < 0x80 ? byteIds[c]! : -1;
      if (id < 0) break;
      ids[ascii] = id;
      lens[ascii] = 1;
      unitStart[ascii] = i - from;
      unitEnd[ascii] = i - from + 1;
      ascii++;
    }
    if (ascii === to - from) return ascii;
    let n = 0;
    const push = (byte: number, s: number, e: number): void => {
      const id = this.byteIds[byte]!;
      if (id < 0) throw corrupt(this.opts.source, `model.vocab has no token for byte 0x${byte.toString(16).padStart(2, '0')} (${JSON.stringify(BYTE_CHARS[byte])}), which a byte-level vocabulary needs`);
      this.ids[n] = id;
      this.lens[n] = 1;
      this.unitStart[n] = s;
      this.unitEnd[n] = e;
      n++;
    };
    forEachUtf8Byte(text, from, to, push);
    return n;
  }

  /** One symbol per character (with prefix/suffix), else its byte tokens, else unk: Hugging Face's merge_word. */
  private charSymbols(text: string, from: number, to: number): number {
    const { continuingSubwordPrefix: prefix, endOfWordSuffix: suffix } = this.opts;
    const chars = this.byteLevel ? byteLevelChars(text, from, to) : plainChars(text, from, to);
    let n = 0;
    let unkStart = -1;
    let unkEnd = -1;
    const flushUnk = (): void => {
      if (unkStart < 0) return;
      this.ids[n] = this.unkId;
      this.lens[n] = 1;
      this.unitStart[n] = unkStart;
      this.unitEnd[n] = unkEnd;
      n++;
      unkStart = -1;
    };
    for (let k = 0; k < chars.length; k++) {
      const { ch, s, e } = chars[k]!;
      let key = ch;
      if (k > 0 && prefix) key = prefix + key;
      if (k === chars.length - 1 && suffix) key += suffix;
      const id = this.vocab.get(key);
      if (id !== undefined) {
        flushUnk();
        this.ids[n] = id;
        this.lens[n] = 1;
        this.unitStart[n] = s;
        this.unitEnd[n] = e;
        n++;
        continue;
      }
      if (this.opts.byteFallback) {
        // The key's bytes (prefix and suffix included, as Hugging Face does) as <0xXX> tokens.
        flushUnk();
        for (const b of new TextEncoder().encode(key)) {
          this.ids[n] = this.byteIds[b]!;
          this.lens[n] = 1;
          this.unitStart[n] = s;
          this.unitEnd[n] = e;
          n++;
        }
        continue;
      }
      if (this.unkId >= 0) {
        if (unkStart >= 0 && this.opts.fuseUnk) unkEnd = e;
        else {
          flushUnk();
          unkStart = s;
          unkEnd = e;
        }
      }
      // No unk token and no byte fallback: the character is dropped, as Hugging Face does.
    }
    flushUnk();
    return n;
  }

  private reserve(size: number): void {
    if (this.ids.length >= size) return;
    const grown = Math.max(size, 2 * this.ids.length);
    this.ids = new Int32Array(grown);
    this.lens = new Int32Array(grown);
    this.unitStart = new Int32Array(grown);
    this.unitEnd = new Int32Array(grown);
  }
}

interface Char {
  ch: string;
  s: number;
  e: number;
}

function plainChars(text: string, from: number, to: number): Char[] {
  const out: Char[] = [];
  for (let i = from; i < to; ) {
    const cp = text.codePointAt(i)!;
    const units = cp > 0xffff ? 2 : 1;
    out.push({ ch: cp >= 0xd800 && cp <= 0xdfff ? '\ufffd' : String.fromCodePoint(cp), s: i - from, e: i - from + units });
    i += units;
  }
  return out;
}

function byteLevelChars(text: string, from: number, to: number): Char[] {
  const out: Char[] = [];
  const utf8 = new TextEncoder();
  for (const c of plainChars(text, from, to)) for (const b of utf8.encode(c.ch)) out.push({ ch: BYTE_CHARS[b]!, s: c.s, e: c.e });
  return out;
}

export function byteToken(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
}

function corrupt(source: string, what: string): HeadlightError {
  return new HeadlightError('tokenizer-corrupt', `${source}: ${what}.`, 'The tokenizer file is damaged or incomplete: download the model again.');
}
