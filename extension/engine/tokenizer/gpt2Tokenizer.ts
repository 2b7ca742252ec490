/**
 * GPT-2's byte-level BPE tokenizer with UTF-16 offsets.
 *
 * `Gpt2Tokenizer` is pure: it is built from vocabulary and merges given as data. `loadTokenizer` reads them from a
 * model folder. Offsets follow Hugging Face's tokenizers: a token holding part of a multi-byte character spans that
 * whole character, so neighbouring tokens may overlap (`"🤗"` is three tokens, each spanning both code units).
 *
 * Added tokens (`<|endoftext|>` in GPT-2) found in the text are encoded as themselves, as `@huggingface/tokenizers`
 * and the Rust tokenizers do by default; pass `{ specialTokens: false }` to tokenize them as plain text.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Token } from '../../common/tokens.js';
import { HeadlightError } from '../../common/errors.js';
import { preTokenEnd } from './bpePretokenize.js';
import { byteToUnicode, MergeRanks, mergeSymbols, PAIR_BASE } from './bpeMerge.js';
import { JsonTokenizer } from './jsonTokenizer.js';
import { shown } from './shown.js';
import { forEachUtf8Byte } from './utf8Bytes.js';
import { vocabPiece } from './vocabPiece.js';

export const END_OF_TEXT = '<|endoftext|>';

export interface EncodeOptions {
  /** Encode added tokens such as `<|endoftext|>` found in the text as their own id (default true). */
  specialTokens?: boolean;
}

/** A token matched literally in the text before pre-tokenization (Hugging Face's `added_tokens`). */
export interface AddedToken {
  id: number;
  content: string;
}

/** Words up to this many code units are cached; the cache is emptied when it reaches CACHE_ENTRIES. */
const CACHE_WORD_UNITS = 64;
const CACHE_ENTRIES = 20_000;

export class Gpt2Tokenizer {
  /** Number of ids (largest id + 1), added tokens included. */
  readonly vocabSize: number;
  /** Id of `<|endoftext|>` (50256 in GPT-2), or undefined if the vocabulary has none. */
  readonly eosTokenId: number | undefined;

  private readonly pieces: string[] = []; // [vocabSize] id → vocabulary string ("Ġworld")
  private readonly byteIds = new Int32Array(256); // [256] byte → id of its one-byte token
  private readonly ranks: MergeRanks;
  private readonly added: AddedToken[]; // longest first, so the longest wins at equal positions
  private readonly bytesById: Array<Uint8Array | undefined> = [];
  private readonly textById: Array<string | undefined> = [];
  /** word → [id, start, end] per token, offsets relative to the word. */
  private readonly cache = new Map<string, Int32Array>();
  private readonly utf8 = new TextEncoder();
  private readonly utf8Decoder = new TextDecoder('utf-8');
  // Scratch buffers for one word, grown on demand: symbol ids and byte lengths, and per byte the code units of
  // the character it belongs to.
  private symIds = new Int32Array(256);
  private symLens = new Int32Array(256);
  private byteUnitStart = new Int32Array(256);
  private byteUnitEnd = new Int32Array(256);
  private readonly unicodeToByte = new Map<string, number>();

