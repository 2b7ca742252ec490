/**
 * A Hugging Face `tokenizer.json` tokenizer (BPE models: GPT-2, Llama 2/3, Mistral, TinyLlama, Qwen2/2.5/3, Gemma 2/3,
 * SmolLM2, Pythia) giving the ids of `tokenizer.encode(text, add_special_tokens=True)` with UTF-16 offsets.
 *
 * Pipeline, as in Hugging Face's tokenizers: added tokens (raw) -> normalizer -> added tokens (normalized) ->
 * pre-tokenizer -> BPE model per word -> post-processor (template BOS/EOS, ByteLevel offset trimming).
 * Offsets: [start, end) in UTF-16 units of the input; a token holding part of a character (a byte) spans the whole
 * character; a token the post-processor adds (BOS) is the empty span [0, 0). Anything the reader does not know is
 * refused with a HeadlightError naming the component, never tokenized differently.
 */
import type { Token } from '../../common/tokens.js';
import { HeadlightError } from '../../common/errors.js';
import { AddedTokenMatcher, type AddedToken } from './addedTokens.js';
import { BpeModel } from './bpeModel.js';
import { buildDecoder, displayStepsOf, runDecoder, type DecodeStep } from './decoders.js';
import { buildNormalizer, normalizeString, originalPiece, type Normalizer, type Piece } from './normalizers.js';
import { buildPreTokenizer, type PreTokenizer } from './preTokenizers.js';
import { shown } from './shown.js';
import { vocabPiece } from './vocabPiece.js';

/** Tokens the post-processor adds, before and after the text. */
interface Template {
  before: number[];
  after: number[];
}

interface PostProcessing {
  template: Template;
  /** ByteLevel post-processor with trim_offsets: leading/trailing spaces leave the offsets. */
  trim: { addPrefixSpace: boolean } | null;
}

/** Words up to this many code units are cached when the pre-tokenizer splits text into words. */
const CACHE_WORD_UNITS = 64;
const CACHE_ENTRIES = 100_000;

export class JsonTokenizer {
  /** Number of ids (largest id + 1), added tokens included. */
  readonly vocabSize: number;
  /** Ids the post-processor adds before the text (the BOS of Llama and Gemma), in order. */
  readonly prefixIds: readonly number[];

  private readonly pieces: string[] = []; // [vocabSize] id -> vocabulary string
  private readonly added: AddedToken[];
  private readonly addedById = new Map<number, AddedToken>();
  private readonly rawMatcher: AddedTokenMatcher;
  private readonly normalizedMatcher: AddedTokenMatcher;
  private readonly normalizer: Normalizer | null;
  private readonly preTokenizer: PreTokenizer | null;
  private readonly cacheWords: boolean;
  private readonly model: BpeModel;
  private readonly post: PostProcessing;
  private readonly decoder: DecodeStep[];
  private readonly display: DecodeStep[];
  private readonly textById: Array<string | undefined> = [];
  private readonly cache = new Map<string, Int32Array>();
  private readonly spacesById: Array<number | undefined> = [];

