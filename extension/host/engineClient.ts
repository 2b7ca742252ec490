/**
 * Why this file is long: one process's lifecycle (lazy start, crash restart with backoff, the retry of idempotent
 * requests on the restarted process, the state it replays, events) is one job whose parts share the connection state.
 *
 * The host's side of the engine process: starts `engineServer.js` lazily as a child Node process, talks to it over
 * RpcEndpoint (ids, errors, cancellation), restarts it after a crash with backoff, and stops it on dispose. No
 * `vscode` import: plain-Node tests drive it directly.
 *
 * A crash costs the host nothing it asked for: a new process gets the session's state again (the model, then
 * `keepQueries`), the latest run is made again the first time a query names it, and a request whose process died
 * before answering is asked once more on the restarted one (see RETRIED). Run versions are the client's own
 * numbers, so a version from a dead process can never name a run of its successor.
 *
 * The extension host's main thread never does model work: everything heavy happens in the child.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { RpcEndpoint, type Channel } from '../common/rpc';
import { HeadlightError } from '../common/errors';
import type { AnalyzeParams, EngineEvents, EngineRequests, ModelInfo, RunSummary } from '../common/engineProtocol';

export type LogLevel = 'info' | 'warn' | 'error';

export interface LoadParams {
  ref: string;
  dir: string;
  threads?: number;
  /** headlight.window.tokens: the engine's cache and store are sized for at most this many tokens. */
  maxWindow?: number;
  /** headlight.memoryBudgetMB (0: 80% of the available memory). */
  memoryBudgetMB?: number;
}

export interface EngineClientOptions {
  /** Entry of the engine process: `dist/engineServer.js`, or `extension/engine/server.ts` with tsx in tests. */
  serverPath: string;
  /** Node options for the child, e.g. `['--import', 'tsx']` in tests. */
  execArgv?: string[];
  /** Extra environment for the child (merged over process.env and the allocator settings). */
  env?: Record<string, string | undefined>;
  /** Delays before the 1st, 2nd, 3rd… restart in a row (ms); the last repeats. */
  restartBackoffMs?: readonly number[];
  /** This many crashes within `crashWindowMs` stop automatic restarts (the next request tries again). */
  crashLimit?: number;
  crashWindowMs?: number;
  log?: (level: LogLevel, message: string) => void;
  now?: () => number;
}

export interface CrashInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Crashes within the crash window, this one included. */
  recentCrashes: number;
  /** True when automatic restarts stopped (crash limit reached). */
  gaveUp: boolean;
}

/** The environment the engine process runs with (see notes/onnxruntime-node.md for the allocator settings). */
export function engineEnv(base: Record<string, string | undefined>, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    ...base,
    ELECTRON_RUN_AS_NODE: '1',
    GLIBC_TUNABLES: 'glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295',
    ...extra,
  };
}

type Rpc = RpcEndpoint<EngineRequests, Record<string, never>, Record<string, never>, EngineEvents>;
type Method = keyof EngineRequests & string;

/**
 * Whether a request whose engine process died before answering is asked once more on the restarted process. Every
 * request here is a pure read or a recomputation from its parameters plus the state the client restores (model,
 * `keepQueries`, the latest run), so a second try gives the answer the first would have given. A cancelled request
 * is never asked again. Declared for every request, so that a new one needs a decision.
 */
const RETRIED: Record<Method, boolean> = {
  load: true,
  analyze: true,
  row: true,
  column: true,
  topSources: true,
  tokenInfo: true,
  predictions: true,
  headTriangle: true,
  thumbnails: true,
  headScores: true,
  cursorSummary: true,
  ping: true,
  qk: true,
  valueNorms: true,
  keepQueries: true,
  ablate: true,
  // Also pure, but one ablated run per head (minutes on GPT-2) whose progress the user watched: a crash inside it is
  // most likely the same limit again, and running it twice would hide that. The error says to try again.
  rankHeads: false,
  lensAt: true,
  lensGrid: true,
  attribute: true,
  score: true,
  rollout: true,
  patch: false, // hundreds of runs: after a crash the user asks again rather than wait twice
};

/** Requests whose latest parameters are engine state a new process must be given again (after the model load). */
const SESSION_STATE: readonly Method[] = ['keepQueries'];

