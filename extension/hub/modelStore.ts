/**
 * Why this file is long: resolving a reference, finding it in the cache, downloading it and listing or removing
 * cached models share the repo/revision/cache rules; the known models and the folder rules are in their own files.
 *
 * The model store: what the extension's model picker and the `headlight models` CLI call.
 *
 * A model reference is one of
 * - `bundled`: the tiny model shipped with the extension (its folder is passed in as `bundledDir`);
 * - a local folder (`/abs/path`, `./rel`, `~/x`, or an existing folder with a config.json);
 * - a Hugging Face repo id with optional revision: `openai-community/gpt2@main`, legacy ids such as `gpt2`.
 *
 * Resolving gives a folder holding `config.json`, `model.safetensors` (or `model.safetensors.index.json` and every
 * shard it names) and `tokenizer.json` or `vocab.json` + `merges.txt` (plus `tokenizer_config.json` and
 * `special_tokens_map.json` where the repo has them), which `loadCheckpoint(dir)` reads. Pickle weights are never
 * fetched. Hub models live in the cache Python's huggingface_hub uses
 * (`HF_HUB_CACHE`, …), so a model downloaded by either is reused by the other.
 */
import { promises as fsp } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { HeadlightError } from '../common/errors';
import {
  downloadHubFile,
  getFileMetadata,
  getRepoInfo,
  PARTIAL_SUFFIX,
  partialPathOf,
  type HubContext,
  type HubFileMetadata,
  type OpenPartial,
} from './hub';
import {
  blobPathOf,
  existsFollowing,
  isCommitHash,
  lockDirOf,
  readRef,
  repoDirOf,
  scanCache,
  snapshotDirOf,
  writeNoExist,
  writeRef,
  type CachedRepo,
  type CachedSnapshot,
} from './cache';
import { hubEnv, type Env, type HubEnv } from './env';
import { knownModel, repoAlias, type KnownModel } from './knownModels';
import { chooseModelFiles, completeModelFiles, filesOf, FOLDER_NAMES, INDEX, inspectModelDir, presentIn, shardsOfIndex, TOKENIZER_FILES, WEIGHTS, type ModelFiles } from './modelFiles';

export { chooseModelFiles, inspectModelDir, shardsOfIndex, type ModelFiles } from './modelFiles';

export { DTYPE_BYTES, estimateParams, KNOWN_MODELS, knownModel, repoAlias, type KnownArchitecture, type KnownModel, type WeightsDtype } from './knownModels';

export type ModelRef =
  | { kind: 'bundled' }
  | { kind: 'local'; dir: string }
  | { kind: 'hub'; repoId: string; revision: string };

const REPO_PART = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;

/** True for a well-formed Hub repo id (`name` or `org/name`; no `--`, no `..`, at most 96 characters). */
export function isValidRepoId(id: string): boolean {
  const parts = id.split('/');
  return (
    id.length <= 96 &&
    parts.length <= 2 &&
    parts.every((p) => REPO_PART.test(p) && !p.includes('--') && !p.includes('..'))
  );
}

function looksLikePath(ref: string): boolean {
  return /^(\/|\.\.?([\\/]|$)|~([\\/]|$)|[A-Za-z]:[\\/]|\\\\)/.test(ref) || ref.includes('\\');
}

function expandTilde(p: string, env: Env): string {
  const home = env.HOME ?? env.USERPROFILE ?? '';
  return p === '~' || /^~[\\/]/.test(p) ? join(home, p.slice(1)) : p;
}

/**
 * Parses a model reference. A bare `org/name` that is also an existing folder with a config.json is taken as the
 * folder (as transformers does).
 */
export async function parseModelRef(ref: string, opts: { cwd?: string; env?: Env } = {}): Promise<ModelRef> {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const trimmed = ref.trim();
  if (trimmed === 'bundled') return { kind: 'bundled' };
  if (looksLikePath(trimmed)) return { kind: 'local', dir: resolve(cwd, expandTilde(trimmed, env)) };
  const at = trimmed.indexOf('@');
  const repoId = at >= 0 ? trimmed.slice(0, at) : trimmed;
  const revision = at >= 0 ? trimmed.slice(at + 1) : 'main';
  const asDir = resolve(cwd, trimmed);
  if (await existsFollowing(join(asDir, 'config.json'))) return { kind: 'local', dir: asDir };
  if (!isValidRepoId(repoId) || revision === '') {
    throw new HeadlightError(
      'model-ref-invalid',
      `"${ref}" is neither a folder nor a Hugging Face repo id.`,
      'Use a repo id such as openai-community/gpt2 or gpt2@main, a folder path, or "bundled".',
    );
  }
  return { kind: 'hub', repoId, revision };
}

