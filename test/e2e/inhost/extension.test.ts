// In-host integration tests: run by mocha inside the real VS Code extension host, against the real engine process.
// The model is the bundled one when its weights exist, else $HEADLIGHT_TEST_MODEL (a random checkpoint folder).
// Figures (activation, hover, highlight, incremental run) are printed as `FIGURE name value` lines, not asserted.
import * as assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { HeadlightApi } from '../../../extension/extension';
import type { CurrentAnalysis } from '../../../extension/host/analysisSource';
import type { RunEvent } from '../../../extension/host/controller';

const EXTENSION_ID = 'headlight.headlight';

/** `FIGURE name value unit` lines, collected for the driver's output. */
export const FIGURES: string[] = [];

function figure(name: string, value: number | undefined, unit = 'ms'): void {
  FIGURES.push(`FIGURE ${name} ${value === undefined ? 'n/a' : value.toFixed(1)} ${unit}`);
  console.log(`FIGURE ${name} ${value === undefined ? 'n/a' : value.toFixed(1)} ${unit}`);
}

function next<T>(event: vscode.Event<T>, pred: (v: T) => boolean = () => true, timeoutMs = 30_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.dispose();
      reject(new Error(`no event within ${timeoutMs} ms`));
    }, timeoutMs);
    const sub = event((v) => {
      if (!pred(v)) return;
      clearTimeout(timer);
      sub.dispose();
      resolve(v);
    });
  });
}

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function untitled(content: string): Promise<vscode.TextEditor> {
  const doc = await vscode.workspace.openTextDocument({ content, language: 'plaintext' });
  return vscode.window.showTextDocument(doc);
}

const SAMPLE = 'The quick brown fox jumps over the lazy dog. The dog sleeps, and the fox runs away into the forest.\n';

