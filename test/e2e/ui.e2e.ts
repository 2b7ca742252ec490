// The user's journey through Headlight in a real VS Code (code-server + Chromium, driven by Playwright), with a
// screenshot after every step in artifacts/e2e/ui-NN-*.png:
//   1. Explain Attention on greet.ts: the panel opens; model view, head matrix and text view are drawn
//   2. clicking a token in the panel's text view lights its sources
//   3. hovering a token in the editor shows surprisal, the model's guesses and where it looks
//   4. moving the cursor decorates the editor with the contributed attention colours
//   5. typing re-analyses incrementally (status bar tooltip: "N computed, M reused")
//   6. the sidebar (activity bar container `headlight`) follows the cursor
//   7. Select Model lists the bundled model
//   8. nothing was written to disk: the edited document is dirty, the files are byte-identical
// The model is the bundled one when its weights exist, else (or with HEADLIGHT_E2E_RANDOM_MODEL=1) a random
// GPT-2-vocabulary checkpoint written here and chosen through the `headlight.model` setting.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FrameLocator, Locator, Page } from 'playwright-core';
import { frameWith, pollFor } from './frames.js';
import { ROOT, WORKSPACE, openWorkbench, startServer, type Server, type Workbench } from './harness.js';
import { writeRandomCheckpoint } from '../fixtures/randomCheckpoint.js';
import { canvasStats, clickEditor, hoverEditor, hoverShown, openFile, waitForGrid, waitForText } from './workbenchSteps.js';

const BUNDLED = join(ROOT, 'models', 'headlight-tiny');
const WORK = join(ROOT, '.e2e', 'tmp', 'ui');
const SAMPLE = 'greet.ts';
const TYPED = '\n// bye';

let server: Server | undefined;
let wb: Workbench | undefined;
let shape: { nLayer: number; nHead: number };
let modelName: string;
const onDisk = new Map<string, Buffer>();

before(async () => {
  for (const name of readdirSync(WORKSPACE)) onDisk.set(name, readFileSync(join(WORKSPACE, name)));
  // VS Code for the web (code-server) auto-saves after 1 s by default (files.autoSave `afterDelay` when isWeb):
  // off here, so that a file changed on disk could only be the extension's doing.
  // TypeScript's syntax server only: otherwise TypeScript's part of the hover reads "(loading...)" while its project
  // loads (10 s and more here), above Headlight's part in the hover screenshot.
  const settings: Record<string, unknown> = { 'files.autoSave': 'off', 'typescript.tsserver.useSyntaxServer': 'always' };
  // HEADLIGHT_E2E_RANDOM_MODEL=1 forces the fallback (to test it while the bundled weights exist).
  if (existsSync(join(BUNDLED, 'model.safetensors')) && !process.env.HEADLIGHT_E2E_RANDOM_MODEL) {
    shape = readShape(BUNDLED);
    modelName = 'headlight-tiny';
  } else {
    rmSync(WORK, { recursive: true, force: true });
    mkdirSync(WORK, { recursive: true });
    const model = await writeRandomCheckpoint(join(WORK, 'random-gpt2'), { seed: 5, nLayer: 2, nHead: 4, nEmbd: 32, nPositions: 256 });
    settings['headlight.model'] = model.dir;
    shape = readShape(model.dir);
    modelName = 'random-gpt2';
    console.log(`model: a random checkpoint at ${model.dir} (bundled weights missing or HEADLIGHT_E2E_RANDOM_MODEL set)`);
  }
  server = await startServer({ settings });
});

after(async () => {
  await wb?.close();
  await server?.stop();
  // Whatever happened, leave the sample workspace as it was (step 8 reports any change).
  for (const [name, bytes] of onDisk) {
    const path = join(WORKSPACE, name);
    if (!existsSync(path) || !readFileSync(path).equals(bytes)) writeFileSync(path, bytes);
  }
});

function readShape(dir: string): { nLayer: number; nHead: number } {
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { n_layer: number; n_head: number };
  return { nLayer: config.n_layer, nHead: config.n_head };
}

