/**
 * The host <-> engine-process protocol. Answers are small and on demand: a row, a head's triangle, thumbnails,
 * top-k lists — never the whole [L, H, T, T]. Typed arrays cross as binary (structured clone).
 */
import type { Token } from './tokens';

export interface ModelInfo {
  /** What the user picked: 'bundled', a repo id or a folder. */
  ref: string;
  dir: string;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  nPositions: number;
  vocabSize: number;
  fileDtype: string;
  loadMs: number;
}

/** One head, a layer's mean over heads, or the mean over all layers and heads. */
export type HeadSelector = { layer: number; head: number } | { layer: number; head: 'mean' } | { layer: 'mean'; head: 'mean' };

export interface Source {
  /** Token index within the window. */
  index: number;
  weight: number;
}

export interface Prediction {
  id: number;
  text: string;
  /** Natural-log probability. */
  logprob: number;
}

export interface RunSummary {
  /** Increases with every run; queries name the version they expect and fail with `stale-run` otherwise. */
  version: number;
  /** Tokens of the window; offsets in UTF-16 units of the text sent, plus `offsetBase`. */
  tokens: Token[];
  /** Token indices of the window within the text sent. */
  window: { start: number; end: number };
  totalTokens: number;
  /** Surprisal in bits per token (NaN for the first). */
  surprisal: Float32Array;
  stats: { computed: number; reused: number; graphMs: number; totalMs: number };
}

export interface AnalyzeParams {
  text: string;
  /** Added to every token offset (when `text` is a slice of a larger document). */
  offsetBase?: number;
  window?: { start: number; end: number };
  /** Reuse the cache of the previous run for the unchanged prefix. */
  incremental: boolean;
}

/** Everything a hover shows about one token, in one round trip. */
export interface TokenInfo {
  index: number;
  token: Token;
  /** The token's byte-level BPE piece as in the vocabulary (e.g. "Ġworld"). */
  piece: string;
  surprisal: number;
  /** What the model expected at this position (top-k, made at index−1). */
  predictions: Prediction[];
  sources: Source[];
}

export interface HeadTriangle {
  T: number;
  /** Rows 0..T−1 back to back, row i holding i+1 weights; fp16 bits or fp32. */
  data: Uint16Array | Float32Array;
}

export interface Thumbnails {
  nLayer: number;
  nHead: number;
  /** Pixels per side of each thumbnail. */
  size: number;
  /** [L, H, size, size] intensities 0..255 (max-pooled weights, square-root scaled). */
  data: Uint8Array;
}

export type EngineRequests = {
  load: [{ ref: string; dir: string; threads?: number }, ModelInfo];
  analyze: [AnalyzeParams, RunSummary];
  row: [{ version: number; sel: HeadSelector; index: number }, Float32Array];
  column: [{ version: number; sel: HeadSelector; index: number }, Float32Array];
  topSources: [{ version: number; sel: HeadSelector; index: number; k: number }, Source[]];
  tokenInfo: [{ version: number; sel: HeadSelector; index: number; k: number }, TokenInfo];
  predictions: [{ version: number; index: number; k: number }, Prediction[]];
  headTriangle: [{ version: number; layer: number; head: number }, HeadTriangle];
  thumbnails: [{ version: number; size: number }, Thumbnails];
  ping: [Record<string, never>, { pid: number; rssMb: number }];
};

export type EngineEvents = {
  log: { level: 'info' | 'warn' | 'error'; message: string };
};
