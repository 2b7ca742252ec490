/**
 * The model picker's entries without `vscode` (modelPicker.ts shows them): per model its label, a description that
 * starts (after the family) with the engine's estimated peak memory for the configured window (common/memoryPlan.ts over hub/modelMemory.ts), and a
 * warning where it will not fit the budget. Known models not yet downloaded get their estimate at once from their facts;
 * folders (the bundled model, the Hugging Face cache, a local folder) start as "estimating memory…" and fill in when
 * their headers are read — in parallel, each folder once per picker, under a time limit.
 */
import { basename } from 'node:path';
import { DEFAULT_BUDGET_SHARE, fitWindow, memoryBudget, planMemory, type AvailableMemory } from '../common/memoryPlan';
import type { CachedModelInfo, KnownModel } from '../hub/modelStore';
import { knownShape, readModelShape, type ModelShape } from '../hub/modelMemory';

/** What the estimates are made for: the window setting and the budget the engine will load under. */
export interface MemoryContext {
  /** headlight.window.tokens */
  windowTokens: number;
  budgetBytes: number;
  /** How the budget reads in a warning: "3.2 GB free" (80% of it planned) or "headlight.memoryBudgetMB 2,048". */
  budgetLabel: string;
}

/** The memory context from the settings and the machine: the engine's budget rule (memoryBudget) and a label for it. */
export function memoryContext(windowTokens: number, memoryBudgetMB: number, available: AvailableMemory): MemoryContext {
  const budget = memoryBudget(memoryBudgetMB, available);
  const free = formatMemory(available.bytes);
  const set = memoryBudgetMB > 0 && budget.bytes === memoryBudgetMB * 2 ** 20;
  const budgetLabel = set
    ? `budget ${formatMemory(budget.bytes)} (headlight.memoryBudgetMB)`
    : memoryBudgetMB > 0
      ? `${free} free`
      : `${free} free, ${Math.round(DEFAULT_BUDGET_SHARE * 100)}% of it planned`;
  return { windowTokens, budgetBytes: budget.bytes, budgetLabel };
}

export type PickerAction =
  | { kind: 'use'; ref: string }
  | { kind: 'download'; repoId: string }
  | { kind: 'pickFolder' }
  | { kind: 'enterRepoId' };

export interface PickerEntry {
  label: string;
  description?: string;
  detail?: string;
  separator?: true;
  action?: PickerAction;
  /** A folder whose estimate fills in: `description` is `prefix` + the estimate + `suffix`. */
  estimateOf?: { dir: string; prefix: string; suffix?: string };
}

export interface PickerInput {
  /** headlight.model now: 'bundled', a repo id or a folder path. */
  current: string;
  bundledDir: string;
  cached: CachedModelInfo[];
  known: readonly KnownModel[];
  memory: MemoryContext;
  /** formatBytes of the store (download sizes). */
  formatBytes: (n: number) => string;
}

export const ESTIMATING = 'estimating memory…';

/** The entries in the picker's order: bundled, the current local folder, downloaded, downloadable, other. */
export function pickerEntries(p: PickerInput): PickerEntry[] {
  const mark = (ref: string) => (ref === p.current ? '$(check) ' : '');
  const folderEntry = (label: string, prefix: string, dir: string, action: PickerAction, detail?: string, suffix = ''): PickerEntry => ({
    label,
    description: `${prefix}${ESTIMATING}${suffix}`,
    detail,
    action,
    estimateOf: { dir, prefix, suffix },
  });
  const entries: PickerEntry[] = [folderEntry(`${mark('bundled')}headlight-tiny`, 'bundled, works offline · ', p.bundledDir, { kind: 'use', ref: 'bundled' })];
  if (isFolderRef(p.current)) entries.push(folderEntry(`$(check) ${basename(p.current)}`, 'local folder · ', p.current, { kind: 'use', ref: p.current }, p.current));
  const loadable = p.cached.filter((c) => c.loadableDir);
  if (loadable.length) entries.push({ label: 'Downloaded (Hugging Face cache)', separator: true });
  for (const c of loadable) {
    const family = c.known ? `${c.known.family} · ` : '';
    entries.push(folderEntry(`${mark(c.repoId)}${c.repoId}`, family, c.loadableDir!, { kind: 'use', ref: c.repoId }, c.loadableDir, ` · ${p.formatBytes(c.sizeBytes)} on disk`));
  }
  const cachedIds = new Set(loadable.flatMap((c) => [c.repoId, c.known?.id, c.known?.repoId]));
  const downloadable = p.known.filter((k) => !cachedIds.has(k.repoId) && !cachedIds.has(k.id));
  if (downloadable.length) entries.push({ label: 'Download from Hugging Face', separator: true });
  for (const k of downloadable) {
    const gqa = k.kvHeads !== k.heads ? ` (${k.kvHeads} KV)` : '';
    entries.push({
      label: `$(cloud-download) ${k.repoId}${k.gated ? '  $(lock) gated' : ''}`,
      description: `${k.family} · ${estimateText(knownShape(k), p.memory)} · download ${k.exactSize ? '' : '≈'}${p.formatBytes(k.weightsBytes)} · ${k.layers} layers × ${k.heads} heads${gqa}`,
      detail: k.gated ? `Gated: accept the licence at ${hubPage(k.repoId)} and set HF_TOKEN (or run \`hf auth login\`) before downloading.` : undefined,
      action: { kind: 'download', repoId: k.repoId },
    });
  }
  entries.push({ label: 'Other', separator: true });
  entries.push({ label: '$(folder-opened) Open a local folder…', description: 'config.json + safetensors (one file or shards) + tokenizer', action: { kind: 'pickFolder' } });
  entries.push({ label: '$(edit) Enter a Hugging Face repo id…', action: { kind: 'enterRepoId' } });
  return entries;
}

