// Composition root of the Headlight extension: creates the parts and registers them for disposal. No logic here.
import * as vscode from 'vscode';

/** The model that ships inside the VSIX (models/headlight-tiny) and is used until the user picks another one. */
const BUNDLED_MODEL = 'headlight-tiny';

export function activate(context: vscode.ExtensionContext): void {
  context.subscriptions.push(createStatusItem());
}

export function deactivate(): void {
  // Everything is disposed through context.subscriptions.
}

/** Status bar entry `headlight.status`; its DOM id in the workbench is `headlight.headlight.headlight.status`. */
function createStatusItem(): vscode.StatusBarItem {
  const item = vscode.window.createStatusBarItem('headlight.status', vscode.StatusBarAlignment.Right, 100);
  item.name = 'Headlight';
  item.text = '$(eye) Headlight';
  item.tooltip = `Headlight: model ${BUNDLED_MODEL} (bundled)`;
  item.show();
  return item;
}
