/** The palette commands, all `headlight.`-prefixed. Each is a thin handler over the controller and the engine. */
import * as vscode from 'vscode';
import type { AblationMode, HeadRef, HeadSelector, ModelInfo } from '../common/engineProtocol';
import { HeadlightError } from '../common/errors';
import { halfTable } from '../common/half';
import type { AnalysisController } from './controller';
import type { CurrentAnalysis } from './analysisSource';
import type { HeadExperiments } from './headExperiments';
import type { EngineClient } from './engineClient';
import type { HeadlightConfig } from './config';
import { attentionModeSetting, setUserSetting } from './config';
import { selectorLabel } from '../common/displayNames';
import { pickModel } from './modelPicker';
import { movedTokens, type Comparisons } from './comparison';
import { pickCompareTarget, type CompareArgs } from './compareSources';
import { Patching } from './patching';
import { patchActivations, type PatchArgs } from './patchCommand';

export interface CommandDeps {
  controller: AnalysisController;
  client: EngineClient;
  config: () => HeadlightConfig;
  model: () => ModelInfo | undefined;
  bundledDir: string;
  /** Opens the attention panel on the current run (from the webview helper); undefined until it exists. */
  showPanel?: (focusToken?: number) => void;
  /** Ablations, head rankings and the attention mode, shared with the panel and the editor highlights. */
  experiments?: HeadExperiments;
  /** Compare With…: the comparison in force, shared with the panel, the hover and the editor colours. */
  comparisons?: Comparisons;
  log: (message: string) => void;
}

export const COMMANDS = {
  explain: 'headlight.explainAttention',
  selectModel: 'headlight.selectModel',
  selectHead: 'headlight.selectLayerAndHead',
  toggleLive: 'headlight.toggleLive',
  toggleSurprisal: 'headlight.toggleSurprisal',
  export: 'headlight.exportAttention',
  restart: 'headlight.restartEngine',
  ablate: 'headlight.ablateHeads',
  rank: 'headlight.rankHeads',
  clearAblation: 'headlight.clearAblation',
  toggleMode: 'headlight.toggleValueWeighted',
  compareWith: 'headlight.compareWith',
  stopComparing: 'headlight.stopComparing',
  patch: 'headlight.patchActivations',
} as const;

export function registerCommands(deps: CommandDeps): vscode.Disposable {
  const reg = (id: string, fn: (...args: never[]) => unknown) => vscode.commands.registerCommand(id, (...args: unknown[]) => report(id, () => fn(...(args as never[]))));
  // activation patching over the comparison in force; the panel finds it through Patching.of(comparisons)
  const patching = deps.comparisons && new Patching({ source: deps.controller, comparisons: deps.comparisons, textOf: runText, onPatchProgress: (l) => deps.client.onDidPatchProgress(l) });
  return vscode.Disposable.from(
    { dispose: () => patching?.dispose() },
    reg(COMMANDS.patch, (args?: PatchArgs) => {
      if (!patching) throw new HeadlightError('internal', 'Comparisons are not available in this window.');
      return patchActivations({ patching, cursorToken: () => deps.controller.cursorToken, showPanel: () => deps.showPanel?.(), log: deps.log }, args);
    }),
    reg(COMMANDS.explain, (arg?: { token?: number } | vscode.Uri) => explain(deps, arg)),
    reg(COMMANDS.selectModel, () => pickModel({ bundledDir: deps.bundledDir, current: deps.config().model })),
    reg(COMMANDS.selectHead, (sel?: HeadSelector) => selectHead(deps, sel)),
    reg(COMMANDS.toggleLive, () => setUserSetting('live', !deps.config().live)),
    reg(COMMANDS.toggleSurprisal, () => setUserSetting('surprisal.enabled', !deps.config().surprisalEnabled)),
    reg(COMMANDS.export, (target?: vscode.Uri) => exportAttention(deps, target)),
    reg(COMMANDS.restart, () => restartEngine(deps)),
    reg(COMMANDS.ablate, (args?: { heads?: HeadRef[]; mode?: AblationMode; at?: number }) => ablateHeads(deps, args)),
    reg(COMMANDS.rank, (args?: { mode?: AblationMode }) => rankHeads(deps, args)),
    reg(COMMANDS.clearAblation, () => experimentsOf(deps).clearAblation()),
    reg(COMMANDS.compareWith, (args?: CompareArgs) => compareWith(deps, args)),
    reg(COMMANDS.stopComparing, () => deps.comparisons?.stop()),
    reg(COMMANDS.toggleMode, () => setUserSetting('attentionMode', attentionModeSetting(deps.config().attentionMode === 'value-weighted' ? 'attention' : 'value-weighted'))),
  );
}

