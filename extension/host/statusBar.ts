/** The status bar item `headlight.status`: model, tokens analysed, the window, the last run's time. Click: model picker. */
import * as vscode from 'vscode';
import type { CurrentAnalysis } from './analysisSource';
import type { ModelInfo } from '../common/engineProtocol';
import { modelDisplayName } from '../common/displayNames';
import type { RunEvent } from './controller';
import { windowLabel } from './analysisWindow';

/** A few words in the status bar for errors a user meets in normal use (the tooltip has the whole message). */
const PROBLEM_WORDS: Record<string, string> = {
  binary: 'not text',
  'engine-crashed': 'engine stopped',
  'no-model': 'no model',
};

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private model: ModelInfo | undefined;
  private modelRef: string;
  private run: CurrentAnalysis | undefined;

  constructor(modelRef: string) {
    this.modelRef = modelRef;
    this.item = vscode.window.createStatusBarItem('headlight.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'Headlight';
    this.item.command = 'headlight.selectModel';
    this.render();
    this.item.show();
  }

  setModelRef(ref: string): void {
    this.modelRef = ref;
    if (this.model && this.model.ref !== ref) this.model = undefined;
    this.render();
  }

  setModel(info: ModelInfo): void {
    this.model = info;
    this.modelRef = info.ref;
    this.render();
  }

  setRun(run: CurrentAnalysis): void {
    this.run = run;
    this.render();
  }

  setState(e: RunEvent): void {
    if (e.state === 'running') this.render('$(sync~spin)');
    else if (e.state === 'error' && e.error) this.render('$(warning)', e.error.userMessage, PROBLEM_WORDS[e.error.code] ?? 'failed');
    else this.render();
  }

  private render(icon = '$(eye)', problem?: string, problemWords?: string): void {
    const name = modelDisplayName(this.modelRef);
    const cur = this.run;
    const r = cur?.run;
    const label = cur && r ? windowLabel({ tokens: r.tokens.length, totalTokens: r.totalTokens }, cur.extent, cur.documentTokens, cur.exactTokens ?? false) : undefined;
    const parts = [`${icon} Headlight: ${name}`];
    if (problemWords) parts.push(problemWords);
    else if (r && label) parts.push(label.short, `${Math.round(r.stats.totalMs)} ms`);
    this.item.text = parts.join(' · ');
    const tip = new vscode.MarkdownString();
    tip.appendMarkdown(`**Headlight** — model \`${name}\`${name === this.modelRef ? '' : ` (setting: \`${this.modelRef}\`)`}`);
    if (this.model) tip.appendMarkdown(` (${this.model.nLayer} layers × ${this.model.nHead} heads, context ${this.model.nPositions})`);
    const mem = this.model?.memory;
    if (mem) {
      const mb = (bytes: number) => `${Math.round(bytes / 2 ** 20).toLocaleString('en-US')} MB`;
      tip.appendMarkdown('\n\n').appendText(
        `Memory: about ${mb(mem.estimateBytes)} at this window, budget ${mb(mem.budgetBytes)} (${mem.budgetSource})` +
          (mem.limitedByMemory ? `; the window is ${this.model!.nPositions} tokens because of the budget (headlight.memoryBudgetMB).` : '.'),
      );
    }
    if (r) {
      tip.appendMarkdown('\n\nLast run: ').appendText(`${label!.detail}; token window ${r.window.start}–${r.window.end} of ${r.totalTokens} in the text read, `);
      tip.appendMarkdown(`${r.stats.computed} computed, ${r.stats.reused} reused, ${Math.round(r.stats.totalMs)} ms`);
    }
    if (problem) tip.appendMarkdown(`\n\n$(warning) `).appendText(problem);
    tip.supportThemeIcons = true;
    tip.appendMarkdown('\n\nClick to pick a model.');
    this.item.tooltip = tip;
    this.item.backgroundColor = problem ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
