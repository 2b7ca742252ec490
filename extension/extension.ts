// Composition root of the Headlight extension: creates the parts and registers them for disposal. No logic here.
// Activation is cheap: the engine process starts on first use (a command, or a live run after one).
import * as vscode from 'vscode';
import { join } from 'node:path';
import { readConfig, onDidChangeConfig, setUserSetting, attentionModeSetting, type HeadlightConfig } from './host/config';
import { EngineClient } from './host/engineClient';
import { ModelManager } from './host/modelManager';
import { AnalysisController } from './host/controller';
import { StatusBar } from './host/statusBar';
import { EditorHighlights } from './host/decorations';
import { AttentionHoverProvider } from './host/hoverProvider';
import { registerCommands, COMMANDS, runText } from './host/commands';
import { HeadExperiments } from './host/headExperiments';
import { newHostStats, type HostStats } from './host/hostStats';
import { AttentionPanel } from './host/panel';
import { SidebarView } from './host/sidebar';
import { Comparisons } from './host/comparison';
import { CompareHighlights } from './host/compareDecorations';

/** What `activate` returns: the parts, for the in-host integration tests. */
export interface HeadlightApi {
  controller: AnalysisController;
  client: EngineClient;
  highlights: EditorHighlights;
  experiments: HeadExperiments;
  comparisons: Comparisons;
  compareHighlights: CompareHighlights;
  stats: HostStats;
  config: () => HeadlightConfig;
}

export function activate(context: vscode.ExtensionContext): HeadlightApi {
  const t0 = performance.now();
  const log = vscode.window.createOutputChannel('Headlight', { log: true });
  const stats = newHostStats();
  let config = readConfig();
  const getConfig = () => config;
  const bundledDir = join(context.extensionPath, 'models', 'headlight-tiny');

  const client = new EngineClient({ serverPath: join(context.extensionPath, 'dist', 'engineServer.js'), log: (level, m) => log[level](m) });
  const models = new ModelManager({ client, bundledDir, config: getConfig, log: (m) => log.info(m) });
  const controller = new AnalysisController({ client, ensureModel: () => models.ensure(), config: getConfig, log: (m) => log.warn(m) });
  const status = new StatusBar(config.model);
  const experiments = new HeadExperiments({
    source: controller,
    textOf: runText,
    onRankProgress: (l) => client.onDidRankProgress(l),
    attentionMode: config.attentionMode,
    writeAttentionMode: (mode) => setUserSetting('attentionMode', attentionModeSetting(mode)),
  });
  const highlights = new EditorHighlights(controller, config, stats, (m) => log.warn(m), experiments);
  const comparisons = new Comparisons({ source: controller, threshold: () => config.compareThreshold });
  const compareHighlights = new CompareHighlights(controller, comparisons);
  let started = 0;

  context.subscriptions.push(
    log,
    { dispose: () => client.dispose() },
    models,
    controller,
    status,
    experiments,
    highlights,
    comparisons,
    compareHighlights,
    registerCommands({
      controller,
      client,
      config: getConfig,
      model: () => models.info,
      bundledDir,
      experiments,
      comparisons,
      showPanel: (focusToken) => {
        AttentionPanel.show(context, controller, experiments, comparisons);
        if (focusToken !== undefined) controller.revealToken(focusToken);
      },
      log: (m) => log.info(m),
    }),
    vscode.languages.registerHoverProvider('*', new AttentionHoverProvider(controller, getConfig, stats, comparisons)),
    models.onDidLoadModel((info) => status.setModel(info)),
    controller.onDidChangeRun((cur) => {
      stats.lastRunMs = cur.run.stats.totalMs;
      status.setRun(cur);
    }),
    controller.onDidChangeState((e) => status.setState(e)),
    client.onDidStart(() => {
      if (started++ > 0) controller.engineRestarted();
    }),
    client.onDidCrash((c) => {
      if (!c.gaveUp) return;
      void vscode.window
        .showErrorMessage(`Headlight: the engine process crashed ${c.recentCrashes} times in a minute and was not restarted.`, 'Restart Engine', 'Show Log')
        .then((choice) => {
          if (choice === 'Restart Engine') void vscode.commands.executeCommand(COMMANDS.restart);
          if (choice === 'Show Log') log.show();
        });
    }),
    onDidChangeConfig((next) => {
      const prev = config;
      config = next;
      // a new window size reloads the model: the engine's cache and attention store are sized for it
      if (prev.model !== next.model || prev.threads !== next.threads || prev.windowTokens !== next.windowTokens || prev.memoryBudgetMB !== next.memoryBudgetMB) {
        models.invalidate();
        if (prev.threads !== next.threads) client.stop();
        status.setModelRef(next.model);
        controller.modelChanged();
      }
      controller.configChanged(prev, next);
      experiments.setAttentionMode(next.attentionMode);
      highlights.configChanged(next);
      if (prev.compareThreshold !== next.compareThreshold) compareHighlights.configChanged();
    }),
  );

  SidebarView.register(context, controller, experiments);

  stats.activationMs = performance.now() - t0;
  log.info(`activated in ${stats.activationMs.toFixed(1)} ms`);
  return { controller, client, highlights, experiments, comparisons, compareHighlights, stats, config: getConfig };
}

export function deactivate(): void {
  // Everything, the engine process included, is disposed through context.subscriptions.
}
