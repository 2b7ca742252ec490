/**
 * Why this file is long: it is one protocol, end to end (metadata, redirects, resume, verification, the blob lock
 * and the errors a user sees for each failure), and splitting it would scatter one download's steps across files.
 *
 * The Hugging Face Hub's download protocol, in plain Node: HEAD for metadata, same-host redirects followed, the CDN
 * redirect fetched without the token, `Range` resume after a cut connection, hash verification before an atomic
 * rename into `blobs/`, and a lock so two processes fetching one file end with one good copy.
 * Facts: /work/shared/notes/huggingface-hub.md.
 */
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { HeadlightError } from '../common/errors';
import {
  blobPathOf,
  existsFollowing,
  linkIntoSnapshot,
  lockDirOf,
  repoDirOf,
  writeRef,
  type LinkOptions,
} from './cache';
import type { HubEnv } from './env';
import { createFileHasher, etagKind, normalizeEtag } from './hash';
import { acquireLock, cancelled } from './lock';

/** Everything a Hub request needs besides its URL. */
export interface HubContext {
  env: HubEnv;
  signal?: AbortSignal;
  /** A server silent for this long (connect, headers or body) fails the request (default 15 s). */
  timeoutMs?: number;
  /** Consecutive failed attempts without progress before a download gives up (default 3). */
  retries?: number;
  /** See `LinkOptions.symlinks`. */
  symlinks?: boolean;
  /** Opens a blob's partial file for appending (default `openPartialFile`). Tests pass one whose disk fills up. */
  openPartial?: OpenPartial;
}

/** The calls a download makes on its partial file; a `fsp.FileHandle` has them all. */
export interface PartialFile {
  stat(): Promise<{ size: number }>;
  writev(buffers: Buffer[]): Promise<{ bytesWritten: number }>;
  truncate(length: number): Promise<void>;
  datasync(): Promise<void>;
  close(): Promise<void>;
}

/** Opens (creating if needed) a partial file for appending. */
export type OpenPartial = (path: string) => Promise<PartialFile>;

/** The real one: `open(path, 'a')`. */
export const openPartialFile: OpenPartial = (path) => fsp.open(path, 'a');

/** What a HEAD on `resolve/{revision}/{file}` tells. */
export interface HubFileMetadata {
  /** The commit the revision resolved to (`X-Repo-Commit`). */
  commit: string;
  /** sha256 for LFS files, git blob sha1 otherwise; also the blob's file name in the cache. */
  etag: string;
  /** Size in bytes (`X-Linked-Size`, else `Content-Length`). */
  size: number;
  /** Where to GET the bytes: the CDN URL of the redirect, or the resolve URL itself. */
  location: string;
}

/** Per-file byte progress: bytes of this file present so far, and its size. */
export type BytesCallback = (bytes: number, total: number) => void;

const DEFAULT_TIMEOUT_MS = 15_000;
const MAX_REDIRECTS = 10;

function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}

/** `{endpoint}/{repo}/resolve/{revision}/{file}`; the revision is encoded whole (`refs%2Fpr%2F1`). */
export function hubFileUrl(endpoint: string, repoId: string, revision: string, file: string): string {
  return `${endpoint}/${encodePath(repoId)}/resolve/${encodeURIComponent(revision)}/${encodePath(file)}`;
}

function networkError(url: URL, err: NodeJS.ErrnoException, what: string): HeadlightError {
  return new HeadlightError(
    'hub-network',
    `Cannot reach ${url.host} while ${what}: ${err.code ?? err.message}.`,
    'Check the network connection and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use only models already downloaded.',
  );
}

function timeoutError(url: URL, ms: number, what: string): HeadlightError {
  return new HeadlightError(
    'hub-timeout',
    `${url.host} sent nothing for ${(ms / 1000).toFixed(ms < 1000 ? 2 : 0)} s while ${what}; gave up.`,
    'The server may be overloaded or the connection stalled. Try again later: a download resumes where it stopped.',
  );
}

interface Opened {
  req: http.ClientRequest;
  res: http.IncomingMessage;
  /** Why we destroyed the request (timeout, cancel), if we did: the body stream only says "aborted". */
  reason(): Error | undefined;
}

