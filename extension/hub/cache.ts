/**
 * The Hugging Face cache on disk, in the layout Python's huggingface_hub reads and writes:
 *
 * ```
 * $HF_HUB_CACHE/models--{org}--{name}/
 *   refs/{revision}               40-hex commit, no trailing newline
 *   blobs/{etag}                  sha256 (LFS) or git sha1 (small files)
 *   snapshots/{commit}/{path}     relative symlink to ../../blobs/{etag}, or a copy where links are unavailable
 *   .no_exist/{commit}/{path}     empty marker: file absent at that commit
 * ```
 * Nothing here opens a socket.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';

const COMMIT_RE = /^[0-9a-f]{40}$/;

/** True for a full 40-hex commit hash. */
export function isCommitHash(s: string): boolean {
  return COMMIT_RE.test(s);
}

/** `openai-community/gpt2` -> `models--openai-community--gpt2`. */
export function repoFolderName(repoId: string): string {
  return `models--${repoId.split('/').join('--')}`;
}

/** `models--openai-community--gpt2` -> `openai-community/gpt2`; undefined for anything else. */
export function repoIdFromFolder(name: string): string | undefined {
  if (!name.startsWith('models--')) return undefined;
  const parts = name.slice('models--'.length).split('--');
  if (parts.length < 1 || parts.length > 2 || parts.some((p) => p === '')) return undefined;
  return parts.join('/');
}

export function repoDirOf(hubCache: string, repoId: string): string {
  return join(hubCache, repoFolderName(repoId));
}

export function blobPathOf(repoDir: string, etag: string): string {
  return join(repoDir, 'blobs', etag);
}

export function snapshotDirOf(repoDir: string, commit: string): string {
  return join(repoDir, 'snapshots', commit);
}

/** Folder for this library's lock files, beside Python's (`.locks/models--…`). */
export function lockDirOf(hubCache: string, repoId: string): string {
  return join(hubCache, '.locks', repoFolderName(repoId));
}