test('a user explains attention, reads it in the panel, editor, hover and sidebar, and nothing is saved', { timeout: 240_000 }, async (t) => {
  const started = Date.now();
  wb = await openWorkbench(server!);
  const page = wb.page;
  const status = wb.statusItem('headlight.status');
  await status.waitFor({ state: 'visible', timeout: 30_000 });
  let panel: FrameLocator | undefined;

  await t.test('1. Explain Attention opens the panel: model view, head matrix, text view', async () => {
    await openFile(page, SAMPLE);
    await wb!.runCommand('Headlight: Explain Attention');
    await page.locator('.tab', { hasText: 'Headlight: Attention' }).waitFor({ timeout: 15_000 });
    panel = await frameWith(page, 'canvas[aria-roledescription="grid of attention heads"]');
    const title = panel.locator('.toolbar .title');
    await waitForText(title, /\d+ tokens/, 30_000);
    assert.match(await title.innerText(), new RegExp(`${shape.nLayer}×${shape.nHead} heads`));

    // Model view: one thumbnail per layer × head on one canvas.
    const grid = await waitForGrid(panel.locator('canvas[aria-roledescription="grid of attention heads"]'), shape);
    assert.equal(grid.cells, shape.nLayer * shape.nHead, `model view: ${JSON.stringify(grid)}`);
    assert.deepEqual(grid.blank, [], `thumbnails with no drawn pixel: ${grid.blank.join(', ')}`);
    // Pointing at the last thumbnail names the last layer and head.
    const last = { layer: shape.nLayer - 1, head: shape.nHead - 1 };
    await panel.locator('canvas[aria-roledescription="grid of attention heads"]').hover({
      position: { x: 30 + last.head * grid.pitch + grid.pitch / 2 - 1, y: 16 + last.layer * grid.pitch + grid.pitch / 2 - 1 },
    });
    await panel.getByText(new RegExp(`^L${last.layer} H${last.head}\\b`)).waitFor({ timeout: 5_000 });

    // Head matrix: drawn, not blank.
    const matrix = panel.locator('canvas[role="img"][aria-label^="Attention matrix of layer"]');
    await matrix.waitFor({ state: 'attached', timeout: 15_000 });
    const drawn = await pollFor(() => canvasStats(matrix), (s) => s.painted > 500, 10_000);
    assert.ok(drawn.painted > 500 && drawn.colours > 8, `head matrix looks blank: ${JSON.stringify(drawn)}`);

    // Text view: the file's own text, token by token.
    const tokens = panel.locator('[aria-roledescription="token text"] [data-i]');
    const texts = await tokens.allTextContents();
    assert.ok(texts.length > 20, `only ${texts.length} tokens in the text view`);
    assert.equal(texts.join(''), onDisk.get(SAMPLE)!.toString('utf8'), 'the text view does not spell the file');
    console.log(`  panel: ${grid.cells} thumbnails (${shape.nLayer}×${shape.nHead}), matrix ${drawn.painted} painted px in ${drawn.colours} colours, ${texts.length} tokens`);
    await wb!.screenshot('ui-01-panel');
  });

  await t.test('2. clicking a token in the text view lights up its sources', async () => {
    assert.ok(panel, 'no panel');
    await panel.locator('vscode-tab-header', { hasText: 'Text' }).click();
    const text = panel.locator('[aria-roledescription="token text"]');
    await text.waitFor({ state: 'visible' });
    const token = text.locator('[data-i]', { hasText: /^list$/ }).last();
    await token.click();
    await pollFor(() => token.getAttribute('class'), (c) => /\bselected\b/.test(c ?? ''), 5_000);
    const lit = await pollFor(() => text.locator('[data-w]').count(), (n) => n > 0, 10_000);
    assert.ok(lit > 0, 'no token is lit after the click');
    const background = await text.locator('[data-w]').first().evaluate((e) => getComputedStyle(e).backgroundColor);
    assert.match(background, /^rgba?\(/);
    assert.notEqual(background, 'rgba(0, 0, 0, 0)', 'a lit token has no background');
    // The click also moves the editor's cursor to that token (revealToken).
    console.log(`  clicked "list": ${lit} tokens lit (first: ${background})`);
    await wb!.screenshot('ui-02-token-sources');
  });

  await t.test('3. hovering a token in the editor shows surprisal, guesses and sources', async () => {
    const text = await hoverEditor(page, 'languages', 1);
    assert.match(text, /Headlight/);
    assert.match(text, /Surprisal: [\d.]+ bits/);
    assert.match(text, /Model's guesses here: \S+/);
    assert.match(text, /Looks at \((L\d+ H\d+|layer \d+ mean|mean of all layers)\)/);
    assert.match(text, /\d\.\d{3}/, 'no weight in the sources table');
    console.log(`  hover: ${text.split('\n').filter(Boolean).slice(0, 4).join(' | ')}`);
    // the screenshot waits for the hover to be whole: its last line rendered, fully faded in, no part still loading
    const shown = await hoverShown(page);
    console.log(`  hover shown: ${JSON.stringify(shown)}`);
    await wb!.screenshot('ui-03-hover');
    await page.mouse.move(5, 300);
    await page.keyboard.press('Escape');
  });

  await t.test('4. moving the cursor decorates the editor with the attention colours', async () => {
    const at = await clickEditor(page, 'person.name', 0);
    const { attention, cursor } = await decorationColours(page);
    // The cursor-token border moves to the clicked token in the same update that sets the attention ranges.
    const atCursor = (o: Overlay) => o.border === cursor && o.x <= at.x && at.x <= o.x + o.w && o.y <= at.y && at.y <= o.y + o.h;
    const found = await pollFor(() => overlays(page), (list) => list.some(atCursor), 10_000);
    assert.ok(found.some(atCursor), `no cursor-token border (${cursor}) around the clicked token at ${JSON.stringify(at)}; overlays: ${JSON.stringify(found)}`);
    const hits = found.filter((o) => attention.includes(o.bg));
    assert.ok(hits.length > 0, `no .view-overlays div has an attention colour ${JSON.stringify(attention)}; saw ${JSON.stringify(found)}`);
    console.log(`  cursor border at the clicked token; ${hits.length} ranges in attention colours (${[...new Set(hits.map((o) => o.bg))].join(', ')})`);
    await wb!.screenshot('ui-04-highlights');
  });

  await t.test('5. typing re-analyses only the new tokens', async () => {
    const before = await status.innerText();
    const panelTitle = await panel!.locator('.toolbar .title').innerText();
    await clickEditor(page, 'greet', 1);
    await page.keyboard.press('Control+End');
    await page.keyboard.type(TYPED, { delay: 20 });
    const after = await pollFor(() => status.innerText(), (s) => s !== before && /tok/.test(s) && !/sync~spin|codicon-sync/.test(s), 20_000);
    assert.notEqual(after, before, 'the status item did not change after typing');
    await waitForText(panel!.locator('.toolbar .title'), (s) => s !== panelTitle, 10_000);
    const tip = await statusTooltip(page, status);
    const m = /(\d+) computed, (\d+) reused/.exec(tip);
    assert.ok(m, `no "computed, reused" in the status tooltip: ${tip}`);
    const [computed, reused] = [Number(m[1]), Number(m[2])];
    assert.ok(reused > 0, `the run after typing reused nothing (${computed} computed): not incremental`);
    assert.ok(computed < reused, `the run after typing recomputed ${computed} tokens, more than it reused (${reused})`);
    console.log(`  status "${before.replace(/\n/g, ' ')}" -> "${after.replace(/\n/g, ' ')}"; tooltip: ${computed} computed, ${reused} reused`);
    await wb!.screenshot('ui-05-typed');
    await page.mouse.move(5, 300);
  });

  await t.test('6. the sidebar shows the cursor token\'s heatmap and follows the cursor', async () => {
    await page.locator('.part.activitybar').getByRole('tab', { name: /^Headlight/ }).click();
    const sidebar = await frameWith(page, 'canvas[aria-roledescription="heatmap of heads"]');
    await clickEditor(page, 'greet', 1);
    const heading = sidebar.getByRole('status');
    const first = await waitForText(heading, /^Token #\d+ “g?reet/, 15_000);
    const heat = sidebar.locator('canvas[aria-roledescription="heatmap of heads"]');
    const heat1 = await pollFor(() => canvasStats(heat), (s) => s.painted > 0, 5_000);
    assert.ok(heat1.painted > 0, `the heatmap is blank: ${JSON.stringify(heat1)}`);
    await wb!.screenshot('ui-06-sidebar');
    await clickEditor(page, 'join', 0);
    const second = await waitForText(heading, /^Token #\d+ “j?oin/, 10_000);
    const heat2 = await pollFor(() => canvasStats(heat), (s) => s.hash !== heat1.hash, 5_000);
    assert.notEqual(heat2.hash, heat1.hash, 'the heatmap did not change when the cursor moved');
    console.log(`  sidebar: "${first}" -> "${second}", heatmap ${heat1.painted} -> ${heat2.painted} painted px`);
    await wb!.screenshot('ui-07-sidebar-moved');
  });

  await t.test('7. Select Model lists the bundled model', async () => {
    await wb!.runCommand('Headlight: Select Model');
    const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: 'headlight-tiny' });
    await row.first().waitFor({ state: 'visible', timeout: 10_000 });
    assert.match(await row.first().innerText(), /bundled, works offline/);
    await wb!.screenshot('ui-08-select-model');
    await page.keyboard.press('Escape');
    await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 5_000 });
  });

  await t.test('8. nothing is written to disk: the typed document is dirty, the files are unchanged', async () => {
    const tab = page.locator('.tab', { hasText: SAMPLE });
    assert.match((await tab.first().getAttribute('class')) ?? '', /\bdirty\b/, `${SAMPLE} is not dirty after typing`);
    for (const [name, bytes] of onDisk) {
      assert.ok(readFileSync(join(WORKSPACE, name)).equals(bytes), `${name} changed on disk`);
    }
    assert.deepEqual(readdirSync(WORKSPACE).sort(), [...onDisk.keys()].sort(), 'files were added to or removed from the workspace');
  });
  console.log(`  journey took ${((Date.now() - started) / 1000).toFixed(1)} s with ${modelName}`);
});