/** A resolved model: a folder `loadCheckpoint(dir)` reads, and where it came from. */
export interface ResolvedModel {
  dir: string;
  source: 'bundled' | 'local' | 'cache' | 'download';
  files: ModelFiles;
  repoId?: string;
  revision?: string;
  commit?: string;
}

/** Options shared by the store's functions. */
export interface ModelStoreOptions {
  /** Environment to read HF_* variables from (default `process.env`). Tests pass their own. */
  env?: Env;
  /** Folder of the bundled model; required to resolve `bundled`. */
  bundledDir?: string;
  /** Base for relative folder references (default `process.cwd()`). */
  cwd?: string;
}

/** Download progress, summed over the files of one model. Sent at most every ~100 ms, and once per file at its end. */
export interface DownloadProgress {
  repoId: string;
  /** File being fetched now. */
  file: string;
  /** 1-based index of `file` among `fileCount`. */
  fileIndex: number;
  fileCount: number;
  /** Bytes of all files present so far (including those already cached). */
  bytes: number;
  /** Bytes of all files. */
  total: number;
  /** Transfer rate over the last few seconds, bytes per second (0 until measured). */
  rateBytesPerSec: number;
  /** Seconds left at that rate; undefined until a rate is known. */
  etaSec: number | undefined;
}

/** Options of `downloadModel` and `resolveModel`. */
export interface DownloadOptions extends ModelStoreOptions {
  onProgress?: (p: DownloadProgress) => void;
  /** Cancels the download; whatever file was in flight is deleted, completed files stay cached. */
  signal?: AbortSignal;
  /** A server silent this long fails the request with a `hub-timeout` error (default 15 s). */
  timeoutMs?: number;
  /** Consecutive failed attempts without progress before giving up (default 3). */
  retries?: number;
  /** Relative symlinks in snapshots (default true); false copies, as on Windows without developer mode. */
  symlinks?: boolean;
  /** How partial files are opened (default: the real filesystem); tests pass one whose disk fills up. */
  openPartial?: OpenPartial;
}

function contextOf(opts: DownloadOptions, env: HubEnv): HubContext {
  return { env, signal: opts.signal, timeoutMs: opts.timeoutMs, retries: opts.retries, symlinks: opts.symlinks, openPartial: opts.openPartial };
}

/** Folders a repo may be cached under: the id asked for, then its renamed alias. */
function candidateRepoIds(repoId: string): string[] {
  const alias = repoAlias(repoId);
  return alias ? [repoId, alias] : [repoId];
}

/**
 * Looks for a complete snapshot of `repoId@revision` in the cache, under both `models--gpt2` and
 * `models--openai-community--gpt2` namings. Never touches the network. Undefined when absent or incomplete.
 */
export async function findCachedModel(
  repoId: string,
  revision = 'main',
  opts: ModelStoreOptions = {},
): Promise<ResolvedModel | undefined> {
  const env = hubEnv(opts.env);
  for (const id of candidateRepoIds(repoId)) {
    const repoDir = repoDirOf(env.hubCache, id);
    const commit = await readRef(repoDir, revision);
    if (!commit) continue;
    const dir = snapshotDirOf(repoDir, commit);
    try {
      const files = await completeModelFiles(dir, `${id}@${revision}`);
      return { dir, source: 'cache', files, repoId: id, revision, commit };
    } catch {
      continue;
    }
  }
  return undefined;
}

/** The commit of the most recently changed snapshot folder of a repo folder, if any. */
async function newestSnapshot(repoDir: string): Promise<string | undefined> {
  let best: { commit: string; mtimeMs: number } | undefined;
  for (const commit of await fsp.readdir(join(repoDir, 'snapshots')).catch(() => [] as string[])) {
    const st = await fsp.stat(snapshotDirOf(repoDir, commit)).catch(() => undefined);
    if (isCommitHash(commit) && st && (!best || st.mtimeMs > best.mtimeMs)) best = { commit, mtimeMs: st.mtimeMs };
  }
  return best?.commit;
}

