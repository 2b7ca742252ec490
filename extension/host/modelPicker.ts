/**
 * Headlight: Select Model — the bundled model, models already in the Hugging Face cache, known downloadable ones,
 * a local folder, or any repo id. Known models show their family, download size and a gated mark; families the
 * engine cannot run yet are listed anyway, and loading one gives the engine's "unsupported architecture" error.
 * Every model shows the engine's estimated peak memory for the configured window, with a warning where it will not
 * fit the memory budget (pickerItems.ts): the picker opens at once and the folders' estimates fill in as their
 * headers are read. The choice is written to the user setting `headlight.model`; the model manager loads it from
 * there. Downloads show a cancellable progress notification.
 */
import * as vscode from 'vscode';
import { readConfig } from './config';
import { downloadWithProgress } from './modelManager';

interface PickerContext {
  bundledDir: string;
  current: string;
}

type Item = vscode.QuickPickItem & { entry?: import('./pickerItems').PickerEntry };

export async function pickModel(ctx: PickerContext): Promise<string | undefined> {
  const [store, picker, { availableMemoryNow }] = await Promise.all([import('../hub/modelStore'), import('./pickerItems'), import('../hub/modelMemory')]);
  const cached = await store.listCachedModels().catch(() => []);
  const { windowTokens, memoryBudgetMB } = readConfig();
  const memory = picker.memoryContext(windowTokens, memoryBudgetMB, availableMemoryNow());
  const entries = picker.pickerEntries({ current: ctx.current, bundledDir: ctx.bundledDir, cached, known: store.KNOWN_MODELS, memory, formatBytes: store.formatBytes });
  const toItem = (entry: (typeof entries)[number]): Item =>
    entry.separator ? { label: entry.label, kind: vscode.QuickPickItemKind.Separator } : { label: entry.label, description: entry.description, detail: entry.detail, entry };

  const qp = vscode.window.createQuickPick<Item>();
  qp.title = 'Headlight: model';
  qp.placeholder = `Now: ${ctx.current} · memory estimates at ${windowTokens.toLocaleString('en-US')} tokens (headlight.window.tokens)`;
  qp.matchOnDescription = true;
  qp.items = entries.map(toItem);
  qp.busy = entries.some((e) => e.estimateOf);
  // Estimates fill in: re-set the items (VS Code redraws on assignment), keeping the entry the user is on active.
  let pending: ReturnType<typeof setTimeout> | undefined;
  const refresh = () => {
    pending ??= setTimeout(() => {
      pending = undefined;
      const active = qp.activeItems[0]?.entry;
      qp.items = entries.map(toItem);
      const again = qp.items.find((i) => i.entry && i.entry === active);
      if (again) qp.activeItems = [again];
    }, 50);
  };
  void picker.fillEstimates(entries, memory, refresh).finally(() => {
    qp.busy = false;
  });

  const picked = await new Promise<Item | undefined>((resolve) => {
    qp.onDidAccept(() => resolve(qp.selectedItems[0]));
    qp.onDidHide(() => resolve(undefined));
    qp.show();
  });
  clearTimeout(pending);
  qp.dispose();
  const action = picked?.entry?.action;
  if (!action) return undefined;
  let ref: string | undefined;
  switch (action.kind) {
    case 'use':
      ref = action.ref;
      break;
    case 'download':
      await downloadWithProgress(action.repoId, ctx.bundledDir);
      ref = action.repoId;
      break;
    case 'pickFolder':
      ref = await pickFolder();
      break;
    case 'enterRepoId':
      ref = await enterRepoId(ctx, store.isValidRepoId);
      break;
  }
  if (!ref) return undefined;
  await vscode.workspace.getConfiguration('headlight').update('model', ref, vscode.ConfigurationTarget.Global);
  return ref;
}

async function pickFolder(): Promise<string | undefined> {
  const uris = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, canSelectMany: false, openLabel: 'Use this model', title: 'Headlight: a model folder (config.json, safetensors, tokenizer)' });
  return uris?.[0]?.fsPath;
}

async function enterRepoId(ctx: PickerContext, isValid: (id: string) => boolean): Promise<string | undefined> {
  const id = await vscode.window.showInputBox({
    title: 'Headlight: Hugging Face repo id',
    placeHolder: 'openai-community/gpt2',
    validateInput: (v) => (isValid(v.split('@')[0]) ? undefined : 'A repo id looks like org/name (optionally @revision).'),
  });
  if (!id) return undefined;
  await downloadWithProgress(id, ctx.bundledDir);
  return id;
}