// ---------------------------------------------------------------- helpers

/** The text of the status item's hover (VS Code shows its MarkdownString tooltip on mouse-over). */
async function statusTooltip(page: Page, item: Locator): Promise<string> {
  await item.hover();
  const hover = page.locator('.workbench-hover, .monaco-hover:not(.hidden)', { hasText: 'Last run' }).first();
  await hover.waitFor({ state: 'visible', timeout: 10_000 });
  return (await hover.innerText()).replace(/\u00a0/g, ' ');
}

/** Computed rgba() of the contributed colours headlight.attention1..4 and headlight.cursorToken in the current theme. */
function decorationColours(page: Page): Promise<{ attention: string[]; cursor: string }> {
  return page.evaluate(() => {
    const root = document.querySelector('.monaco-workbench') ?? document.body;
    const probe = document.createElement('div');
    document.body.append(probe);
    const names = ['attention1', 'attention2', 'attention3', 'attention4', 'cursorToken'];
    const out: string[] = [];
    for (const name of names) {
      probe.style.backgroundColor = getComputedStyle(root).getPropertyValue(`--vscode-headlight-${name}`).trim();
      out.push(getComputedStyle(probe).backgroundColor);
    }
    probe.remove();
    return { attention: out.slice(0, 4), cursor: out[4] };
  });
}

interface Overlay {
  bg: string;
  border: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

/** The editors' decoration overlay divs (backgrounds and borders of ranges) with their page rectangles. */
function overlays(page: Page): Promise<Overlay[]> {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll('.monaco-editor .view-overlays div div')).map((d) => {
      const cs = getComputedStyle(d);
      const r = d.getBoundingClientRect();
      return { bg: cs.backgroundColor, border: cs.borderTopStyle === 'solid' ? cs.borderTopColor : '', x: r.x, y: r.y, w: r.width, h: r.height };
    }).filter((o) => o.bg !== 'rgba(0, 0, 0, 0)' || o.border !== ''),
  );
}
