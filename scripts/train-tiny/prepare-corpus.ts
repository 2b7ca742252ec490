/**
 * Builds the training corpus of the bundled tiny model: lists permissively licensed files on this machine,
 * assigns each whole file to the train or validation split by a hash of its path, tokenizes with the real GPT-2
 * tokenizer and writes uint16 token ids (documents separated by <|endoftext|>) for train.py to memory-map.
 *
 *   node --import tsx scripts/train-tiny/prepare-corpus.ts [outDir]   (default: scripts/train-tiny/work)
 *
 * Outputs: train.bin, val.bin (little-endian uint16), corpus.json (sources, licences, file and token counts).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

const EOT = 50256;
const VAL_PERCENT = 5;
const repoRoot = resolve(import.meta.dirname, '../..');
const tokenizerDir = process.env.GPT2_TOKENIZER_DIR ?? '/work/shared/data/gpt2-tokenizer';

interface Source {
  name: string;
  licence: string;
  root: string;
  /** Keeps a file given its path relative to root. */
  keep: (rel: string) => boolean;
}

/** The sources, in a fixed order. Each is a folder whose files all carry the named licence. */
function sources(): Source[] {
  const nm = join(repoRoot, 'node_modules');
  const notTests = (rel: string) => !/(^|\/)(tests?|idlelib|turtledemo|site-packages|dist-packages)\//.test(rel);
  return [
    {
      name: 'CPython 3.11 standard library (.py, tests excluded), Debian python3.11',
      licence: 'PSF-2.0',
      root: '/usr/lib/python3.11',
      keep: (rel) => rel.endsWith('.py') && notTests(rel),
    },
    {
      name: 'TypeScript 5.9 lib/*.d.ts (npm typescript)',
      licence: 'Apache-2.0',
      root: join(nm, 'typescript/lib'),
      keep: (rel) => rel.endsWith('.d.ts') && !rel.includes('/'),
    },
    {
      name: 'Node.js type definitions (npm @types/node, DefinitelyTyped)',
      licence: 'MIT',
      root: join(nm, '@types/node'),
      keep: (rel) => rel.endsWith('.d.ts'),
    },
    {
      name: 'VS Code API type definitions (npm @types/vscode, DefinitelyTyped)',
      licence: 'MIT',
      root: join(nm, '@types/vscode'),
      keep: (rel) => rel.endsWith('.d.ts'),
    },
    {
      name: 'undici-types (npm)',
      licence: 'MIT',
      root: join(nm, 'undici-types'),
      keep: (rel) => rel.endsWith('.d.ts'),
    },
    {
      name: 'README/markdown files of MIT/ISC npm packages (semver, esbuild, tsx, adm-zip, onnxruntime-*, …)',
      licence: 'MIT / ISC',
      root: nm,
      keep: (rel) => rel.endsWith('.md') && /^(semver|esbuild|tsx|adm-zip|onnxruntime-common|onnxruntime-node|matcher|serialize-error|escape-string-regexp)\//.test(rel),
    },
  ];
}

function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) out.push(p);
    }
  };
  if (existsSync(root)) walk(root);
  return out;
}

/** Whole files go to validation when the hash of their source-relative path falls in the first VAL_PERCENT. */
function isValidation(rel: string): boolean {
  const h = createHash('sha256').update(rel).digest();
  return h.readUInt32BE(0) % 100 < VAL_PERCENT;
}

function toUint16(ids: number[]): Buffer {
  const buf = Buffer.alloc(ids.length * 2);
  for (let i = 0; i < ids.length; i++) buf.writeUInt16LE(ids[i]!, i * 2);
  return buf;
}

function main(): void {
  const outDir = resolve(process.argv[2] ?? join(import.meta.dirname, 'work'));
  mkdirSync(outDir, { recursive: true });
  const tokenizerJson = JSON.parse(readFileSync(join(tokenizerDir, 'tokenizer.json'), 'utf8'));
  const tokenizerConfig = JSON.parse(readFileSync(join(tokenizerDir, 'tokenizer_config.json'), 'utf8'));
  const tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
  const golden = tokenizer.encode('How are you doing?').ids;
  if (golden.join(',') !== '2437,389,345,1804,30') throw new Error(`tokenizer golden vector mismatch: got [${golden}]`);

  const split = { train: [] as number[], val: [] as number[] };
  const report = [];
  for (const src of sources()) {
    const files = listFiles(src.root).filter((p) => src.keep(relative(src.root, p)));
    const counts = { trainFiles: 0, valFiles: 0, trainTokens: 0, valTokens: 0, bytes: 0 };
    for (const path of files) {
      const text = readFileSync(path, 'utf8').replaceAll('<|endoftext|>', '');
      if (text.trim().length === 0) continue;
      const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
      const which = isValidation(relative(src.root, path)) ? 'val' : 'train';
      for (const id of ids) split[which].push(id);
      split[which].push(EOT);
      counts.bytes += Buffer.byteLength(text);
      if (which === 'val') { counts.valFiles++; counts.valTokens += ids.length + 1; }
      else { counts.trainFiles++; counts.trainTokens += ids.length + 1; }
    }
    console.log(`${src.name}: ${JSON.stringify(counts)}`);
    report.push({ name: src.name, licence: src.licence, root: src.root.replace(repoRoot + '/', ''), ...counts });
  }
  writeFileSync(join(outDir, 'train.bin'), toUint16(split.train));
  writeFileSync(join(outDir, 'val.bin'), toUint16(split.val));
  const summary = { trainTokens: split.train.length, valTokens: split.val.length, valPercentOfFiles: VAL_PERCENT, sources: report };
  writeFileSync(join(outDir, 'corpus.json'), JSON.stringify(summary, null, 2) + '\n');
  console.log(`train ${split.train.length} tokens, val ${split.val.length} tokens -> ${outDir}`);
}

main();