/** One HTTP request, no redirects. Errors and silences become HeadlightErrors; `signal` aborts. */
function openOnce(
  ctx: HubContext,
  url: URL,
  method: 'GET' | 'HEAD',
  headers: Record<string, string>,
  what: string,
): Promise<Opened> {
  if (ctx.env.offline) {
    return Promise.reject(
      new HeadlightError(
        'offline',
        `Offline mode (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE) forbids ${what}.`,
        'Unset HF_HUB_OFFLINE to download, or pick a model that is already in the cache.',
      ),
    );
  }
  if (ctx.signal?.aborted) return Promise.reject(cancelled());
  const timeoutMs = ctx.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise<Opened>((resolve, reject) => {
    const req = lib.request(url, { method, headers, agent: false });
    let reason: Error | undefined;
    const kill = (err: Error): void => {
      reason ??= err;
      req.destroy(err);
    };
    const onAbort = (): void => kill(cancelled());
    ctx.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('close', () => ctx.signal?.removeEventListener('abort', onAbort));
    req.setTimeout(timeoutMs, () => kill(timeoutError(url, timeoutMs, what)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      reject(err instanceof HeadlightError ? err : networkError(url, err, what));
    });
    req.on('response', (res) => resolve({ req, res, reason: () => reason }));
    req.end();
  });
}

/** Throws the HeadlightError a failed Hub response stands for; the body must already be consumed or dropped. */
export function hubHttpError(
  ctx: HubContext,
  res: http.IncomingMessage,
  repoId: string,
  revision: string,
  file?: string,
): HeadlightError {
  const status = res.statusCode ?? 0;
  const code = String(res.headers['x-error-code'] ?? '');
  const serverMsg = String(res.headers['x-error-message'] ?? '');
  const where = file ? `${file} in ${repoId}@${revision}` : `${repoId}@${revision}`;
  const repoUrl = `${ctx.env.endpoint}/${repoId}`;
  const tokenHint = ctx.env.token
    ? `A token was sent (HF_TOKEN, HUGGING_FACE_HUB_TOKEN or ${ctx.env.hfHome}/token) but refused: open ${repoUrl}, ` +
      'accept its licence with the account that owns the token, check that the token may read gated repos, and try again.'
    : `If the repo is gated or private, open ${repoUrl} and accept its licence, then create a read token at ` +
      `${ctx.env.endpoint}/settings/tokens and set HF_TOKEN=hf_… (or run \`hf auth login\`, which writes ` +
      `${ctx.env.hfHome}/token).`;
  if (code === 'EntryNotFound') {
    return new HeadlightError('hub-entry-not-found', `File ${file ?? '?'} does not exist in ${repoId}@${revision}.`);
  }
  if (code === 'RevisionNotFound') {
    return new HeadlightError(
      'hub-revision-not-found',
      `Revision "${revision}" does not exist in ${repoId}.`,
      'Use a branch, tag or 40-hex commit of that repo, or leave out @revision for main.',
    );
  }
  if (code === 'GatedRepo' || ((status === 401 || status === 403) && code !== 'RepoNotFound')) {
    return new HeadlightError(
      'hub-auth',
      `${repoId} is gated or private: the Hub refused ${where} (HTTP ${status}${serverMsg ? `: ${serverMsg}` : ''}).`,
      tokenHint,
    );
  }
  if (code === 'RepoNotFound' || status === 404) {
    return new HeadlightError(
      'hub-repo-not-found',
      `${repoId} was not found on ${ctx.env.endpoint} (HTTP ${status}).`,
      `Check the spelling (e.g. openai-community/gpt2). ${tokenHint}`,
    );
  }
  return new HeadlightError(
    'hub-http',
    `${ctx.env.endpoint} answered HTTP ${status}${serverMsg ? ` (${serverMsg})` : ''} for ${where}.`,
    'Try again later.',
  );
}

