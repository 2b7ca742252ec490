/**
 * JsonTokenizer's answers that do not need the oracle: bad files refused with a HeadlightError naming the file and
 * the component, the Oniguruma -> JavaScript regex translation on the real files' patterns, and what users see
 * (BOS at [0, 0) with its content as text, "▁" as a space, bytes of a split character as U+FFFD).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { HeadlightError } from '../../extension/common/errors.js';
import { loadTokenizer } from '../../extension/engine/tokenizer/gpt2Tokenizer.js';
import { JsonTokenizer } from '../../extension/engine/tokenizer/jsonTokenizer.js';
import { rustRegex } from '../../extension/engine/tokenizer/rustRegex.js';
import { tokenizerFiles } from '../fixtures/tokenizers/oracle.js';

const files = new Map(tokenizerFiles().map((f) => [f.name, f]));
const small = JSON.parse(files.get('smollm2-style')!.json()) as Record<string, any>;
const clone = (): Record<string, any> => structuredClone(small);
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function folderWith(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'headlight-tokjson-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'tokenizer.json'), text);
  return dir;
}

function refused(code: string, ...words: RegExp[]) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof HeadlightError, `not a HeadlightError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const w of words) assert.match(e.message, w);
    assert.ok(e.hint && e.hint.length > 10, 'says what to do');
    return true;
  };
}

describe('bad tokenizer.json files', () => {
  test('truncated file: names the file', async () => {
    const text = JSON.stringify(small);
    const dir = folderWith(text.slice(0, text.length / 2));
    await assert.rejects(loadTokenizer(dir), refused('tokenizer-corrupt', /tokenizer\.json/, /not valid JSON/));
  });
  test('not JSON at all', async () => {
    await assert.rejects(loadTokenizer(folderWith('<html>rate limited</html>')), refused('tokenizer-corrupt', /tokenizer\.json/));
  });
  test('byte_fallback without <0xXX> tokens in the vocabulary', () => {
    const json = JSON.parse(files.get('llama2')!.json()) as Record<string, any>;
    for (const key of Object.keys(json['model'].vocab)) if (/^<0x[0-9A-F]{2}>$/.test(key)) delete json['model'].vocab[key];
    assert.throws(() => JsonTokenizer.fromJson(json, '/models/x/tokenizer.json'), refused('tokenizer-corrupt', /\/models\/x\/tokenizer\.json/, /byte_fallback/, /<0x00>/));
  });
  test('a loader picks JsonTokenizer for a non-GPT-2 file and names the file in its errors', async () => {
    const json = clone();
    json['normalizer'] = { type: 'Lowercase' };
    const dir = folderWith(JSON.stringify(json));
    await assert.rejects(loadTokenizer(dir), refused('tokenizer-unsupported', new RegExp(`${dir.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&')}/tokenizer\\.json`), /normalizer/, /Lowercase/));
  });
  const unsupportedCases: Array<[string, (j: Record<string, any>) => void, RegExp]> = [
    ['normalizer BertNormalizer', (j) => (j['normalizer'] = { type: 'BertNormalizer' }), /normalizer.*BertNormalizer/],
    ['normalizer inside a Sequence', (j) => (j['normalizer'] = { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'StripAccents' }] }), /normalizers\[1\].*StripAccents/],
    ['pre-tokenizer BertPreTokenizer', (j) => (j['pre_tokenizer'] = { type: 'BertPreTokenizer' }), /pre_tokenizer.*BertPreTokenizer/],
    ['pre-tokenizer Split with a back-reference', (j) => (j['pre_tokenizer'] = { type: 'Split', pattern: { Regex: '(a)\\1' }, behavior: 'Isolated', invert: false }), /pre_tokenizer.*regular expression/],
    ['model WordPiece', (j) => (j['model'] = { type: 'WordPiece', vocab: {} }), /model.*WordPiece/],
    ['model with dropout', (j) => (j['model'].dropout = 0.1), /dropout/],
    ['post-processor RobertaProcessing', (j) => (j['post_processor'] = { type: 'RobertaProcessing' }), /post_processor.*RobertaProcessing/],
    ['decoder CTC', (j) => (j['decoder'] = { type: 'CTC' }), /decoder.*CTC/],
  ];
  for (const [name, change, words] of unsupportedCases) {
    test(`unsupported ${name}: refused, naming file and component`, () => {
      const json = clone();
      change(json);
      assert.throws(() => JsonTokenizer.fromJson(json, 'some/model/tokenizer.json'), refused(/model|dropout/.test(name) ? 'tokenizer-unsupported' : 'tokenizer-unsupported', /some\/model\/tokenizer\.json/, words));
    });
  }
  test('a merge that names a token missing from the vocabulary', () => {
    const json = clone();
    json['model'].merges = [...json['model'].merges, ['zzz', 'qqq']];
    assert.throws(() => JsonTokenizer.fromJson(json, 'm/tokenizer.json'), refused('tokenizer-corrupt', /m\/tokenizer\.json/, /model\.merges\[1500\]/, /zzz/));
  });
});

describe('Oniguruma regexes of the real files, in JavaScript', () => {
  const llama3 = JSON.parse(files.get('llama3')!.json()).pre_tokenizer.pretokenizers[0].pattern.Regex as string;
  const qwen3 = JSON.parse(files.get('qwen3')!.json()).pre_tokenizer.pretokenizers[0].pattern.Regex as string;
  const split = (pattern: string, text: string): string[] => [...text.matchAll(rustRegex(pattern, 'test'))].map((m) => m[0]);
  test('Llama 3: (?i:) contractions, digits in threes, U+0085 and U+FEFF as Rust sees them', () => {
    assert.deepEqual(split(llama3, "I'LL 12345 x"), ['I', "'LL", ' ', '123', '45', ' x']);
    assert.deepEqual(split(llama3, "'ſ"), ["'ſ"], 'ſ folds to s under (?i)');
    assert.deepEqual(split(llama3, 'a\u0085\u0085b'), ['a', '\u0085', '\u0085b'], 'U+0085 is White_Space');
    assert.deepEqual(split(llama3, 'a \ufeffb'), ['a', ' \ufeff', 'b'], 'U+FEFF is not White_Space: it joins the punctuation run');
    assert.deepEqual(split(llama3, '  def'), [' ', ' def']);
  });
  test('Qwen: single digits', () => {
    assert.deepEqual(split(qwen3, 'x=123'), ['x', '=', '1', '2', '3']);
  });
  test('possessive and atomic forms keep their meaning', () => {
    assert.deepEqual(split('a++b|a', 'aaab aa'), ['aaab', 'a', 'a']);
    assert.deepEqual(split('(?>a+)ab|a', 'aaab'), ['a', 'a', 'a']);
    assert.deepEqual(split('\\s+(?!\\S)', 'a \u0085\u00a0b'), [' \u0085']);
  });
});

describe('what users see', () => {
  test('BOS is a real token at [0, 0) with its content as text (Llama 2, Gemma 3, Llama 3 with BOS)', () => {
    for (const [name, bos, id] of [['llama2', '<s>', 1], ['gemma3', '<bos>', 2], ['llama3+bos', '<|begin_of_text|>', 128000]] as const) {
      const tok = JsonTokenizer.fromJson(JSON.parse(files.get(name)!.json()), name);
      const tokens = tok.encode('Hello world');
      assert.deepEqual([tokens[0]!.id, tokens[0]!.text, tokens[0]!.start, tokens[0]!.end], [id, bos, 0, 0], name);
      assert.deepEqual(tokens.slice(1).map((t) => t.text), [name === 'llama2' ? ' Hello' : 'Hello', ' world'], name);
      assert.deepEqual(tok.encode('').map((t) => t.id), [id], `${name}: the empty text is BOS alone`);
    }
  });
  test('byte-fallback pieces of a split character: U+FFFD, each spanning the whole character', () => {
    const tok = JsonTokenizer.fromJson(JSON.parse(files.get('llama2')!.json()), 'llama2');
    const tokens = tok.encode('a🟿');
    const bytes = tokens.filter((t) => /^<0x/.test(tok.piece(t.id)));
    assert.equal(bytes.length, 4);
    for (const t of bytes) assert.deepEqual([t.text, t.start, t.end], ['\ufffd', 1, 3]);
    assert.equal(tok.decode(tokens.map((t) => t.id)), '<s> a🟿');
  });
  test('decode follows the file\'s decoder', () => {
    const gemma = JsonTokenizer.fromJson(JSON.parse(files.get('gemma3')!.json()), 'gemma3');
    assert.equal(gemma.decode(gemma.encodeIds('  two spaces\tand 日本')), '<bos>  two spaces\tand 日本');
    const qwen = JsonTokenizer.fromJson(JSON.parse(files.get('qwen3')!.json()), 'qwen3');
    assert.equal(qwen.decode(qwen.encodeIds('café 🤗 <|im_start|>')), 'café 🤗 <|im_start|>');
  });
});

describe('Split patterns that can match the empty string cut where Hugging Face cuts', () => {
  test('Isolated with an empty-matching regex equals the oracle on a few texts', async (t) => {
    const { loadOracle } = await import('../fixtures/tokenizers/oracle.js');
    const oracle = loadOracle();
    if ('missing' in oracle) return t.skip(oracle.missing);
    for (const regex of ['x*', '(?=b)', '\\d*|\\s+']) {
      const json = structuredClone(small);
      json['pre_tokenizer'] = { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false }, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false }] };
      const ours = JsonTokenizer.fromJson(json, 'empty.json');
      const texts = ['abxxbc', 'bbb', 'a1 22  b', '', 'xx'];
      const want = await oracle.fromJson(JSON.stringify(json)).encodeBatch(texts);
      texts.forEach((text, k) => assert.deepEqual(ours.encode(text).map((x) => [x.id, x.start, x.end]), want[k]!.ids.map((id, i) => [id, ...want[k]!.offsets[i]!]), `${regex} on ${JSON.stringify(text)}`));
    }
  });
});
