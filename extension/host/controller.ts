/**
 * The analysis controller: which document and window to analyse, live re-analysis on edits (debounced,
 * incremental), cursor -> token, and the AnalysisSource every view reads. It never edits documents and never does
 * model work itself: the engine process does (through EngineClient).
 */
import * as vscode from 'vscode';
import type { AnalysisSource, CurrentAnalysis } from './analysisSource';
import type { EngineRequests, HeadSelector, ModelInfo } from '../common/engineProtocol';
import type { EngineClient } from './engineClient';
import type { HeadlightConfig } from './config';
import { checkText, tokenAt } from '../common/text';
import { HeadlightError } from '../common/errors';
import { Debouncer } from './debounce';
import { DEFAULT_CHARS_PER_TOKEN, focusOffset, focusOutsideRun, measureCharsPerToken, readWindow, shiftSlice, type DocumentText, type TextSlice } from './analysisWindow';

/** What the controller remembers about a document between runs. */
interface DocState {
  /** The slice of the last run (document offsets), shifted by later edits. */
  slice?: TextSlice;
  /** True when the slice is a selection the user chose (it follows edits, but not the cursor). */
  fromSelection: boolean;
  charsPerToken: number;
}

export type AnalyzeReason = 'command' | 'edit' | 'cursor' | 'editor' | 'model';

export interface RunEvent {
  state: 'running' | 'done' | 'error' | 'cancelled';
  error?: HeadlightError;
  reason: AnalyzeReason;
}

export interface ControllerDeps {
  client: EngineClient;
  /** Makes sure the configured model is loaded in the engine (resolving or downloading it). */
  ensureModel: (signal?: AbortSignal) => Promise<ModelInfo>;
  config: () => HeadlightConfig;
  log: (message: string) => void;
}

export class AnalysisController implements AnalysisSource, vscode.Disposable {
  private _current: CurrentAnalysis | undefined;
  private _selection: HeadSelector = { layer: 'mean', head: 'mean' };
  private _cursorToken: number | undefined;
  private readonly docs = new Map<string, DocState>();
  private readonly disposables: vscode.Disposable[] = [];
  private readonly runEmitter = new vscode.EventEmitter<CurrentAnalysis>();
  private readonly selectionEmitter = new vscode.EventEmitter<HeadSelector>();
  private readonly cursorEmitter = new vscode.EventEmitter<number | undefined>();
  private readonly stateEmitter = new vscode.EventEmitter<RunEvent>();
  private readonly liveDebouncer: Debouncer;
  private liveReason: AnalyzeReason = 'edit';
  /** The editor whose document is followed (the panel can take focus; we keep following this one). */
  private editor: vscode.TextEditor | undefined;
  private runSeq = 0;
  /** Analyses in flight. */
  private active = 0;

  readonly onDidChangeRun = this.runEmitter.event;
  readonly onDidChangeSelection = this.selectionEmitter.event;
  readonly onDidChangeCursorToken = this.cursorEmitter.event;
  /** Running / done / error, for the status bar. */
  readonly onDidChangeState = this.stateEmitter.event;

  constructor(private readonly deps: ControllerDeps) {
    this.liveDebouncer = new Debouncer(deps.config().debounceMs, () => {
      if (this.editor) void this.analyze(this.editor, this.liveReason);
    });
    this.disposables.push(
      this.runEmitter,
      this.selectionEmitter,
      this.cursorEmitter,
      this.stateEmitter,
      { dispose: () => this.liveDebouncer.dispose() },
      vscode.workspace.onDidChangeTextDocument((e) => this.onEdit(e)),
      vscode.window.onDidChangeTextEditorSelection((e) => this.onCursor(e.textEditor)),
      vscode.window.onDidChangeActiveTextEditor((e) => this.onActiveEditor(e)),
      vscode.workspace.onDidCloseTextDocument((d) => this.docs.delete(d.uri.toString())),
    );
  }

  get current(): CurrentAnalysis | undefined {
    return this._current;
  }
  get selection(): HeadSelector {
    return this._selection;
  }
  get cursorToken(): number | undefined {
    return this._cursorToken;
  }
  /** The editor the controller follows, if any. */
  get followedEditor(): vscode.TextEditor | undefined {
    return this.editor;
  }

  setSelection(sel: HeadSelector): void {
    this._selection = sel;
    this.selectionEmitter.fire(sel);
  }