/** The commit a revision points to in this repo folder: the revision itself if it is a commit, else `refs/{rev}`. */
export async function readRef(repoDir: string, revision: string): Promise<string | undefined> {
  if (isCommitHash(revision)) return revision;
  try {
    const commit = (await fsp.readFile(join(repoDir, 'refs', revision), 'utf8')).trim();
    return isCommitHash(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}

/** True when `path` exists after following links (a dangling snapshot link counts as absent). */
export async function existsFollowing(path: string): Promise<boolean> {
  try {
    await fsp.stat(path);
    return true;
  } catch {
    return false;
  }
}

function tmpName(path: string): string {
  return `${path}.headlight-tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Writes `text` to `path` through a process-unique temporary file and an atomic rename. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  await fsp.mkdir(dirname(path), { recursive: true });
  const tmp = tmpName(path);
  await fsp.writeFile(tmp, text);
  await fsp.rename(tmp, path);
}

/** Writes `refs/{revision}` = commit, with no trailing newline (as Python does). Commits need no ref. */
export async function writeRef(repoDir: string, revision: string, commit: string): Promise<void> {
  if (isCommitHash(revision)) return;
  await writeFileAtomic(join(repoDir, 'refs', ...revision.split('/')), commit);
}

/** Writes the empty marker `.no_exist/{commit}/{path}` Python leaves for a file absent at a commit. */
export async function writeNoExist(repoDir: string, commit: string, filePath: string): Promise<void> {
  const p = join(repoDir, '.no_exist', commit, ...filePath.split('/'));
  if (await existsFollowing(p)) return;
  await writeFileAtomic(p, '');
}

export interface LinkOptions {
  /** Use relative symlinks (default true). False, or a filesystem that refuses links, makes a copy of the blob. */
  symlinks?: boolean;
}

/**
 * Puts `blobs/{etag}` at `snapshots/{commit}/{filePath}` as a relative symlink (`../../blobs/{etag}`), replacing any
 * earlier entry atomically; copies the blob where symlinks are unavailable (Windows without developer mode).
 */
export async function linkIntoSnapshot(
  repoDir: string,
  commit: string,
  filePath: string,
  etag: string,
  opts: LinkOptions = {},
): Promise<string> {
  const dest = join(snapshotDirOf(repoDir, commit), ...filePath.split('/'));
  const blob = blobPathOf(repoDir, etag);
  await fsp.mkdir(dirname(dest), { recursive: true });
  const tmp = tmpName(dest);
  if (opts.symlinks !== false) {
    const target = relative(dirname(dest), blob).split(sep).join('/');
    try {
      await fsp.symlink(target, tmp);
      await fsp.rename(tmp, dest);
      return dest;
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EINVAL') throw err;
    }
  }
  await fsp.copyFile(blob, tmp);
  await fsp.rename(tmp, dest);
  return dest;
}

/** One snapshot folder of a cached repo. */
export interface CachedSnapshot {
  commit: string;
  /** Absolute path of `snapshots/{commit}`. */
  dir: string;
  /** Repo-relative paths present in the snapshot (links that resolve, or copies). */
  files: string[];
}

/** One `models--…` folder of the cache. */
export interface CachedRepo {
  /** Repo id the folder was named after (`gpt2`, `openai-community/gpt2`). */
  repoId: string;
  /** Absolute path of the `models--…` folder. */
  folder: string;
  /** Bytes on disk: blobs plus files copied into snapshots (links themselves count nothing). */
  sizeBytes: number;
  /** Ref name -> commit (`main` -> 40-hex). */
  refs: Record<string, string>;
  snapshots: CachedSnapshot[];
  /** Latest modification time of a blob, ms since epoch (0 when none). */
  lastModifiedMs: number;
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch {
    return [];
  }
}

async function readRefs(repoDir: string): Promise<Record<string, string>> {
  const refs: Record<string, string> = {};
  async function walk(dir: string, prefix: string): Promise<void> {
    for (const name of await listDir(dir)) {
      const p = join(dir, name);
      const st = await fsp.stat(p).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) await walk(p, `${prefix}${name}/`);
      else {
        const commit = (await fsp.readFile(p, 'utf8')).trim();
        if (isCommitHash(commit)) refs[`${prefix}${name}`] = commit;
      }
    }
  }
  await walk(join(repoDir, 'refs'), '');
  return refs;
}

/** Lists files of a snapshot, and adds the size of regular (copied) files to `sized`. */
async function scanSnapshot(dir: string, sized: { bytes: number }): Promise<string[]> {
  const files: string[] = [];
  async function walk(d: string, prefix: string): Promise<void> {
    for (const name of await listDir(d)) {
      const p = join(d, name);
      const lst = await fsp.lstat(p).catch(() => undefined);
      if (!lst) continue;
      if (lst.isDirectory()) {
        await walk(p, `${prefix}${name}/`);
        continue;
      }
      if (lst.isFile()) sized.bytes += lst.size;
      if (await existsFollowing(p)) files.push(`${prefix}${name}`);
    }
  }
  await walk(dir, '');
  return files.sort();
}

/** Reads one `models--…` folder: refs, snapshots and size. No network. */
export async function scanRepoFolder(folder: string, repoId: string): Promise<CachedRepo> {
  const sized = { bytes: 0 };
  let lastModifiedMs = 0;
  for (const name of await listDir(join(folder, 'blobs'))) {
    const st = await fsp.stat(join(folder, 'blobs', name)).catch(() => undefined);
    if (!st?.isFile()) continue;
    sized.bytes += st.size;
    lastModifiedMs = Math.max(lastModifiedMs, st.mtimeMs);
  }
  const snapshots: CachedSnapshot[] = [];
  for (const commit of (await listDir(join(folder, 'snapshots'))).sort()) {
    const dir = snapshotDirOf(folder, commit);
    snapshots.push({ commit, dir, files: await scanSnapshot(dir, sized) });
  }
  return { repoId, folder, sizeBytes: sized.bytes, refs: await readRefs(folder), snapshots, lastModifiedMs };
}

/** Every `models--…` folder under `hubCache`, sorted by repo id. A missing cache folder is an empty list. */
export async function scanCache(hubCache: string): Promise<CachedRepo[]> {
  const repos: CachedRepo[] = [];
  for (const name of (await listDir(hubCache)).sort()) {
    const repoId = repoIdFromFolder(name);
    if (!repoId) continue;
    const folder = join(hubCache, name);
    const st = await fsp.lstat(folder).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    repos.push(await scanRepoFolder(folder, repoId));
  }
  return repos;
}
