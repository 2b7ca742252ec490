/**
 * A cross-process lock file for one blob download, so that two VS Code windows (two processes) downloading the same
 * file end with one good copy. Python's flock cannot be taken from Node; Python stays safe anyway because it writes
 * its own process-unique temporary file and renames it atomically, as we do.
 *
 * The lock is a file created with O_EXCL holding `{pid, host, nonce}`; its holder touches it every few seconds. A
 * lock whose holder is a dead process on this host, or that has not been touched for `staleMs`, is broken.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { HeadlightError } from '../common/errors';

export interface LockOptions {
  signal?: AbortSignal;
  /** A lock untouched for this long is considered abandoned (default 30 s). */
  staleMs?: number;
  /** Poll interval while another process holds the lock (default 100 ms). */
  pollMs?: number;
  /** Called on each poll while waiting; return true to stop waiting (e.g. the blob appeared). */
  whileWaiting?: () => Promise<boolean>;
}

export interface HeldLock {
  release(): Promise<void>;
}

interface LockContent {
  pid: number;
  host: string;
  nonce: string;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readLock(path: string): Promise<{ content?: LockContent; mtimeMs: number } | undefined> {
  try {
    const [text, st] = await Promise.all([fsp.readFile(path, 'utf8'), fsp.stat(path)]);
    let content: LockContent | undefined;
    try {
      content = JSON.parse(text) as LockContent;
    } catch {
      content = undefined; // being written right now, or foreign: judge by age only
    }
    return { content, mtimeMs: st.mtimeMs };
  } catch {
    return undefined;
  }
}

function isStale(lock: { content?: LockContent; mtimeMs: number }, staleMs: number): boolean {
  if (Date.now() - lock.mtimeMs > staleMs) return true;
  const c = lock.content;
  return c !== undefined && c.host === hostname() && c.pid !== process.pid && !pidAlive(c.pid);
}

/** Moves a stale lock aside; puts it back if, between our read and the move, it became someone's fresh lock. */
async function breakStaleLock(path: string, seen: { content?: LockContent }): Promise<void> {
  const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await fsp.rename(path, aside);
  } catch {
    return; // someone else broke or released it
  }
  const moved = await readLock(aside);
  if (moved?.content && seen.content && moved.content.nonce !== seen.content.nonce) {
    await fsp.link(aside, path).catch(() => undefined);
  }
  await fsp.rm(aside, { force: true });
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelled());
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(cancelled());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function cancelled(what = 'Download'): HeadlightError {
  return new HeadlightError('cancelled', `${what} cancelled.`);
}

async function tryCreate(path: string, staleMs: number): Promise<HeldLock | undefined> {
  const content: LockContent = { pid: process.pid, host: hostname(), nonce: randomBytes(8).toString('hex') };
  let fh;
  try {
    fh = await fsp.open(path, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw err;
  }
  try {
    await fh.writeFile(JSON.stringify(content));
  } finally {
    await fh.close();
  }
  const beat = setInterval(() => {
    const now = new Date();
    fsp.utimes(path, now, now).catch(() => undefined);
  }, Math.max(50, Math.floor(staleMs / 4)));
  beat.unref();
  return {
    async release(): Promise<void> {
      clearInterval(beat);
      const cur = await readLock(path);
      if (cur?.content?.nonce === content.nonce) await fsp.rm(path, { force: true });
    },
  };
}

/**
 * Takes the lock at `path`, waiting while another live process holds it. Resolves to undefined when `whileWaiting`
 * said the wait is over (the other process finished the work), else to the held lock.
 */
export async function acquireLock(path: string, opts: LockOptions = {}): Promise<HeldLock | undefined> {
  const staleMs = opts.staleMs ?? 30_000;
  await fsp.mkdir(dirname(path), { recursive: true });
  for (;;) {
    if (opts.signal?.aborted) throw cancelled();
    const held = await tryCreate(path, staleMs);
    if (held) return held;
    const cur = await readLock(path);
    if (cur && isStale(cur, staleMs)) {
      await breakStaleLock(path, cur);
      continue;
    }
    if (opts.whileWaiting && (await opts.whileWaiting())) return undefined;
    await sleep(opts.pollMs ?? 100, opts.signal);
  }
}
