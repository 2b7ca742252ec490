/**
 * The sidebar view `headlight.sidebar`: follows the editor's cursor with no command. For the token under the
 * cursor: a layer × head heatmap of where it looks, the selected head's row as a strip, its top sources as a list.
 * Clicking a cell selects that head everywhere.
 */
import * as vscode from 'vscode';
import type { AnalysisSource } from './analysisSource';
import type { HeadExperiments } from './headExperiments';
import { renderHtml, webviewChannel, webviewRoots } from './panel';
import { SidebarSession } from './webviewSession';

export class SidebarView implements vscode.WebviewViewProvider, vscode.Disposable {
  static readonly viewType = 'headlight.sidebar';
  private session: SidebarSession | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly source: AnalysisSource,
    private readonly experiments?: HeadExperiments,
  ) {}

  /** Registers the provider; the view keeps no context when hidden (state is replayed on `ready`). */
  static register(context: vscode.ExtensionContext, source: AnalysisSource, experiments?: HeadExperiments): SidebarView {
    const view = new SidebarView(context, source, experiments);
    context.subscriptions.push(vscode.window.registerWebviewViewProvider(SidebarView.viewType, view), view);
    return view;
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.session?.dispose();
    const local: vscode.Disposable[] = [];
    view.webview.options = { enableScripts: true, localResourceRoots: webviewRoots(this.context) };
    const session = new SidebarSession(this.source, webviewChannel(view.webview, local), this.experiments);
    this.session = session;
    view.webview.html = renderHtml(view.webview, this.context, 'sidebar', 'Headlight');
    view.onDidChangeVisibility(() => session.setVisible(view.visible), null, local);
    vscode.workspace.onDidChangeTextDocument((e) => {
      const cur = this.source.current;
      if (cur && e.document.uri.toString() === cur.document.toString()) session.setStale(e.document.version > cur.documentVersion);
    }, null, local);
    view.onDidDispose(() => {
      session.dispose();
      for (const d of local.splice(0)) d.dispose();
      if (this.session === session) this.session = undefined;
    }, null, this.disposables);
    this.disposables.push(...local);
  }

  dispose(): void {
    this.session?.dispose();
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}
