// Activation patching in a real VS Code (code-server + Chromium, driven by Playwright), screenshots in artifacts/e2e:
//   1. Explain Attention on greet.ts, select "Ada", Compare With… → the selection replaced by "Grace" (the same token
//      count): the one-word change, marked in the Compare view
//   2. the cursor on a later token (" languages", after the change); Headlight: Patch Activations… → the answer and
//      the wrong token from the clean run's guesses; both heatmaps (residual stream: layers × positions, heads:
//      layers × heads) fill cell by cell, normalized from the first cell (the clean and corrupted metrics come before
//      any cell), to the total
//   3. a click on a head cell selects that head in the panel
// The model is the bundled one when its weights exist, else a random GPT-2-vocabulary checkpoint (as ui.e2e.ts).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { FrameLocator } from 'playwright-core';
import { pollFor } from './frames.js';
import { ROOT, WORKSPACE } from './harness.js';
import { bundledJourney, canvasStats, clickEditor, compareWithReplacement, explainAttention, pickQuickItem, screenshotOf, selectWord, startCommand, waitForText } from './workbenchSteps.js';

const WORK = join(ROOT, '.e2e', 'tmp', 'patch');
const SAMPLE = 'greet.ts';

/** What the panel heard of the patching, in order (recorded inside the webview from the host's messages). */
type Heard =
  | { name: 'patch'; state?: string; metricClean?: number; metricCorrupt?: number; filled: number; total: number }
  | { name: 'patchCell'; target: string; layer: number; index: number; done: number; total: number };

const journey = bundledJourney(WORK, SAMPLE);