interface Connection {
  child: ChildProcess;
  rpc: Rpc;
  /** Resolves once the process runs, the model (if any) is loaded and the session's state replayed. */
  ready: Promise<void>;
  /** Set by stop(): the exit that follows is expected. */
  stopped: boolean;
  /** Set when the process exited, expectedly or not. */
  exited: boolean;
  /** Set when the process exited unexpectedly (a crash). */
  crashed: boolean;
  /** Resolves when the host has seen the process exit. */
  exit: Promise<void>;
  /** The run this process holds: the client's version for it, and the process's own. */
  run?: { version: number; engine: number };
  /** `analyze` requests in flight on this process. */
  analyses: number;
  /** The latest run being made again on this process (it was made on a process that died). */
  restoring?: Promise<number>;
}

export class EngineClient {
  private conn: Connection | undefined;
  private model: LoadParams | undefined;
  private modelInfo: ModelInfo | undefined;
  /** Latest parameters of each SESSION_STATE request, replayed on every new process after the model load. */
  private readonly session = new Map<Method, unknown>();
  /** The client's run versions: one per `analyze` answer, never reused across processes. */
  private versions = 0;
  /** The latest run handed out, and how to make it again on a new process. */
  private lastRun: { version: number; params: AnalyzeParams } | undefined;
  private crashes: number[] = [];
  private restartTimer: ReturnType<typeof setTimeout> | undefined;
  /** Resolves when the scheduled restart happened or was called off (retries wait for it, honouring the backoff). */
  private restartPending: { promise: Promise<void>; resolve: () => void } | undefined;
  private gaveUp = false;
  private disposed = false;
  private latestAnalyze: AbortController | undefined;
  private readonly crashListeners = new Set<(c: CrashInfo) => void>();
  private readonly startListeners = new Set<(pid: number) => void>();
  private readonly progressListeners = new Set<(p: EngineEvents['rankProgress']) => void>();
  private readonly patchListeners = new Set<(p: EngineEvents['patchProgress']) => void>();
  private readonly opts: Required<Omit<EngineClientOptions, 'env' | 'execArgv'>> & Pick<EngineClientOptions, 'env' | 'execArgv'>;

  constructor(options: EngineClientOptions) {
    this.opts = {
      restartBackoffMs: [250, 1000, 4000],
      crashLimit: 3,
      crashWindowMs: 60_000,
      log: () => {},
      now: () => Date.now(),
      ...options,
    };
  }

  /** Fired when the engine process dies unexpectedly. */
  onDidCrash(listener: (c: CrashInfo) => void): { dispose(): void } {
    this.crashListeners.add(listener);
    return { dispose: () => this.crashListeners.delete(listener) };
  }

  /** Fired when an engine process has started (its pid). */
  onDidStart(listener: (pid: number) => void): { dispose(): void } {
    this.startListeners.add(listener);
    return { dispose: () => this.startListeners.delete(listener) };
  }

  /** Fired for every `rankProgress` event of the engine (a head ranking in flight; match its `progressId`). */
  onDidRankProgress(listener: (p: EngineEvents['rankProgress']) => void): { dispose(): void } {
    this.progressListeners.add(listener);
    return { dispose: () => this.progressListeners.delete(listener) };
  }

  /** Fired for every `patchProgress` event of the engine (activation patching in flight; match its `progressId`). */
  onDidPatchProgress(listener: (p: EngineEvents['patchProgress']) => void): { dispose(): void } {
    this.patchListeners.add(listener);
    return { dispose: () => this.patchListeners.delete(listener) };
  }

  /** The running process's id, if one runs. */
  get pid(): number | undefined {
    return this.conn && !this.conn.exited ? this.conn.child.pid : undefined;
  }

  /** The loaded model, if any. */
  get loadedModel(): ModelInfo | undefined {
    return this.modelInfo;
  }

