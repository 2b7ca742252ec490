/**
 * The contract between the host's analysis controller (engine client, live runs, cursor tracking) and the views
 * that show a run (attention panel, sidebar, hover, editor highlights). The controller implements it; views only
 * read from it and ask the engine through `query`.
 */
import type * as vscode from 'vscode';
import type { EngineRequests, HeadSelector, ModelInfo, RunSummary } from '../common/engineProtocol';
import type { WindowExtent } from './analysisWindow';

export interface CurrentAnalysis {
  run: RunSummary;
  model: ModelInfo;
  /** The document the run describes. Token offsets are UTF-16 offsets into it. */
  document: vscode.Uri;
  /** The document's version when the run was made; a newer document version means the view is stale. */
  documentVersion: number;
  /** What of the document the run covers (characters, lines, cut lines), when the controller made it. */
  extent?: WindowExtent;
  /** Tokens in the whole document: exact when it was analysed whole, else estimated from the run's density. */
  documentTokens?: number;
  exactTokens?: boolean;
}

export interface AnalysisSource {
  readonly current: CurrentAnalysis | undefined;
  readonly onDidChangeRun: vscode.Event<CurrentAnalysis>;

  /** The head (or mean) every surface shows; changed from the panel, the sidebar or a command. */
  readonly selection: HeadSelector;
  readonly onDidChangeSelection: vscode.Event<HeadSelector>;
  setSelection(sel: HeadSelector): void;

  /** Token index (within the current run) under the editor's cursor, or undefined. */
  readonly cursorToken: number | undefined;
  readonly onDidChangeCursorToken: vscode.Event<number | undefined>;
  /** Moves the editor's cursor to a token (from a click in the panel). */
  revealToken(index: number): void;

  /** Asks the engine process about the current run (fails with `stale-run` if a newer run replaced it). */
  query<K extends keyof EngineRequests & string>(method: K, params: EngineRequests[K][0], signal?: AbortSignal): Promise<EngineRequests[K][1]>;
}