/** What a cut download left of `repoId@revision` in the cache: the files its snapshot lacks, bytes in partial files. */
async function leftInCache(
  repoId: string,
  revision: string,
  env: HubEnv,
): Promise<{ missing?: string[]; partialBytes: number }> {
  let partialBytes = 0;
  let missing: string[] | undefined;
  for (const id of candidateRepoIds(repoId)) {
    const repoDir = repoDirOf(env.hubCache, id);
    const blobs = await fsp.readdir(join(repoDir, 'blobs')).catch(() => [] as string[]);
    for (const b of blobs.filter((n) => n.endsWith(PARTIAL_SUFFIX))) {
      partialBytes += (await fsp.stat(join(repoDir, 'blobs', b)).catch(() => undefined))?.size ?? 0;
    }
    // refs/{revision} is written once a download completes: a cut one left only its snapshot folder.
    const commit = (await readRef(repoDir, revision)) ?? (await newestSnapshot(repoDir));
    if (!commit || missing) continue;
    const dir = snapshotDirOf(repoDir, commit);
    const present = await presentIn(dir, FOLDER_NAMES);
    const lacks: string[] = [];
    if (!present.has('config.json')) lacks.push('config.json');
    if (present.has(INDEX)) {
      const shards = await fsp.readFile(join(dir, INDEX), 'utf8').then((t) => shardsOfIndex(t, id), () => []);
      const have = await presentIn(dir, shards);
      lacks.push(...shards.filter((f) => !have.has(f)));
    } else if (!present.has(WEIGHTS)) {
      lacks.push(WEIGHTS);
    }
    if (!present.has('tokenizer.json') && !(present.has('vocab.json') && present.has('merges.txt'))) {
      lacks.push('tokenizer.json (or vocab.json + merges.txt)');
    }
    missing = lacks;
  }
  return { missing, partialBytes };
}

/** The error for a model that offline mode cannot finish: names the files still missing and says how to finish. */
async function offlineError(repoId: string, revision: string, env: HubEnv): Promise<HeadlightError> {
  const { missing, partialBytes } = await leftInCache(repoId, revision, env).catch(() => ({ missing: undefined, partialBytes: 0 }));
  const kept = partialBytes > 0 ? ` (${formatBytes(partialBytes)} of a cut download are kept and will resume)` : '';
  const state = missing?.length
    ? `is only partly downloaded in ${env.hubCache}: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing${kept}`
    : `is not in the cache (${env.hubCache})${kept}`;
  return new HeadlightError(
    'offline',
    `${repoId}@${revision} ${state}, and offline mode (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE) forbids downloading.`,
    partialBytes > 0 || missing?.length
      ? 'Unset HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE and load the model again to finish the download: it resumes where it stopped.'
      : 'Unset HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE to download it, or choose a model from `headlight models list`.',
  );
}

