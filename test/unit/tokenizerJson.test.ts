/**
 * JsonTokenizer against Hugging Face's own tokenizers (the Rust library through npm `tokenizers`): ids and UTF-16
 * offsets identical on a corpus and on random texts, for every tokenizer file under test.
 * The number of random texts per tokenizer: HEADLIGHT_TOKENIZER_STRINGS (default 1,500; the full check is
 * HEADLIGHT_TOKENIZER_STRINGS=100000).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { JsonTokenizer, wellFormed } from '../../extension/engine/tokenizer/jsonTokenizer.js';
import { Gpt2Tokenizer } from '../../extension/engine/tokenizer/gpt2Tokenizer.js';
import { corpusTexts, loadOracle, randomTexts, tokenizerFiles } from '../fixtures/tokenizers/oracle.js';

const COUNT = Number(process.env['HEADLIGHT_TOKENIZER_STRINGS'] ?? 1500);
const BATCH = 1000;
const oracle = loadOracle();
const skip = 'missing' in oracle ? oracle.missing : false;
if (skip) console.log(`SKIPPED: ${skip}`);

/** Compares ours with the oracle on `texts`; returns the number compared, throws on the first difference. */
async function compare(name: string, ours: JsonTokenizer, texts: string[], reference: { encodeBatch(t: string[]): Promise<Array<{ ids: number[]; offsets: Array<[number, number]> }>> }): Promise<number> {
  for (let at = 0; at < texts.length; at += BATCH) {
    const batch = texts.slice(at, at + BATCH);
    const expected = await reference.encodeBatch(batch.map(wellFormed));
    batch.forEach((text, k) => {
      const tokens = ours.encode(text);
      const got = { ids: tokens.map((t) => t.id), offsets: tokens.map((t) => [t.start, t.end]) };
      const want = expected[k]!;
      if (JSON.stringify(got.ids) !== JSON.stringify(want.ids) || JSON.stringify(got.offsets) !== JSON.stringify(want.offsets)) {
        assert.deepEqual({ text, ...got }, { text, ids: want.ids, offsets: want.offsets }, `${name}: differs from Hugging Face's tokenizers on ${JSON.stringify(text)}`);
      }
    });
  }
  return texts.length;
}

for (const file of tokenizerFiles()) {
  describe(`tokenizer.json ${file.name} vs Hugging Face tokenizers`, { skip }, () => {
    let ours: JsonTokenizer;
    let reference: ReturnType<Exclude<typeof oracle, { missing: string }>['fromJson']>;
    test('loads', () => {
      const json = file.json();
      ours = JsonTokenizer.fromJson(JSON.parse(json), file.path);
      reference = (oracle as Exclude<typeof oracle, { missing: string }>).fromJson(json);
    });
    test('corpus: code, prose, CRLF, tabs, spaces, emoji, CJK, combining marks, U+0085, U+FEFF, added-token text', async () => {
      const texts = corpusTexts();
      assert.equal(await compare(file.name, ours, texts, reference), texts.length);
    });
    test(`${COUNT} random texts`, async () => {
      const next = randomTexts(0x5eed + file.name.length);
      const texts = Array.from({ length: COUNT }, next);
      const t0 = performance.now();
      const n = await compare(file.name, ours, texts, reference);
      console.log(`${file.name}: ${n} random texts identical (ids and UTF-16 offsets) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    });
    test('a 100,000-character line takes well under a second', () => {
      const line = 'a'.repeat(50_000) + 'x = foo(bar) + 1; '.repeat(2_778);
      const t0 = performance.now();
      const tokens = ours.encode(line.slice(0, 100_000));
      const ms = performance.now() - t0;
      assert.ok(tokens.length > 0);
      assert.ok(ms < 1000, `${file.name}: ${ms.toFixed(0)} ms for 100,000 characters`);
    });
  });
}

describe('GPT-2 tokenizer.json through JsonTokenizer gives today\'s ids', () => {
  test('same ids and offsets as Gpt2Tokenizer on the corpus and random texts', () => {
    const gpt2 = tokenizerFiles().find((f) => f.name === 'gpt2')!;
    const json = JSON.parse(gpt2.json()) as unknown;
    const ours = JsonTokenizer.fromJson(json, gpt2.path);
    const today = Gpt2Tokenizer.fromTokenizerJson(json);
    const next = randomTexts(7);
    for (const text of [...corpusTexts(), ...Array.from({ length: 500 }, next)]) {
      assert.deepEqual(
        ours.encode(text).map((t) => [t.id, t.start, t.end, t.text]),
        today.encode(text).map((t) => [t.id, t.start, t.end, t.text]),
        JSON.stringify(text),
      );
    }
    assert.deepEqual(ours.encodeIds('How are you doing?'), [2437, 389, 345, 1804, 30]);
  });
});