  private constructor(root: Record<string, unknown>, source: string) {
    const model = asObject(root['model'], source, 'model');
    if (model['type'] !== undefined && model['type'] !== 'BPE') throw unsupported(source, 'model', shown(model['type']), 'only BPE models are read');
    if (model['dropout'] != null && model['dropout'] !== 0) throw unsupported(source, 'model.dropout', shown(model['dropout']), 'dropout makes tokenization random');
    const vocab = new Map(Object.entries(asObject(model['vocab'], source, 'model.vocab') as Record<string, number>));
    const merges = readMerges(model['merges'], source);

    this.normalizer = buildNormalizer(root['normalizer'], `${source}: normalizer`);
    const pre = buildPreTokenizer(root['pre_tokenizer'], `${source}: pre_tokenizer`);
    this.preTokenizer = pre.run;
    this.cacheWords = pre.splitsWords;
    this.model = new BpeModel({
      vocab,
      merges,
      byteLevel: pre.byteLevel,
      byteFallback: model['byte_fallback'] === true,
      unkToken: typeof model['unk_token'] === 'string' ? model['unk_token'] : null,
      fuseUnk: model['fuse_unk'] === true,
      ignoreMerges: model['ignore_merges'] === true,
      continuingSubwordPrefix: typeof model['continuing_subword_prefix'] === 'string' ? model['continuing_subword_prefix'] : '',
      endOfWordSuffix: typeof model['end_of_word_suffix'] === 'string' ? model['end_of_word_suffix'] : '',
      source,
    });

    this.added = readAdded(root['added_tokens'], source);
    let maxId = -1;
    for (const [piece, id] of vocab) {
      this.pieces[id] = piece;
      if (id > maxId) maxId = id;
    }
    for (const t of this.added) {
      this.pieces[t.id] = t.content;
      this.addedById.set(t.id, t);
      if (t.id > maxId) maxId = t.id;
    }
    this.vocabSize = maxId + 1;
    this.rawMatcher = new AddedTokenMatcher(this.added.filter((t) => !t.normalized).map((t) => [t, t.content]));
    this.normalizedMatcher = new AddedTokenMatcher(this.added.filter((t) => t.normalized).map((t) => [t, normalizeString(this.normalizer, t.content)]));

    this.post = readPostProcessor(root['post_processor'], source, (token) => vocab.get(token) ?? this.added.find((t) => t.content === token)?.id);
    this.prefixIds = this.post.template.before;
    this.decoder = buildDecoder(root['decoder'], `${source}: decoder`);
    this.display = displayStepsOf(root['decoder'], `${source}: decoder`);
  }

  /** From a parsed `tokenizer.json`; `source` (the file) is named in errors. */
  static fromJson(json: unknown, source = 'tokenizer.json'): JsonTokenizer {
    return new JsonTokenizer(asObject(json, source, 'the file'), source);
  }

  /** What the model reads for `text`: `encode(text, add_special_tokens=True)`, with UTF-16 offsets and token text. */
  encode(text: string): Token[] {
    const tokens: Token[] = [];
    this.run(text, (id, start, end) => {
      tokens.push({ id, text: this.tokenText(id), start, end });
    });
    return tokens;
  }

  /** Ids only (the same as `encode`). */
  encodeIds(text: string): number[] {
    const ids: number[] = [];
    this.run(text, (id) => {
      ids.push(id);
    });
    return ids;
  }

  /** The text of ids through the file's decoder (special tokens included). */
  decode(ids: readonly number[]): string {
    return runDecoder(this.decoder, ids.map((id) => this.piece(id)));
  }

  /** The vocabulary string of an id (an added token's content as is). */
  piece(id: number): string {
    return vocabPiece(this.pieces, id, this.vocabSize);
  }

  /** A token's text as users see it: its piece decoded ("▁the" -> " the"), U+FFFD for a byte of a split character. */
  tokenText(id: number): string {
    let text = this.textById[id];
    if (text === undefined) {
      text = this.addedById.get(id)?.special ? this.piece(id) : runDecoder(this.display, [this.piece(id)]);
      this.textById[id] = text;
    }
    return text;
  }

  private spacesOf(id: number): number {
    let packed = this.spacesById[id];
    if (packed === undefined) {
      packed = countSpaces(this.piece(id));
      this.spacesById[id] = packed;
    }
    return packed;
  }