/** Authorization goes only to the endpoint's own origin, never to the CDN. */
function authHeaders(ctx: HubContext, url: URL): Record<string, string> {
  const endpointOrigin = new URL(ctx.env.endpoint).origin;
  return ctx.env.token && url.origin === endpointOrigin ? { authorization: `Bearer ${ctx.env.token}` } : {};
}

function isRedirect(status: number | undefined): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/**
 * Sends a request, following redirects that stay on the same origin (renamed repos, `/api/resolve-cache/…`). With
 * `crossOrigin: 'stop'` a redirect to another host is returned as is (its headers carry the metadata); with
 * `'follow'` it is followed too, without the token.
 */
async function requestFollowing(
  ctx: HubContext,
  start: string,
  method: 'GET' | 'HEAD',
  headers: Record<string, string>,
  crossOrigin: 'stop' | 'follow',
  what: string,
): Promise<Opened & { url: URL }> {
  let url = new URL(start);
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const opened = await openOnce(ctx, url, method, { ...headers, ...authHeaders(ctx, url) }, what);
    const { res } = opened;
    const location = res.headers.location;
    if (!isRedirect(res.statusCode) || !location) return { ...opened, url };
    const next = new URL(location, url);
    if (next.origin !== url.origin && crossOrigin === 'stop') return { ...opened, url };
    res.resume();
    url = next;
  }
  throw new HeadlightError('hub-http', `Too many redirects from ${start} while ${what}.`);
}

async function readBody(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A repo at a revision as `/api/models/{repo}/revision/{rev}` lists it. */
export interface HubRepoInfo {
  /** The commit the revision resolved to. */
  sha: string;
  /** Repo-relative file paths. */
  siblings: string[];
}

/** Lists the files of `repoId` at `revision` (`GET /api/models/{repo}/revision/{rev}`). */
export async function getRepoInfo(ctx: HubContext, repoId: string, revision: string): Promise<HubRepoInfo> {
  const url = `${ctx.env.endpoint}/api/models/${encodePath(repoId)}/revision/${encodeURIComponent(revision)}`;
  const what = `listing ${repoId}@${revision}`;
  const { res } = await requestFollowing(ctx, url, 'GET', { accept: 'application/json' }, 'follow', what);
  const body = await readBody(res);
  if (res.statusCode !== 200) throw hubHttpError(ctx, res, repoId, revision);
  let json: { sha?: unknown; siblings?: Array<{ rfilename?: unknown }> };
  try {
    json = JSON.parse(body);
  } catch {
    throw new HeadlightError('hub-http', `The Hub's listing of ${repoId}@${revision} is not JSON.`, 'Check HF_ENDPOINT.');
  }
  const sha = typeof json.sha === 'string' ? json.sha : '';
  const siblings = (json.siblings ?? []).map((s) => s.rfilename).filter((f): f is string => typeof f === 'string');
  return { sha, siblings };
}

/** HEADs `resolve/{revision}/{file}` and reads commit, etag, size and download location. */
export async function getFileMetadata(
  ctx: HubContext,
  repoId: string,
  revision: string,
  file: string,
): Promise<HubFileMetadata> {
  const what = `reading metadata of ${file} from ${repoId}@${revision}`;
  const start = hubFileUrl(ctx.env.endpoint, repoId, revision, file);
  const { res, url } = await requestFollowing(ctx, start, 'HEAD', { 'accept-encoding': 'identity' }, 'stop', what);
  res.resume();
  const status = res.statusCode ?? 0;
  if (status >= 400) throw hubHttpError(ctx, res, repoId, revision, file);
  const h = res.headers;
  const commit = String(h['x-repo-commit'] ?? '');
  const rawEtag = String(h['x-linked-etag'] ?? h.etag ?? '');
  const size = Number(h['x-linked-size'] ?? h['content-length']);
  const location = isRedirect(status) && h.location ? new URL(h.location, url).toString() : url.toString();
  if (!commit || !rawEtag || !Number.isFinite(size)) {
    throw new HeadlightError(
      'hub-http',
      `${url.host} gave incomplete metadata for ${file} in ${repoId}@${revision} ` +
        `(X-Repo-Commit "${commit}", ETag "${rawEtag}", size "${size}").`,
      'HF_ENDPOINT may point at a proxy that drops headers; point it at the Hub or a mirror that keeps them.',
    );
  }
  return { commit, etag: normalizeEtag(rawEtag), size, location };
}

export const PARTIAL_SUFFIX = '.headlight-partial';

/** Partial file of a blob download: our own name, not Python's `{etag}.incomplete` (old versions resume into it). */
export function partialPathOf(repoDir: string, etag: string): string {
  return `${blobPathOf(repoDir, etag)}${PARTIAL_SUFFIX}`;
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await fsp.stat(path)).size;
  } catch {
    return 0;
  }
}

