/** What the attention panel keeps across reloads (VS Code's webview state: a hidden panel's page is dropped). */
export interface PanelState {
  /** The head matrix's head. */
  layer: number;
  head: number;
  /** The selected query token. */
  token: number | undefined;
  /** Heads compared in the text view, [layer, head]. */
  compare: [number, number][];
  /** Text view: who attends to the token (its column) instead of where it looks (its row). */
  reverse: boolean;
  /** Text view: links weaker than this are not drawn. */
  threshold: number;
  dimSink: boolean;
  /** Text view: light what the token is built from (attention rollout) instead of one head's row. */
  rollout: boolean;
  /** Head matrix: log colour scale. */
  log: boolean;
  /** The selected tab: 0 head matrix, 1 text, 2 inside a head, 3 compare. */
  tab: number;
}

export const DEFAULTS: PanelState = { layer: 0, head: 0, token: undefined, compare: [], reverse: false, threshold: 0.01, dimSink: false, rollout: false, log: false, tab: 0 };
