/** Latency figures the host measures as it works (read by the in-host tests and the log). One object per activation. */
export interface HostStats {
  activationMs: number;
  /** Hover: from the request to the Markdown being ready (one tokenInfo round trip). */
  lastHoverMs: number | undefined;
  /** Cursor highlight: from the cursor-token change to setDecorations. */
  lastHighlightMs: number | undefined;
  /** Last run as the host saw it (includes the IPC), and as the engine measured it. */
  lastRunMs: number | undefined;
  highlightUpdates: number;
}

export function newHostStats(): HostStats {
  return { activationMs: 0, lastHoverMs: undefined, lastHighlightMs: undefined, lastRunMs: undefined, highlightUpdates: 0 };
}
