/**
 * The model store: what the extension's model picker and the `headlight models` CLI call.
 *
 * A model reference is one of
 * - `bundled`: the tiny model shipped with the extension (its folder is passed in as `bundledDir`);
 * - a local folder (`/abs/path`, `./rel`, `~/x`, or an existing folder with a config.json);
 * - a Hugging Face repo id with optional revision: `openai-community/gpt2@main`, legacy ids such as `gpt2`.
 *
 * Resolving gives a folder holding `config.json`, `model.safetensors` and `tokenizer.json` or `vocab.json` +
 * `merges.txt`, which `loadCheckpoint(dir)` reads. Hub models live in the cache Python's huggingface_hub uses
 * (`HF_HUB_CACHE`, …), so a model downloaded by either is reused by the other.
 */
import { promises as fsp } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { HeadlightError } from '../common/errors';
import { downloadHubFile, getFileMetadata, getRepoInfo, partialPathOf, type HubContext, type HubFileMetadata } from './hub';
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
} from './cache';
import { hubEnv, type Env, type HubEnv } from './env';

/** A GPT-2-family model the picker offers by name. Sizes are of `model.safetensors` (F32). */
export interface KnownModel {
  /** Short, legacy Hub id (`gpt2`); the Hub redirects it to `repoId`. */
  id: string;
  /** Current Hub repo id. */
  repoId: string;
  /** Size of model.safetensors in bytes. */
  weightsBytes: number;
  /** False where `weightsBytes` is rounded (≈). */
  exactSize: boolean;
  layers: number;
  heads: number;
  embd: number;
}

/** The GPT-2 checkpoints the picker lists (sizes from notes/huggingface-hub.md). */
export const KNOWN_MODELS: readonly KnownModel[] = [
  { id: 'gpt2', repoId: 'openai-community/gpt2', weightsBytes: 548_105_171, exactSize: true, layers: 12, heads: 12, embd: 768 },
  { id: 'distilgpt2', repoId: 'distilbert/distilgpt2', weightsBytes: 352_824_413, exactSize: true, layers: 6, heads: 12, embd: 768 },
  { id: 'gpt2-medium', repoId: 'openai-community/gpt2-medium', weightsBytes: 1_520_000_000, exactSize: false, layers: 24, heads: 16, embd: 1024 },
  { id: 'gpt2-large', repoId: 'openai-community/gpt2-large', weightsBytes: 3_250_000_000, exactSize: false, layers: 36, heads: 20, embd: 1280 },
  { id: 'gpt2-xl', repoId: 'openai-community/gpt2-xl', weightsBytes: 6_430_000_000, exactSize: false, layers: 48, heads: 25, embd: 1600 },
];

/** The other folder name a renamed repo may be cached under (`gpt2` <-> `openai-community/gpt2`). */
export function repoAlias(repoId: string): string | undefined {
  const k = KNOWN_MODELS.find((m) => m.id === repoId || m.repoId === repoId);
  if (!k) return undefined;
  return k.id === repoId ? k.repoId : k.id;
}

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