/** Free bytes for an unprivileged user on the filesystem holding `dir` (or its nearest existing parent). */
async function freeBytes(dir: string): Promise<number> {
  let d = dir;
  for (;;) {
    try {
      const s = await fsp.statfs(d);
      return s.bavail * s.bsize;
    } catch {
      const up = dirname(d);
      if (up === d) throw new HeadlightError('disk', `Cannot read free space for ${dir}.`);
      d = up;
    }
  }
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB', 'PB'];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
export { formatBytes };

/** Bytes still to fetch for `metas`: sizes of blobs not yet cached, less partial files a download will resume. */
async function bytesToFetch(repoDir: string, metas: HubFileMetadata[]): Promise<number> {
  let need = 0;
  for (const m of new Map(metas.map((x) => [x.etag, x])).values()) {
    if (await existsFollowing(blobPathOf(repoDir, m.etag))) continue;
    const partial = await fsp.stat(partialPathOf(repoDir, m.etag)).catch(() => undefined);
    need += m.size - Math.min(partial?.size ?? 0, m.size);
  }
  return need;
}

async function checkDiskSpace(hubCache: string, repoDir: string, metas: HubFileMetadata[], label: string): Promise<void> {
  const need = await bytesToFetch(repoDir, metas);
  if (need === 0) return;
  const free = await freeBytes(hubCache);
  if (need > free) {
    throw new HeadlightError(
      'disk-full',
      `${label} needs ${formatBytes(need)} (${need} bytes) but only ${formatBytes(free)} (${free} bytes) are free ` +
        `on the disk holding ${hubCache}.`,
      'Free some space (`headlight models rm REPO` removes a cached model), or point HF_HUB_CACHE at a larger disk.',
    );
  }
}

/** Turns per-file byte counts into model-level progress events with a rate and ETA, throttled to ~10 per second. */
class ProgressMeter {
  private samples: Array<{ t: number; bytes: number }> = [];
  private lastEmit = 0;
  constructor(
    private readonly repoId: string,
    private readonly total: number,
    private readonly fileCount: number,
    private readonly emit?: (p: DownloadProgress) => void,
  ) {}

  report(file: string, fileIndex: number, bytes: number, force = false): void {
    if (!this.emit) return;
    const t = performance.now();
    this.samples.push({ t, bytes });
    while (this.samples.length > 2 && t - this.samples[0].t > 3000) this.samples.shift();
    if (!force && t - this.lastEmit < 100) return;
    this.lastEmit = t;
    const first = this.samples[0];
    const dt = (t - first.t) / 1000;
    const rate = dt > 0.2 ? Math.max(0, (bytes - first.bytes) / dt) : 0;
    this.emit({
      repoId: this.repoId,
      file,
      fileIndex,
      fileCount: this.fileCount,
      bytes,
      total: this.total,
      rateBytesPerSec: rate,
      etaSec: rate > 0 ? (this.total - bytes) / rate : undefined,
    });
  }
}

/**
 * Downloads `ref` (a Hub repo id with optional `@revision`) into the shared Hugging Face cache and returns the
 * snapshot folder. Asks the Hub which files exist at the revision, fetches `config.json`, `model.safetensors` (or
 * the shard index, then every shard it names) and the tokenizer files, each verified (sha256 / git sha1) and renamed into `blobs/` atomically, then links
 * `snapshots/{commit}/` and writes `refs/{revision}`. Checks free disk space first. Files already cached are not
 * fetched again. In offline mode returns the cached copy or throws `offline`.
 *
 * Errors are HeadlightErrors: `offline`, `cancelled`, `disk-full`, `hub-timeout`, `hub-network`, `hub-auth`,
 * `hub-repo-not-found`, `hub-revision-not-found`, `hub-entry-not-found`, `hub-checksum`, `model-pickle-only`, ….
 */
export async function downloadModel(ref: string, opts: DownloadOptions = {}): Promise<ResolvedModel> {
  const env = hubEnv(opts.env);
  const parsed = await parseModelRef(ref, opts);
  if (parsed.kind !== 'hub') {
    throw new HeadlightError('model-ref-invalid', `"${ref}" is a folder, not a Hub repo: there is nothing to download.`);
  }
  const { repoId, revision } = parsed;
  if (env.offline) {
    const cached = await findCachedModel(repoId, revision, opts);
    if (cached) return cached;
    throw await offlineError(repoId, revision, env);
  }
  const ctx = contextOf(opts, env);
  const info = await getRepoInfo(ctx, repoId, revision);
  const label = `${repoId}@${revision}`;
  const siblings = new Set(info.siblings);
  const wanted = chooseModelFiles(siblings, label);
  // Resolve every file at the listed commit, so a push during the download cannot mix two commits.
  const at = isCommitHash(info.sha) ? info.sha : revision;
  const repoDir = repoDirOf(env.hubCache, repoId);
  if (wanted.includes(INDEX)) {
    // Sharded: the index (small) says which shards to fetch; only .safetensors shards the repo lists are accepted.
    const indexPath = await downloadHubFile(ctx, repoId, at, INDEX);
    const shards = shardsOfIndex(await fsp.readFile(indexPath, 'utf8'), label, siblings);
    wanted.splice(wanted.indexOf(INDEX) + 1, 0, ...shards);
  }
  const metas: HubFileMetadata[] = [];
  for (const f of wanted) metas.push(await getFileMetadata(ctx, repoId, at, f));
  const commit = metas[0].commit;
  await checkDiskSpace(env.hubCache, repoDir, metas, label);

  const total = metas.reduce((s, m) => s + m.size, 0);
  const meter = new ProgressMeter(repoId, total, wanted.length, opts.onProgress);
  let done = 0;
  for (let i = 0; i < wanted.length; i++) {
    const file = wanted[i];
    await downloadHubFile(ctx, repoId, at, file, {
      metadata: metas[i],
      onBytes: (bytes) => meter.report(file, i + 1, done + bytes),
    });
    done += metas[i].size;
    meter.report(file, i + 1, done, true);
  }
  for (const f of TOKENIZER_FILES) if (!siblings.has(f)) await writeNoExist(repoDir, commit, f);
  await writeRef(repoDir, revision, commit);
  const dir = snapshotDirOf(repoDir, commit);
  const shards = wanted.includes(INDEX) ? wanted.filter((f) => f.endsWith('.safetensors') && f !== WEIGHTS) : undefined;
  return { dir, source: 'download', files: filesOf(dir, wanted, shards), repoId, revision, commit };
}

/**
 * Resolves a model reference to a folder `loadCheckpoint(dir)` can read.
 * - `bundled` -> `opts.bundledDir`; a folder -> itself (both checked for the needed files);
 * - a Hub id -> the cached snapshot when complete (no network at all), else `downloadModel` unless
 *   `download: false` (then a `model-not-cached` error).
 */
export async function resolveModel(ref: string, opts: DownloadOptions & { download?: boolean } = {}): Promise<ResolvedModel> {
  const parsed = await parseModelRef(ref, opts);
  if (parsed.kind === 'bundled') {
    if (!opts.bundledDir) {
      throw new HeadlightError('model-bundled-missing', 'The bundled model was asked for but no bundled folder was given.');
    }
    return { dir: opts.bundledDir, source: 'bundled', files: await inspectModelDir(opts.bundledDir) };
  }
  if (parsed.kind === 'local') return { dir: parsed.dir, source: 'local', files: await inspectModelDir(parsed.dir) };
  const cached = await findCachedModel(parsed.repoId, parsed.revision, opts);
  if (cached) return cached;
  const env = hubEnv(opts.env);
  if (env.offline) throw await offlineError(parsed.repoId, parsed.revision, env);
  if (opts.download === false) {
    throw new HeadlightError(
      'model-not-cached',
      `${parsed.repoId}@${parsed.revision} is not in the cache (${env.hubCache}).`,
      `Download it with \`headlight models pull ${ref}\` or from the model picker.`,
    );
  }
  return downloadModel(ref, opts);
}

/** One cached repo as the picker and `models list` show it. */
export interface CachedModelInfo extends CachedRepo {
  /** A complete snapshot folder to load (the one `refs/main` points to when complete, else the newest complete). */
  loadableDir?: string;
  /** The KNOWN_MODELS entry this repo is (by either id). */
  known?: KnownModel;
}

/** Lists every model in the cache with sizes, refs and a loadable snapshot when there is one. No network. */
export async function listCachedModels(opts: ModelStoreOptions = {}): Promise<CachedModelInfo[]> {
  const env = hubEnv(opts.env);
  const repos = await scanCache(env.hubCache);
  const out: CachedModelInfo[] = [];
  for (const r of repos) {
    const complete: CachedSnapshot[] = [];
    for (const s of r.snapshots) {
      if (await completeModelFiles(s.dir, r.repoId).then(() => true, () => false)) complete.push(s);
    }
    const main = complete.find((s) => s.commit === r.refs.main);
    const loadableDir = (main ?? complete[complete.length - 1])?.dir;
    out.push({ ...r, loadableDir, known: knownModel(r.repoId) });
  }
  return out;
}

/**
 * Removes the cache folder `models--{org}--{name}` of exactly `repoId` (and its lock folder when empty). Refuses anything that
 * is not a well-formed repo id or whose folder is not a real directory directly inside the cache. Returns the
 * paths removed.
 */
export async function removeCachedModel(repoId: string, opts: ModelStoreOptions = {}): Promise<string[]> {
  if (!isValidRepoId(repoId)) {
    throw new HeadlightError(
      'model-ref-invalid',
      `"${repoId}" is not a Hugging Face repo id; refusing to remove anything.`,
      'Give a repo id as shown by `headlight models list`, e.g. openai-community/gpt2.',
    );
  }
  const env = hubEnv(opts.env);
  const folder = repoDirOf(env.hubCache, repoId);
  const st = await fsp.lstat(folder).catch(() => undefined);
  if (!st) {
    throw new HeadlightError('model-not-cached', `${repoId} is not in the cache (${env.hubCache}).`, 'See `headlight models list`.');
  }
  if (!st.isDirectory() || dirname(folder) !== env.hubCache || !basename(folder).startsWith('models--')) {
    throw new HeadlightError('model-rm-refused', `${folder} is not a plain cache folder of ${repoId}; refusing to remove it.`);
  }
  const removed = [folder];
  await fsp.rm(folder, { recursive: true, force: true });
  const locks = lockDirOf(env.hubCache, repoId);
  // Only an empty lock folder: a lock file inside means a download in another window is still running.
  if (await fsp.rmdir(locks).then(() => true, () => false)) removed.push(locks);
  return removed;
}
