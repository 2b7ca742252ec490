import { mulberry32 } from '../fixtures/randomCheckpoint';

/** A seeded uniform [0, 1) generator, so failures reproduce. */
const uniform = (seed: number) => {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
};
import assert from 'node:assert/strict';
import { promises as fsp, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Tokenizer as ReferenceTokenizer } from '@huggingface/tokenizers';
import { HeadlightError } from '../../extension/common/errors.js';
import type { Token } from '../../extension/common/tokens.js';
import { Gpt2Tokenizer, loadTokenizer } from '../../extension/engine/tokenizer/gpt2Tokenizer.js';
import { MergeRanks, mergeByHeap, mergeByScan } from '../../extension/engine/tokenizer/bpeMerge.js';
import { preTokenize } from '../../extension/engine/tokenizer/bpePretokenize.js';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));
const tokenizerJsonPath = join(fixtures, 'gpt2-tokenizer', 'tokenizer.json');
const bundledDir = fileURLToPath(new URL('../../models/headlight-tiny/', import.meta.url));
const corpusDir = join(fixtures, 'tokenizer-corpus');

let tok: Gpt2Tokenizer; // from tokenizer.json
let tokVM: Gpt2Tokenizer; // from vocab.json + merges.txt
let tokenizerJson: unknown;

before(async () => {
  tokenizerJson = JSON.parse(await fsp.readFile(tokenizerJsonPath, 'utf8'));
  tok = Gpt2Tokenizer.fromTokenizerJson(tokenizerJson);
  tokVM = (await loadTokenizer(bundledDir)) as Gpt2Tokenizer; // vocab.json + merges.txt: always Gpt2Tokenizer
});

const spans = (tokens: Token[]): Array<[number, number]> => tokens.map((t) => [t.start, t.end]);

describe('golden vectors', () => {
  const cases: Array<[string, number[]]> = [
    ['Hello world', [15496, 995]],
    ['How are you doing?', [2437, 389, 345, 1804, 30]],
    // U+0085 is Unicode whitespace: it stands alone and "'ll" stays one token (npm tokenizers give [126, 227, 6, 297]).
    ["\u0085'll", [126, 227, 1183]],
    ['Hello world 🤗 é', [15496, 995, 12520, 97, 245, 38251]],
  ];
  for (const [text, ids] of cases) {
    test(JSON.stringify(text), () => {
      assert.deepEqual(tok.encodeIds(text), ids);
      assert.deepEqual(tokVM.encodeIds(text), ids);
      assert.deepEqual(tok.encode(text).map((t) => t.id), ids);
    });
  }

  test('pieces, bytes, sizes and <|endoftext|>', () => {
    assert.equal(tok.piece(995), 'Ġworld');
    assert.deepEqual([...tok.tokenBytes(995)], [0x20, 0x77, 0x6f, 0x72, 0x6c, 0x64]);
    assert.equal(tok.vocabSize, 50257);
    assert.equal(tokVM.vocabSize, 50257);
    assert.equal(tok.eosTokenId, 50256);
    assert.equal(tokVM.eosTokenId, 50256);
    assert.equal(tok.piece(50256), '<|endoftext|>');
    assert.throws(() => tok.piece(50257), (e: unknown) => e instanceof HeadlightError && /50257/.test(e.message));
  });

  test('<|endoftext|> in text is the special token by default, plain text on request', () => {
    assert.deepEqual(tok.encodeIds('a<|endoftext|>b'), [64, 50256, 65]);
    assert.deepEqual(tokVM.encodeIds(' <|endoftext|><|endoftext|>'), [220, 50256, 50256]);
    assert.deepEqual(spans(tok.encode('a<|endoftext|>b')), [[0, 1], [1, 14], [14, 15]]);
    const plain = tok.encodeIds('a<|endoftext|>b', { specialTokens: false });
    assert.ok(!plain.includes(50256));
    assert.equal(tok.decode(plain), 'a<|endoftext|>b');
    assert.equal(tok.decode([64, 50256, 65]), 'a<|endoftext|>b');
  });
});

