/** Headlight's settings, read in one place into a typed, immutable object that is passed to whoever needs it. */
import * as vscode from 'vscode';
import type { AttentionMode } from '../common/engineProtocol';

export type HighlightDirection = 'sources' | 'targets';

export interface HeadlightConfig {
  /** 'bundled', a Hugging Face repo id, or a folder. From user settings only in untrusted workspaces. */
  readonly model: string;
  readonly live: boolean;
  readonly debounceMs: number;
  readonly hoverEnabled: boolean;
  readonly highlightEnabled: boolean;
  readonly highlightDirection: HighlightDirection;
  readonly highlightThreshold: number;
  readonly surprisalEnabled: boolean;
  /** Tokens to analyse around the cursor (capped at the model's context). */
  readonly windowTokens: number;
  /** Engine threads; 0 = onnxruntime's default. */
  readonly threads: number;
  /** What every surface shows as a weight: attention probabilities or value-weighted attention. */
  readonly attentionMode: AttentionMode;
  /** Compare With…: tokens whose surprisal moved by more than this many bits are coloured in the editor. */
  readonly compareThreshold: number;
}

/** The setting's values ("attention" | "valueWeighted") <-> the engine protocol's modes. */
export function attentionModeOf(setting: string | undefined): AttentionMode {
  return setting === 'valueWeighted' ? 'value-weighted' : 'attention';
}
export function attentionModeSetting(mode: AttentionMode): 'attention' | 'valueWeighted' {
  return mode === 'value-weighted' ? 'valueWeighted' : 'attention';
}

export const SECTION = 'headlight';

/** Reads the settings. In an untrusted workspace `headlight.model` from workspace settings is not honoured. */
export function readConfig(trusted = vscode.workspace.isTrusted): HeadlightConfig {
  const c = vscode.workspace.getConfiguration(SECTION);
  const num = (key: string, fallback: number, min: number, max: number) => {
    const v = c.get<number>(key, fallback);
    return Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : fallback;
  };
  return Object.freeze({
    model: modelSetting(c, trusted),
    live: c.get<boolean>('live', true),
    debounceMs: num('debounceMs', 300, 0, 10_000),
    hoverEnabled: c.get<boolean>('hover.enabled', true),
    highlightEnabled: c.get<boolean>('highlight.enabled', true),
    highlightDirection: c.get<string>('highlight.direction') === 'targets' ? 'targets' : 'sources',
    highlightThreshold: num('highlight.threshold', 0.05, 0, 0.95),
    surprisalEnabled: c.get<boolean>('surprisal.enabled', false),
    windowTokens: Math.round(num('window.tokens', 1024, 16, 8192)),
    threads: Math.round(num('threads', 0, 0, 256)),
    attentionMode: attentionModeOf(c.get<string>('attentionMode')),
    compareThreshold: num('compare.threshold', 2, 0, 30),
  });
}

function modelSetting(c: vscode.WorkspaceConfiguration, trusted: boolean): string {
  if (trusted) return c.get<string>('model', 'bundled') || 'bundled';
  const i = c.inspect<string>('model');
  return i?.globalValue || i?.defaultValue || 'bundled';
}

/** Fires `listener` with fresh settings whenever a `headlight.*` setting or the workspace trust changes. */
export function onDidChangeConfig(listener: (config: HeadlightConfig) => void): vscode.Disposable {
  return vscode.Disposable.from(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration(SECTION)) listener(readConfig());
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => listener(readConfig())),
  );
}

/** Writes a user-level setting (the toggles). */
export function setUserSetting(key: string, value: unknown): Thenable<void> {
  return vscode.workspace.getConfiguration(SECTION).update(key, value, vscode.ConfigurationTarget.Global);
}
