/**
 * Headlight: Select Model — the bundled model, models already in the Hugging Face cache, known downloadable ones,
 * a local folder, or any repo id. The choice is written to the user setting `headlight.model`; the model manager
 * loads it from there. Downloads show a cancellable progress notification.
 */
import * as vscode from 'vscode';
import { downloadWithProgress } from './modelManager';

interface PickerContext {
  bundledDir: string;
  current: string;
}

type Item = vscode.QuickPickItem & { action?: () => Promise<string | undefined> };

export async function pickModel(ctx: PickerContext): Promise<string | undefined> {
  const store = await import('../hub/modelStore');
  const cached = await store.listCachedModels().catch(() => []);
  const mark = (ref: string) => (ref === ctx.current ? '$(check) ' : '');
  const items: Item[] = [{ label: `${mark('bundled')}headlight-tiny`, description: 'bundled, works offline', action: async () => 'bundled' }];
  const loadable = cached.filter((c) => c.loadableDir);
  if (loadable.length) items.push({ label: 'Downloaded (Hugging Face cache)', kind: vscode.QuickPickItemKind.Separator });
  for (const c of loadable) {
    items.push({ label: `${mark(c.repoId)}${c.repoId}`, description: store.formatBytes(c.sizeBytes), detail: c.loadableDir, action: async () => c.repoId });
  }
  const cachedIds = new Set(loadable.flatMap((c) => [c.repoId, c.known?.id, c.known?.repoId]));
  const downloadable = store.KNOWN_MODELS.filter((k) => !cachedIds.has(k.repoId) && !cachedIds.has(k.id));
  if (downloadable.length) items.push({ label: 'Download from Hugging Face', kind: vscode.QuickPickItemKind.Separator });
  for (const k of downloadable) {
    items.push({
      label: `$(cloud-download) ${k.repoId}`,
      description: `${k.exactSize ? '' : '≈'}${store.formatBytes(k.weightsBytes)} · ${k.layers} layers × ${k.heads} heads`,
      action: async () => {
        await downloadWithProgress(k.repoId, ctx.bundledDir);
        return k.repoId;
      },
    });
  }
  items.push({ label: 'Other', kind: vscode.QuickPickItemKind.Separator });
  items.push({ label: '$(folder-opened) Open a local folder…', description: 'config.json + model.safetensors + tokenizer', action: () => pickFolder() });
  items.push({ label: '$(edit) Enter a Hugging Face repo id…', action: () => enterRepoId(ctx, store.isValidRepoId) });

  const picked = await vscode.window.showQuickPick(items, { title: 'Headlight: model', placeHolder: `Now: ${ctx.current}` });
  const ref = await picked?.action?.();
  if (!ref) return undefined;
  await vscode.workspace.getConfiguration('headlight').update('model', ref, vscode.ConfigurationTarget.Global);
  return ref;
}

async function pickFolder(): Promise<string | undefined> {
  const uris = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, canSelectMany: false, openLabel: 'Use this model', title: 'Headlight: a GPT-2 model folder' });
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
