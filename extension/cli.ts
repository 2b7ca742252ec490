/**
 * `headlight`: the command-line face of the engine, for headless use and benchmarks.
 *   headlight analyze  --model M (--file F | --text S) [--window A:B] --dump OUT [--logits]
 *   headlight tokenize --model M (--file F | --text S)
 *   headlight explain  --model M --file F --at LINE:COL [--head L.H]
 *   headlight heads    --model M [--file F | --text S]
 *   headlight ablate   --model M (--file F | --text S) --heads L.H,... [--mode zero|mean] [--at LINE:COL]
 *   headlight qk       --model M (--file F | --text S) --at LINE:COL --head L.H
 *   headlight lens     --model M (--file F | --text S) [--window A:B] --dump OUT
 *   headlight attribute --model M (--file F | --text S) --at INDEX [--target ID] [--vs ID] --dump OUT
 *   headlight rollout  --model M (--file F | --text S) [--window A:B] --dump OUT
 *   headlight patch    --model M --clean F1 --corrupt F2 --answer ID --wrong ID [--at INDEX] [--window A:B] --dump OUT
 *   headlight models   list | pull REPO[@REV] | rm REPO
 * Bad input: one clear line on stderr and a non-zero exit.
 */
import { promises as fsp, openSync, writeSync, closeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { HeadlightError } from './common/errors';
import type { Span } from './common/tokens';
import { checkText, lineStarts, offsetAt, positionAt, tokenAt } from './common/text';
import { loadEngine } from './engine/load';
import { loadTokenizer } from './engine/tokenizer/gpt2Tokenizer';
import { formatBytes, resolveModel } from './hub/modelStore';
import type { Run } from './engine/analyses/engine';
import { formatAblation, formatQk, tokenAtPlace, tokenPlace } from './cli/inside';
import { lensSummary, parseCount, writeAttribution, writeLensDump } from './cli/lens';
import { Lens } from './engine/analyses/lens';
import { attribute } from './engine/analyses/attribution';
import { parseHead, parseHeads } from './common/heads';
import { writeRollout } from './cli/rollout';
import { parseTokenId, patchSummary, readVersion, writePatch } from './cli/patch';
import { patchActivations } from './engine/analyses/patching';
import { badges, BADGE_THRESHOLD, HEAD_ROLES, type HeadRole, type HeadScores } from './engine/analyses/headFinder';

interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const USAGE = `usage: headlight <command> [options]
  analyze  --model M (--file F | --text S) [--window A:B] --dump OUT [--logits]
  tokenize --model M (--file F | --text S)
  explain  --model M --file F --at LINE:COL [--head L.H]
  heads    --model M [--file F | --text S]    what each head does (previous-token, induction, ...)
  ablate   --model M (--file F | --text S) --heads 5.1,5.5 [--mode zero|mean] [--at LINE:COL]
           loss change and the tokens most affected when those heads are taken away
  qk       --model M (--file F | --text S) --at LINE:COL --head L.H
           one query of one head taken apart: q, q·k products, scores before and after the softmax
  lens     --model M (--file F | --text S) [--window A:B] --dump OUT
           logit lens: every layer's residual read through the final norm and unembedding (tokens.json,
           lens_logprob.f32 and lens_top1.i32, both [n_layer+1, T])
  attribute --model M (--file F | --text S) --at INDEX [--target ID] [--vs ID] --dump OUT
           direct logit attribution at token INDEX of the window: attribution.json
  rollout  --model M (--file F | --text S) [--window A:B] --dump OUT
           attention rollout (head means plus identity, through every layer): OUT/rollout.f32 [T, T], tokens.json
  patch    --model M --clean F1 --corrupt F2 --answer ID --wrong ID [--at INDEX] [--window A:B] --dump OUT
           activation patching (equal token counts): OUT/patch.json with the raw metric logit(answer) − logit(wrong)
           at INDEX (default the last token) for each layer × position (resid_pre) and layer × head (head_out)
  models   list | pull REPO[@REV] | rm REPO
--model takes a model folder (config.json, model.safetensors, tokenizer files), a Hugging Face repo id such as
openai-community/gpt2 or gpt2@main (read from the shared Hugging Face cache, downloaded when missing), or
"bundled" (the default: the tiny model that ships with Headlight).`;

/** The bundled tiny model, next to dist/ in the package (and next to extension/ in the source tree). */
export function bundledModelDir(): string {
  return resolve(__dirname, '..', 'models', 'headlight-tiny');
}

/** A folder, a Hub repo id (cached, or downloaded with progress on stderr) or `bundled` -> a checkpoint folder. */
async function modelDir(ref: string | undefined, io: Io): Promise<string> {
  let last = 0;
  const resolved = await resolveModel(ref ?? 'bundled', {
    bundledDir: bundledModelDir(),
    onProgress: (p) => {
      const now = Date.now();
      if (now - last < 1000 && p.bytes < p.total) return;
      last = now;
      io.stderr.write(`headlight: downloading ${p.repoId} ${p.file} ${formatBytes(p.bytes)} / ${formatBytes(p.total)}\n`);
    },
  });
  return resolved.dir;
}

async function readText(values: { file?: string; text?: string }): Promise<string> {
  if (values.text !== undefined && values.file !== undefined) throw new HeadlightError('usage', 'Give --file or --text, not both.');
  if (values.text !== undefined) return values.text;
  if (values.file === undefined) throw new HeadlightError('usage', 'Give the text with --file F or --text S.');
  let bytes: Buffer;
  try {
    bytes = await fsp.readFile(values.file);
  } catch (err) {
    throw new HeadlightError('file', `Cannot read ${values.file}: ${(err as Error).message}.`);
  }
  const text = new TextDecoder('utf-8').decode(bytes);
  checkText(text, values.file);
  return text;
}

function parseWindow(spec: string | undefined): Span | undefined {
  if (spec === undefined) return undefined;
  const m = /^(\d+):(\d+)$/.exec(spec);
  if (!m) throw new HeadlightError('usage', `--window ${spec}: expected START:END token indices, e.g. 0:512.`);
  return { start: Number(m[1]), end: Number(m[2]) };
}

const options = {
  model: { type: 'string' },
  file: { type: 'string' },
  text: { type: 'string' },
  window: { type: 'string' },
  dump: { type: 'string' },
  logits: { type: 'boolean' },
  at: { type: 'string' },
  head: { type: 'string' },
  heads: { type: 'string' },
  mode: { type: 'string' },
  threads: { type: 'string' },
  target: { type: 'string' },
  vs: { type: 'string' },
  clean: { type: 'string' },
  corrupt: { type: 'string' },
  answer: { type: 'string' },
  wrong: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function main(argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === '--help' || command === '-h' || command === 'help') {
      io.stdout.write(USAGE + '\n');
      return command ? 0 : 2;
    }
    if (command === 'models') {
      const { runModelsCommand } = await import('./cli/models');
      return await runModelsCommand(rest, io);
    }
    const { values } = parseArgs({ args: rest, options, allowPositionals: false });
    const threads = values.threads ? Number(values.threads) : undefined;
    switch (command) {
      case 'tokenize': {
        // A local folder needs only its tokenizer files (no weights); anything else resolves as a model.
        const local = values.model !== undefined && (await fsp.stat(resolve(values.model)).catch(() => undefined))?.isDirectory();
        const tokenizer = await loadTokenizer(local ? resolve(values.model!) : await modelDir(values.model, io));
        const text = await readText(values);
        const tokens = tokenizer.encode(text);
        io.stdout.write(JSON.stringify({ tokens }) + '\n');
        return 0;
      }
      case 'analyze': {
        if (!values.dump) throw new HeadlightError('usage', 'analyze needs --dump OUT (a folder to write tokens.json, attention.f32, logprobs.f32).');
        const text = await readText(values);
        const { engine } = await loadEngine(await modelDir(values.model, io), { precision: 'fp32', threads, logits: values.logits });
        try {
          const run = await engine.analyze(text, { window: parseWindow(values.window), logits: values.logits });
          await dump(run, engine.dims, values.dump, values.logits ?? false);
          io.stderr.write(`headlight: ${run.length} tokens (window ${run.window.start}:${run.window.end} of ${run.totalTokens}) in ${run.stats.totalMs.toFixed(0)} ms -> ${values.dump}\n`);
        } finally {
          await engine.dispose();
        }
        return 0;
      }
      case 'explain': {
        if (!values.at) throw new HeadlightError('usage', 'explain needs --at LINE:COL (1-based).');
        const text = await readText(values);
        const { engine } = await loadEngine(await modelDir(values.model, io), { threads });
        try {
          const run = await engine.analyze(text, { window: parseWindow(values.window) });
          io.stdout.write(explain(run, text, values.at, values.head, engine.dims.nLayer));
        } finally {
          await engine.dispose();
        }
        return 0;
      }
      case 'heads': {
        const text = values.file !== undefined || values.text !== undefined ? await readText(values) : SAMPLE_TEXT;
        const { engine } = await loadEngine(await modelDir(values.model, io), { threads });
        try {
          const run = await engine.analyze(text, { window: parseWindow(values.window) });
          io.stdout.write(formatHeads(await engine.headScores(run), run.length));
        } finally {
          await engine.dispose();
        }
        return 0;
      }
      case 'ablate': {
        if (!values.heads) throw new HeadlightError('usage', 'ablate needs --heads L.H[,L.H...], e.g. --heads 5.1,5.5.');
        const mode = values.mode ?? 'zero';
        if (mode !== 'zero' && mode !== 'mean') throw new HeadlightError('usage', `--mode ${mode}: expected zero or mean.`);
        const text = await readText(values);
        const { engine } = await loadEngine(await modelDir(values.model, io), { threads });
        try {
          const window = parseWindow(values.window);
          const at = values.at === undefined ? undefined : tokenAtPlace(text, engine.tokenizer.encode(text).slice(window?.start ?? 0, window?.end), values.at);
          const r = await engine.ablate({ heads: parseHeads(values.heads), mode }, text, { window, at });
          io.stdout.write(formatAblation(r, tokenPlace(text)));
        } finally {
          await engine.dispose();
        }
        return 0;
      }
      case 'qk': {
        if (!values.at) throw new HeadlightError('usage', 'qk needs --at LINE:COL (1-based).');
        const { layer, head } = parseHead(values.head);
        const text = await readText(values);
        const { engine } = await loadEngine(await modelDir(values.model, io), { threads, precision: 'fp32' });
        try {
          const run = await engine.analyze(text, { window: parseWindow(values.window) });
          const b = await engine.qk(run, layer, head, tokenAtPlace(text, run.tokens, values.at));
          io.stdout.write(formatQk(b, run.tokens, tokenPlace(text)));
        } finally {
          await engine.dispose();
        }
        return 0;
      }
      case 'lens':
      case 'attribute': {
        if (!values.dump) throw new HeadlightError('usage', `${command} needs --dump OUT (a folder to write tokens.json and the ${command === 'lens' ? 'lens arrays' : 'attribution.json'}).`);
        const at = command === 'attribute' ? parseCount('--at', values.at) : undefined;
        if (command === 'attribute' && at === undefined) throw new HeadlightError('usage', 'attribute needs --at INDEX (a token index in the window, from 0).');
        const text = await readText(values);
        const dir = await modelDir(values.model, io);
        const { engine } = await loadEngine(dir, { precision: 'fp32', threads });
        const lens = new Lens(engine, dir, { threads });
        try {
          const run = await engine.analyze(text, { window: parseWindow(values.window) });
          if (run.length === 0) throw new HeadlightError('empty-text', `The ${command} needs at least one token of text.`, 'Give some text.');
          await writeTokens(run, engine.dims, values.dump);
          if (command === 'lens') {
            const grid = await lens.grid(run);
            await writeLensDump(grid, values.dump);
            io.stderr.write(lensSummary(grid, values.dump));
          } else {
            const a = await attribute(lens, run, at!, { target: parseCount('--target', values.target), vs: parseCount('--vs', values.vs) });
            await writeAttribution(a, values.dump);
            io.stderr.write(`headlight: ${a.parts.length} parts of the logit${a.vs === null ? '' : ' difference'} at token ${a.position} -> ${values.dump}\n`);
          }
        } finally {
          await lens.dispose();
          await engine.dispose();
        }
        return 0;
      }
      case 'rollout': {
        if (!values.dump) throw new HeadlightError('usage', 'rollout needs --dump OUT (a folder to write rollout.f32 and tokens.json).');
        const text = await readText(values);
        const { engine } = await loadEngine(await modelDir(values.model, io), { precision: 'fp32', threads });
        try {
          const run = await engine.analyze(text, { window: parseWindow(values.window) });
          await writeTokens(run, engine.dims, values.dump);
          const ms = await writeRollout(run, values.dump);
          io.stderr.write(`headlight: rollout of ${run.length} tokens (window ${run.window.start}:${run.window.end} of ${run.totalTokens}) in ${ms.toFixed(0)} ms -> ${values.dump}\n`);
        } finally {
          await engine.dispose();
        }
        return 0;
      }
      case 'patch': {
        if (!values.dump) throw new HeadlightError('usage', 'patch needs --dump OUT (a folder to write patch.json).');
        const answer = parseTokenId('--answer', values.answer);
        const wrong = parseTokenId('--wrong', values.wrong);
        const at = parseCount('--at', values.at);
        const [clean, corrupt] = [await readVersion('--clean', values.clean), await readVersion('--corrupt', values.corrupt)];
        const dir = await modelDir(values.model, io);
        const { engine } = await loadEngine(dir, { precision: 'fp32', threads });
        const lens = new Lens(engine, dir, { threads });
        try {
          const r = await patchActivations(engine, () => lens.readoutHead(), { clean, corrupt, answer, wrong, at, window: parseWindow(values.window) });
          await writePatch(r, values.dump);
          io.stderr.write(patchSummary(r, values.dump));
        } finally {
          await lens.dispose();
          await engine.dispose();
        }
        return 0;
      }
      default:
        throw new HeadlightError('usage', `Unknown command "${command}".`, 'Run headlight --help.');
    }
  } catch (err) {
    if (err instanceof HeadlightError) {
      io.stderr.write(`headlight: ${err.userMessage}\n`);
      return 2;
    }
    if (err instanceof TypeError && 'code' in err && String((err as { code: unknown }).code).startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`headlight: ${err.message}\n${USAGE}\n`);
      return 2;
    }
    io.stderr.write(`headlight: internal error: ${(err as Error).stack ?? err}\n`);
    return 1;
  }
}

