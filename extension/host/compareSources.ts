/**
 * Where Compare With… finds the other version: the file as saved on disk, the version at git HEAD (through VS Code's
 * git extension API), another open editor, or this text with the selection replaced by what the user types (the
 * usual way to make a corrupted prompt: change one word).
 */
import * as vscode from 'vscode';
import { HeadlightError } from '../common/errors';
import type { CurrentAnalysis } from './analysisSource';
import { otherSlice, type CompareSourceKind, type CompareTarget } from './comparison';

/** The part of VS Code's git extension API (extensions/git/src/api/git.d.ts) used here. */
interface GitApi {
  repositories: { rootUri: vscode.Uri; show(ref: string, path: string): Promise<string> }[];
  getRepository(uri: vscode.Uri): { rootUri: vscode.Uri; show(ref: string, path: string): Promise<string> } | null;
}

/** Arguments for tests and keybindings: `{source: 'replace', replacement: 'dog'}`, `{source: 'editor', uri}`. */
export interface CompareArgs {
  source?: CompareSourceKind;
  replacement?: string;
  uri?: string;
}

/** Asks which version to compare with (unless `args` says) and returns its text sliced like the current run. */
export async function pickCompareTarget(cur: CurrentAnalysis, doc: vscode.TextDocument, editor: vscode.TextEditor | undefined, args: CompareArgs = {}): Promise<CompareTarget | undefined> {
  let kind = args.source;
  if (!kind) {
    const items: (vscode.QuickPickItem & { source: CompareSourceKind })[] = [
      { label: '$(save) Saved on disk', description: doc.isUntitled ? 'untitled: not saved yet' : doc.isDirty ? 'unsaved changes' : 'no unsaved changes', source: 'saved' },
      { label: '$(git-commit) Git HEAD', description: 'the committed version', source: 'head' },
      { label: '$(files) Another open editor…', source: 'editor' },
      { label: '$(replace) This text with the selection replaced by…', description: 'change a word: a clean vs corrupted prompt', source: 'replace' },
    ];
    kind = (await vscode.window.showQuickPick(items, { title: 'Headlight: compare with…' }))?.source;
    if (!kind) return undefined;
  }
  const text = doc.getText();
  const make = (label: string, other: string): CompareTarget => ({ kind: kind!, label, ...otherSlice(cur, text.length, other) });
  switch (kind) {
    case 'saved': {
      if (doc.isUntitled) throw new HeadlightError('no-file', `${doc.uri.path} has never been saved, so there is no version on disk.`, 'Save it first, or compare with another source.');
      let bytes: Uint8Array;
      try {
        bytes = await vscode.workspace.fs.readFile(doc.uri);
      } catch (err) {
        throw new HeadlightError('file', `Cannot read ${doc.uri.fsPath}: ${(err as Error).message}.`, 'Compare with another source.');
      }
      return make('saved on disk', new TextDecoder('utf-8').decode(bytes));
    }
    case 'head':
      return make('git HEAD', await gitHead(doc.uri));
    case 'editor': {
      const others = vscode.workspace.textDocuments.filter((d) => d.uri.toString() !== doc.uri.toString() && d.uri.scheme !== 'output' && d.uri.scheme !== 'vscode-scm');
      let other = args.uri ? others.find((d) => d.uri.toString() === args.uri) : undefined;
      if (!other) {
        if (!others.length) throw new HeadlightError('no-editor', 'No other text document is open.', 'Open the other version in an editor first.');
        const picked = await vscode.window.showQuickPick(others.map((d) => ({ label: vscode.workspace.asRelativePath(d.uri), doc: d })), { title: 'Headlight: compare with which editor?' });
        other = picked?.doc;
      }
      return other ? make(vscode.workspace.asRelativePath(other.uri), other.getText()) : undefined;
    }
    case 'replace': {
      const sel = editor?.document === doc ? editor.selection : undefined;
      if (!sel || sel.isEmpty) throw new HeadlightError('no-selection', 'Nothing is selected to replace.', 'Select the word to change (e.g. a name), then run Compare With… again.');
      const old = doc.getText(sel);
      const replacement = args.replacement ?? (await vscode.window.showInputBox({ title: 'Headlight: replace the selection by…', prompt: `Replaces “${old}” in a copy of the text (the document is not changed).`, value: old }));
      if (replacement === undefined) return undefined;
      const a = doc.offsetAt(sel.start);
      const b = doc.offsetAt(sel.end);
      return make(`selection replaced by “${replacement}”`, text.slice(0, a) + replacement + text.slice(b));
    }
  }
}

/** The document's text at git HEAD, through the built-in git extension. */
async function gitHead(uri: vscode.Uri): Promise<string> {
  const ext = vscode.extensions.getExtension<{ getAPI(version: 1): GitApi }>('vscode.git');
  if (!ext) throw new HeadlightError('no-git', 'The Git extension is not available in this window.', 'Enable the built-in Git extension, or compare with another source.');
  const git = (ext.isActive ? ext.exports : await ext.activate()).getAPI(1);
  const repo = git.getRepository(uri);
  if (!repo) throw new HeadlightError('no-git', `${vscode.workspace.asRelativePath(uri)} is not inside a git repository.`, 'Open the folder of a git repository, or compare with another source.');
  try {
    return await repo.show('HEAD', uri.fsPath);
  } catch (err) {
    throw new HeadlightError('untracked', `${vscode.workspace.asRelativePath(uri)} has no version at git HEAD (${(err as Error).message.split('\n')[0]}).`, 'Commit the file first, or compare with the version saved on disk.');
  }
}
