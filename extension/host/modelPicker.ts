/**
 * Headlight: Select Model — the bundled model, models already in the Hugging Face cache, known downloadable ones,
 * a local folder, or any repo id. Known models show their family, download size and a gated mark; families the
 * engine cannot run yet are listed anyway, and loading one gives the engine's "unsupported architecture" error.
 * The choice is written to the user setting `headlight.model`; the model manager loads it from there. Downloads
 * show a cancellable progress notification.
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
    const family = c.known ? `${c.known.family} · ` : '';
    items.push({ label: `${mark(c.repoId)}${c.repoId}`, description: `${family}${store.formatBytes(c.sizeBytes)}`, detail: c.loadableDir, action: async () => c.repoId });
  }
  const cachedIds = new Set(loadable.flatMap((c) => [c.repoId, c.known?.id, c.known?.repoId]));
  const downloadable = store.KNOWN_MODELS.filter((k) => !cachedIds.has(k.repoId) && !cachedIds.has(k.id));
  if (downloadable.length) items.push({ label: 'Download from Hugging Face', kind: vscode.QuickPickItemKind.Separator });
  for (const k of downloadable) {
    const gqa = k.kvHeads !== k.heads ? ` (${k.kvHeads} KV)` : '';
    items.push({
      label: `$(cloud-download) ${k.repoId}${k.gated ? '  $(lock) gated' : ''}`,
      description: `${k.family} · ${k.exactSize ? '' : '≈'}${store.formatBytes(k.weightsBytes)} · ${k.layers} layers × ${k.heads} heads${gqa}`,
      detail: k.gated
        ? `Gated: accept the licence at ${hubPage(k.repoId)} and set HF_TOKEN (or run \`hf auth login\`) before downloading.`
        : undefined,
      action: async () => {
        await downloadWithProgress(k.repoId, ctx.bundledDir);
        return k.repoId;
      },
    });
  }
  items.push({ label: 'Other', kind: vscode.QuickPickItemKind.Separator });
  items.push({ label: '$(folder-opened) Open a local folder…', description: 'config.json + safetensors (one file or shards) + tokenizer', action: () => pickFolder() });
  items.push({ label: '$(edit) Enter a Hugging Face repo id…', action: () => enterRepoId(ctx, store.isValidRepoId) });

  const picked = await vscode.window.showQuickPick(items, { title: 'Headlight: model', placeHolder: `Now: ${ctx.current}` });
  const ref = await picked?.action?.();
  if (!ref) return undefined;
  await vscode.workspace.getConfiguration('headlight').update('model', ref, vscode.ConfigurationTarget.Global);
  return ref;
}

/** The repo's page on the Hub (HF_ENDPOINT honoured), where a gated model's licence is accepted. */
function hubPage(repoId: string): string {
  return `${(process.env.HF_ENDPOINT?.trim() || 'https://huggingface.co').replace(/\/+$/, '')}/${repoId}`;
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
