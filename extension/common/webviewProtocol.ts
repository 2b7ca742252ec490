/**
 * The host <-> webview protocol of the attention panel and the sidebar view, over `RpcEndpoint` (common/rpc.ts).
 *
 * Handshake: the webview emits `ready` once its listeners are in place; the host then replays its state (`run`,
 * `selection`, `cursor`, …), so a webview that was hidden and recreated, or that loaded after the first run, shows
 * the same thing. Binary data (triangles, thumbnails, rows) is asked for on demand and crosses as typed arrays
 * (`.slice()` copies, never views of a bigger buffer); the whole [L, H, T, T] never crosses.
 */
import type { AblationMode, AblationSummary, AttentionMode, HeadRankingSummary, HeadRef, HeadScoresAnswer, HeadSelector, HeadTriangle, Prediction, QkBreakdown, Source, Thumbnails } from './engineProtocol';
import type { Token } from './tokens';

/** A run as the views show it: the tokens of the window and per-token surprisal. */
export interface RunView {
  version: number;
  model: { ref: string; nLayer: number; nHead: number };
  /** A short name for the document (file name), for titles and export file names. */
  documentLabel: string;
  tokens: Token[];
  window: { start: number; end: number };
  totalTokens: number;
  /** Bits per token, NaN for the first. */
  surprisal: Float32Array;
  /** The document changed since this run was made. */
  stale: boolean;
}

/** Head-finder results per head, keyed `"layer.head"` (e.g. `"5.1": ["induction"]`); drawn as badges. */
export type HeadBadges = Record<string, string[]>;

/** The head finder's answer for one run: per-role scores [L * H] and the badges they earn. */
export type HeadFinderView = HeadScoresAnswer & { version: number };

export type SaveKind = 'png' | 'svg' | 'json';

/** An ablation of the run `version`: its surprisal arrays are index-aligned with that run's tokens. */
export type AblationView = AblationSummary & { version: number };

/** "Which heads matter here" for the run `version`. */
export type RankingView = HeadRankingSummary & { version: number };

// ---------------------------------------------------------------- panel

/** Requests the panel webview makes and the host serves. */
export type PanelHostRequests = {
  headTriangle: [{ version: number; layer: number; head: number }, HeadTriangle];
  thumbnails: [{ version: number; size: number }, Thumbnails];
  predictions: [{ version: number; index: number; k: number }, Prediction[]];
  /** The host shows a save dialog and writes the file; `saved: false` when the user cancelled. */
  save: [{ kind: SaveKind; suggestedName: string; data: Uint8Array | string }, { saved: boolean; path?: string }];
  /** ‖v_j·W_O^h‖ for every token j of the run [T]: the webview weighs a head's map by it in value-weighted mode. */
  valueNorms: [{ version: number; layer: number; head: number }, Float32Array];
  /** Query `index` of one head taken apart (q, keys, scores before/after softmax, value norms). */
  qk: [{ version: number; layer: number; head: number; index: number }, QkBreakdown];
  /** Re-runs the run's text with heads removed; the result is also sent as an `ablation` event (editor colours too). */
  ablate: [{ version: number; heads: HeadRef[]; mode: AblationMode; at?: number }, AblationView];
  /** Ablates every head alone; progress comes as `rankProgress` events. Cancel with the request's signal. */
  rankHeads: [{ version: number; mode: AblationMode }, RankingView];
};

/** Events the host sends to the panel. */
export type PanelHostEvents = {
  run: RunView;
  selection: HeadSelector;
  /** The editor cursor's token in the current run (undefined: outside the window). */
  cursor: { index: number | undefined };
  stale: { version: number; stale: boolean };
  /** Head-finder scores and badges of the current run (sent once they are computed). */
  heads: HeadFinderView;
  /** Nothing to show (no run yet, or the engine failed): a message and a hint. */
  empty: { message: string; hint?: string };
  /** What attention weights mean everywhere (setting `headlight.attentionMode`). */
  attentionMode: { mode: AttentionMode };
  /** The latest ablation (from the panel or the `headlight.ablateHeads` command); `undefined`: cleared. */
  ablation: { result: AblationView | undefined };
  /** Progress of a head ranking in flight (from the panel or the `headlight.rankHeads` command). */
  rankProgress: { version: number; done: number; total: number };
  /** A ranking finished (from either place). */
  ranking: RankingView;
};

/** Events the panel sends to the host. */
export type PanelWebviewEvents = {
  ready: Record<string, never>;
  select: HeadSelector;
  /** The user picked a token in the panel: move the editor's cursor there. */
  revealToken: { index: number };
  /** The user flipped the attention / value-weighted toggle (the host writes the setting). */
  setAttentionMode: { mode: AttentionMode };
  /** Remove the ablation's colours from the panel and the editor. */
  clearAblation: Record<string, never>;
};

// ---------------------------------------------------------------- sidebar

/** What the sidebar shows for the cursor's token. */
export interface SidebarFocus {
  version: number;
  index: number;
  /**
   * [L * H], per head: the largest weight this token puts on any token other than the first (the attention sink).
   * See extension/engine/analyses/cursorSummary.ts for why this metric.
   */
  peak: Float32Array;
  /** [L * H], per head: the token index that gets `peak`. */
  peakIndex: Int32Array;
  /** [L * H], per head: the weight on the first token (the sink), shown in the tooltip. */
  sink: Float32Array;
  /** The selected head's row: weights of this token over tokens 0..index. */
  sel: HeadSelector;
  /** What `row` and `topSources` weigh: attention probabilities or value-weighted attention. */
  mode: AttentionMode;
  row: Float32Array;
  topSources: Source[];
}

export type SidebarHostRequests = Record<string, never>;

export type SidebarHostEvents = {
  run: RunView;
  selection: HeadSelector;
  focus: SidebarFocus;
  /** No token to show (cursor outside the window, or no run). */
  blur: { message: string };
  stale: { version: number; stale: boolean };
  heads: HeadFinderView;
};

export type SidebarWebviewEvents = {
  ready: Record<string, never>;
  select: HeadSelector;
  revealToken: { index: number };
};

/** Key of a head in `HeadBadges` and in lookups. */
export function headKey(layer: number, head: number): string {
  return `${layer}.${head}`;
}
