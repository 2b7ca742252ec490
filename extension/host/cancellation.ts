/** VS Code CancellationTokens become AbortSignals at the host's boundary (the engine side knows only signals). */

/** The parts of vscode.CancellationToken this needs (structural, so plain-Node tests can pass their own). */
export interface CancellationTokenLike {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => void): { dispose(): void };
}

export function toAbortSignal(token: CancellationTokenLike | undefined): AbortSignal | undefined {
  if (!token) return undefined;
  const controller = new AbortController();
  if (token.isCancellationRequested) {
    controller.abort();
    return controller.signal;
  }
  const sub = token.onCancellationRequested(() => {
    sub.dispose();
    controller.abort();
  });
  return controller.signal;
}

/** Errors a view may meet in normal use and should drop silently: superseded, stale, or the engine restarting. */
export function isBenign(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === 'cancelled' || code === 'stale-run' || code === 'no-run' || code === 'engine-crashed' || code === 'disposed';
}
