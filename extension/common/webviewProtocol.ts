/**
 * The host <-> webview protocol of the attention panel and the sidebar view, over `RpcEndpoint` (common/rpc.ts).
 *
 * Handshake: the webview emits `ready` once its listeners are in place; the host then replays its state (`run`,
 * `selection`, `cursor`, …), so a webview that was hidden and recreated, or that loaded after the first run, shows
 * the same thing. Binary data (triangles, thumbnails, rows) is asked for on demand and crosses as typed arrays
 * (`.slice()` copies, never views of a bigger buffer); the whole [L, H, T, T] never crosses.
 */
import type { Token } from './tokens';
import type { ChangedRegion } from './tokenAlign';
import type { AblateParams, AblationSummary, AttentionMode, CursorSummary, EngineRequests, HeadRankingSummary, HeadScoresAnswer, HeadSelector, ModelInfo, RunSummary, Source } from './engineProtocol';

/** Params of an engine request, to derive the webview's requests from (one declaration per shape). */
type EngineParams<K extends keyof EngineRequests> = EngineRequests[K][0];

/**
 * A run as the views show it: the engine's run (tokens of the window, per-token surprisal, the window within the
 * document) less its timings, with the model, the document's name and whether the document changed since.
 */
export interface RunView extends Pick<RunSummary, 'version' | 'tokens' | 'window' | 'totalTokens' | 'surprisal'> {
  model: Pick<ModelInfo, 'ref' | 'nLayer' | 'nHead'>;
  /** A short name for the document (file name), for titles and export file names. */
  documentLabel: string;
  /** The document changed since this run was made. */
  stale: boolean;
}

/** The head finder's answer for one run: per-role scores [L * H] and the badges they earn. */
export type HeadFinderView = HeadScoresAnswer & { version: number };

export type SaveKind = 'png' | 'svg' | 'json';

/** An ablation of the run `version`: its surprisal arrays are index-aligned with that run's tokens. */
export type AblationView = AblationSummary & { version: number };

/** "Which heads matter here" for the run `version`. */
export type RankingView = HeadRankingSummary & { version: number };

/** One side of a comparison as the panel shows it. */
export interface CompareSideView {
  label: string;
  tokens: Token[];
  /** Surprisal in bits per token ([T], NaN first). */
  surprisal: Float32Array;
}

/**
 * The current run (`version`) compared with another version of its text: both sides' surprisal, the alignment of
 * their tokens (a diff over token ids) and the changed regions. `aToB[i]`: the other side's token matched with
 * current token i, or −1.
 */
export interface CompareView {
  version: number;
  /** Where the other version came from ("saved on disk", "git HEAD", an editor, "selection replaced by …"). */
  sourceLabel: string;
  /** Bits: a matched token whose surprisal moved by more than this is marked (setting `headlight.compare.threshold`). */
  threshold: number;
  current: CompareSideView;
  other: CompareSideView;
  aToB: Int32Array;
  regions: ChangedRegion[];
}

/** A token of the patching metric: its id and text. */
export interface PatchToken {
  id: number;
  text: string;
}

/**
 * Activation patching between the two versions of a comparison (`Headlight: Patch Activations…`): the corrupted
 * version run with the clean one's activations, one cell per patched run. Cells stream in (`patchCell`); NaN =
 * not computed yet. The metric is logit(answer) − logit(wrong) at `position`; normalized (patched − corrupted) /
 * (clean − corrupted): `metricClean` and `metricCorrupt` arrive with the first progress event, before any cell.
 */
export interface PatchView {
  /** One patching request (cells of another id are dropped). */
  id: number;
  /** The current run this comparison belongs to. */
  version: number;
  clean: { label: string; tokens: Token[] };
  corrupt: { label: string; tokens: Token[] };
  position: number;
  answer: PatchToken;
  wrong: PatchToken;
  nLayer: number;
  nHead: number;
  /** Raw metric with the residual entering layer l at position t patched, [L, T]. */
  resid: Float32Array;
  /** Raw metric with head h of layer l patched at every position, [L, H]. */
  heads: Float32Array;
  done: number;
  total: number;
  state: 'running' | 'done' | 'cancelled' | 'failed';
  message?: string;
  metricClean?: number;
  metricCorrupt?: number;
  runs?: number;
  ms?: number;
}