test('Patch Activations on a one-word change: both heatmaps stream in normalized, a head click selects it', { timeout: 300_000 }, async (t) => {
  const { page } = await journey.open();
  let panel: FrameLocator | undefined;
  let tokens = 0;

  await t.test('1. the one-word change: "Ada" → "Grace", compared', async () => {
    const explained = await explainAttention(page, SAMPLE);
    panel = explained.panel;
    tokens = Number(/(\d+) tokens/.exec(explained.title)![1]);
    await selectWord(page, 'Ada', 0);
    await compareWithReplacement(page, 'Grace');
    const summary = await waitForText(panel.locator('.compare-summary'), /selection replaced by “Grace” · 1 changed region/, 30_000);
    console.log(`  compare: ${summary.replace(/\n/g, ' ')}`);
    await screenshotOf(page.locator('.part.editor'), 'patch-01-change'); // the editor and the panel beside it
  });

  await t.test('2. Patch Activations: both heatmaps fill cell by cell to the total, normalized from the first', async () => {
    assert.ok(panel, 'no panel');
    await clickEditor(page, 'languages', 2); // the metric's position: a token after the change (" languages" on line 12)
    await panel.locator('body').evaluate(() => {
      const w = window as unknown as { heard: unknown[] };
      w.heard = [];
      window.addEventListener('message', (e) => {
        const m = e.data as { rpc?: string; name?: string; payload?: Record<string, unknown> };
        if (m?.rpc !== 'event' || !m.payload) return;
        if (m.name === 'patchCell') {
          const { target, layer, index, done, total } = m.payload as Record<string, number | string>;
          w.heard.push({ name: 'patchCell', target, layer, index, done, total });
        } else if (m.name === 'patch') {
          const v = m.payload.view as { state: string; metricClean?: number; metricCorrupt?: number; resid: Float32Array; heads: Float32Array } | undefined;
          const filled = v ? [...v.resid, ...v.heads].filter((x) => !Number.isNaN(x)).length : 0;
          w.heard.push({ name: 'patch', state: v?.state, metricClean: v?.metricClean, metricCorrupt: v?.metricCorrupt, filled, total: v ? v.resid.length + v.heads.length : 0 });
        }
      });
    });
    await startCommand(page, 'Headlight: Patch Activations…');
    const answer = await pickQuickItem(page, 'Patching 1/2', undefined, 30_000);
    const wrong = await pickQuickItem(page, 'Patching 2/2', undefined, 30_000);
    assert.match(answer, /id \d+/, 'the answer is one of the clean run\'s guesses');
    assert.match(wrong, /id \d+/);
    assert.notEqual(answer, wrong);
    console.log(`  metric: answer ${answer.replace(/\n/g, ' ')} · wrong ${wrong.replace(/\n/g, ' ')}`);

    await panel.locator('section.patch[data-state="done"]').waitFor({ state: 'attached', timeout: 120_000 });
    const heard = (await panel.locator('body').evaluate(() => (window as unknown as { heard: unknown[] }).heard)) as Heard[];
    const cells = heard.filter((h): h is Extract<Heard, { name: 'patchCell' }> => h.name === 'patchCell');
    const views = heard.filter((h): h is Extract<Heard, { name: 'patch' }> => h.name === 'patch');
    const total = cells.at(-1)?.total ?? 0;
    const L = cells.reduce((m, c) => Math.max(m, c.layer + 1), 0);
    const H = cells.filter((c) => c.target === 'heads').reduce((m, c) => Math.max(m, c.index + 1), 0);
    // cells streamed in one by one, to the total, residual stream first, then every head
    assert.ok(total > 0 && cells.length === total, `${cells.length} cells streamed of ${total}`);
    cells.forEach((c, k) => assert.equal(c.done, k + 1, `cell ${k} reports done ${c.done}`));
    assert.ok(L >= 2 && H >= 2, `layers ${L}, heads ${H}`);
    assert.equal(cells.filter((c) => c.target === 'heads').length, L * H, 'one cell per head');
    const residCells = cells.filter((c) => c.target === 'resid');
    const at = residCells.reduce((m, c) => Math.max(m, c.index), 0);
    assert.equal(residCells.length, L * (at + 1), 'one cell per layer and position up to the metric');
    // the clean and corrupted metrics reached the view before the first cell (it normalizes streamed cells with them)
    const firstCell = heard.findIndex((h) => h.name === 'patchCell');
    const ends = heard.findIndex((h) => h.name === 'patch' && h.metricClean !== undefined);
    assert.ok(ends >= 0 && ends < firstCell, `the metrics came at message ${ends}, the first cell at ${firstCell}`);
    const early = views.find((v) => v.metricClean !== undefined)!;
    assert.equal(early.state, 'running');
    assert.equal(early.filled, 0, 'no cell before the metrics');
    const last = views.at(-1)!;
    assert.equal(last.state, 'done');
    assert.equal(last.filled, last.total, 'every cell of both heatmaps has a value');
    assert.ok(Number.isFinite(last.metricClean) && Number.isFinite(last.metricCorrupt), `metrics ${last.metricClean}, ${last.metricCorrupt}`);
    assert.ok(Math.abs(last.metricClean! - last.metricCorrupt!) > 1e-6, `the clean and corrupted metrics differ: ${last.metricClean} vs ${last.metricCorrupt}`);
    assert.equal(early.metricClean, last.metricClean);
    assert.equal(early.metricCorrupt, last.metricCorrupt);

    // what the user reads: the progress at the total, the metric header with both ends, two painted heatmaps
    const progress = await panel.locator('.patch-progress').innerText();
    const done = new RegExp(`^Done: ${total} cells, (\\d+) runs in \\d+\\.\\d s$`).exec(progress);
    assert.ok(done, `the progress line: ${progress}`);
    // cells before the first changed token are the corrupted metric without a run (causality): fewer runs than cells
    assert.ok(Number(done[1]) > 0 && Number(done[1]) < total, `runs ${done[1]} of ${total} cells`);
    const header = await panel.locator('.patch-metric').innerText();
    const m = /Clean ([+−]\d+\.\d{3}), corrupted ([+−]\d+\.\d{3})\./.exec(header);
    assert.ok(m, `the metric header names both ends: ${header}`);
    const num = (s: string) => Number(s.replace('−', '-').replace('+', ''));
    assert.ok(Math.abs(num(m[1]) - last.metricClean!) <= 5e-4 && Math.abs(num(m[2]) - last.metricCorrupt!) <= 5e-4, `${header} vs ${last.metricClean}, ${last.metricCorrupt}`);
    assert.match(await panel.locator('.patch-legend').innerText(), /\+1 = clean/);
    for (const [kind, cols] of [['resid', tokens], ['heads', H]] as const) {
      const canvas = panel.locator(`canvas.patch-${kind}`);
      assert.match((await canvas.getAttribute('aria-label')) ?? '', new RegExp(`${L} layers × ${cols} (positions|heads), ${L * cols} of ${L * cols} cells computed`));
      const stats = await canvasStats(canvas);
      assert.ok(stats.painted > 0 && stats.colours > 3, `the ${kind} heatmap is painted: ${JSON.stringify(stats)}`);
    }
    console.log(`  patching: ${total} cells (${residCells.length} residual, ${L * H} heads) at token ${at} of ${tokens}; metric clean ${m[1]}, corrupted ${m[2]}; ${progress}`);
    await screenshotOf(panel.locator('section.patch'), 'patch-02-heatmaps');
    await screenshotOf(page.locator('.part.editor'), 'patch-03-workbench');
  });

  await t.test('3. a click on a head cell selects that head in the panel', async () => {
    const heat = panel!.locator('canvas.patch-heads');
    const g = JSON.parse((await heat.getAttribute('data-grid')) ?? '{}') as { x0: number; y0: number; cellW: number; cellH: number; rows: number; cols: number };
    const layer = g.rows - 1;
    const head = 1;
    await heat.click({ position: { x: g.x0 + (head + 0.5) * g.cellW, y: g.y0 + (layer + 0.5) * g.cellH } });
    const shown = await pollFor(() => panel!.locator('.status .shown').innerText().catch(() => ''), (s) => new RegExp(`L${layer} H${head}\\b`).test(s), 10_000);
    assert.match(shown, new RegExp(`L${layer} H${head}\\b`));
    console.log(`  head click: ${shown}`);
    await screenshotOf(panel!.locator('figure.patch-figure').nth(1), 'patch-04-heads');
    assert.ok(readFileSync(join(WORKSPACE, SAMPLE)).equals(journey.original()), 'greet.ts changed on disk');
  });
});