/** A model setting that names a folder (not 'bundled', not a repo id `org/name`). */
function isFolderRef(ref: string): boolean {
  return ref !== 'bundled' && (ref.startsWith('/') || ref.startsWith('.') || ref.startsWith('~') || /^[A-Za-z]:[\\/]/.test(ref) || ref.startsWith('\\\\'));
}

/**
 * The estimate for the configured window: "≈ 1.6 GB at 1,024 tokens"; over the budget "$(warning) needs 5.1 GB at
 * 1,024 tokens, 3.2 GB free, …" with what the engine will do: run a shorter window, or refuse the model.
 */
export function estimateText(shape: ModelShape, m: MemoryContext): string {
  const window = shape.fixedWindow ? shape.context : Math.min(m.windowTokens, shape.context);
  const total = planMemory({ dims: shape.dims, tensors: shape.tensors, window }).total;
  if (total <= m.budgetBytes) return `≈ ${formatMemory(total)} at ${tokens(window)}`;
  const needs = `$(warning) needs ${formatMemory(total)} at ${tokens(window)}, ${m.budgetLabel}`;
  const fitted = shape.fixedWindow ? undefined : fitWindow({ dims: shape.dims, tensors: shape.tensors }, m.budgetBytes, window);
  if (fitted === undefined) return `${needs}: too big to load`;
  return `${needs}: runs at ${tokens(fitted)} (≈ ${formatMemory(planMemory({ dims: shape.dims, tensors: shape.tensors, window: fitted }).total)})`;
}

/** Why a folder has no estimate, in one short line (the picker must not crash on a folder it cannot read). */
export function unavailableText(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return `estimate unavailable: ${msg.length > 140 ? `${msg.slice(0, 139)}…` : msg}`;
}

/** How long a folder's headers may take before its entry says so (a slow network drive must not hold the picker). */
export const ESTIMATE_TIMEOUT_MS = 3000;

/**
 * Fills in the folders' estimates: each distinct folder read once, all in parallel, each under `timeoutMs`; calls
 * `onUpdate` after each entry's description changes. Never rejects.
 */
export async function fillEstimates(
  entries: PickerEntry[],
  memory: MemoryContext,
  onUpdate: (entry: PickerEntry) => void,
  opts: { timeoutMs?: number; read?: (dir: string) => Promise<ModelShape> } = {},
): Promise<void> {
  const read = opts.read ?? readModelShape;
  const timeoutMs = opts.timeoutMs ?? ESTIMATE_TIMEOUT_MS;
  const shapes = new Map<string, Promise<ModelShape>>();
  await Promise.all(
    entries.map(async (entry) => {
      const of = entry.estimateOf;
      if (!of) return;
      if (!shapes.has(of.dir)) shapes.set(of.dir, withTimeout(read(of.dir), timeoutMs));
      let text: string;
      try {
        text = estimateText(await shapes.get(of.dir)!, memory);
      } catch (err) {
        text = unavailableText(err);
      }
      entry.description = `${of.prefix}${text}${of.suffix ?? ''}`;
      onUpdate(entry);
    }),
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`reading the headers took over ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Memory as the picker shows it: MB under 1 GiB, else GB with one decimal (binary units, as the engine's messages). */
export function formatMemory(bytes: number): string {
  return bytes < 2 ** 30 ? `${Math.round(bytes / 2 ** 20).toLocaleString('en-US')} MB` : `${(bytes / 2 ** 30).toFixed(1)} GB`;
}

const tokens = (n: number) => `${n.toLocaleString('en-US')} tokens`;

/** The repo's page on the Hub (HF_ENDPOINT honoured), where a gated model's licence is accepted. */
function hubPage(repoId: string): string {
  return `${(process.env.HF_ENDPOINT?.trim() || 'https://huggingface.co').replace(/\/+$/, '')}/${repoId}`;
}