describe('offsets (UTF-16 code units)', () => {
  test('a token holding part of a character spans the whole character', () => {
    const tokens = tok.encode('Hello world 🤗 é');
    assert.deepEqual(spans(tokens), [[0, 5], [5, 11], [11, 14], [12, 14], [12, 14], [14, 16]]);
    assert.deepEqual(tokens.map((t) => t.text), ['Hello', ' world', ' \ufffd', '\ufffd', '\ufffd', ' é']);
  });

  test('CRLF and tabs', () => {
    // GPT-2 has no "\r\n" token: each control character is its own byte token.
    const text = 'a\r\n\tb\r\n\r\n  c';
    const tokens = tok.encode(text);
    assert.deepEqual(tokens.map((t) => text.slice(t.start, t.end)), ['a', '\r', '\n', '\t', 'b', '\r', '\n', '\r', '\n', ' ', ' c']);
    assert.deepEqual(tokens.map((t) => t.id), referenceIds(text));
    // "\n\n" is one token (628); the tab before "y" stands alone (197).
    const tabbed = 'x\n\n\ty\t\t';
    assert.deepEqual(tok.encode(tabbed).map((t) => [t.id, t.start, t.end]), [[87, 0, 1], [628, 1, 3], [197, 3, 4], [88, 4, 5], [197, 5, 6], [197, 6, 7]]);
  });

  test('astral characters count two code units', () => {
    const text = '𝑥=😀😀';
    const tokens = tok.encode(text);
    assert.deepEqual(tokens.map((t) => t.id), referenceIds(text));
    assert.equal(tokens[0]!.start, 0);
    assert.equal(tokens.at(-1)!.end, 7);
    for (const t of tokens) {
      assert.ok(t.end > t.start, 'non-empty span');
      // No span cuts a surrogate pair.
      assert.ok(!isLowSurrogate(text.charCodeAt(t.start)) && !isLowSurrogate(text.charCodeAt(t.end)));
    }
  });

  test('lone surrogates encode as U+FFFD but keep their own one-unit span', () => {
    const text = 'x\ud800y\udc00\udc00 \ud83d';
    const tokens = tok.encode(text);
    assert.deepEqual(tokens.map((t) => t.id), tok.encodeIds('x\ufffdy\ufffd\ufffd \ufffd'));
    assert.deepEqual(spans(tokens), [[0, 1], [1, 2], [2, 3], [3, 5], [5, 7]]);
    assert.equal(tok.decode(tokens.map((t) => t.id)), 'x\ufffdy\ufffd\ufffd \ufffd');
  });

  test('offsets agree with an independent byte → character map on the whole corpus', () => {
    for (const text of [...corpusTexts().values(), ...randomTexts(40, 7)]) checkOffsets(tok.encode(text), text);
  });
});

describe('decode(encode(x)) round-trips', () => {
  test('corpus and random strings', () => {
    for (const text of [...corpusTexts().values(), ...randomTexts(60, 11)]) {
      assert.equal(tok.decode(tok.encodeIds(text)), text.replace(/\p{Cs}/gu, '\ufffd'));
    }
  });
});

describe('pre-tokenizer', () => {
  const pieces = (text: string): string[] => preTokenize(text).map(([s, e]) => text.slice(s, e));
  test('splits like GPT-2 with Unicode whitespace', () => {
    assert.deepEqual(pieces("I'm  here's 42\n\n x"), ['I', "'m", ' ', ' here', "'s", ' 42', '\n\n', ' x']);
    assert.deepEqual(pieces("'S 'LL"), ["'", 'S', " '", 'LL']);
    assert.deepEqual(pieces('a\u0085\u0085b'), ['a', '\u0085', '\u0085', 'b']);
    assert.deepEqual(pieces('a\ufeffb \ufeff'), ['a', '\ufeff', 'b', ' \ufeff']);
    assert.deepEqual(pieces('a   '), ['a', '   ']);
  });
});

describe('merging', () => {
  test('heap and scan merges agree on random words', () => {
    // Ids 0..5 are single letters; rules merge them into longer ids, with overlapping candidates.
    const rules: Array<[number, number, number]> = [[0, 0, 6], [1, 2, 7], [6, 0, 8], [2, 0, 9], [7, 9, 10], [0, 1, 11], [6, 6, 12], [3, 3, 13]];
    const ranks = new MergeRanks(rules);
    const random = uniform(3);
    for (let trial = 0; trial < 300; trial++) {
      const n = 1 + Math.floor(random() * 120);
      const ids = Int32Array.from({ length: n }, () => Math.floor(random() * 4));
      const lens = new Int32Array(n).fill(1);
      const [ids2, lens2] = [ids.slice(), lens.slice()];
      const m = mergeByScan(ids, lens, n, ranks);
      const m2 = mergeByHeap(ids2, lens2, n, ranks);
      assert.deepEqual([...ids2.subarray(0, m2)], [...ids.subarray(0, m)]);
      assert.deepEqual([...lens2.subarray(0, m2)], [...lens.subarray(0, m)]);
      assert.equal(lens.subarray(0, m).reduce((a, b) => a + b, 0), n);
    }
  });

  test('a 100,000-character word tokenizes, and long words match the reference', () => {
    const long = 'a'.repeat(100_000);
    const tokens = tok.encode(long);
    assert.equal(tok.decode(tokens.map((t) => t.id)), long);
    assert.equal(tokens[0]!.start, 0);
    assert.equal(tokens.at(-1)!.end, 100_000);
    const mixed = 'xyzzy'.repeat(300) + 'é'.repeat(200);
    assert.deepEqual(tok.encodeIds(mixed), referenceIds(mixed));
    assert.deepEqual(tok.encodeIds('a'.repeat(3000)), referenceIds('a'.repeat(3000)));
  });
});

