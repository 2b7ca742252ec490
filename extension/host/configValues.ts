/**
 * Headlight's settings as values: the typed config and the rules that turn raw setting values into it (ranges,
 * defaults, which scopes count in an untrusted workspace). Pure, no `vscode`: config.ts hands in VS Code's
 * WorkspaceConfiguration, the unit tests a plain reader.
 */
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
  /** The engine's memory budget in MB; 0 = 80% of the available memory. */
  readonly memoryBudgetMB: number;
}

/** One setting's value in each scope, as `WorkspaceConfiguration.inspect` gives it. */
export interface InspectedSetting<T> {
  defaultValue?: T;
  globalValue?: T;
  workspaceValue?: T;
  workspaceFolderValue?: T;
}

/** What readConfig needs of a settings section (VS Code's WorkspaceConfiguration is one). */
export interface SettingsReader {
  /** The effective value (every scope merged), or undefined. */
  get<T>(key: string): T | undefined;
  inspect<T>(key: string): InspectedSetting<T> | undefined;
}

/** The setting's values ("attention" | "valueWeighted") <-> the engine protocol's modes. */
export function attentionModeOf(setting: string | undefined): AttentionMode {
  return setting === 'valueWeighted' ? 'value-weighted' : 'attention';
}
export function attentionModeSetting(mode: AttentionMode): 'attention' | 'valueWeighted' {
  return mode === 'value-weighted' ? 'valueWeighted' : 'attention';
}

/**
 * The model to load. A workspace that is not trusted cannot choose it (a folder of its own, or a repo it names):
 * only the user's own setting and the default count there, whatever the workspace and folder settings say.
 */
export function modelOf(inspected: InspectedSetting<string> | undefined, effective: string | undefined, trusted: boolean): string {
  if (trusted) return effective || 'bundled';
  return inspected?.globalValue || inspected?.defaultValue || 'bundled';
}

export function configFrom(c: SettingsReader, trusted: boolean): HeadlightConfig {
  const num = (key: string, fallback: number, min: number, max: number) => {
    const v = c.get<number>(key);
    return typeof v === 'number' && Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : fallback;
  };
  const bool = (key: string, fallback: boolean) => {
    const v = c.get<boolean>(key);
    return typeof v === 'boolean' ? v : fallback;
  };
  return Object.freeze({
    model: modelOf(c.inspect<string>('model'), c.get<string>('model'), trusted),
    live: bool('live', true),
    debounceMs: num('debounceMs', 300, 0, 10_000),
    hoverEnabled: bool('hover.enabled', true),
    highlightEnabled: bool('highlight.enabled', true),
    highlightDirection: c.get<string>('highlight.direction') === 'targets' ? 'targets' : 'sources',
    highlightThreshold: num('highlight.threshold', 0.05, 0, 0.95),
    surprisalEnabled: bool('surprisal.enabled', false),
    windowTokens: Math.round(num('window.tokens', 1024, 16, 8192)),
    threads: Math.round(num('threads', 0, 0, 256)),
    attentionMode: attentionModeOf(c.get<string>('attentionMode')),
    compareThreshold: num('compare.threshold', 2, 0, 30),
    memoryBudgetMB: Math.round(num('memoryBudgetMB', 0, 0, 1_048_576)),
  });
}