  private constructor(vocab: Map<string, number>, merges: Array<[string, string]>, added: AddedToken[], source: string) {
    const chars = byteToUnicode();
    chars.forEach((ch, b) => this.unicodeToByte.set(ch, b));

    let maxId = -1;
    for (const [piece, id] of vocab) {
      if (!Number.isInteger(id) || id < 0 || id >= PAIR_BASE) {
        throw invalid(source, `the vocabulary gives "${piece}" the id ${String(id)}; ids must be integers from 0 to ${PAIR_BASE - 1}`);
      }
      this.pieces[id] = piece;
      maxId = Math.max(maxId, id);
    }
    for (const token of added) {
      this.pieces[token.id] = token.content;
      maxId = Math.max(maxId, token.id);
    }
    this.vocabSize = maxId + 1;

    for (let b = 0; b < 256; b++) {
      const id = vocab.get(chars[b]!);
      if (id === undefined) {
        throw invalid(source, `the vocabulary has no token for byte 0x${b.toString(16).padStart(2, '0')} ("${chars[b]}"), which every byte-level BPE vocabulary needs`);
      }
      this.byteIds[b] = id;
    }

    const rules = merges.map(([left, right], rank): [number, number, number] => {
      const l = vocab.get(left);
      const r = vocab.get(right);
      const m = vocab.get(left + right);
      if (l === undefined || r === undefined || m === undefined) {
        const missing = l === undefined ? left : r === undefined ? right : left + right;
        throw invalid(source, `merge ${rank + 1} ("${left} ${right}") uses "${missing}", which is not in the vocabulary`);
      }
      return [l, r, m];
    });
    this.ranks = new MergeRanks(rules);

    this.added = [...added].sort((a, b) => b.content.length - a.content.length).filter((t) => t.content.length > 0);
    this.eosTokenId = added.find((t) => t.content === END_OF_TEXT)?.id ?? vocab.get(END_OF_TEXT);
  }