/** The characters of a run's window in its document, or undefined when the document changed or is closed. */
export function runText(cur: CurrentAnalysis): string | undefined {
  const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === cur.document.toString());
  const tokens = cur.run.tokens;
  if (!doc || doc.version !== cur.documentVersion || tokens.length === 0) return undefined;
  return doc.getText(new vscode.Range(doc.positionAt(tokens[0].start), doc.positionAt(tokens[tokens.length - 1].end)));
}

function experimentsOf(deps: CommandDeps): HeadExperiments {
  if (!deps.experiments) throw new HeadlightError('internal', 'Head experiments are not available in this window.');
  return deps.experiments;
}

async function pickAblationMode(given?: AblationMode): Promise<AblationMode | undefined> {
  if (given === 'zero' || given === 'mean') return given;
  const picked = await vscode.window.showQuickPick(
    [
      { label: 'Zero ablation', description: "the head's output becomes 0", mode: 'zero' as const },
      { label: 'Mean ablation', description: "the head's output becomes its mean over the window", mode: 'mean' as const },
    ],
    { title: 'Headlight: how to remove a head' },
  );
  return picked?.mode;
}

/**
 * Removes heads and re-runs the analysed text: the editor colours each token's surprisal change, the panel shows
 * the details. Arguments (for keybindings and tests): `{heads: [{layer, head}], mode: 'zero' | 'mean', at?}`.
 */
async function ablateHeads(deps: CommandDeps, args?: { heads?: HeadRef[]; mode?: AblationMode; at?: number }): Promise<unknown> {
  const experiments = experimentsOf(deps);
  const cur = deps.controller.current;
  if (!cur) throw new HeadlightError('no-run', 'Nothing has been analysed yet.', 'Run Headlight: Explain Attention first.');
  let heads = args?.heads;
  if (!heads?.length) {
    const sel = deps.controller.selection;
    const items: (vscode.QuickPickItem & { ref: HeadRef })[] = [];
    for (let l = 0; l < cur.model.nLayer; l++) for (let h = 0; h < cur.model.nHead; h++) items.push({ label: `Layer ${l}, head ${h}`, ref: { layer: l, head: h }, picked: sel.layer === l && sel.head === h });
    const picked = await vscode.window.showQuickPick(items, { title: 'Headlight: heads to ablate', canPickMany: true });
    heads = picked?.map((p) => p.ref);
    if (!heads?.length) return undefined;
  }
  const mode = await pickAblationMode(args?.mode);
  if (!mode) return undefined;
  const at = args?.at ?? (deps.controller.cursorToken !== undefined ? deps.controller.cursorToken + 1 : undefined);
  const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'Headlight: ablating' }, () => experiments.ablate({ version: cur.run.version, heads, mode, at }));
  const sign = result.lossDelta > 0 ? '+' : '';
  deps.log(`ablated ${heads.map((h) => `L${h.layer}H${h.head}`).join(', ')} (${mode}): loss ${result.lossBefore.toFixed(3)} → ${result.lossAfter.toFixed(3)} nats (${sign}${result.lossDelta.toFixed(3)})`);
  return { lossBefore: result.lossBefore, lossAfter: result.lossAfter, lossDelta: result.lossDelta, version: result.version };
}

/** Ablates every head alone, with a cancellable notification; the panel shows the ranking when it is open. */
async function rankHeads(deps: CommandDeps, args?: { mode?: AblationMode }): Promise<unknown> {
  const experiments = experimentsOf(deps);
  const cur = deps.controller.current;
  if (!cur) throw new HeadlightError('no-run', 'Nothing has been analysed yet.', 'Run Headlight: Explain Attention first.');
  const mode = await pickAblationMode(args?.mode);
  if (!mode) return undefined;
  const ranking = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'Headlight: which heads matter here', cancellable: true },
    async (progress, token) => {
      const controller = new AbortController();
      token.onCancellationRequested(() => controller.abort());
      let last = 0;
      const sub = experiments.onDidRankProgress((p) => {
        if (p.total <= 0) return;
        progress.report({ message: `${p.done} of ${p.total} heads`, increment: ((p.done - last) / p.total) * 100 });
        last = p.done;
      });
      try {
        return await experiments.rankHeads({ version: cur.run.version, mode }, controller.signal);
      } finally {
        sub.dispose();
      }
    },
  );
  const top = ranking.ranking.slice(0, 3).map((r) => `L${r.layer}H${r.head} ${r.lossDelta > 0 ? '+' : ''}${r.lossDelta.toFixed(3)}`);
  void vscode.window.showInformationMessage(`Headlight: heads that matter most here (${mode} ablation, loss change in nats): ${top.join(', ')}.`);
  return ranking.ranking;
}