  private run(input: string, emit: (id: number, start: number, end: number) => void): void {
    const text = wellFormed(input);
    const { template, trim } = this.post;
    for (const id of template.before) emit(id, 0, 0);
    let push = emit;
    if (trim) {
      // Hugging Face's ByteLevel `process_offsets`: leading/trailing "Ġ" or whitespace leave the offsets.
      let first = true;
      push = (id, start, end) => {
        const packed = this.spacesOf(id);
        if (packed !== 0) {
          let leading = packed >> 16;
          const trailing = packed & 0xffff;
          if (leading > 0) {
            if ((first || start === 0) && trim.addPrefixSpace && leading === 1) leading = 0;
            start = Math.min(start + leading, end);
          }
          if (trailing > 0 && end >= trailing) end = Math.max(end - trailing, start);
        }
        first = false;
        emit(id, start, end);
      };
    }
    let from = 0;
    for (const m of this.rawMatcher.find(text)) {
      this.encodeNormalized(text, from, m.start, push);
      push(m.token.id, m.start, m.end);
      from = m.end;
    }
    this.encodeNormalized(text, from, text.length, push);
    for (const id of template.after) emit(id, 0, 0);
  }

  /** Normalizes `text[from, to)`, then finds normalized added tokens and encodes the rest. */
  private encodeNormalized(text: string, from: number, to: number, push: (id: number, start: number, end: number) => void): void {
    if (to <= from) return;
    let piece = originalPiece(text, from, to);
    if (this.normalizer) piece = this.normalizer(piece);
    let at = 0;
    for (const m of this.normalizedMatcher.find(piece.text)) {
      this.encodeWords(piece, at, m.start, push);
      push(m.token.id, piece.start[m.start]!, piece.end[m.end - 1]!);
      at = m.end;
    }
    this.encodeWords(piece, at, piece.text.length, push);
  }

  /** Pre-tokenizes piece[from, to) and runs the model on each word. */
  private encodeWords(piece: Piece, from: number, to: number, push: (id: number, start: number, end: number) => void): void {
    if (to <= from) return;
    const word = (p: Piece, wordFrom: number, wordTo: number): void => {
      const tokens = this.wordTokens(p.text, wordFrom, wordTo);
      const { start, end } = p;
      for (let k = 0; k < tokens.length; k += 3) push(tokens[k]!, start[wordFrom + tokens[k + 1]!]!, end[wordFrom + tokens[k + 2]! - 1]!);
    };
    if (this.preTokenizer) this.preTokenizer(piece, from, to, word);
    else word(piece, from, to);
  }

  private wordTokens(text: string, from: number, to: number): Int32Array {
    if (!this.cacheWords || to - from > CACHE_WORD_UNITS) return this.model.tokenize(text, from, to);
    const key = text.slice(from, to);
    let tokens = this.cache.get(key);
    if (tokens === undefined) {
      tokens = this.model.tokenize(key, 0, key.length);
      if (this.cache.size >= CACHE_ENTRIES) this.cache.clear();
      this.cache.set(key, tokens);
    }
    return tokens;
  }
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Lone surrogates become U+FFFD, as TextEncoder does (the length stays the same). */
export function wellFormed(text: string): string {
  LONE_SURROGATE.lastIndex = 0;
  return LONE_SURROGATE.test(text) ? text.replace(LONE_SURROGATE, '\ufffd') : text;
}

/** Leading and trailing "Ġ"/whitespace characters of a piece, packed as leading << 16 | trailing. */
function countSpaces(piece: string): number {
  const isSpace = (ch: string): boolean => ch === 'Ġ' || /\p{White_Space}/u.test(ch);
  const chars = [...piece];
  let leading = 0;
  while (leading < chars.length && isSpace(chars[leading]!)) leading++;
  let trailing = 0;
  while (trailing < chars.length && isSpace(chars[chars.length - 1 - trailing]!)) trailing++;
  return (Math.min(leading, 0x7fff) << 16) | Math.min(trailing, 0xffff);
}

function readMerges(json: unknown, source: string): Array<[string, string]> {
  if (!Array.isArray(json)) throw corrupt(source, '"model.merges" must be an array');
  return json.map((m: unknown, i): [string, string] => {
    if (typeof m === 'string') {
      const at = m.indexOf(' ', 1);
      if (at > 0 && at < m.length - 1 && m.indexOf(' ', at + 1) < 0) return [m.slice(0, at), m.slice(at + 1)];
    } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
      return [m[0], m[1]];
    }
    throw corrupt(source, `model.merges[${i}] must be "left right" or ["left", "right"], not ${shown(m)}`);
  });
}

