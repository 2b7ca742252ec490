/** Headlight's settings, read in one place into a typed, immutable object that is passed to whoever needs it. */
import * as vscode from 'vscode';
import { configFrom, type HeadlightConfig } from './configValues';

export { attentionModeOf, attentionModeSetting, type HeadlightConfig, type HighlightDirection } from './configValues';

export const SECTION = 'headlight';

/**
 * Reads the settings (configValues.ts has the rules). In an untrusted workspace `headlight.model` from workspace
 * settings is not honoured.
 */
export function readConfig(trusted = vscode.workspace.isTrusted): HeadlightConfig {
  return configFrom(vscode.workspace.getConfiguration(SECTION), trusted);
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
