/**
 * One small typed RPC for every boundary (host <-> engine process, host <-> webview). Requests carry ids and get
 * exactly one answer, a result or a serialized error; a cancel message aborts the serving side's AbortSignal;
 * events are fire-and-forget. Disposing rejects every pending request.
 *
 * A protocol is a pair of maps: `Requests` (name -> [params, result]) and `Events` (name -> payload).
 */
import { fromErrorData, HeadlightError, toErrorData, type ErrorData } from './errors';

export type RequestMap = Record<string, [unknown, unknown]>;
export type EventMap = Record<string, unknown>;

/** A transport: send a structured-cloneable message; subscribe to incoming ones. Returns an unsubscribe. */
export interface Channel {
  send(message: unknown): void;
  onMessage(listener: (message: unknown) => void): () => void;
}

type Wire =
  | { rpc: 'req'; id: number; method: string; params: unknown }
  | { rpc: 'res'; id: number; result?: unknown; error?: ErrorData }
  | { rpc: 'cancel'; id: number }
  | { rpc: 'event'; name: string; payload: unknown };

export type Handlers<R extends RequestMap> = {
  [K in keyof R]?: (params: R[K][0], signal: AbortSignal) => Promise<R[K][1]> | R[K][1];
};

export type EventListeners<E extends EventMap> = { [K in keyof E]?: (payload: E[K]) => void };

/**
 * One end of a connection. `Out`/`OutEvents` are what this end asks and emits; `In`/`InEvents` what it serves and
 * hears.
 */
export class RpcEndpoint<Out extends RequestMap, In extends RequestMap, OutEvents extends EventMap = EventMap, InEvents extends EventMap = EventMap> {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly serving = new Map<number, AbortController>();
  private readonly unsubscribe: () => void;
  private disposed = false;

  constructor(
    private readonly channel: Channel,
    private readonly handlers: Handlers<In> = {},
    private readonly listeners: EventListeners<InEvents> = {},
  ) {
    this.unsubscribe = channel.onMessage((m) => this.receive(m));
  }

  /** Sends a request; the signal sends a cancel and rejects with a `cancelled` error. */
  request<K extends keyof Out & string>(method: K, params: Out[K][0], signal?: AbortSignal): Promise<Out[K][1]> {
    if (this.disposed) return Promise.reject(new HeadlightError('disposed', `Cannot send ${method}: the connection is closed.`));
    if (signal?.aborted) return Promise.reject(new HeadlightError('cancelled', `${method} was cancelled.`));
    const id = this.nextId++;
    return new Promise<Out[K][1]>((resolve, reject) => {
      const onAbort = () => {
        if (!this.pending.has(id)) return;
        this.pending.delete(id);
        this.post({ rpc: 'cancel', id });
        reject(new HeadlightError('cancelled', `${method} was cancelled.`));
      };
      this.pending.set(id, {
        resolve: (v) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(v as Out[K][1]);
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.post({ rpc: 'req', id, method, params });
    });
  }

  emit<K extends keyof OutEvents & string>(name: K, payload: OutEvents[K]): void {
    if (!this.disposed) this.post({ rpc: 'event', name, payload });
  }

  /** Number of requests waiting for an answer. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Rejects every pending request with `reason` and stops listening. */
  dispose(reason = 'The connection was closed.'): void {
    if (this.disposed) return;
    this.disposed = true;
    this.unsubscribe();
    for (const [, p] of this.pending) p.reject(new HeadlightError('disposed', reason));
    this.pending.clear();
    for (const [, c] of this.serving) c.abort();
    this.serving.clear();
  }

  private post(message: Wire): void {
    try {
      this.channel.send(message);
    } catch (err) {
      if (message.rpc === 'req') {
        const p = this.pending.get(message.id);
        this.pending.delete(message.id);
        p?.reject(new HeadlightError('disposed', `Cannot send ${message.method}: ${(err as Error).message}`));
      }
    }
  }

  private receive(raw: unknown): void {
    if (!raw || typeof raw !== 'object' || !('rpc' in raw)) return;
    const m = raw as Wire;
    switch (m.rpc) {
      case 'res': {
        const p = this.pending.get(m.id);
        if (!p) return; // cancelled or unknown
        this.pending.delete(m.id);
        if (m.error) p.reject(fromErrorData(m.error));
        else p.resolve(m.result);
        return;
      }
      case 'cancel':
        this.serving.get(m.id)?.abort();
        return;
      case 'event':
        (this.listeners[m.name as keyof InEvents] as ((p: unknown) => void) | undefined)?.(m.payload);
        return;
      case 'req':
        void this.serve(m.id, m.method, m.params);
        return;
    }
  }

  private async serve(id: number, method: string, params: unknown): Promise<void> {
    const handler = this.handlers[method as keyof In] as ((p: unknown, s: AbortSignal) => unknown) | undefined;
    if (!handler) {
      this.post({ rpc: 'res', id, error: { code: 'no-method', message: `Unknown request "${method}".` } });
      return;
    }
    const controller = new AbortController();
    this.serving.set(id, controller);
    try {
      const result = await handler(params, controller.signal);
      if (!this.disposed) this.post({ rpc: 'res', id, result });
    } catch (err) {
      if (!this.disposed) this.post({ rpc: 'res', id, error: toErrorData(err) });
    } finally {
      this.serving.delete(id);
    }
  }
}
