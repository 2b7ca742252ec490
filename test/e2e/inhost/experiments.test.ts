// In-host tests of head experiments: the ablateHeads / rankHeads / clearAblation commands against the real engine,
// the editor's ablation colours, and the attention-mode setting reaching the hover and the highlights.
import * as assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { HeadlightApi } from '../../../extension/extension';

const EXTENSION_ID = 'headlight.headlight';
const TEXT = 'The cat sat on the mat. The cat sat on the mat again, and the dog watched the cat on the mat.\n';

async function until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function experimentsSuite(): void {
  describe('Head experiments in the real extension host', function () {
    let api: HeadlightApi;
    let editor: vscode.TextEditor;

    before(async function () {
      api = await vscode.extensions.getExtension<HeadlightApi>(EXTENSION_ID)!.activate();
      const doc = await vscode.workspace.openTextDocument({ content: TEXT, language: 'plaintext' });
      editor = await vscode.window.showTextDocument(doc);
      await vscode.commands.executeCommand('headlight.explainAttention');
      await until(() => api.controller.current?.document.toString() === doc.uri.toString(), 'a run of the document');
    });

    after(async function () {
      await vscode.workspace.getConfiguration('headlight').update('attentionMode', undefined, vscode.ConfigurationTarget.Global);
    });

    it('ablates a head by command: surprisal changes are coloured in the editor, and cleared', async function () {
      const { nLayer, nHead } = api.controller.current!.model;
      const T = api.controller.current!.run.tokens.length;
      const r = await vscode.commands.executeCommand<{ lossBefore: number; lossAfter: number; lossDelta: number }>('headlight.ablateHeads', { heads: [{ layer: 0, head: 0 }, { layer: nLayer - 1, head: nHead - 1 }], mode: 'zero' });
      assert.ok(r && Number.isFinite(r.lossBefore) && Number.isFinite(r.lossAfter), `result ${JSON.stringify(r)}`);
      assert.ok(Math.abs(r.lossAfter - r.lossBefore - r.lossDelta) < 1e-6);
      const a = api.experiments.lastAblation!;
      assert.equal(a.surprisalDelta.length, T, 'one change per token of the run');
      assert.equal(a.version, api.controller.current!.run.version);
      // the editor shows every token whose surprisal moved by at least 0.25 bit, worse or better
      const moved = Array.from(a.surprisalDelta).filter((d) => Math.abs(d) >= 0.25).length;
      assert.ok(moved > 0, 'removing two heads moves no token by 0.25 bit: nothing to see');
      await until(() => api.highlights.lastAblationBuckets.worse.flat().length + api.highlights.lastAblationBuckets.better.flat().length === moved, 'the ablation colours');
      for (const i of api.highlights.lastAblationBuckets.worse.flat()) assert.ok(a.surprisalDelta[i] > 0);
      for (const i of api.highlights.lastAblationBuckets.better.flat()) assert.ok(a.surprisalDelta[i] < 0);
      console.log(`ablation L0H0+L${nLayer - 1}H${nHead - 1}: loss ${r.lossBefore.toFixed(3)} -> ${r.lossAfter.toFixed(3)} nats, ${moved}/${T} tokens coloured`);
      await vscode.commands.executeCommand('headlight.clearAblation');
      await until(() => api.highlights.lastAblationBuckets.worse.flat().length + api.highlights.lastAblationBuckets.better.flat().length === 0, 'no ablation colours');
      assert.equal(api.experiments.lastAblation, undefined);
    });

    it('ranks every head by command (cancellable notification), sorted by |loss change|', async function () {
      const { nLayer, nHead } = api.controller.current!.model;
      const ranking = await vscode.commands.executeCommand<{ layer: number; head: number; lossDelta: number }[]>('headlight.rankHeads', { mode: 'mean' });
      assert.equal(ranking.length, nLayer * nHead);
      for (let k = 1; k < ranking.length; k++) assert.ok(Math.abs(ranking[k].lossDelta) <= Math.abs(ranking[k - 1].lossDelta));
    });

    it('the attention-mode setting reaches the hover, re-runs the highlights and sets what Export Attention writes', async function () {
      const offsetCat = TEXT.lastIndexOf('cat');
      editor.selection = new vscode.Selection(editor.document.positionAt(offsetCat + 1), editor.document.positionAt(offsetCat + 1));
      await until(() => api.controller.cursorToken !== undefined, 'a cursor token');
      await new Promise((r) => setTimeout(r, 300)); // the cursor move's own highlight update lands first
      const updates = api.stats.highlightUpdates;
      await vscode.workspace.getConfiguration('headlight').update('attentionMode', 'valueWeighted', vscode.ConfigurationTarget.Global);
      await until(() => api.experiments.attentionMode === 'value-weighted' && api.config().attentionMode === 'value-weighted', 'value-weighted mode');
      await until(() => api.stats.highlightUpdates > updates, 'a highlight update in value-weighted mode');
      const offset = TEXT.indexOf('dog');
      const hovers = await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', editor.document.uri, editor.document.positionAt(offset + 1));
      const text = hovers.flatMap((h) => h.contents.map((c) => (typeof c === 'string' ? c : c.value))).join('\n');
      assert.match(text, /value-weighted/);
      // Export Attention writes the weights shown, and says which: one head's value-weighted rows, as the engine gives them
      const cur = api.controller.current!;
      api.controller.setSelection({ layer: 0, head: 1 });
      const target = vscode.Uri.file(join(tmpdir(), `headlight-export-vw-${process.pid}.json`));
      await vscode.commands.executeCommand('headlight.exportAttention', target);
      const json = JSON.parse(new TextDecoder().decode(await vscode.workspace.fs.readFile(target)));
      await vscode.workspace.fs.delete(target);
      assert.equal(json.mode, 'value-weighted');
      assert.match(json.attention.description, /value-weighted/);
      const T = cur.run.tokens.length;
      const want = await api.controller.query('row', { version: cur.run.version, sel: { layer: 0, head: 1 }, index: T - 1, mode: 'value-weighted' });
      const got = json.attention.rows[T - 1] as number[];
      assert.equal(got.length, T);
      for (let j = 0; j < T; j++) assert.ok(Math.abs(got[j] - want[j]) < 1e-6, `key ${j}: exported ${got[j]}, engine ${want[j]}`);
      api.controller.setSelection({ layer: 'mean', head: 'mean' });
      await vscode.workspace.getConfiguration('headlight').update('attentionMode', 'attention', vscode.ConfigurationTarget.Global);
      await until(() => api.experiments.attentionMode === 'attention', 'plain attention');
    });
  });
}