  /**
   * Loads a model (starting the engine if needed); it is re-loaded after every restart. Requests made meanwhile
   * wait for it.
   */
  async load(params: LoadParams, signal?: AbortSignal): Promise<ModelInfo> {
    this.model = params;
    this.modelInfo = undefined;
    for (let retried = false; ; retried = true) {
      const { conn, started } = await this.connect(retried);
      // A process started just now loads this.model by itself; otherwise load it on the running one.
      const loading = started ? conn.ready.then(() => this.modelInfoOf(params)) : conn.ready.catch(() => {}).then(() => this.setUp(conn, params, signal));
      if (!started) {
        conn.ready = loading.then(() => {});
        conn.ready.catch(() => {}); // observed by whoever awaits it
      }
      try {
        return await loading;
      } catch (err) {
        if (!(await this.died(conn, err))) throw err;
        this.throwUnlessRetried(conn, 'load', signal, retried);
      }
    }
  }

  /**
   * Analyses text; a newer `analyze` cancels this one (it rejects with a `cancelled` error). The latest wins.
   */
  async analyze(params: AnalyzeParams, signal?: AbortSignal): Promise<RunSummary> {
    this.latestAnalyze?.abort();
    const controller = new AbortController();
    this.latestAnalyze = controller;
    const onAbort = () => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) controller.abort();
    try {
      return await this.request('analyze', params, controller.signal);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (this.latestAnalyze === controller) this.latestAnalyze = undefined;
    }
  }

  /**
   * Any request of the engine protocol. Starts the engine (and re-loads the model) if needed. When the process dies
   * before answering, a request marked in RETRIED is asked once more on the restarted process.
   */
  async request<K extends Method>(method: K, params: EngineRequests[K][0], signal?: AbortSignal): Promise<EngineRequests[K][1]> {
    if (SESSION_STATE.includes(method)) this.session.set(method, params);
    for (let retried = false; ; retried = true) {
      if (signal?.aborted) throw cancelled(method);
      const { conn } = await this.connect(retried);
      try {
        await conn.ready;
        if (!this.model) throw new HeadlightError('no-model', 'No model is loaded in the engine.', 'Pick one with Headlight: Select Model.');
        if (signal?.aborted) throw cancelled(method);
        return await this.ask(conn, method, params, signal);
      } catch (err) {
        if (!(await this.died(conn, err))) throw err;
        this.throwUnlessRetried(conn, method, signal, retried);
        this.opts.log('warn', `engine: asking ${method} again on the restarted engine process`);
      }
    }
  }

  /** Stops the engine process; pending requests reject. The client can start again afterwards unless disposed. */
  stop(): void {
    this.cancelRestart();
    const conn = this.conn;
    this.conn = undefined;
    if (!conn) return;
    conn.stopped = true; // an exit from now on is expected
    conn.rpc.dispose('The engine was stopped.');
    if (conn.child.connected) conn.child.disconnect(); // the server exits on disconnect
    const kill = setTimeout(() => conn.child.kill('SIGKILL'), 2000);
    kill.unref?.();
    conn.child.once('exit', () => clearTimeout(kill));
  }

  dispose(): void {
    this.disposed = true;
    this.latestAnalyze?.abort();
    this.stop();
    this.crashListeners.clear();
    this.startListeners.clear();
    this.progressListeners.clear();
  }

  // ------------------------------------------------------------------ requests on one process

  /** Sends one request to one process, in the client's run versions. */
  private async ask<K extends Method>(conn: Connection, method: K, params: EngineRequests[K][0], signal?: AbortSignal): Promise<EngineRequests[K][1]> {
    if (method === 'analyze') return (await this.runAnalyze(conn, params as AnalyzeParams, signal)) as EngineRequests[K][1];
    const version = runVersionOf(params);
    if (version === undefined) return conn.rpc.request(method, params, signal);
    const engine = await this.engineVersion(conn, version, method);
    return conn.rpc.request(method, { ...(params as object), version: engine } as EngineRequests[K][0], signal);
  }

  private async runAnalyze(conn: Connection, params: AnalyzeParams, signal?: AbortSignal): Promise<RunSummary> {
    conn.analyses++;
    try {
      const summary = await conn.rpc.request('analyze', params, signal);
      const version = ++this.versions;
      conn.run = { version, engine: summary.version };
      this.lastRun = { version, params };
      return { ...summary, version };
    } finally {
      conn.analyses--;
    }
  }

  /**
   * The process's version of the client's run `version`. The latest run, made on a process that has since died, is
   * made again here first (once, shared by every query that names it), unless this process already has a run of
   * its own or is making one.
   */
  private async engineVersion(conn: Connection, version: number, method: string): Promise<number> {
    if (conn.run?.version === version) return conn.run.engine;
    const last = this.lastRun;
    if (!last) throw new HeadlightError('no-run', 'Nothing has been analysed yet.', 'Run Headlight: Explain Attention.');
    if (last.version === version && !conn.run && (conn.analyses === 0 || conn.restoring)) {
      conn.restoring ??= this.restoreRun(conn, last);
      return conn.restoring;
    }
    throw new HeadlightError('stale-run', `Run ${version} was replaced by run ${conn.run?.version ?? last.version}; ${method} asked about the old one.`, 'Ask again about the latest run.');
  }

  private async restoreRun(conn: Connection, last: { version: number; params: AnalyzeParams }): Promise<number> {
    this.opts.log('info', `engine: making run ${last.version} again on the restarted engine process`);
    conn.analyses++;
    try {
      const summary = await conn.rpc.request('analyze', { ...last.params, incremental: false });
      conn.run ??= { version: last.version, engine: summary.version };
      return summary.version;
    } finally {
      conn.analyses--;
      conn.restoring = undefined;
    }
  }

  /** Loads the model on a process and gives it the session's state again. */
  private async setUp(conn: Connection, model: LoadParams, signal?: AbortSignal): Promise<ModelInfo> {
    const info = await conn.rpc.request('load', model, signal);
    if (this.model === model) this.modelInfo = info;
    for (const [method, params] of this.session) await conn.rpc.request(method, params as never);
    return info;
  }

  private modelInfoOf(params: LoadParams): ModelInfo {
    if (this.model !== params || !this.modelInfo) throw new HeadlightError('cancelled', `Loading ${params.ref} was superseded by another model.`);
    return this.modelInfo;
  }

  /**
   * After a request failed on `conn`: true when it failed because the process died (crashed) before answering. A
   * process that can no longer be written to is dying: wait until the host has seen its exit.
   */
  private async died(conn: Connection, err: unknown): Promise<boolean> {
    if (this.disposed || conn.stopped) return false;
    if (!(err instanceof HeadlightError) || err.code !== 'disposed') return false;
    if (!conn.exited) {
      if (!conn.child.connected) {
        const kill = setTimeout(() => conn.child.kill('SIGKILL'), 2000); // disconnected but still running
        kill.unref?.();
        void conn.exit.then(() => clearTimeout(kill));
      }
      await conn.exit;
    }
    return conn.crashed && !this.disposed;
  }

  /** A request whose process died: throws what the user should read, unless it is to be asked again. */
  private throwUnlessRetried(conn: Connection, method: Method, signal: AbortSignal | undefined, retried: boolean): void {
    if (signal?.aborted) throw cancelled(method);
    if (!retried && RETRIED[method]) return;
    const again = retried ? ', twice (it was asked again on the restarted process)' : '';
    const hint = this.gaveUp
      ? `It stopped ${this.crashes.length} times within ${Math.round(this.opts.crashWindowMs / 1000)} s, so it is not restarted by itself: the next request starts it again; Headlight's log says why it stopped.`
      : 'It restarts by itself; try again.';
    throw new HeadlightError('engine-crashed', `The engine process (pid ${conn.child.pid}) stopped while answering ${method}${again}.`, hint);
  }

  // ------------------------------------------------------------------ process lifecycle

  /**
   * The live connection, started on demand. A user's request starts the engine at once, even after the crash
   * limit stopped automatic restarts. A retry (`retried`) waits for the scheduled restart (its backoff), starts the
   * engine only when none is scheduled, and leaves the crash limit's state alone.
   */
  private async connect(retried: boolean): Promise<{ conn: Connection; started: boolean }> {
    if (this.disposed) throw new HeadlightError('disposed', 'The engine client was disposed.');
    if (!this.conn && retried && this.restartPending) {
      this.restartTimer?.ref?.(); // someone waits for it now
      await this.restartPending.promise;
    }
    if (this.disposed) throw new HeadlightError('disposed', 'The engine client was disposed.');
    if (this.conn) return { conn: this.conn, started: false };
    this.cancelRestart();
    if (!retried) this.gaveUp = false; // an explicit request after giving up tries again from scratch
    return { conn: this.start(), started: true };
  }

  private cancelRestart(): void {
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.restartPending?.resolve();
    this.restartPending = undefined;
  }

  private start(): Connection {
    const { serverPath, execArgv, env, log } = this.opts;
    const child = fork(serverPath, [], {
      execPath: process.execPath,
      execArgv: execArgv ?? [],
      serialization: 'advanced',
      env: engineEnv(process.env, env),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const channel: Channel = {
      send: (m) => {
        if (!child.connected) throw new Error('the engine process is not connected');
        child.send(m as never, (err) => {
          if (err) log('warn', `engine: send failed: ${err.message}`);
        });
      },
      onMessage: (listener) => {
        child.on('message', listener);
        return () => child.off('message', listener);
      },
    };
    const rpc: Rpc = new RpcEndpoint(channel, {}, {
      log: ({ level, message }) => log(level, `engine: ${message}`),
      rankProgress: (p) => {
        for (const l of this.progressListeners) l(p);
      },
      patchProgress: (p) => {
        for (const l of this.patchListeners) l(p);
      },
    });
    let exited!: () => void;
    const exit = new Promise<void>((resolve) => (exited = resolve));
    const conn: Connection = { child, rpc, ready: Promise.resolve(), stopped: false, exited: false, crashed: false, exit, analyses: 0 };
    this.conn = conn;
    pipeLines(child.stdout, (line) => log('info', `engine: ${line}`));
    pipeLines(child.stderr, (line) => log('warn', `engine: ${line}`));
    child.on('error', (err) => log('error', `engine process error: ${err.message}`));
    child.once('exit', (code, signal) => {
      this.onExit(conn, code, signal);
      exited();
    });
    log('info', `engine process ${child.pid} started`);
    if (child.pid !== undefined) for (const l of this.startListeners) l(child.pid);
    const model = this.model;
    if (model) {
      conn.ready = this.setUp(conn, model).then(
        () => {},
        (err: unknown) => {
          log('error', `engine: re-loading ${model.ref} failed: ${(err as Error).message}`);
          throw err;
        },
      );
      conn.ready.catch(() => {}); // observed by whoever awaits it
    }
    return conn;
  }

  private onExit(conn: Connection, code: number | null, signal: NodeJS.Signals | null): void {
    conn.exited = true;
    if (this.conn === conn) this.conn = undefined;
    if (conn.stopped || this.disposed) {
      conn.rpc.dispose('The engine was stopped.');
      return;
    }
    conn.crashed = true;
    conn.rpc.dispose(`The engine process exited (code ${code}, signal ${signal}).`);
    const now = this.opts.now();
    this.crashes = this.crashes.filter((t) => now - t < this.opts.crashWindowMs);
    this.crashes.push(now);
    const recent = this.crashes.length;
    this.gaveUp = recent >= this.opts.crashLimit;
    this.opts.log('error', `engine process ${conn.child.pid} exited unexpectedly (code ${code}, signal ${signal}); ${recent} crash(es) in the last minute`);
    for (const l of this.crashListeners) l({ code, signal, recentCrashes: recent, gaveUp: this.gaveUp });
    if (this.gaveUp || this.conn) return;
    const backoff = this.opts.restartBackoffMs;
    const delay = backoff[Math.min(recent - 1, backoff.length - 1)] ?? 0;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.cancelRestart();
    this.restartPending = { promise, resolve };
    this.restartTimer = setTimeout(() => {
      const pending = this.restartPending;
      this.restartTimer = undefined;
      this.restartPending = undefined;
      if (!this.conn && !this.disposed) this.start();
      pending?.resolve();
    }, delay);
    this.restartTimer.unref?.();
  }
}

function cancelled(method: string): HeadlightError {
  return new HeadlightError('cancelled', `${method} was cancelled.`);
}

/** The run version a query names, if it names one. */
function runVersionOf(params: unknown): number | undefined {
  const v = (params as { version?: unknown } | null)?.version;
  return typeof v === 'number' ? v : undefined;
}

function pipeLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  if (!stream) return;
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trimEnd();
      buf = buf.slice(nl + 1);
      if (line) onLine(line);
    }
  });
}