/**
 * Appends `data` (`length` bytes in all), writing the rest again after a short write, as write(2) may return one when
 * the disk fills up; the next call then fails with ENOSPC. What is on disk is always a prefix of what arrived.
 */
async function writeAll(fh: PartialFile, data: Buffer[], length: number): Promise<void> {
  let left = data;
  let remaining = length;
  while (remaining > 0) {
    const { bytesWritten } = await fh.writev(left);
    if (bytesWritten <= 0) throw new Error(`write of ${remaining} bytes made no progress`);
    remaining -= bytesWritten;
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const b of left) {
      if (skip >= b.length) skip -= b.length;
      else {
        rest.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
    }
    left = rest;
  }
}

/** Received bytes are appended with at most one write in flight, in batches, so the socket is never starved. */
class BatchedAppender {
  private queue: Buffer[] = [];
  private queued = 0;
  private inFlight: Promise<void> | undefined;
  private failure: unknown;
  private syncing: Promise<void> | undefined;
  private syncedUpTo = 0;
  constructor(
    private readonly fh: PartialFile,
    public onDisk: number,
    private readonly onWritten: (onDisk: number) => void,
  ) {}

  /** Queues a chunk; returns a promise only when the disk is behind and the caller must wait. */
  push(chunk: Buffer): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    this.queue.push(chunk);
    this.queued += chunk.length;
    if (this.queued >= 1 << 20 && !this.inFlight) this.kick();
    if (this.queued >= 32 << 20 && this.inFlight) return this.inFlight; // back-pressure on a slow disk
    return undefined;
  }

  private kick(): void {
    const data = this.queue;
    const length = this.queued;
    this.queue = [];
    this.queued = 0;
    this.inFlight = writeAll(this.fh, data, length).then(
      () => {
        this.onDisk += length;
        this.inFlight = undefined;
        this.onWritten(this.onDisk);
        this.syncInBackground();
        if (this.queued >= 1 << 20) this.kick();
      },
    ).catch((err) => {
      this.failure = err;
      this.inFlight = undefined;
    });
  }

  /** Flushes to disk every 64 MiB on the thread pool, so the final fsync before the rename finds little left. */
  private syncInBackground(): void {
    if (this.syncing || this.onDisk - this.syncedUpTo < 64 << 20) return;
    const upTo = this.onDisk;
    this.syncing = this.fh.datasync().then(
      () => {
        this.syncedUpTo = upTo;
        this.syncing = undefined;
      },
      () => {
        this.syncing = undefined; // the final sync reports real errors
      },
    );
  }

  /** Writes everything received so far (also after a cut: those bytes are good) and returns bytes on disk. */
  async drain(): Promise<number> {
    while (this.inFlight) await this.inFlight;
    await this.syncing;
    if (this.failure) throw this.failure;
    if (this.queued > 0) {
      this.kick();
      while (this.inFlight) await this.inFlight;
      if (this.failure) throw this.failure;
    }
    return this.onDisk;
  }
}

/** The disk (or the user's quota) is full: the bytes written so far are good and kept for a later resume. */
function isDiskFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

function diskFullError(ctx: HubContext, file: string, repoId: string, partial: string, kept: number, size: number): HeadlightError {
  return new HeadlightError(
    'disk-full',
    `The disk holding ${ctx.env.hubCache} is full: downloading ${file} from ${repoId} stopped after ${kept} of ${size} bytes. ` +
      `Those bytes are kept in ${partial}.`,
    'Free some space (`headlight models rm REPO` removes a cached model) or point HF_HUB_CACHE at a larger disk, ' +
      'then download again: it resumes from the bytes kept.',
  );
}