  revealToken(index: number): void {
    const cur = this._current;
    const t = cur?.run.tokens[index];
    if (!cur || !t) return;
    const editor = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === cur.document.toString()) ?? this.editor;
    if (!editor || editor.document.uri.toString() !== cur.document.toString()) return;
    const pos = editor.document.positionAt(t.start);
    editor.selection = new vscode.Selection(pos, pos);
    editor.revealRange(new vscode.Range(pos, editor.document.positionAt(t.end)), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  }

  query<K extends keyof EngineRequests & string>(method: K, params: EngineRequests[K][0], signal?: AbortSignal): Promise<EngineRequests[K][1]> {
    return this.deps.client.request(method, params, signal);
  }

  /** Settings changed: the debounce delay, and a re-run when the window size changed. */
  configChanged(prev: HeadlightConfig, next: HeadlightConfig): void {
    this.liveDebouncer.setDelay(next.debounceMs);
    if (prev.windowTokens !== next.windowTokens) for (const s of this.docs.values()) if (!s.fromSelection) s.slice = undefined;
  }

  /** The engine process restarted (after a crash): its runs are gone, so analyse the followed editor again. */
  engineRestarted(): void {
    if (this.editor && this._current && this.active === 0) void this.analyze(this.editor, 'model');
  }

  /** The model changed: forget the run and analyse the followed editor again. */
  modelChanged(): void {
    this._current = undefined;
    this.setCursorToken(undefined);
    if (this.editor) void this.analyze(this.editor, 'model');
  }

  /**
   * Analyses an editor now: its selection when one is made (for a command), else the window around the cursor.
   * Resolves with the run, or undefined when it was superseded or failed (the error goes to onDidChangeState and,
   * for a command, is thrown).
   */
  async analyze(editor: vscode.TextEditor, reason: AnalyzeReason): Promise<CurrentAnalysis | undefined> {
    this.liveDebouncer.cancel();
    this.editor = editor;
    const seq = ++this.runSeq;
    const doc = editor.document;
    const key = doc.uri.toString();
    const state = this.docs.get(key) ?? { fromSelection: false, charsPerToken: DEFAULT_CHARS_PER_TOKEN };
    this.docs.set(key, state);
    if (reason === 'command') {
      state.fromSelection = !editor.selection.isEmpty;
      if (state.fromSelection) state.slice = { start: doc.offsetAt(editor.selection.start), end: doc.offsetAt(editor.selection.end) };
    }
    this.stateEmitter.fire({ state: 'running', reason });
    this.active++;
    try {
      const model = await this.deps.ensureModel();
      let result = await this.runOnce(editor, state, model, reason);
      if (seq !== this.runSeq) return undefined;
      // The slice held more tokens than the window: re-slice around the focus with the measured density, once.
      if (result.retry) result = await this.runOnce(editor, state, model, reason);
      if (seq !== this.runSeq) return undefined;
      this._current = result.analysis;
      this.runEmitter.fire(result.analysis);
      this.stateEmitter.fire({ state: 'done', reason });
      this.onCursor(editor);
      return result.analysis;
    } catch (err) {
      if (err instanceof HeadlightError && err.code === 'cancelled') {
        if (seq === this.runSeq) this.stateEmitter.fire({ state: 'cancelled', reason });
        return undefined;
      }
      const e = err instanceof HeadlightError ? err : new HeadlightError('internal', (err as Error).message ?? String(err));
      this.deps.log(`analysis of ${doc.uri.toString(true)} failed (${reason}): ${e.code}: ${e.message}`);
      if (seq === this.runSeq) this.stateEmitter.fire({ state: 'error', error: e, reason });
      if (reason === 'command') throw e;
      return undefined;
    } finally {
      this.active--;
    }
  }

  private async runOnce(editor: vscode.TextEditor, state: DocState, model: ModelInfo, reason: AnalyzeReason): Promise<{ analysis: CurrentAnalysis; retry: boolean }> {
    const doc = editor.document;
    const version = doc.version;
    const focus = focusOffset(doc.offsetAt(editor.selection.active), visibleSlice(editor));
    const windowTokens = Math.min(this.deps.config().windowTokens, model.nPositions);
    // Only the window's neighbourhood is read: never the whole document (50 MB, or one 5 MB line).
    const { slice, text: sliceText, extent } = readWindow(documentText(doc), {
      selection: state.fromSelection ? state.slice : undefined,
      focus,
      windowTokens,
      charsPerToken: state.charsPerToken,
      previous: state.fromSelection ? undefined : state.slice,
    });
    checkText(sliceText, extent.start === 0 && extent.end === extent.docLength ? docName(doc) : `${docName(doc)} around line ${extent.firstLine + 1}`);
    const run = await this.deps.client.analyze({ text: sliceText, offsetBase: slice.start, incremental: reason !== 'model' });
    state.slice = slice;
    state.charsPerToken = measureCharsPerToken(sliceText.length, run.totalTokens);
    const truncated = run.window.end < run.totalTokens;
    const retry = !state.fromSelection && reason !== 'cursor' && focusOutsideRun(run.tokens, focus, truncated) && state.charsPerToken < DEFAULT_CHARS_PER_TOKEN * 4;
    if (retry) state.slice = undefined; // the next runOnce re-centres on the focus with the measured density
    const whole = extent.start === 0 && extent.end === extent.docLength;
    const documentTokens = whole ? run.totalTokens : Math.round(extent.docLength / state.charsPerToken);
    return { analysis: { run, model, document: doc.uri, documentVersion: version, extent, documentTokens, exactTokens: whole }, retry };
  }

