/**
 * The host's side of the engine process: starts `engineServer.js` lazily as a child Node process, talks to it over
 * RpcEndpoint (ids, errors, cancellation), restarts it after a crash with backoff, re-loads the model after a
 * restart, and stops it on dispose. No `vscode` import: plain-Node tests drive it directly.
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

interface Connection {
  child: ChildProcess;
  rpc: Rpc;
  /** Resolves once the process runs and the model (if any) is loaded. */
  ready: Promise<void>;
  exited: boolean;
}

export class EngineClient {
  private conn: Connection | undefined;
  private model: LoadParams | undefined;
  private modelInfo: ModelInfo | undefined;
  private crashes: number[] = [];
  private restartTimer: ReturnType<typeof setTimeout> | undefined;
  private gaveUp = false;
  private disposed = false;
  private latestAnalyze: AbortController | undefined;
  /** The connection whose process crashed last (its pending requests reject as `engine-crashed`). */
  private lastCrash: Connection | undefined;
  private readonly crashListeners = new Set<(c: CrashInfo) => void>();
  private readonly startListeners = new Set<(pid: number) => void>();
  private readonly progressListeners = new Set<(p: EngineEvents['rankProgress']) => void>();
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
    const conn = await this.connection(false);
    const loading = conn.ready.catch(() => {}).then(() => this.call(conn, 'load', params, signal));
    conn.ready = loading.then((info) => {
      if (this.model === params) this.modelInfo = info;
    });
    conn.ready.catch(() => {});
    return loading;
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

  /** Any request of the engine protocol. Starts the engine (and re-loads the model) if needed. */
  async request<K extends keyof EngineRequests & string>(method: K, params: EngineRequests[K][0], signal?: AbortSignal): Promise<EngineRequests[K][1]> {
    if (signal?.aborted) throw new HeadlightError('cancelled', `${method} was cancelled.`);
    const conn = await this.connection(true);
    if (signal?.aborted) throw new HeadlightError('cancelled', `${method} was cancelled.`);
    return this.call(conn, method, params, signal);
  }

  /** Stops the engine process; pending requests reject. The client can start again afterwards unless disposed. */
  stop(): void {
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const conn = this.conn;
    this.conn = undefined;
    if (!conn) return;
    conn.exited = true; // an exit from now on is expected
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

  // ------------------------------------------------------------------ process lifecycle

  private async call<K extends keyof EngineRequests & string>(conn: Connection, method: K, params: EngineRequests[K][0], signal?: AbortSignal): Promise<EngineRequests[K][1]> {
    try {
      return await conn.rpc.request(method, params, signal);
    } catch (err) {
      if (err instanceof HeadlightError && err.code === 'disposed' && conn.exited && this.conn !== conn && !this.disposed && this.lastCrash === conn) {
        throw new HeadlightError('engine-crashed', `The engine process stopped while answering ${method}.`, 'It restarts by itself; try again.');
      }
      throw err;
    }
  }

  /** The live connection, started on demand. `withModel`: wait for the model load too (and require a model). */
  private async connection(withModel: boolean): Promise<Connection> {
    if (this.disposed) throw new HeadlightError('disposed', 'The engine client was disposed.');
    if (!this.conn) {
      // An explicit request after giving up tries again from scratch.
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
      this.gaveUp = false;
      this.start();
    }
    const conn = this.conn!;
    if (withModel) {
      await conn.ready;
      if (!this.model) throw new HeadlightError('no-model', 'No model is loaded in the engine.', 'Pick one with Headlight: Select Model.');
    }
    return conn;
  }

  private start(): void {
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
    });
    const conn: Connection = { child, rpc, ready: Promise.resolve(), exited: false };
    this.conn = conn;
    pipeLines(child.stdout, (line) => log('info', `engine: ${line}`));
    pipeLines(child.stderr, (line) => log('warn', `engine: ${line}`));
    child.on('error', (err) => log('error', `engine process error: ${err.message}`));
    child.once('exit', (code, signal) => this.onExit(conn, code, signal));
    log('info', `engine process ${child.pid} started`);
    if (child.pid !== undefined) for (const l of this.startListeners) l(child.pid);
    const model = this.model;
    if (model) {
      conn.ready = this.call(conn, 'load', model).then(
        (info) => {
          if (this.model === model) this.modelInfo = info;
        },
        (err: unknown) => {
          log('error', `engine: re-loading ${model.ref} failed: ${(err as Error).message}`);
          throw err;
        },
      );
      conn.ready.catch(() => {}); // observed by whoever awaits it
    }
  }

  private onExit(conn: Connection, code: number | null, signal: NodeJS.Signals | null): void {
    const expected = conn.exited;
    conn.exited = true;
    if (this.conn === conn) this.conn = undefined;
    if (expected || this.disposed) {
      conn.rpc.dispose('The engine was stopped.');
      return;
    }
    this.lastCrash = conn;
    conn.rpc.dispose(`The engine process exited (code ${code}, signal ${signal}).`);
    const now = this.opts.now();
    this.crashes = this.crashes.filter((t) => now - t < this.opts.crashWindowMs);
    this.crashes.push(now);
    const recent = this.crashes.length;
    this.gaveUp = recent >= this.opts.crashLimit;
    this.opts.log('error', `engine process ${conn.child.pid} exited unexpectedly (code ${code}, signal ${signal}); ${recent} crash(es) in the last minute`);
    for (const l of this.crashListeners) l({ code, signal, recentCrashes: recent, gaveUp: this.gaveUp });
    if (this.gaveUp) return;
    const backoff = this.opts.restartBackoffMs;
    const delay = backoff[Math.min(recent - 1, backoff.length - 1)] ?? 0;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.conn && !this.disposed) this.start();
    }, delay);
    this.restartTimer.unref?.();
  }
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
