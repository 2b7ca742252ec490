/**
 * The attention panel: one WebviewPanel beside the editor, reused by every `show`. The webview code lives in
 * webview/panel.ts; the protocol in common/webviewProtocol.ts; the serving logic in webviewSession.ts.
 *
 * retainContextWhenHidden is off: the webview keeps its selection in setState and the host replays the run on
 * `ready`, so a hidden panel costs no memory (a T=1024 panel holds a few MB of canvases).
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import type { Channel } from '../common/rpc';
import type { SaveKind } from '../common/webviewProtocol';
import type { AnalysisSource } from './analysisSource';
import type { HeadExperiments } from './headExperiments';
import type { Comparisons } from './comparison';
import { VIEW_STYLES, webviewHtml, type ViewEntry } from './webviewHtml';
import { PanelSession, type SaveFile } from './webviewSession';

/** A webview as an rpc Channel. */
export function webviewChannel(webview: vscode.Webview, disposables: vscode.Disposable[]): Channel {
  return {
    send: (message) => void webview.postMessage(message),
    onMessage: (listener) => {
      const sub = webview.onDidReceiveMessage(listener);
      disposables.push(sub);
      return () => sub.dispose();
    },
  };
}

/** Fresh per render: a CSP nonce must not be guessable or reused. */
export function makeNonce(): string {
  return randomBytes(16).toString('base64');
}

export function webviewRoots(context: vscode.ExtensionContext): vscode.Uri[] {
  return [vscode.Uri.joinPath(context.extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(context.extensionUri, 'media')];
}

export function renderHtml(webview: vscode.Webview, context: vscode.ExtensionContext, entry: ViewEntry, title: string): string {
  const uri = (...p: string[]) => webview.asWebviewUri(vscode.Uri.joinPath(context.extensionUri, ...p)).toString();
  return webviewHtml({
    cspSource: webview.cspSource,
    nonce: makeNonce(),
    scriptUri: uri('dist', 'webview', `${entry}.js`),
    styleUris: VIEW_STYLES[entry].map((file) => uri('media', file)),
    title,
    bodyClass: entry,
  });
}

const FILTERS: Record<SaveKind, Record<string, string[]>> = {
  png: { 'PNG image': ['png'] },
  svg: { 'SVG image': ['svg'] },
  json: { JSON: ['json'] },
};

/** Asks where to save (next to the analysed document by default) and writes the file. */
export function saveWithDialog(defaultFolder: () => vscode.Uri | undefined): SaveFile {
  return async (kind, suggestedName, data) => {
    const folder = defaultFolder();
    const target = await vscode.window.showSaveDialog({
      defaultUri: folder ? vscode.Uri.joinPath(folder, suggestedName) : undefined,
      filters: FILTERS[kind],
      saveLabel: 'Export',
    });
    if (!target) return { saved: false };
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    await vscode.workspace.fs.writeFile(target, bytes);
    return { saved: true, path: target.fsPath };
  };
}

export class AttentionPanel implements vscode.Disposable {
  static readonly viewType = 'headlight.attentionPanel';
  private static current: AttentionPanel | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly session: PanelSession;

  /** Opens the panel (or reveals the open one) for a source. */
  static show(context: vscode.ExtensionContext, source: AnalysisSource, experiments: HeadExperiments, comparisons?: Comparisons): AttentionPanel {
    const open = AttentionPanel.current;
    if (open && open.source === source) {
      open.panel.reveal(vscode.ViewColumn.Beside, true);
      return open;
    }
    open?.dispose();
    const panel = vscode.window.createWebviewPanel(AttentionPanel.viewType, 'Headlight: Attention', { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, {
      enableScripts: true,
      localResourceRoots: webviewRoots(context),
      retainContextWhenHidden: false,
    });
    AttentionPanel.current = new AttentionPanel(panel, context, source, experiments, comparisons);
    return AttentionPanel.current;
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    context: vscode.ExtensionContext,
    readonly source: AnalysisSource,
    experiments: HeadExperiments,
    comparisons?: Comparisons,
  ) {
    const folder = () => {
      const doc = source.current?.document;
      return doc && doc.scheme === 'file' ? vscode.Uri.joinPath(doc, '..') : vscode.workspace.workspaceFolders?.[0]?.uri;
    };
    this.session = new PanelSession(source, webviewChannel(panel.webview, this.disposables), saveWithDialog(folder), experiments, comparisons);
    panel.webview.html = renderHtml(panel.webview, context, 'panel', 'Headlight: Attention');
    // A hidden-then-shown panel reloads its page (no retained context): it says `ready` again and gets a replay.
    vscode.workspace.onDidChangeTextDocument((e) => {
      const cur = source.current;
      if (cur && e.document.uri.toString() === cur.document.toString()) this.session.setStale(e.document.version > cur.documentVersion);
    }, null, this.disposables);
    // hidden, the page may be dropped before it says that Inside a head closed: the session closes it (see setVisible)
    panel.onDidChangeViewState((e) => this.session.setVisible(e.webviewPanel.visible), null, this.disposables);
    panel.onDidDispose(() => this.dispose(), null, this.disposables);
  }

  dispose(): void {
    if (AttentionPanel.current === this) AttentionPanel.current = undefined;
    this.session.dispose();
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }
}
