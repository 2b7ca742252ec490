/**
 * `headlight models …`: list, pull and remove models in the shared Hugging Face cache.
 * `extension/cli.ts` calls `runModelsCommand(args after "models", io)` and exits with the code it returns.
 */
import { HeadlightError } from '../common/errors';
import type { Env } from '../hub/env';
import { hubEnv } from '../hub/env';
import {
  downloadModel,
  formatBytes,
  listCachedModels,
  removeCachedModel,
  type DownloadProgress,
} from '../hub/modelStore';

/** Where the command writes, and what it reads instead of process globals (tests pass their own). */
export interface ModelsCliIo {
  stdout: { write(s: string): unknown };
  /** Progress goes here: a redrawn bar when `isTTY`, plain lines otherwise. */
  stderr: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  /** Environment for HF_* variables (default `process.env`). */
  env?: Env;
  /** Cancels `pull`; without one, Ctrl-C (SIGINT) cancels it. */
  signal?: AbortSignal;
  /** Stall timeout for downloads, ms (default 15 s). */
  timeoutMs?: number;
}

const USAGE = `Usage: headlight models <command>

  list              models in the Hugging Face cache, with sizes and where they are
  pull REPO[@REV]   download a model (e.g. openai-community/gpt2, gpt2@main) into the cache
  rm REPO           remove REPO's models--… folder from the cache (nothing else)

The cache is the one Python's huggingface_hub uses (HF_HUB_CACHE, HF_HOME, ~/.cache/huggingface/hub).
`;

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

async function listCommand(io: ModelsCliIo, json: boolean): Promise<number> {
  const env = hubEnv(io.env);
  const models = await listCachedModels({ env: io.env });
  if (json) {
    io.stdout.write(`${JSON.stringify({ cache: env.hubCache, models }, null, 2)}\n`);
    return 0;
  }
  if (models.length === 0) {
    io.stdout.write(`No models in ${env.hubCache}.\n`);
    return 0;
  }
  const rows = models.map((m) => [
    m.repoId,
    formatBytes(m.sizeBytes),
    m.refs.main ? `main=${m.refs.main.slice(0, 8)}` : Object.keys(m.refs).join(',') || '-',
    m.loadableDir ? 'yes' : 'no',
    m.loadableDir ?? m.folder,
  ]);
  const head = ['REPO', 'SIZE', 'REF', 'LOADABLE', 'PATH'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  io.stdout.write(`Cache: ${env.hubCache}\n`);
  for (const r of [head, ...rows]) io.stdout.write(`${r.map((c, i) => (i < 4 ? pad(c, widths[i]) : c)).join('  ')}\n`);
  const total = models.reduce((s, m) => s + m.sizeBytes, 0);
  io.stdout.write(`${models.length} model${models.length === 1 ? '' : 's'}, ${formatBytes(total)}\n`);
  return 0;
}

function formatEta(sec: number | undefined): string {
  if (sec === undefined || !Number.isFinite(sec)) return '--';
  if (sec < 60) return `${Math.ceil(sec)}s`;
  const m = Math.floor(sec / 60);
  return m < 60 ? `${m}m${String(Math.ceil(sec % 60)).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** Draws progress: a bar redrawn in place on a terminal, one line per 10% (and per file) otherwise. */
function progressPrinter(io: ModelsCliIo): { update(p: DownloadProgress): void; end(): void } {
  const tty = io.stderr.isTTY === true;
  let lastDecile = -1;
  let lastFile = '';
  let drawn = false;
  return {
    update(p) {
      const frac = p.total > 0 ? p.bytes / p.total : 1;
      const pct = Math.floor(frac * 100);
      const stats =
        `${pct}% ${formatBytes(p.bytes)}/${formatBytes(p.total)} ` +
        `${p.rateBytesPerSec > 0 ? `${formatBytes(p.rateBytesPerSec)}/s` : '-'} ETA ${formatEta(p.etaSec)} ` +
        `(${p.fileIndex}/${p.fileCount} ${p.file})`;
      if (tty) {
        const width = Math.max(10, Math.min(40, (io.stderr.columns ?? 80) - stats.length - 4));
        const full = Math.round(frac * width);
        io.stderr.write(`\r\x1b[K[${'#'.repeat(full)}${'-'.repeat(width - full)}] ${stats}`);
        drawn = true;
        return;
      }
      const decile = Math.floor(pct / 10);
      if (decile !== lastDecile || p.file !== lastFile) {
        lastDecile = decile;
        lastFile = p.file;
        io.stderr.write(`${p.repoId}: ${stats}\n`);
      }
    },
    end() {
      if (tty && drawn) io.stderr.write('\n');
    },
  };
}

async function pullCommand(io: ModelsCliIo, ref: string): Promise<number> {
  const own = io.signal ? undefined : new AbortController();
  const onSigint = (): void => own?.abort();
  if (own) process.once('SIGINT', onSigint);
  const printer = progressPrinter(io);
  try {
    const r = await downloadModel(ref, {
      env: io.env,
      signal: io.signal ?? own?.signal,
      timeoutMs: io.timeoutMs,
      onProgress: (p) => printer.update(p),
    });
    printer.end();
    io.stderr.write(`${ref}: ${r.source === 'cache' ? 'already in the cache' : 'downloaded'} (commit ${r.commit})\n`);
    io.stdout.write(`${r.dir}\n`);
    return 0;
  } catch (err) {
    printer.end();
    throw err;
  } finally {
    if (own) process.removeListener('SIGINT', onSigint);
  }
}

async function rmCommand(io: ModelsCliIo, repo: string): Promise<number> {
  const removed = await removeCachedModel(repo, { env: io.env });
  for (const p of removed) io.stdout.write(`removed ${p}\n`);
  return 0;
}

/** Runs `headlight models <args>`; returns the exit code (0 ok, 1 failed, 2 usage). Never throws. */
export async function runModelsCommand(args: string[], io: ModelsCliIo): Promise<number> {
  const [cmd, ...rest] = args;
  try {
    if (cmd === 'list' && rest.every((a) => a === '--json')) return await listCommand(io, rest.includes('--json'));
    if (cmd === 'pull' && rest.length === 1) return await pullCommand(io, rest[0]);
    if (cmd === 'rm' && rest.length === 1) return await rmCommand(io, rest[0]);
    if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') {
      io.stdout.write(USAGE);
      return cmd === undefined ? 2 : 0;
    }
    io.stderr.write(`headlight models: unknown or incomplete command "${args.join(' ')}"\n\n${USAGE}`);
    return 2;
  } catch (err) {
    if (err instanceof HeadlightError) {
      io.stderr.write(`error: ${err.message}\n${err.hint ? `  ${err.hint}\n` : ''}`);
      return 1;
    }
    io.stderr.write(`error: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    return 1;
  }
}