function readAdded(json: unknown, source: string): AddedToken[] {
  const list = json ?? [];
  if (!Array.isArray(list)) throw corrupt(source, '"added_tokens" must be an array');
  return list.map((t: unknown, i): AddedToken => {
    const token = asObject(t, source, `added_tokens[${i}]`);
    if (typeof token['id'] !== 'number' || typeof token['content'] !== 'string') throw corrupt(source, `added_tokens[${i}] needs a numeric "id" and a string "content"`);
    return {
      id: token['id'],
      content: token['content'],
      special: token['special'] === true,
      singleWord: token['single_word'] === true,
      lstrip: token['lstrip'] === true,
      rstrip: token['rstrip'] === true,
      normalized: token['normalized'] !== false,
    };
  });
}

function readPostProcessor(json: unknown, source: string, idOf: (token: string) => number | undefined): PostProcessing {
  const post: PostProcessing = { template: { before: [], after: [] }, trim: null };
  const apply = (spec: unknown, where: string): void => {
    if (spec === null || spec === undefined) return;
    const p = asObject(spec, source, where);
    switch (p['type']) {
      case 'Sequence': {
        const list = p['processors'];
        if (!Array.isArray(list)) throw corrupt(source, `${where}.processors must be an array`);
        list.forEach((q, k) => apply(q, `${where}.processors[${k}]`));
        return;
      }
      case 'ByteLevel':
        if (p['trim_offsets'] === true) post.trim = { addPrefixSpace: p['add_prefix_space'] === true };
        return;
      case 'TemplateProcessing': {
        const single = p['single'];
        if (!Array.isArray(single)) throw corrupt(source, `${where}.single must be an array`);
        const specials = (p['special_tokens'] ?? {}) as Record<string, { ids?: unknown }>;
        let seenA = false;
        const before: number[] = [];
        const after: number[] = [];
        single.forEach((item: unknown, k) => {
          const entry = item as { SpecialToken?: { id?: unknown }; Sequence?: { id?: unknown } };
          if (entry.Sequence) {
            if (entry.Sequence.id !== 'A' || seenA) throw unsupported(source, `${where}.single[${k}]`, shown(entry), 'a single-text template holds sequence A once');
            seenA = true;
          } else if (entry.SpecialToken && typeof entry.SpecialToken.id === 'string') {
            const name = entry.SpecialToken.id;
            const known = specials[name]?.ids;
            const ids = Array.isArray(known) ? (known as number[]) : [idOf(name)];
            if (ids.some((id) => typeof id !== 'number')) throw corrupt(source, `${where}.single[${k}] names the special token ${shown(name)}, which has no id`);
            (seenA ? after : before).push(...(ids as number[]));
          } else {
            throw corrupt(source, `${where}.single[${k}] must be {"SpecialToken": …} or {"Sequence": …}`);
          }
        });
        post.template = { before: [...post.template.before, ...before], after: [...post.template.after, ...after] };
        return;
      }
      default:
        throw unsupported(source, where, shown(p['type']), 'Headlight reads TemplateProcessing, ByteLevel and Sequence post-processors');
    }
  };
  apply(json, 'post_processor');
  return post;
}

function asObject(value: unknown, source: string, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw corrupt(source, `${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

function corrupt(source: string, what: string): HeadlightError {
  return new HeadlightError('tokenizer-corrupt', `${source}: ${what}.`, 'The tokenizer file is damaged or incomplete: download the model again.');
}

function unsupported(source: string, where: string, what: string, why: string): HeadlightError {
  return new HeadlightError('tokenizer-unsupported', `${source}: ${where} ${what} is not supported (${why}).`, 'Headlight cannot tokenize this model exactly; please open an issue with the model name.');
}