/** Transient failures a download retries from where it stopped. */
function isRetryable(err: unknown): boolean {
  if (err instanceof HeadlightError) return err.code === 'hub-timeout' || err.code === 'hub-network' || err.code === 'hub-cut';
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE';
}

interface FetchState {
  partial: string;
  fh: PartialFile;
  onDisk: number;
}

/** One GET attempt from `state.onDisk`; appends what arrives. Returns normally when the file is complete. */
async function fetchAttempt(
  ctx: HubContext,
  meta: HubFileMetadata,
  state: FetchState,
  hasherAdvance: (n: number) => void,
  restart: () => Promise<void>,
  onBytes: BytesCallback | undefined,
  what: string,
): Promise<void> {
  const headers: Record<string, string> = { 'accept-encoding': 'identity' };
  if (state.onDisk > 0) headers.range = `bytes=${state.onDisk}-`;
  const { res, reason } = await requestFollowing(ctx, meta.location, 'GET', headers, 'follow', what);
  const status = res.statusCode ?? 0;
  if (status === 416 && state.onDisk === meta.size) {
    res.resume();
    return;
  }
  if (status === 200 && state.onDisk > 0) {
    await restart(); // the server ignored Range: start over
  } else if (status === 206) {
    const m = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
    if (!m || Number(m[1]) !== state.onDisk) {
      res.resume();
      await restart();
      throw new HeadlightError('hub-cut', `The server resumed ${what} at the wrong offset.`);
    }
  } else if (status !== 200) {
    await readBody(res).catch(() => '');
    throw new HeadlightError('hub-http', `HTTP ${status} while ${what}.`, 'Try again later.');
  }
  let received = state.onDisk;
  const appender = new BatchedAppender(state.fh, state.onDisk, hasherAdvance);
  let streamError: unknown;
  try {
    for await (const chunk of res) {
      received += (chunk as Buffer).length;
      const wait = appender.push(chunk as Buffer);
      if (wait) await wait;
      onBytes?.(received, meta.size);
    }
  } catch (err) {
    streamError = reason() ?? err;
  }
  state.onDisk = await appender.drain();
  hasherAdvance(state.onDisk);
  if (streamError instanceof HeadlightError) throw streamError;
  if (streamError || state.onDisk < meta.size) {
    const why = streamError ? ` (${(streamError as NodeJS.ErrnoException).code ?? (streamError as Error).message})` : '';
    throw new HeadlightError(
      'hub-cut',
      `The connection broke${why} after ${state.onDisk} of ${meta.size} bytes while ${what}.`,
      'Run the download again: it resumes from the bytes already received.',
    );
  }
}

/**
 * Downloads the bytes of `meta` into `blobs/{etag}` of `repoDir`: resumes a partial file, retries cut connections
 * with `Range`, verifies sha256 / git-sha1, then renames atomically. Holds a lock under `.locks/` so a second
 * process waits for the first and reuses its blob. On cancel or checksum failure nothing is left in `blobs/`.
 */
export async function fetchBlob(
  ctx: HubContext,
  repoId: string,
  meta: HubFileMetadata,
  file: string,
  onBytes?: BytesCallback,
): Promise<string> {
  const repoDir = repoDirOf(ctx.env.hubCache, repoId);
  const blob = blobPathOf(repoDir, meta.etag);
  if (await existsFollowing(blob)) return blob;
  const partial = partialPathOf(repoDir, meta.etag);
  await fsp.mkdir(blobPathOf(repoDir, ''), { recursive: true });
  const lock = await acquireLock(`${lockDirOf(ctx.env.hubCache, repoId)}/${meta.etag}.headlight.lock`, {
    signal: ctx.signal,
    whileWaiting: async () => {
      if (await existsFollowing(blob)) return true;
      onBytes?.(await sizeOf(partial), meta.size);
      return false;
    },
  });
  if (!lock) return blob;
  try {
    if (await existsFollowing(blob)) return blob;
    await downloadLocked(ctx, repoId, meta, file, partial, blob, onBytes);
    return blob;
  } finally {
    await lock.release();
  }
}

