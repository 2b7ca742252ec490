// The logit lens and direct logit attribution in a real VS Code (code-server + Chromium, driven by Playwright),
// screenshots in artifacts/e2e:
//   1. Explain Attention on greet.ts; the panel's Logit lens tab computes the tokens in view (progress, then a count)
//   2. the cursor on a token: the tab's attribution follows it; a click on a head cell selects that head everywhere
//   3. hovering a token in the editor shows the logit lens's line
//   4. the sidebar's second heatmap mode shows the attribution at the cursor's token
// The model is the bundled one when its weights exist, else a random GPT-2-vocabulary checkpoint (as ui.e2e.ts).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { FrameLocator } from 'playwright-core';
import { frameWith, pollFor } from './frames.js';
import { ROOT } from './harness.js';
import { bundledJourney, canvasStats, clickEditor, explainAttention, hoverEditor } from './workbenchSteps.js';

const WORK = join(ROOT, '.e2e', 'tmp', 'lens');
const SAMPLE = 'greet.ts';

const journey = bundledJourney(WORK);

test('the logit lens tab, the attribution at the cursor, the hover line and the sidebar mode', { timeout: 240_000 }, async (t) => {
  const wb = await journey.open();
  const page = wb.page;
  let panel: FrameLocator | undefined;

  await t.test('1. the Logit lens tab computes the tokens in view', async () => {
    panel = (await explainAttention(page, SAMPLE)).panel;
    await panel.locator('vscode-tab-header.lens-tab-header').click();
    const progress = await pollFor(() => panel!.locator('.lens-progress').innerText().catch(() => ''), (s) => /\d+ of \d+ tokens computed/.test(s), 30_000);
    const view = JSON.parse((await panel.locator('.lens-canvas').getAttribute('data-view')) ?? '{}') as { rows: number; start: number; end: number };
    assert.ok(view.rows >= 3, `the grid has layers: ${JSON.stringify(view)}`);
    const painted = await canvasStats(panel.locator('.lens-canvas'));
    assert.ok(painted.painted > 0, 'the lens grid is blank');
    console.log(`  lens: ${progress}; rows ${view.rows}, tokens ${view.start}–${view.end} in view`);
    await wb.screenshot('lens-01-grid');
  });

  await t.test('2. the attribution follows the cursor; a click on a head selects it everywhere', async () => {
    await clickEditor(page, 'greet', 1);
    const title = await pollFor(() => panel!.locator('#attribution-title').innerText().catch(() => ''), (s) => /^Direct logit attribution at #\d+/.test(s), 15_000);
    const heat = panel!.locator('canvas.attribution-heat');
    const g = JSON.parse((await heat.getAttribute('data-grid')) ?? '{}') as { x0: number; y0: number; cellW: number; cellH: number };
    await heat.click({ position: { x: g.x0 + 1.5 * g.cellW, y: g.y0 + 0.5 * g.cellH } });
    const shown = await pollFor(() => panel!.locator('.status .shown').innerText().catch(() => ''), (s) => /L0 H1/.test(s), 10_000);
    console.log(`  attribution: ${title}; ${shown}`);
    await wb.screenshot('lens-02-attribution');
  });

  await t.test('3. the editor hover has the logit lens line', async () => {
    const text = await hoverEditor(page, 'name', 1);
    assert.match(text, /Logit lens: (settles (at|only at the output) \(?L\d+ of \d+|.+ from the embeddings on)/);
    await wb.screenshot('lens-03-hover');
  });

  await t.test("4. the sidebar's attribution mode", async () => {
    await page.locator('.part.activitybar').getByRole('tab', { name: /^Headlight/ }).click();
    const sidebar = await frameWith(page, 'vscode-single-select.heat-mode');
    await sidebar.locator('vscode-single-select.heat-mode').evaluate((s) => {
      (s as HTMLElement & { value: string }).value = 'attribution';
      s.dispatchEvent(new Event('change'));
    });
    await clickEditor(page, 'greet', 1);
    const note = await pollFor(() => sidebar.locator('.sidebar-attribution .attribution-note').innerText().catch(() => ''), (s) => /^Logit -?\d/.test(s), 15_000);
    const heat = await pollFor(() => canvasStats(sidebar.locator('canvas.attribution-heat')), (s) => s.painted > 0, 5_000);
    assert.ok(heat.painted > 0, 'the attribution heatmap is blank');
    console.log(`  sidebar attribution: ${note}`);
    await wb.screenshot('lens-04-sidebar');
  });
});