describe('differential against @huggingface/tokenizers', () => {
  test('every corpus file gives the same ids', () => {
    const corpus = corpusTexts();
    assert.ok(corpus.size >= 7, 'corpus files are present');
    for (const [name, text] of corpus) {
      assert.deepEqual(tok.encodeIds(text), referenceIds(text), name);
      assert.deepEqual(tokVM.encodeIds(text), referenceIds(text), name);
    }
  });

  test('seeded random mixes of the corpus pieces give the same ids', () => {
    for (const text of randomTexts(400, 1)) assert.deepEqual(tok.encodeIds(text), referenceIds(text), JSON.stringify(text));
  });

  test('the unmodified reference agrees wherever JavaScript and Unicode whitespace agree', () => {
    const plain = referenceTokenizer(false);
    const texts = [...corpusTexts().values(), ...randomTexts(200, 5)].filter((t) => !/[\u0085\ufeff]/.test(t));
    assert.ok(texts.length > 100);
    for (const text of texts) assert.deepEqual(tok.encodeIds(text), plain.encode(text).ids, JSON.stringify(text));
    // And where they differ, the unmodified reference is the one that deviates from GPT-2.
    assert.deepEqual(plain.encode("\u0085'll").ids, [126, 227, 6, 297]);
  });
});

describe('loading', () => {
  let dir: string;
  before(async () => {
    dir = await fsp.mkdtemp(join(tmpdir(), 'headlight-tok-'));
  });
  after(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  const expectError = async (folder: string, code: string, pattern: RegExp): Promise<void> => {
    await assert.rejects(loadTokenizer(folder), (e: unknown) => {
      assert.ok(e instanceof HeadlightError, String(e));
      assert.equal(e.code, code);
      assert.match(e.message, pattern);
      assert.ok(e.hint);
      return true;
    });
  };

  test('prefers tokenizer.json, falls back to vocab.json + merges.txt', async () => {
    const both = join(dir, 'both');
    await fsp.mkdir(both);
    await fsp.copyFile(tokenizerJsonPath, join(both, 'tokenizer.json'));
    await fsp.writeFile(join(both, 'vocab.json'), '{broken'); // not read when tokenizer.json exists
    assert.deepEqual((await loadTokenizer(both)).encodeIds('Hello world'), [15496, 995]);
  });

  test('names the missing file', async () => {
    const onlyVocab = join(dir, 'only-vocab');
    await fsp.mkdir(onlyVocab);
    await fsp.copyFile(join(bundledDir, 'vocab.json'), join(onlyVocab, 'vocab.json'));
    await expectError(onlyVocab, 'tokenizer-missing', /merges\.txt is missing/);
    await expectError(join(dir, 'nothing-here'), 'tokenizer-missing', /vocab\.json and merges\.txt are missing/);
  });

  test('names the corrupt file', async () => {
    const truncated = join(dir, 'truncated');
    await fsp.mkdir(truncated);
    const text = await fsp.readFile(tokenizerJsonPath, 'utf8');
    await fsp.writeFile(join(truncated, 'tokenizer.json'), text.slice(0, 5000));
    await expectError(truncated, 'tokenizer-corrupt', /tokenizer\.json is not valid JSON/);

    const badMerge = join(dir, 'bad-merge');
    await fsp.mkdir(badMerge);
    await fsp.copyFile(join(bundledDir, 'vocab.json'), join(badMerge, 'vocab.json'));
    await fsp.writeFile(join(badMerge, 'merges.txt'), '#version: 0.2\nĠ t\nĠ zzqqxx\n');
    await expectError(badMerge, 'tokenizer-corrupt', /merges\.txt.*merge 2 \("Ġ zzqqxx"\).*"zzqqxx"/);
  });

  test('rejects tokenizer.json pipelines that are not GPT-2', () => {
    const json = structuredClone(tokenizerJson) as Record<string, unknown>;
    json['pre_tokenizer'] = { type: 'Metaspace', replacement: '▁' };
    assert.throws(() => Gpt2Tokenizer.fromTokenizerJson(json), (e: unknown) => e instanceof HeadlightError && e.code === 'tokenizer-unsupported' && /Metaspace/.test(e.message));
  });

  test('merges given as [left, right] pairs load the same', () => {
    const json = structuredClone(tokenizerJson) as { model: { merges: string[] } };
    const pairs = json.model.merges.map((m) => m.split(' '));
    const fromPairs = Gpt2Tokenizer.fromTokenizerJson({ ...json, model: { ...json.model, merges: pairs } });
    const text = corpusTexts().get('code.ts')!;
    assert.deepEqual(fromPairs.encodeIds(text), tok.encodeIds(text));
  });
});

// ---- helpers ----

let referenceCache: ReferenceTokenizer | undefined;

/** Ids from @huggingface/tokenizers with its pattern's `\s` made Unicode White_Space (as in Python/Rust GPT-2). */
function referenceIds(text: string): number[] {
  referenceCache ??= referenceTokenizer(true);
  return referenceCache.encode(text).ids;
}

/**
 * The reference as shipped uses JavaScript's `\s` (adds U+FEFF, lacks U+0085). With `unicodeWhitespace`, its
 * ByteLevel pattern is replaced by the same pattern spelled with the explicit White_Space list.
 */
function referenceTokenizer(unicodeWhitespace: boolean): ReferenceTokenizer {
  const reference = new ReferenceTokenizer(tokenizerJson as object, {});
  if (unicodeWhitespace) {
    const ws = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
    const pattern = new RegExp(`'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${ws}\\p{L}\\p{N}]+|[${ws}]+(?![^${ws}])|[${ws}]+`, 'gu');
    const pre = reference.pre_tokenizer as unknown as { pattern: RegExp };
    assert.ok(pre.pattern instanceof RegExp, 'reference ByteLevel pre-tokenizer exposes its pattern');
    pre.pattern = pattern;
    assert.deepEqual(reference.encode("\u0085'll").ids, [126, 227, 1183], 'patched reference uses Unicode whitespace');
  }
  return reference;
}

let corpusCache: Map<string, string> | undefined;
function corpusTexts(): Map<string, string> {
  corpusCache ??= new Map(
    readdirSync(corpusDir)
      .filter((name) => !name.startsWith('.'))
      .sort()
      .map((name) => [name, readFileSync(join(corpusDir, name), 'utf8')]),
  );
  return corpusCache;
}


const PIECES = [
  ' ', '  ', '    ', '\t', '\n', '\r\n', '\r', '\u0085', '\ufeff', '\u00a0', '\u3000', '\u2028',
  "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "'", '"', "''",
  'a', 'Hello', 'WORLD', 'x_y', 'é', 'e\u0301', 'ñ', 'ß', 'Ω', '中文', '日本語', 'مرحبا', 'שלום', 'नमस्ते',
  '0', '42', '1234567890', '١٢٣', '½', '²', 'Ⅻ',
  '🤗', '👨‍👩‍👧‍👦', '👍🏽', '🏳️‍🌈', '1️⃣', '𝑥', '😀',
  '.', ',', '=>', '{', '}', '(', ')', ';', '//', '/*', '*/', '#', '$', '<|endoftext|>', '<|', '|>',
  '\ud800', '\udfff', '\x00', '\x1f', '\u200b', '\u200d',
];

function randomTexts(count: number, seed: number): string[] {
  const random = uniform(seed);
  const texts: string[] = [];
  for (let i = 0; i < count; i++) {
    const parts: string[] = [];
    const n = 1 + Math.floor(random() * 24);
    for (let k = 0; k < n; k++) parts.push(PIECES[Math.floor(random() * PIECES.length)]!);
    texts.push(parts.join(''));
  }
  return texts;
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

/**
 * Checks offsets against a map built independently with TextEncoder: for every UTF-8 byte of the text, the code
 * units of the character it comes from. Each token must start at the character of its first byte and end after the
 * character of its last byte, and the tokens' bytes must tile the text's bytes.
 */
function checkOffsets(tokens: Token[], text: string): void {
  const encoder = new TextEncoder();
  const byteChar: Array<[number, number]> = [];
  let unit = 0;
  for (const ch of text) {
    for (let b = encoder.encode(ch).length; b > 0; b--) byteChar.push([unit, unit + ch.length]);
    unit += ch.length;
  }
  let byte = 0;
  for (const t of tokens) {
    const n = tok.tokenBytes(t.id).length;
    const where = `${JSON.stringify(text)} token ${JSON.stringify(t)}`;
    if (t.id === 50256) {
      assert.equal(text.slice(t.start, t.end), '<|endoftext|>', where);
    }
    assert.equal(t.start, byteChar[byte]![0], where);
    assert.equal(t.end, byteChar[byte + n - 1]![1], where);
    assert.equal(t.text, new TextDecoder().decode(tok.tokenBytes(t.id)), where);
    byte += n;
  }
  assert.equal(byte, byteChar.length, `tokens cover all bytes of ${JSON.stringify(text)}`);
}