  /**
   * From `vocab.json` (parsed) and the lines of `merges.txt` (the `#version` header and blank lines are skipped).
   * `<|endoftext|>`, if in the vocabulary, is treated as an added special token, as transformers' GPT2Tokenizer does.
   */
  static fromVocabMerges(vocab: Record<string, number>, merges: string[]): Gpt2Tokenizer {
    const source = 'vocab.json/merges.txt';
    if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab)) {
      throw invalid(source, 'vocab.json must hold an object of token → id');
    }
    const vocabMap = new Map(Object.entries(vocab));
    const pairs: Array<[string, string]> = [];
    merges.forEach((line, index) => {
      const text = line.trim();
      if (text === '' || (index === 0 && text.startsWith('#version'))) return;
      pairs.push(splitMerge(text, `merges.txt line ${index + 1}`));
    });
    const eos = vocabMap.get(END_OF_TEXT);
    const added = eos === undefined ? [] : [{ id: eos, content: END_OF_TEXT }];
    return new Gpt2Tokenizer(vocabMap, pairs, added, source);
  }

  /** From a parsed Hugging Face `tokenizer.json` of a GPT-2-style byte-level BPE tokenizer. */
  static fromTokenizerJson(json: unknown): Gpt2Tokenizer {
    const source = 'tokenizer.json';
    const root = asObject(json, source, 'the file');
    checkSupported(root, source);
    const model = asObject(root['model'], source, '"model"');
    const vocab = asObject(model['vocab'], source, '"model.vocab"');
    const merges = model['merges'];
    if (!Array.isArray(merges)) throw invalid(source, '"model.merges" must be an array');
    const pairs = merges.map((m: unknown, i): [string, string] => {
      const where = `model.merges[${i}]`;
      if (typeof m === 'string') return splitMerge(m, where);
      if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
      throw invalid(source, `${where} must be "left right" or ["left", "right"], not ${shown(m)}`);
    });
    const addedJson = root['added_tokens'] ?? [];
    if (!Array.isArray(addedJson)) throw invalid(source, '"added_tokens" must be an array');
    const added = addedJson.map((t: unknown, i): AddedToken => {
      const token = asObject(t, source, `added_tokens[${i}]`);
      if (typeof token['id'] !== 'number' || typeof token['content'] !== 'string') {
        throw invalid(source, `added_tokens[${i}] needs a numeric "id" and a string "content"`);
      }
      return { id: token['id'], content: token['content'] };
    });
    return new Gpt2Tokenizer(new Map(Object.entries(vocab as Record<string, number>)), pairs, added, source);
  }

  /** Tokens with their UTF-16 offsets in `text`. */
  encode(text: string, options: EncodeOptions = {}): Token[] {
    const tokens: Token[] = [];
    this.run(text, options, (id, start, end) => {
      tokens.push({ id, text: this.tokenText(id), start, end });
    });
    return tokens;
  }

  /** Token ids only (same ids as `encode`). */
  encodeIds(text: string, options: EncodeOptions = {}): number[] {
    const ids: number[] = [];
    this.run(text, options, (id) => {
      ids.push(id);
    });
    return ids;
  }

  /** The text of a sequence of ids; invalid UTF-8 (a cut character) becomes U+FFFD. */
  decode(ids: readonly number[]): string {
    const parts = ids.map((id) => this.tokenBytes(id));
    const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of parts) {
      bytes.set(part, at);
      at += part.length;
    }
    return this.utf8Decoder.decode(bytes);
  }

  /** The vocabulary string of an id, e.g. "Ġworld" (an added token's content as is). */
  piece(id: number): string {
    return vocabPiece(this.pieces, id, this.vocabSize);
  }

  /** The UTF-8 bytes an id stands for. */
  tokenBytes(id: number): Uint8Array {
    let bytes = this.bytesById[id];
    if (bytes === undefined) {
      bytes = this.computeBytes(id);
      this.bytesById[id] = bytes;
    }
    return bytes;
  }

  /** The token's text as users see it: its bytes decoded, U+FFFD where it holds part of a character. */
  tokenText(id: number): string {
    let text = this.textById[id];
    if (text === undefined) {
      text = this.utf8Decoder.decode(this.tokenBytes(id));
      this.textById[id] = text;
    }
    return text;
  }

  private computeBytes(id: number): Uint8Array {
    const piece = this.piece(id);
    if (this.added.some((t) => t.id === id)) return this.utf8.encode(piece);
    const out: number[] = [];
    for (const ch of piece) {
      const b = this.unicodeToByte.get(ch);
      if (b !== undefined) out.push(b);
      else out.push(...this.utf8.encode(ch)); // not byte-level: take the character itself
    }
    return Uint8Array.from(out);
  }

  /** Calls `emit` for every token of `text`, in order, with absolute UTF-16 offsets. */
  private run(text: string, options: EncodeOptions, emit: (id: number, start: number, end: number) => void): void {
    const useAdded = options.specialTokens !== false && this.added.length > 0;
    let from = 0;
    if (useAdded) {
      const nextAt = this.added.map((t) => text.indexOf(t.content)); // next occurrence of each added token
      for (;;) {
        let best = -1;
        for (let k = 0; k < nextAt.length; k++) {
          if (nextAt[k]! >= 0 && nextAt[k]! < from) nextAt[k] = text.indexOf(this.added[k]!.content, from);
          const at = nextAt[k]!;
          if (at >= 0 && (best < 0 || at < nextAt[best]!)) best = k; // ties: the longer (earlier in the list) wins
        }
        if (best < 0) break;
        const at = nextAt[best]!;
        const token = this.added[best]!;
        this.encodeOrdinary(text, from, at, emit);
        emit(token.id, at, at + token.content.length);
        from = at + token.content.length;
      }
    }
    this.encodeOrdinary(text, from, text.length, emit);
  }

  /** Pre-tokenizes `text[from, to)` and emits the BPE tokens of each word. */
  private encodeOrdinary(text: string, from: number, to: number, emit: (id: number, start: number, end: number) => void): void {
    const part = from === 0 && to === text.length ? text : text.slice(from, to);
    for (let i = 0; i < part.length; ) {
      const end = preTokenEnd(part, i);
      const c = part.charCodeAt(i);
      if (end - i === 1 && c < 0x80) {
        emit(this.byteIds[c]!, from + i, from + end); // one ASCII character is always one byte token
      } else {
        const word = this.wordTokens(part, i, end);
        for (let k = 0; k < word.length; k += 3) emit(word[k]!, from + i + word[k + 1]!, from + i + word[k + 2]!);
      }
      i = end;
    }
  }

  /** [id, start, end] per token of the word `text[start, end)`, offsets relative to `start`; cached when short. */
  private wordTokens(text: string, start: number, end: number): Int32Array {
    if (end - start > CACHE_WORD_UNITS) return this.bpeWord(text, start, end);
    const key = text.slice(start, end);
    let tokens = this.cache.get(key);
    if (tokens === undefined) {
      tokens = this.bpeWord(text, start, end);
      if (this.cache.size >= CACHE_ENTRIES) this.cache.clear();
      this.cache.set(key, tokens);
    }
    return tokens;
  }

  private bpeWord(text: string, start: number, end: number): Int32Array {
    this.reserve(3 * (end - start)); // a code unit is at most 3 UTF-8 bytes (a surrogate pair is 4 bytes for 2)
    const ids = this.symIds;
    const lens = this.symLens;
    const unitStart = this.byteUnitStart;
    const unitEnd = this.byteUnitEnd;
    let n = 0;
    const push = (byte: number, from: number, to: number): void => {
      ids[n] = this.byteIds[byte]!;
      lens[n] = 1;
      unitStart[n] = from;
      unitEnd[n] = to;
      n++;
    };
    forEachUtf8Byte(text, start, end, push);
    // unitStart/unitEnd are indexed by byte; ids/lens become the merged symbols.
    const m = mergeSymbols(ids, lens, n, this.ranks);
    const out = new Int32Array(3 * m); // [m, 3] id, start, end
    let byte = 0;
    for (let k = 0; k < m; k++) {
      out[3 * k] = ids[k]!;
      out[3 * k + 1] = unitStart[byte]!;
      byte += lens[k]!;
      out[3 * k + 2] = unitEnd[byte - 1]!;
    }
    return out;
  }

  private reserve(bytes: number): void {
    if (this.symIds.length >= bytes) return;
    const size = Math.max(bytes, 2 * this.symIds.length);
    this.symIds = new Int32Array(size);
    this.symLens = new Int32Array(size);
    this.byteUnitStart = new Int32Array(size);
    this.byteUnitEnd = new Int32Array(size);
  }
}