type DumpConfig = { nLayer: number; nHead: number; nEmbd: number; nPositions: number; vocabSize: number };

/** OUT/tokens.json: the model's sizes, the window and its tokens (what `analyze --dump` and `rollout --dump` write). */
async function writeTokens(run: Run, config: DumpConfig, out: string): Promise<void> {
  await fsp.mkdir(out, { recursive: true });
  const model = { n_layer: config.nLayer, n_head: config.nHead, n_embd: config.nEmbd, n_positions: config.nPositions, vocab_size: config.vocabSize };
  const tokens = run.tokens.map((t) => ({ id: t.id, text: t.text, start: t.start, end: t.end }));
  await fsp.writeFile(join(out, 'tokens.json'), JSON.stringify({ model, window: run.window, tokens }, null, 1));
}

async function dump(run: Run, config: DumpConfig, out: string, logits: boolean): Promise<void> {
  await writeTokens(run, config, out);
  const T = run.length;
  const fd = openSync(join(out, 'attention.f32'), 'w');
  try {
    const map = new Float32Array(T * T);
    for (let l = 0; l < config.nLayer; l++) {
      for (let h = 0; h < config.nHead; h++) {
        if (T === 0) continue;
        map.fill(0);
        run.attention.map(l, h, map);
        writeSync(fd, new Uint8Array(map.buffer, map.byteOffset, map.byteLength));
      }
    }
  } finally {
    closeSync(fd);
  }
  const lp = run.logprobs();
  await fsp.writeFile(join(out, 'logprobs.f32'), new Uint8Array(lp.buffer, lp.byteOffset, lp.byteLength));
  if (logits) {
    const data = run.logits ?? new Float32Array(0);
    await fsp.writeFile(join(out, 'logits.f32'), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
}

/** Text for `heads` when none is given: prose with repeated words, so duplicate-token heads have cases. */
const SAMPLE_TEXT =
  'The cat sat on the mat. The dog sat on the log. When the cat saw the dog, the cat ran up the tree, and the dog sat down again on the log by the mat.';

function formatHeads(s: HeadScores, T: number): string {
  const short: Record<HeadRole, string> = { 'previous-token': 'prev', 'first-token': 'first', 'duplicate-token': 'dup', local: 'local', induction: 'induct' };
  const b = badges(s);
  const lines = [`head finder over ${T} tokens (scores 0..1; badge at >= ${BADGE_THRESHOLD}; induction on 50 random tokens repeated once)`];
  lines.push(['head ', ...HEAD_ROLES.map((r) => short[r].padStart(7)), '  badges'].join(''));
  for (let l = 0; l < s.nLayer; l++) {
    for (let h = 0; h < s.nHead; h++) {
      const k = l * s.nHead + h;
      const cells = HEAD_ROLES.map((r) => {
        const v = s.scores[r]?.[k];
        return (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(2)).padStart(7);
      });
      lines.push([`${l}.${h}`.padEnd(5), ...cells, '  ', (b[`${l}.${h}`] ?? []).join(', ')].join(''));
    }
  }
  return lines.join('\n') + '\n';
}

function quote(s: string): string {
  return JSON.stringify(s);
}

function explain(run: Run, text: string, at: string, head: string | undefined, nLayer: number): string {
  const m = /^(\d+):(\d+)$/.exec(at);
  if (!m) throw new HeadlightError('usage', `--at ${at}: expected LINE:COL, 1-based, e.g. 3:14.`);
  const starts = lineStarts(text);
  const line = Number(m[1]) - 1;
  if (line < 0 || line >= starts.length) throw new HeadlightError('usage', `--at ${at}: the file has ${starts.length} lines.`);
  const offset = offsetAt(starts, text.length, line, Number(m[2]) - 1);
  const i = tokenAt(run.tokens, offset);
  if (i < 0) throw new HeadlightError('usage', `--at ${at}: no analysed token there (window ${run.window.start}:${run.window.end}).`);
  const tok = run.tokens[i];
  const pos = positionAt(starts, tok.start);
  const lines: string[] = [];
  lines.push(`token ${i} ${quote(tok.text)} (id ${tok.id}) at ${pos.line + 1}:${pos.column + 1}`);
  const s = run.surprisal(i);
  lines.push(Number.isNaN(s) ? 'surprisal: n/a (first token of the window)' : `surprisal: ${s.toFixed(2)} bits (p = ${(2 ** -s * 100).toFixed(2)}%)`);
  const preds = run.predictions(i, 5);
  if (preds.length) lines.push('model expected: ' + preds.map((p) => `${quote(p.text)} ${(Math.exp(p.logprob) * 100).toFixed(1)}%`).join(', '));
  const next = run.predictions(i + 1, 5);
  if (i === run.length - 1 && next.length) lines.push('next token guesses: ' + next.map((p) => `${quote(p.text)} ${(Math.exp(p.logprob) * 100).toFixed(1)}%`).join(', '));
  const fmt = (sources: { index: number; weight: number }[]) => sources.map((src) => `${quote(run.tokens[src.index].text)}@${src.index} ${src.weight.toFixed(2)}`).join('  ');
  if (head) {
    // The engine refuses a head outside the model (bad-head, naming the layers and heads it has).
    lines.push(`attends to (head ${head}): ${fmt(run.topSources(parseHead(head), i, 5))}`);
  } else {
    lines.push('attends to (mean over heads, top 3 per layer):');
    for (let l = 0; l < nLayer; l++) lines.push(`  layer ${String(l).padStart(2)}: ${fmt(run.topSources({ layer: l, head: 'mean' }, i, 3))}`);
  }
  return lines.join('\n') + '\n';
}

if (require.main === module) {
  main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }).then((code) => {
    process.exitCode = code;
  });
}