/** Files of a loadable model folder, as absolute paths. */
export interface ModelFiles {
  config: string;
  weights: string;
  /** `tokenizer.json`, when present (preferred). */
  tokenizer?: string;
  /** `vocab.json` + `merges.txt`, when present. */
  vocab?: string;
  merges?: string;
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

const WEIGHTS = 'model.safetensors';
const TOKENIZER_FILES = ['tokenizer.json', 'vocab.json', 'merges.txt'];
const PICKLE_FILES = ['pytorch_model.bin', 'tf_model.h5', 'flax_model.msgpack', 'model.ckpt.index'];

function pickleOnlyError(where: string, found: string): HeadlightError {
  return new HeadlightError(
    'model-pickle-only',
    `${where} has weights only as ${found}. Headlight loads only model.safetensors: pickle files ` +
      '(pytorch_model.bin) can run arbitrary code when loaded, safetensors cannot.',
    'Choose a repo or revision that has model.safetensors. For weights you trust, convert them once with Python: ' +
      'AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out, safe_serialization=True).',
  );
}

/**
 * Which files a model needs, given the names present; throws a HeadlightError naming what is missing (and why
 * pickle weights are refused).
 */
export function chooseModelFiles(present: ReadonlySet<string>, where: string): string[] {
  if (!present.has(WEIGHTS)) {
    if (present.has('model.safetensors.index.json')) {
      throw new HeadlightError(
        'model-sharded',
        `${where} splits its weights into several safetensors shards; Headlight reads a single model.safetensors.`,
        'Merge the shards into one model.safetensors, or pick a GPT-2-sized checkpoint.',
      );
    }
    const pickle = PICKLE_FILES.find((f) => present.has(f));
    if (pickle) throw pickleOnlyError(where, pickle);
    throw new HeadlightError('model-files-missing', `${where} has no ${WEIGHTS}.`, 'Pick a folder or repo with a GPT-2 safetensors checkpoint.');
  }
  if (!present.has('config.json')) {
    throw new HeadlightError('model-files-missing', `${where} has no config.json.`, 'A Hugging Face model folder needs config.json beside model.safetensors.');
  }
  const hasBpe = present.has('vocab.json') && present.has('merges.txt');
  if (!present.has('tokenizer.json') && !hasBpe) {
    throw new HeadlightError(
      'model-files-missing',
      `${where} has no tokenizer: neither tokenizer.json nor vocab.json + merges.txt.`,
      'Copy the tokenizer files of the base model (e.g. openai-community/gpt2) into the folder.',
    );
  }
  return ['config.json', WEIGHTS, ...TOKENIZER_FILES.filter((f) => present.has(f))];
}

async function presentIn(dir: string, names: string[]): Promise<Set<string>> {
  const present = new Set<string>();
  for (const n of names) if (await existsFollowing(join(dir, n))) present.add(n);
  return present;
}

function filesOf(dir: string, names: string[]): ModelFiles {
  const has = (n: string): string | undefined => (names.includes(n) ? join(dir, n) : undefined);
  return {
    config: join(dir, 'config.json'),
    weights: join(dir, WEIGHTS),
    tokenizer: has('tokenizer.json'),
    vocab: has('merges.txt') ? has('vocab.json') : undefined,
    merges: has('vocab.json') ? has('merges.txt') : undefined,
  };
}

/** Checks a folder (local or bundled) and lists its model files. */
export async function inspectModelDir(dir: string): Promise<ModelFiles> {
  const st = await fsp.stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new HeadlightError('model-folder-missing', `Model folder ${dir} does not exist.`, 'Check the path.');
  }
  const present = await presentIn(dir, ['config.json', WEIGHTS, 'model.safetensors.index.json', ...TOKENIZER_FILES, ...PICKLE_FILES]);
  return filesOf(dir, chooseModelFiles(present, dir));
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
}

function contextOf(opts: DownloadOptions, env: HubEnv): HubContext {
  return { env, signal: opts.signal, timeoutMs: opts.timeoutMs, retries: opts.retries, symlinks: opts.symlinks };
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
    const present = await presentIn(dir, ['config.json', WEIGHTS, ...TOKENIZER_FILES]);
    try {
      const names = chooseModelFiles(present, `${id}@${revision}`);
      return { dir, source: 'cache', files: filesOf(dir, names), repoId: id, revision, commit };
    } catch {
      continue;
    }
  }
  return undefined;
}

function offlineError(repoId: string, revision: string, env: HubEnv): HeadlightError {
  return new HeadlightError(
    'offline',
    `${repoId}@${revision} is not in the cache (${env.hubCache}) and offline mode (HF_HUB_OFFLINE) forbids downloading it.`,
    'Unset HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE to download it, or choose a model from `headlight models list`.',
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
 * snapshot folder. Asks the Hub which files exist at the revision, fetches `config.json`, `model.safetensors` and
 * the tokenizer files, each verified (sha256 / git sha1) and renamed into `blobs/` atomically, then links
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
    throw offlineError(repoId, revision, env);
  }
  const ctx = contextOf(opts, env);
  const info = await getRepoInfo(ctx, repoId, revision);
  const label = `${repoId}@${revision}`;
  const wanted = chooseModelFiles(new Set(info.siblings), label);
  // Resolve every file at the listed commit, so a push during the download cannot mix two commits.
  const at = isCommitHash(info.sha) ? info.sha : revision;
  const metas: HubFileMetadata[] = [];
  for (const f of wanted) metas.push(await getFileMetadata(ctx, repoId, at, f));
  const commit = metas[0].commit;
  const repoDir = repoDirOf(env.hubCache, repoId);
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
  for (const f of TOKENIZER_FILES) if (!info.siblings.includes(f)) await writeNoExist(repoDir, commit, f);
  await writeRef(repoDir, revision, commit);
  const dir = snapshotDirOf(repoDir, commit);
  return { dir, source: 'download', files: filesOf(dir, wanted), repoId, revision, commit };
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
  if (env.offline) throw offlineError(parsed.repoId, parsed.revision, env);
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
  return repos.map((r) => {
    const complete = r.snapshots.filter((s) => {
      try {
        chooseModelFiles(new Set(s.files), r.repoId);
        return true;
      } catch {
        return false;
      }
    });
    const main = complete.find((s) => s.commit === r.refs.main);
    const loadableDir = (main ?? complete[complete.length - 1])?.dir;
    const known = KNOWN_MODELS.find((m) => m.id === r.repoId || m.repoId === r.repoId);
    return { ...r, loadableDir, known };
  });
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