  // ------------------------------------------------------------------ editor events

  private onEdit(e: vscode.TextDocumentChangeEvent): void {
    if (e.contentChanges.length === 0) return;
    const state = this.docs.get(e.document.uri.toString());
    if (state?.slice) for (const ch of e.contentChanges) state.slice = shiftSlice(state.slice, ch.rangeOffset, ch.rangeLength, ch.text.length);
    const cur = this._current;
    if (!cur || cur.document.toString() !== e.document.uri.toString()) return;
    this.setCursorToken(undefined); // offsets are stale until the next run
    if (this.deps.config().live) {
      this.editor = vscode.window.visibleTextEditors.find((ed) => ed.document === e.document) ?? this.editor;
      this.liveReason = 'edit';
      this.liveDebouncer.trigger();
    }
  }

  private onActiveEditor(editor: vscode.TextEditor | undefined): void {
    if (!editor || !isAnalysable(editor.document)) return;
    if (this.deps.config().live && this._current && editor.document.uri.toString() !== this._current.document.toString()) {
      this.editor = editor;
      this.liveReason = 'editor';
      this.liveDebouncer.trigger();
    } else if (this._current && editor.document.uri.toString() === this._current.document.toString()) {
      this.editor = editor;
      this.onCursor(editor);
    }
  }

  private onCursor(editor: vscode.TextEditor): void {
    const cur = this._current;
    if (!cur || editor.document.uri.toString() !== cur.document.toString()) return;
    this.editor = editor;
    if (editor.document.version !== cur.documentVersion) return; // waiting for the re-run after an edit
    const offset = editor.document.offsetAt(editor.selection.active);
    const tokens = cur.run.tokens;
    const inside = tokens.length > 0 && offset >= tokens[0].start && offset <= tokens[tokens.length - 1].end;
    const index = inside ? tokenAt(tokens, offset === tokens[tokens.length - 1].end ? offset - 1 : offset) : -1;
    this.setCursorToken(index >= 0 ? index : undefined);
    // The cursor left the window of a long file: follow it (live mode only).
    const state = this.docs.get(editor.document.uri.toString());
    if (!inside && this.deps.config().live && state && !state.fromSelection) {
      this.liveReason = 'cursor';
      this.liveDebouncer.trigger();
    }
  }

  private setCursorToken(index: number | undefined): void {
    if (index === this._cursorToken) return;
    this._cursorToken = index;
    this.cursorEmitter.fire(index);
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
    this.disposables.length = 0;
  }
}

/** The document as the window reads it: ranges of it, never the whole text. */
export function documentText(doc: vscode.TextDocument): DocumentText {
  return {
    length: doc.offsetAt(doc.lineAt(doc.lineCount - 1).range.end),
    slice: (start, end) => doc.getText(new vscode.Range(doc.positionAt(start), doc.positionAt(end))),
    lineAt: (offset) => doc.positionAt(offset).line,
  };
}

function visibleSlice(editor: vscode.TextEditor): TextSlice | undefined {
  const r = editor.visibleRanges;
  if (!r.length) return undefined;
  return { start: editor.document.offsetAt(r[0].start), end: editor.document.offsetAt(r[r.length - 1].end) };
}

export function docName(doc: vscode.TextDocument): string {
  return doc.isUntitled ? doc.uri.path : (doc.uri.path.split('/').pop() ?? doc.uri.toString());
}

/** Text documents a user edits (not output channels, not git's originals). */
export function isAnalysable(doc: vscode.TextDocument): boolean {
  return doc.uri.scheme !== 'output' && doc.uri.scheme !== 'git' && doc.uri.scheme !== 'vscode-scm';
}