/**
 * Compares the analysed text with another version of it (saved, git HEAD, another editor, or the selection
 * replaced): the panel's Compare view, editor colours where surprisal moved, both versions in the hover. Arguments
 * (for keybindings and tests): `{source: 'saved' | 'head' | 'editor' | 'replace', replacement?, uri?}`.
 */
async function compareWith(deps: CommandDeps, args?: CompareArgs): Promise<unknown> {
  const comparisons = deps.comparisons;
  if (!comparisons) throw new HeadlightError('internal', 'Comparisons are not available in this window.');
  const editor = vscode.window.activeTextEditor ?? deps.controller.followedEditor;
  if (!editor) throw new HeadlightError('no-editor', 'There is no text editor to compare.', 'Open a file first.');
  let cur = deps.controller.current;
  if (!cur || cur.document.toString() !== editor.document.uri.toString() || cur.documentVersion !== editor.document.version) {
    cur = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'Headlight: analysing' }, () => deps.controller.analyze(editor, 'command'));
    if (!cur) return undefined;
  }
  const target = await pickCompareTarget(cur, editor.document, editor, args);
  if (!target) return undefined;
  const c = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: `Headlight: comparing with ${target.label}` }, () => comparisons.start(target));
  deps.showPanel?.();
  const moved = movedTokens(c, comparisons.threshold);
  deps.log(`compared ${cur.run.tokens.length} tokens with ${target.label} (${c.other.tokens.length} tokens): ${c.alignment.regions.length} changed regions, surprisal rose at ${moved.rose.length} and fell at ${moved.fell.length} tokens by more than ${comparisons.threshold} bits`);
  return { label: c.label, regions: c.alignment.regions, rose: moved.rose, fell: moved.fell, otherTokens: c.other.tokens.length };
}

/** Runs a command; a HeadlightError becomes a notification with its hint. Returns the command's result. */
async function report(id: string, fn: () => unknown): Promise<unknown> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof HeadlightError && err.code === 'cancelled') return undefined;
    const message = err instanceof HeadlightError ? err.userMessage : `${id} failed: ${(err as Error).message ?? String(err)}`;
    void vscode.window.showErrorMessage(`Headlight: ${message}`);
    return undefined;
  }
}

/** Analyses the active editor (or the followed one, when the panel has focus) and opens the panel. */
async function explain(deps: CommandDeps, arg?: { token?: number } | vscode.Uri): Promise<unknown> {
  const { controller } = deps;
  const focusToken = arg && !(arg instanceof vscode.Uri) && typeof arg.token === 'number' ? arg.token : undefined;
  // From a hover link: the run exists; just open the panel on that token.
  if (focusToken !== undefined && controller.current) {
    deps.showPanel?.(focusToken);
    return controller.current.run.version;
  }
  let editor = vscode.window.activeTextEditor ?? controller.followedEditor;
  if (arg instanceof vscode.Uri) editor = await vscode.window.showTextDocument(arg);
  if (!editor) throw new HeadlightError('no-editor', 'There is no text editor to analyse.', 'Open a file or an untitled document first.');
  const cur = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'Headlight: analysing' }, () => controller.analyze(editor, 'command'));
  if (!cur) return undefined;
  if (deps.showPanel) deps.showPanel(controller.cursorToken);
  else {
    const r = cur.run;
    void vscode.window.showInformationMessage(`Headlight: analysed ${r.tokens.length} tokens (window ${r.window.start}–${r.window.end} of ${r.totalTokens}) in ${Math.round(r.stats.totalMs)} ms. Move the cursor to see what each token attends to.`);
  }
  return cur.run.version;
}

