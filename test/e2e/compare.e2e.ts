// Compare With… in a real VS Code (code-server + Chromium, driven by Playwright), screenshots in artifacts/e2e:
//   1. Explain Attention on greet.ts, then select the word "Ada"
//   2. Headlight: Compare With… → "This text with the selection replaced by…" → "Grace"
//   3. the panel opens its Compare tab: the summary names the source, one changed region is marked over the strips
//   4. the editor marks the changed token with the contributed colour headlight.compareChanged
//   5. Stop Comparing removes the editor marks; nothing was written to disk
// The model is the bundled one when its weights exist, else a random GPT-2-vocabulary checkpoint (as ui.e2e.ts).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { FrameLocator, Page } from 'playwright-core';
import { pollFor } from './frames.js';
import { ROOT, WORKSPACE, runCommand } from './harness.js';
import { bundledJourney, compareWithReplacement, explainAttention, selectWord } from './workbenchSteps.js';

const WORK = join(ROOT, '.e2e', 'tmp', 'compare');
const SAMPLE = 'greet.ts';

const journey = bundledJourney(WORK, SAMPLE);

test('Compare With… the selection replaced: the Compare view and the editor mark the change', { timeout: 240_000 }, async (t) => {
  const wb = await journey.open();
  const page = wb.page;
  let panel: FrameLocator | undefined;

  await t.test('1. Explain Attention, then select "Ada"', async () => {
    panel = (await explainAttention(page, SAMPLE)).panel;
    await selectWord(page, 'Ada', 0);
    await wb.screenshot('compare-01-selected');
  });

  await t.test('2. Compare With… → selection replaced by "Grace"', async () => {
    await compareWithReplacement(page, 'Grace');
  });

  await t.test('3. the panel shows the Compare view with one changed region', async () => {
    assert.ok(panel, 'no panel');
    const summary = panel.locator('.compare-summary');
    const text = await pollFor(() => summary.innerText().catch(() => ''), (s) => /Compared with/.test(s), 30_000);
    assert.match(text, /selection replaced by “Grace” · 1 changed region/);
    const regions = await panel.locator('.compare-region').count();
    assert.equal(regions, 1);
    const moves = await panel.locator('.compare-move').count();
    assert.ok(moves > 0, 'no moved token is listed');
    console.log(`  compare: ${text.replace(/\n/g, ' ')}; ${moves} moves listed`);
    await wb.screenshot('compare-02-view');
  });

  await t.test('4. the editor marks the changed token with headlight.compareChanged', async () => {
    const colour = await page.evaluate(() => {
      const root = document.querySelector('.monaco-workbench') ?? document.body;
      const probe = document.createElement('div');
      document.body.append(probe);
      probe.style.backgroundColor = getComputedStyle(root).getPropertyValue('--vscode-headlight-compareChanged').trim();
      const c = getComputedStyle(probe).backgroundColor;
      probe.remove();
      return c;
    });
    assert.notEqual(colour, 'rgba(0, 0, 0, 0)', 'the theme colour headlight.compareChanged is not contributed');
    const marked = await pollFor(() => markedWith(page, colour), (n) => n > 0, 10_000);
    assert.ok(marked > 0, `no editor range has the background ${colour}`);
    await wb.screenshot('compare-03-editor');
  });

  await t.test('5. Stop Comparing removes the marks; the file on disk is unchanged', async () => {
    const colour = await page.evaluate(() => getComputedStyle(document.querySelector('.monaco-workbench') ?? document.body).getPropertyValue('--vscode-headlight-compareChanged').trim());
    await runCommand(page, 'Headlight: Stop Comparing');
    const left = await pollFor(() => page.evaluate((c) => {
      const probe = document.createElement('div');
      document.body.append(probe);
      probe.style.backgroundColor = c;
      const want = getComputedStyle(probe).backgroundColor;
      probe.remove();
      return Array.from(document.querySelectorAll('.monaco-editor .view-overlays div div')).filter((d) => getComputedStyle(d).backgroundColor === want).length;
    }, colour), (n) => n === 0, 10_000);
    assert.equal(left, 0);
    assert.ok(readFileSync(join(WORKSPACE, SAMPLE)).equals(journey.original()), 'greet.ts changed on disk');
  });
});

/** Editor decoration overlays with this computed background colour. */
function markedWith(page: Page, colour: string): Promise<number> {
  return page.evaluate(
    (c) => Array.from(document.querySelectorAll('.monaco-editor .view-overlays div div')).filter((d) => getComputedStyle(d).backgroundColor === c).length,
    colour,
  );
}
