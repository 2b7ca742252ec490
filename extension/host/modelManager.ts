/**
 * Which model the engine has loaded: resolves `headlight.model` ('bundled', a Hugging Face repo id, a folder) to a
 * folder with the model store, offers a download when a repo is not cached yet, and loads it in the engine process.
 */
import * as vscode from 'vscode';
import type { ModelInfo } from '../common/engineProtocol';
import { modelDisplayName } from '../common/displayNames';
import { HeadlightError } from '../common/errors';
import type { EngineClient } from './engineClient';
import type { HeadlightConfig } from './config';
import { toAbortSignal } from './cancellation';

/** The download prompt's second answer: names the bundled model as the status bar and the panel do. */
const USE_BUNDLED = `Use the bundled ${modelDisplayName('bundled')}`;

export interface ModelManagerDeps {
  client: EngineClient;
  bundledDir: string;
  config: () => HeadlightConfig;
  log: (message: string) => void;
}

export class ModelManager implements vscode.Disposable {
  private loaded: { ref: string; info: ModelInfo } | undefined;
  private pending: { ref: string; promise: Promise<ModelInfo> } | undefined;
  private readonly emitter = new vscode.EventEmitter<ModelInfo>();
  /** Fires after a (different) model was loaded. */
  readonly onDidLoadModel = this.emitter.event;

  constructor(private readonly deps: ModelManagerDeps) {}

  get info(): ModelInfo | undefined {
    return this.loaded?.info;
  }

  /** The configured model, loaded (once) in the engine. */
  ensure(): Promise<ModelInfo> {
    const { model: ref, threads, windowTokens, memoryBudgetMB } = this.deps.config();
    if (this.loaded?.ref === ref) return Promise.resolve(this.loaded.info);
    if (this.pending?.ref === ref) return this.pending.promise;
    const promise = this.load(ref, threads, windowTokens, memoryBudgetMB).finally(() => {
      if (this.pending?.promise === promise) this.pending = undefined;
    });
    this.pending = { ref, promise };
    return promise;
  }

  /** Forgets the loaded model so the next `ensure` loads the configured one (after a settings change). */
  invalidate(): void {
    this.loaded = undefined;
  }

  private async load(ref: string, threads: number, maxWindow: number, memoryBudgetMB: number): Promise<ModelInfo> {
    const dir = await this.resolve(ref);
    const info = await this.deps.client.load({ ref, dir, threads: threads || undefined, maxWindow, memoryBudgetMB: memoryBudgetMB || undefined });
    this.loaded = { ref, info };
    const name = modelDisplayName(ref);
    this.deps.log(`model ${name}${name === ref ? '' : ` (${ref})`} loaded from ${dir} in ${Math.round(info.loadMs)} ms (${info.nLayer} layers × ${info.nHead} heads, context ${info.nPositions})`);
    this.emitter.fire(info);
    return info;
  }

  /** A folder for `ref`; a repo that is not cached is downloaded after the user agrees. */
  private async resolve(ref: string): Promise<string> {
    const store = await import('../hub/modelStore');
    try {
      return (await store.resolveModel(ref, { bundledDir: this.deps.bundledDir, download: false })).dir;
    } catch (err) {
      if (!(err instanceof HeadlightError) || err.code !== 'model-not-cached') throw err;
      const choice = await vscode.window.showInformationMessage(`Headlight: ${ref} is not downloaded yet. Download it now?`, 'Download', USE_BUNDLED);
      if (choice === 'Download') return (await downloadWithProgress(ref, this.deps.bundledDir)).dir;
      if (choice === USE_BUNDLED) {
        await vscode.workspace.getConfiguration('headlight').update('model', 'bundled', vscode.ConfigurationTarget.Global);
        return (await store.resolveModel('bundled', { bundledDir: this.deps.bundledDir })).dir;
      }
      throw new HeadlightError('cancelled', `Loading ${ref} was cancelled.`);
    }
  }

  dispose(): void {
    this.emitter.dispose();
  }
}

/** Downloads a Hugging Face model into the shared cache, with a cancellable progress notification. */
export async function downloadWithProgress(ref: string, bundledDir: string): Promise<{ dir: string }> {
  const store = await import('../hub/modelStore');
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Headlight: downloading ${ref}`, cancellable: true },
    async (progress, token) => {
      let reported = 0;
      const resolved = await store.downloadModel(ref, {
        bundledDir,
        signal: toAbortSignal(token),
        onProgress: (p) => {
          const pct = p.total > 0 ? (100 * p.bytes) / p.total : 0;
          const eta = p.etaSec !== undefined ? `, ${Math.ceil(p.etaSec)} s left` : '';
          progress.report({ increment: Math.max(0, pct - reported), message: `${p.file} (${p.fileIndex}/${p.fileCount}): ${store.formatBytes(p.bytes)} of ${store.formatBytes(p.total)}${eta}` });
          reported = Math.max(reported, pct);
        },
      });
      return { dir: resolved.dir };
    },
  );
}