/**
 * Loads the tokenizer of a model folder: `tokenizer.json` if present (GPT-2's own pipeline through the fast
 * Gpt2Tokenizer, any other through JsonTokenizer), else `vocab.json` + `merges.txt`.
 */
export async function loadTokenizer(dir: string): Promise<Gpt2Tokenizer | JsonTokenizer> {
  const jsonPath = join(dir, 'tokenizer.json');
  const jsonText = await readOptional(jsonPath);
  if (jsonText !== undefined) {
    const json = parseJson(jsonText, jsonPath);
    if (isGpt2Pipeline(json)) return withPath(jsonPath, () => Gpt2Tokenizer.fromTokenizerJson(json));
    return JsonTokenizer.fromJson(json, jsonPath);
  }

  const vocabPath = join(dir, 'vocab.json');
  const mergesPath = join(dir, 'merges.txt');
  const [vocabText, mergesText] = await Promise.all([readOptional(vocabPath), readOptional(mergesPath)]);
  if (vocabText === undefined || mergesText === undefined) {
    const missing = [vocabText === undefined ? 'vocab.json' : '', mergesText === undefined ? 'merges.txt' : ''].filter(Boolean);
    throw new HeadlightError(
      'tokenizer-missing',
      `No tokenizer in ${dir}: found no tokenizer.json, and ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} missing.`,
      'A GPT-2-family model folder needs tokenizer.json, or vocab.json and merges.txt; download the model again or copy them from the model repository.',
    );
  }
  const vocab = parseJson(vocabText, vocabPath) as Record<string, number>;
  return withPath(`${vocabPath} / ${mergesPath}`, () => Gpt2Tokenizer.fromVocabMerges(vocab, mergesText.split('\n')));
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new HeadlightError('tokenizer-unreadable', `Cannot read ${path}: ${(err as Error).message}.`, 'Check the file permissions.');
  }
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HeadlightError('tokenizer-corrupt', `${path} is not valid JSON (${(err as Error).message}).`, 'The file is probably truncated: download the model again.');
  }
}