async function downloadLocked(
  ctx: HubContext,
  repoId: string,
  meta: HubFileMetadata,
  file: string,
  partial: string,
  blob: string,
  onBytes: BytesCallback | undefined,
): Promise<void> {
  const what = `downloading ${file} from ${repoId}`;
  const kind = etagKind(meta.etag);
  let fh: PartialFile;
  try {
    fh = await (ctx.openPartial ?? openPartialFile)(partial);
  } catch (err) {
    if (isDiskFull(err)) throw diskFullError(ctx, file, repoId, partial, await sizeOf(partial), meta.size);
    throw err;
  }
  const state: FetchState = { partial, fh, onDisk: (await fh.stat()).size };
  let hasher = createFileHasher(partial, kind, meta.size);
  const restart = async (): Promise<void> => {
    hasher.dispose();
    await fh.truncate(0);
    state.onDisk = 0;
    hasher = createFileHasher(partial, kind, meta.size);
  };
  let ok = false;
  try {
    if (state.onDisk > meta.size) await restart();
    hasher.advance(state.onDisk);
    onBytes?.(state.onDisk, meta.size);
    let failures = 0;
    while (state.onDisk < meta.size || meta.size === 0) {
      const before = state.onDisk;
      try {
        await fetchAttempt(ctx, meta, state, (n) => hasher.advance(n), restart, onBytes, what);
        break;
      } catch (err) {
        if (ctx.signal?.aborted) throw cancelled();
        if (!isRetryable(err)) throw err;
        failures = state.onDisk > before ? 1 : failures + 1;
        if (failures > (ctx.retries ?? 3)) throw err;
      }
    }
    // Durable before it gets its final name: a verified blob must not turn into zeros after a power cut.
    await fh.datasync();
    const digest = await hasher.finish(state.onDisk);
    if (state.onDisk !== meta.size || (kind !== 'unknown' && digest !== meta.etag)) {
      throw new HeadlightError(
        'hub-checksum',
        `${file} from ${repoId} failed verification: got ${state.onDisk} bytes with ` +
          `${kind === 'git-sha1' ? 'git sha1' : 'sha256'} ${digest}, the Hub promised ${meta.size} bytes with ${meta.etag}. ` +
          'Nothing was kept.',
        'Run the download again. If it fails again, a proxy or disk may be corrupting data.',
      );
    }
    await fh.close();
    await fsp.rename(partial, blob);
    ok = true;
  } catch (err) {
    // A later call resumes a partial cut by the network or by a full disk; a cancelled or corrupt one goes.
    if (isDiskFull(err)) {
      await fh.close().catch(() => undefined);
      throw diskFullError(ctx, file, repoId, partial, await sizeOf(partial), meta.size);
    }
    if (!isRetryable(err)) await fsp.rm(partial, { force: true });
    throw err;
  } finally {
    hasher.dispose();
    if (!ok) await fh.close().catch(() => undefined);
  }
}

/** Per-file options of `downloadHubFile`. */
export interface HubFileOptions extends LinkOptions {
  onBytes?: BytesCallback;
  /** Metadata already read (skips the HEAD). */
  metadata?: HubFileMetadata;
}

/**
 * Python's `hf_hub_download` for one file: HEAD, fetch the blob, link `snapshots/{commit}/{file}`, write
 * `refs/{revision}`. Returns the snapshot path of the file.
 */
export async function downloadHubFile(
  ctx: HubContext,
  repoId: string,
  revision: string,
  file: string,
  opts: HubFileOptions = {},
): Promise<string> {
  const meta = opts.metadata ?? (await getFileMetadata(ctx, repoId, revision, file));
  await fetchBlob(ctx, repoId, meta, file, opts.onBytes);
  const repoDir = repoDirOf(ctx.env.hubCache, repoId);
  const path = await linkIntoSnapshot(repoDir, meta.commit, file, meta.etag, { symlinks: opts.symlinks ?? ctx.symlinks });
  await writeRef(repoDir, revision, meta.commit);
  return path;
}