export function suite(): void {
  describe('Headlight in the real extension host', function () {
    let api: HeadlightApi;
    const tmp = mkdtempSync(join(tmpdir(), 'headlight-inhost-'));

    before(async function () {
      const ext = vscode.extensions.getExtension<HeadlightApi>(EXTENSION_ID);
      assert.ok(ext, `${EXTENSION_ID} is installed`);
      api = await ext.activate();
      const bundledWeights = join(ext.extensionPath, 'models', 'headlight-tiny', 'model.safetensors');
      const model = existsSync(bundledWeights) ? 'bundled' : process.env.HEADLIGHT_TEST_MODEL;
      assert.ok(model, 'the bundled model has no weights yet and HEADLIGHT_TEST_MODEL is not set');
      console.log(`model: ${model}`);
      const cfg = vscode.workspace.getConfiguration('headlight');
      await cfg.update('model', model, vscode.ConfigurationTarget.Global);
      await cfg.update('debounceMs', 50, vscode.ConfigurationTarget.Global);
      await cfg.update('live', true, vscode.ConfigurationTarget.Global);
      await until(() => api.config().model === model, 'the model setting');
    });

    after(async function () {
      rmSync(tmp, { recursive: true, force: true });
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    });

    it('activates cheaply and registers every command', async function () {
      figure('activation', api.stats.activationMs);
      assert.ok(api.stats.activationMs > 0);
      assert.equal(api.client.pid, undefined, 'the engine does not start at activation');
      const all = new Set(await vscode.commands.getCommands(true));
      for (const id of ['explainAttention', 'selectModel', 'selectLayerAndHead', 'toggleLive', 'toggleSurprisal', 'exportAttention', 'restartEngine']) {
        assert.ok(all.has(`headlight.${id}`), `headlight.${id} is registered`);
      }
    });

    it('explains an untitled document, in a separate engine process', async function () {
      const editor = await untitled(SAMPLE);
      const t0 = performance.now();
      const version = await vscode.commands.executeCommand<number>('headlight.explainAttention');
      figure('first explain (engine start + model load + run)', performance.now() - t0);
      const cur = api.controller.current!;
      assert.ok(cur, 'a run exists');
      assert.equal(cur.run.version, version);
      assert.equal(cur.document.toString(), editor.document.uri.toString());
      assert.equal(cur.document.scheme, 'untitled');
      assert.equal(cur.run.tokens.map((t) => t.text).join(''), SAMPLE);
      assert.ok(api.client.pid && api.client.pid !== process.pid, 'the engine runs in a child process');
    });

    it('hovers a known token: piece, surprisal, guesses and sources', async function () {
      const editor = vscode.window.activeTextEditor!;
      const offset = SAMPLE.indexOf('fox', 20); // the second "fox"
      const hovers = await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', editor.document.uri, editor.document.positionAt(offset + 1));
      const text = hovers.flatMap((h) => h.contents.map((c) => (typeof c === 'string' ? c : c.value))).join('\n');
      assert.match(text, /\*\*Headlight\*\* · token \*\*·fox\*\*/);
      assert.match(text, /piece \*\*Ġfox\*\*/);
      assert.match(text, /Surprisal: \*\*\d+\.\d\d bits\*\*/);
      assert.match(text, /Model's guesses here: /);
      assert.match(text, /\| token \| line \| weight \| \|/);
      assert.match(text, /command:headlight\.explainAttention/);
      figure('hover (tokenInfo round trip)', api.stats.lastHoverMs);
    });

    it('highlights what the cursor token attends to after a cursor move', async function () {
      const editor = vscode.window.activeTextEditor!;
      const before = api.stats.highlightUpdates;
      const offset = SAMPLE.indexOf('sleeps');
      const cursorChanged = next(api.controller.onDidChangeCursorToken);
      editor.selection = new vscode.Selection(editor.document.positionAt(offset + 2), editor.document.positionAt(offset + 2));
      const index = await cursorChanged;
      assert.equal(api.controller.current!.run.tokens[index!].text, ' sleeps');
      await until(() => api.stats.highlightUpdates > before, 'a highlight update');
      const highlighted = api.highlights.lastAttentionBuckets.flat();
      assert.ok(highlighted.length > 0, 'some tokens are highlighted');
      assert.ok(highlighted.every((i) => i < index!), 'only earlier tokens (sources) are highlighted');
      figure('cursor highlight update', api.stats.lastHighlightMs);
    });

    it('an edit near the end triggers an incremental run', async function () {
      const editor = vscode.window.activeTextEditor!;
      const runDone = next(api.controller.onDidChangeRun);
      const end = editor.document.positionAt(SAMPLE.length - 2);
      await editor.edit((b) => b.insert(end, 'X'));
      const run = (await runDone).run;
      assert.equal(run.tokens.map((t) => t.text).join(''), editor.document.getText());
      assert.ok(run.stats.computed < run.tokens.length, `computed ${run.stats.computed} of ${run.tokens.length}`);
      assert.equal(api.controller.current!.documentVersion, editor.document.version);
      figure('incremental run after a one-character edit (engine)', run.stats.totalMs);
    });

    it('survives an engine crash: kill -9, restart, the next command works', async function () {
      const pid = api.client.pid!;
      const crashed = new Promise<void>((resolve) => {
        const d = api.client.onDidCrash(() => {
          d.dispose();
          resolve();
        });
      });
      process.kill(pid, 'SIGKILL');
      await crashed;
      const version = await vscode.commands.executeCommand<number>('headlight.explainAttention');
      assert.ok(typeof version === 'number', 'explain worked after the crash');
      assert.notEqual(api.client.pid, pid);
      assert.ok(api.controller.current!.run.tokens.length > 0);
    });

    it('a 5 MB file: only a window around the cursor is analysed', async function () {
      const file = join(tmp, 'big.txt');
      const line = 'Line of a very large file, with words and numbers 12345 in it.\n';
      writeFileSync(file, line.repeat(Math.ceil(5_000_000 / line.length)));
      const doc = await vscode.workspace.openTextDocument(file);
      const editor = await vscode.window.showTextDocument(doc);
      const middle = doc.positionAt(Math.floor(doc.getText().length / 2));
      editor.selection = new vscode.Selection(middle, middle);
      editor.revealRange(new vscode.Range(middle, middle), vscode.TextEditorRevealType.InCenter);
      await until(() => editor.visibleRanges.some((r) => r.contains(middle)), 'the cursor to be visible');
      const t0 = performance.now();
      await vscode.commands.executeCommand('headlight.explainAttention');
      figure('explain on a 5 MB file', performance.now() - t0);
      const cur = api.controller.current!;
      assert.equal(cur.document.toString(), doc.uri.toString());
      const { tokens } = cur.run;
      const model = api.client.loadedModel!;
      assert.ok(tokens.length <= model.nPositions, `${tokens.length} tokens ≤ context ${model.nPositions}`);
      assert.ok(cur.run.totalTokens < 3 * model.nPositions, `only the window was tokenized (${cur.run.totalTokens} tokens)`);
      const offset = doc.offsetAt(middle);
      assert.ok(tokens[0].start > 0 && tokens[0].start <= offset && offset <= tokens[tokens.length - 1].end, 'the window holds the cursor');
      assert.ok(api.controller.cursorToken !== undefined, 'the cursor maps to a token');
      await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
    });

    it('refuses binary content with a clear message', async function () {
      await untitled('\u0000\u0001\u0002binary\u0000data'.repeat(20));
      const failed = next<RunEvent>(api.controller.onDidChangeState, (e) => e.state === 'error');
      const result = await vscode.commands.executeCommand('headlight.explainAttention');
      const e = await failed;
      assert.equal(result, undefined);
      assert.equal(e.error?.code, 'binary');
      assert.match(e.error!.message, /looks binary: it contains a NUL byte/);
    });

    it('selects a head and exports the run as JSON', async function () {
      await untitled(SAMPLE);
      const cur: CurrentAnalysis = (await vscode.commands.executeCommand('headlight.explainAttention'), api.controller.current!);
      const sel = await vscode.commands.executeCommand('headlight.selectLayerAndHead', { layer: 0, head: 1 });
      assert.deepEqual(sel, { layer: 0, head: 1 });
      assert.deepEqual(api.controller.selection, { layer: 0, head: 1 });
      const target = vscode.Uri.file(join(tmp, 'export.json'));
      await vscode.commands.executeCommand('headlight.exportAttention', target);
      const json = JSON.parse(new TextDecoder().decode(await vscode.workspace.fs.readFile(target)));
      assert.equal(json.tokens.length, cur.run.tokens.length);
      assert.equal(json.attention.rows.length, cur.run.tokens.length);
      const last = json.attention.rows[json.attention.rows.length - 1] as number[];
      assert.equal(last.length, cur.run.tokens.length);
      assert.ok(Math.abs(last.reduce((a, b) => a + b, 0) - 1) < 5e-3, 'rows are distributions');
      assert.equal(json.mode, 'attention');
    });
  });
}