/** Names the file in errors raised while building the tokenizer from it. */
function withPath<T>(path: string, build: () => T): T {
  try {
    return build();
  } catch (err) {
    if (err instanceof HeadlightError) throw new HeadlightError(err.code, `${path}: ${err.message}`, err.hint);
    throw err;
  }
}

function invalid(source: string, what: string): HeadlightError {
  return new HeadlightError('tokenizer-corrupt', `Invalid tokenizer (${source}): ${what}.`, 'The tokenizer files are damaged or not a GPT-2 byte-level BPE tokenizer: download the model again.');
}

function splitMerge(text: string, where: string): [string, string] {
  const parts = text.split(' ');
  if (parts.length !== 2 || !parts[0] || !parts[1]) {
    throw invalid(where, `a merge must be two tokens separated by one space, not ${shown(text)}`);
  }
  return [parts[0], parts[1]];
}

function asObject(value: unknown, source: string, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(source, `${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

/**
 * True when a tokenizer.json is GPT-2's pipeline exactly (ByteLevel with its regex, no normalizer, no BOS, plain BPE),
 * so that the specialised Gpt2Tokenizer gives Hugging Face's ids.
 */
function isGpt2Pipeline(json: unknown): boolean {
  if (typeof json !== 'object' || json === null) return false;
  const root = json as Record<string, unknown>;
  try {
    checkSupported(root, 'tokenizer.json');
  } catch {
    return false;
  }
  const post = root['post_processor'] as Record<string, unknown> | null | undefined;
  const model = root['model'] as Record<string, unknown> | undefined;
  const added = Array.isArray(root['added_tokens']) ? (root['added_tokens'] as Array<Record<string, unknown>>) : [];
  return (
    (post == null || (post['type'] === 'ByteLevel' && post['trim_offsets'] !== true)) &&
    model?.['ignore_merges'] !== true &&
    model?.['unk_token'] == null &&
    added.every((t) => t['lstrip'] !== true && t['rstrip'] !== true && t['single_word'] !== true)
  );
}

/** Rejects tokenizer.json files whose pipeline is not GPT-2's, rather than tokenizing them wrongly. */
function checkSupported(root: Record<string, unknown>, source: string): void {
  const unsupported = (what: string): HeadlightError =>
    new HeadlightError(
      'tokenizer-unsupported',
      `${source}: ${what}; Headlight supports GPT-2's byte-level BPE tokenizer only.`,
      'Choose a GPT-2-family model (gpt2, distilgpt2, …), or remove tokenizer.json to fall back to vocab.json + merges.txt.',
    );
  const model = root['model'] as Record<string, unknown> | undefined;
  if (model && model['type'] !== undefined && model['type'] !== 'BPE') throw unsupported(`the model type is ${shown(model['type'])}, not "BPE"`);
  if (root['normalizer'] != null) throw unsupported('it has a normalizer');
  const pre = root['pre_tokenizer'] as Record<string, unknown> | null | undefined;
  if (pre != null && (pre['type'] !== 'ByteLevel' || pre['add_prefix_space'] === true || pre['use_regex'] === false)) {
    throw unsupported(`its pre-tokenizer is ${shown(pre)}, not ByteLevel without prefix space`);
  }
  if (model) {
    for (const key of ['continuing_subword_prefix', 'end_of_word_suffix']) {
      if (model[key] != null && model[key] !== '') throw unsupported(`its model sets ${key}`);
    }
    if (model['byte_fallback'] === true) throw unsupported('its model uses byte_fallback');
  }
}
