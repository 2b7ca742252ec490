/**
 * Tokenizer speed, one row per tokenizer: tokens/s over a few MB of TypeScript declarations from node_modules (ours
 * with offsets: warm = the same text again, median of 3; cold = a fresh tokenizer's first pass, median of 3; the
 * oracle, Hugging Face's Rust tokenizers through npm `tokenizers`, one call on the same text), and the time of a 100,000-character line (one long word, the case that goes quadratic in naive BPE).
 *   node --import tsx bench/tokenizer.ts [--mb N] [--only name,name]   (--mb: corpus size, default all ~6 MB)
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gpt2Tokenizer } from '../extension/engine/tokenizer/gpt2Tokenizer.js';
import { JsonTokenizer } from '../extension/engine/tokenizer/jsonTokenizer.js';
import { loadOracle, tokenizerFiles } from '../test/fixtures/tokenizers/oracle.js';

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

function arg(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function time<T>(fn: () => T): [T, number] {
  const t0 = performance.now();
  const result = fn();
  return [result, (performance.now() - t0) / 1000];
}

interface Encoder {
  encode(text: string): unknown[];
}

async function main(): Promise<void> {
  const files = CODE_FILES.map((f) => join(root, f)).filter((f) => existsSync(f));
  let code = files.map((f) => readFileSync(f, 'utf8')).join('\n');
  const mb = arg('--mb');
  if (mb) code = code.slice(0, Number(mb) * 1e6);
  const only = arg('--only')?.split(',');
  const oracle = loadOracle();
  console.log(`corpus: ${files.length} code files, ${(code.length / 1e6).toFixed(2)} M UTF-16 units${'missing' in oracle ? `; ${oracle.missing}` : ''}`);
  console.log('tokenizer            load s   tokens      ours warm M tok/s   ours cold M tok/s   oracle M tok/s   warm/oracle   100k-char line ms');

  const rows: Array<{ name: string; json: () => string; path: string; make: (json: unknown, path: string) => Encoder }> = [
    ...tokenizerFiles().map((f) => ({ ...f, make: (json: unknown, path: string): Encoder => JsonTokenizer.fromJson(json, path) })),
  ];
  const gpt2 = rows.find((r) => r.name === 'gpt2')!;
  rows.splice(1, 0, { ...gpt2, name: 'gpt2 (Gpt2Tokenizer)', make: (json: unknown) => Gpt2Tokenizer.fromTokenizerJson(json) });

  for (const row of rows) {
    if (only && !only.includes(row.name)) continue;
    const text = row.json();
    const [ours, loadSeconds] = time(() => row.make(JSON.parse(text), row.path));
    const [first] = time(() => ours.encode(code)); // also compiles the code paths
    const n = first.length;
    // Warm: the same text again on the same tokenizer (its word cache filled), the live-typing case.
    const warm = [0, 1, 2].map(() => time(() => ours.encode(code))[1]);
    const oursRate = n / median(warm) / 1e6;
    // Cold: a fresh tokenizer's first pass (empty word cache), the first-open case.
    const cold = [0, 1, 2].map(() => {
      const fresh = row.make(JSON.parse(text), row.path);
      return time(() => fresh.encode(code))[1];
    });
    const coldRate = n / median(cold) / 1e6;
    let oracleRate = NaN;
    if (!('missing' in oracle)) {
      const reference = oracle.fromJson(text);
      await reference.encodeBatch([code.slice(0, 10_000)]);
      const t0 = performance.now();
      const [encoded] = await reference.encodeBatch([code]);
      oracleRate = encoded!.ids.length / ((performance.now() - t0) / 1000) / 1e6;
    }
    const fresh = row.make(JSON.parse(text), row.path);
    const [, lineSeconds] = time(() => fresh.encode('a'.repeat(100_000)));
    console.log(
      `${row.name.padEnd(20)} ${loadSeconds.toFixed(2).padStart(6)}   ${String(n).padStart(9)}   ${oursRate.toFixed(2).padStart(17)}   ${coldRate.toFixed(2).padStart(17)}   ${oracleRate.toFixed(2).padStart(14)}   ${(oursRate / oracleRate).toFixed(1).padStart(10)}×   ${(lineSeconds * 1000).toFixed(0).padStart(16)}`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
