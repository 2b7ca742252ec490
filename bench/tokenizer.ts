/**
 * Tokenizer speed: tokens/s on a few MB of TypeScript declarations from node_modules, and the time of one
 * 100,000-character single-letter word (the case that goes quadratic in naive BPE).
 *   node --import tsx bench/tokenizer.ts [--reference]   (--reference also times @huggingface/tokenizers on 1 MB)
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gpt2Tokenizer, loadTokenizer } from '../extension/engine/tokenizer/gpt2Tokenizer.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const CODE_FILES = [
  'node_modules/typescript/lib/typescript.d.ts',
  'node_modules/typescript/lib/lib.dom.d.ts',
  'node_modules/typescript/lib/lib.es5.d.ts',
  'node_modules/@types/vscode/index.d.ts',
  'node_modules/@types/node/fs.d.ts',
  'node_modules/@types/node/crypto.d.ts',
  'node_modules/@types/node/http2.d.ts',
];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function time<T>(fn: () => T): [T, number] {
  const t0 = performance.now();
  const result = fn();
  return [result, (performance.now() - t0) / 1000];
}

async function main(): Promise<void> {
  const files = CODE_FILES.map((f) => join(root, f)).filter((f) => existsSync(f));
  const code = files.map((f) => readFileSync(f, 'utf8')).join('\n');
  const [tok, loadSeconds] = await timeAsync(() => loadTokenizer(join(root, 'models/headlight-tiny')));
  console.log(`corpus: ${files.length} files, ${(code.length / 1e6).toFixed(2)} M UTF-16 units; tokenizer loaded in ${(loadSeconds * 1000).toFixed(0)} ms`);

  const [coldTokens, coldSeconds] = time(() => tok.encode(code));
  const n = coldTokens.length;
  console.log(`encode, cold cache:    ${n} tokens in ${coldSeconds.toFixed(3)} s = ${(n / coldSeconds / 1e6).toFixed(2)} M tokens/s`);
  const warm = [0, 1, 2].map(() => time(() => tok.encode(code))[1]);
  console.log(`encode (offsets):      median ${median(warm).toFixed(3)} s = ${(n / median(warm) / 1e6).toFixed(2)} M tokens/s`);
  const idsOnly = [0, 1, 2].map(() => time(() => tok.encodeIds(code))[1]);
  console.log(`encodeIds:             median ${median(idsOnly).toFixed(3)} s = ${(n / median(idsOnly) / 1e6).toFixed(2)} M tokens/s`);

  const word = 'a'.repeat(100_000);
  const fresh = Gpt2Tokenizer.fromVocabMerges(
    JSON.parse(readFileSync(join(root, 'models/headlight-tiny/vocab.json'), 'utf8')) as Record<string, number>,
    readFileSync(join(root, 'models/headlight-tiny/merges.txt'), 'utf8').split('\n'),
  );
  const [wordTokens, wordSeconds] = time(() => fresh.encode(word));
  console.log(`100,000 × "a" (one word): ${wordTokens.length} tokens in ${(wordSeconds * 1000).toFixed(0)} ms`);

  if (process.argv.includes('--reference')) await referenceSpeed(code.slice(0, 1_000_000), tok);
}

async function referenceSpeed(text: string, tok: Gpt2Tokenizer): Promise<void> {
  const { Tokenizer } = await import('@huggingface/tokenizers');
  const json = JSON.parse(readFileSync(join(root, 'test/fixtures/gpt2-tokenizer/tokenizer.json'), 'utf8')) as object;
  const reference = new Tokenizer(json, {});
  reference.encode(text.slice(0, 50_000));
  const [ids, seconds] = time(() => reference.encode(text).ids);
  const [, ours] = time(() => tok.encode(text));
  console.log(`@huggingface/tokenizers on 1 MB: ${(ids.length / seconds / 1e6).toFixed(2)} M tokens/s (ids only); ours with offsets ${(seconds / ours).toFixed(1)}× faster`);
}

async function timeAsync<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const result = await fn();
  return [result, (performance.now() - t0) / 1000];
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