// ---------------------------------------------------------------- panel

/** Requests the panel webview makes and the host serves. */
export type PanelHostRequests = {
  headTriangle: EngineRequests['headTriangle'];
  thumbnails: EngineRequests['thumbnails'];
  predictions: EngineRequests['predictions'];
  /** The host shows a save dialog and writes the file; `saved: false` when the user cancelled. */
  save: [{ kind: SaveKind; suggestedName: string; data: Uint8Array | string }, { saved: boolean; path?: string }];
  /** ‖v_j·W_O^h‖ for every token j of the run [T]: the webview weighs a head's map by it in value-weighted mode. */
  valueNorms: EngineRequests['valueNorms'];
  /** Query `index` of one head taken apart (q, keys, scores before/after softmax, value norms). */
  qk: EngineRequests['qk'];
  /**
   * Re-runs the run's text with heads removed (the host adds the text and window of run `version`); the result is
   * also sent as an `ablation` event (editor colours too).
   */
  ablate: [{ version: number } & Pick<AblateParams, 'heads' | 'mode' | 'at'>, AblationView];
  /** Ablates every head alone; progress comes as `rankProgress` events. Cancel with the request's signal. */
  rankHeads: [{ version: number } & Pick<EngineParams<'rankHeads'>, 'mode'>, RankingView];
  /** A row of the run's attention rollout (the text view's rollout mode). */
  rollout: [{ version: number; index: number }, Float32Array];
  /** The logit lens of one token at every layer, with its guesses' texts (a cell's top-5, the zoomed grid's text). */
  lensAt: EngineRequests['lensAt'];
  /** The lens of tokens start..end−1 (the Logit lens tab asks for the visible ones, a piece at a time). Cancellable. */
  lensGrid: [Omit<EngineParams<'lensGrid'>, 'progressId'>, EngineRequests['lensGrid'][1]];
  /** Direct logit attribution at one token (the cursor's), optionally against a contrast token. */
  attribute: EngineRequests['attribute'];
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
  /** The comparison of the current run with another version (`Compare With…`); `undefined`: none. */
  comparison: { view: CompareView | undefined };
  /** Activation patching: a new or finished request (`view`), or none (`undefined`). */
  patch: { view: PatchView | undefined };
  /** One finished cell of patching request `id` (raw metric), with the count done. */
  patchCell: { id: number; target: 'resid' | 'heads'; layer: number; index: number; value: number; done: number; total: number };
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
  /**
   * The Inside-a-head tab was shown (`open: true`) or left (another tab, the page hidden or unloaded). The engine
   * fetches a run's queries only while it is open; the tab asks for them through `qk`.
   */
  insideHead: { open: boolean };
  /** The Compare view's "Stop comparing". */
  stopComparing: Record<string, never>;
  /** The Patching view's Cancel. */
  cancelPatch: Record<string, never>;
  /** The Patching view's "Swap clean and corrupted": the same metric again with the sides swapped. */
  swapPatch: Record<string, never>;
};

// ---------------------------------------------------------------- sidebar

/**
 * What the sidebar shows for the cursor's token: the engine's per-head summary of its row (`peak`, `peakIndex`,
 * `sink`: the heatmap's cells and tooltips) plus the selected head's row and strongest sources.
 */
export interface SidebarFocus extends CursorSummary {
  version: number;
  /** The selected head's row: weights of this token over tokens 0..index. */
  sel: HeadSelector;
  /** What `row` and `topSources` weigh: attention probabilities or value-weighted attention. */
  mode: AttentionMode;
  row: Float32Array;
  topSources: Source[];
}

export type SidebarHostRequests = {
  /** Direct logit attribution at the cursor's token (the heatmap's second mode). */
  attribute: EngineRequests['attribute'];
};

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