/** A specific head, all heads of a layer (their mean), or the mean over all layers. */
async function selectHead(deps: CommandDeps, sel?: HeadSelector): Promise<HeadSelector | undefined> {
  const model = deps.model() ?? deps.controller.current?.model;
  if (sel) {
    validateSelector(sel, model);
    deps.controller.setSelection(sel);
    return sel;
  }
  if (!model) throw new HeadlightError('no-model', 'No model is loaded yet.', 'Run Headlight: Explain Attention first.');
  type Item = vscode.QuickPickItem & { sel?: HeadSelector };
  const items: Item[] = [{ label: '$(layers) Mean of all layers and heads', sel: { layer: 'mean', head: 'mean' } }];
  for (let l = 0; l < model.nLayer; l++) {
    items.push({ label: `Layer ${l}`, kind: vscode.QuickPickItemKind.Separator });
    items.push({ label: `$(list-flat) Layer ${l}: mean of its ${model.nHead} heads`, sel: { layer: l, head: 'mean' } });
    for (let h = 0; h < model.nHead; h++) items.push({ label: `Layer ${l}, head ${h}`, sel: { layer: l, head: h } });
  }
  const current = selectorLabel(deps.controller.selection);
  const picked = await vscode.window.showQuickPick(items, { title: 'Headlight: which attention to show', placeHolder: `Now: ${current}`, matchOnDescription: true });
  if (!picked?.sel) return undefined;
  deps.controller.setSelection(picked.sel);
  return picked.sel;
}

function validateSelector(sel: HeadSelector, model: ModelInfo | undefined): void {
  if (!model || sel.layer === 'mean') return;
  if (!(Number.isInteger(sel.layer) && sel.layer >= 0 && sel.layer < model.nLayer)) throw new HeadlightError('bad-selector', `Layer ${sel.layer} is outside 0..${model.nLayer - 1}.`);
  if (sel.head !== 'mean' && !(Number.isInteger(sel.head) && sel.head >= 0 && sel.head < model.nHead)) throw new HeadlightError('bad-selector', `Head ${sel.head} is outside 0..${model.nHead - 1}.`);
}

/** JSON of the current run: tokens, surprisal, and the selected attention as full rows. */
export async function exportAttention(deps: CommandDeps, target?: vscode.Uri): Promise<vscode.Uri | undefined> {
  const cur = deps.controller.current;
  if (!cur) throw new HeadlightError('no-run', 'Nothing has been analysed yet.', 'Run Headlight: Explain Attention first.');
  const { run, model } = cur;
  const sel = deps.controller.selection;
  // the weights every view shows now (headlight.attentionMode), and the file says which
  const mode = deps.experiments?.attentionMode ?? 'attention';
  const T = run.tokens.length;
  const rows: number[][] = [];
  if (mode === 'attention' && sel.layer !== 'mean' && sel.head !== 'mean') {
    const tri = await deps.client.request('headTriangle', { version: run.version, layer: sel.layer, head: sel.head });
    const half = tri.data instanceof Uint16Array ? halfTable() : undefined;
    let k = 0;
    for (let i = 0; i < tri.T; i++) {
      const row: number[] = [];
      for (let j = 0; j <= i; j++, k++) row.push(half ? half[tri.data[k]] : tri.data[k]);
      rows.push(row);
    }
  } else {
    for (let i = 0; i < T; i++) rows.push(Array.from((await deps.client.request('row', { version: run.version, sel, index: i, mode })).subarray(0, i + 1)));
  }
  const json = {
    format: 'headlight-attention/1',
    document: cur.document.toString(true),
    documentVersion: cur.documentVersion,
    model: { ref: model.ref, nLayer: model.nLayer, nHead: model.nHead, nPositions: model.nPositions },
    window: run.window,
    totalTokens: run.totalTokens,
    selection: sel,
    mode,
    tokens: run.tokens.map((t) => ({ id: t.id, text: t.text, start: t.start, end: t.end })),
    surprisalBits: Array.from(run.surprisal, (s) => (Number.isFinite(s) ? s : null)),
    attention: { description: `rows[i][j] = ${mode === 'value-weighted' ? 'value-weighted weight (α·‖v·W_O‖, normalized per row)' : 'weight'} of token i on token j (j ≤ i)`, rows },
  };
  const uri =
    target ??
    (await vscode.window.showSaveDialog({ title: 'Headlight: export attention', filters: { JSON: ['json'] }, defaultUri: defaultExportUri(cur.document) }));
  if (!uri) return undefined;
  await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(JSON.stringify(json)));
  if (!target) void vscode.window.showInformationMessage(`Headlight: exported ${T} tokens to ${uri.fsPath}.`);
  return uri;
}

function defaultExportUri(doc: vscode.Uri): vscode.Uri | undefined {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  const base = (doc.path.split('/').pop() || 'untitled').replace(/\.[^.]*$/, '');
  return folder ? vscode.Uri.joinPath(folder, `${base}.attention.json`) : undefined;
}

async function restartEngine(deps: CommandDeps): Promise<void> {
  deps.client.stop();
  deps.controller.modelChanged();
}
