// "Inside a head" in a real VS Code (code-server + Chromium, Playwright), with screenshots in artifacts/e2e/:
//   1. Explain Attention on greet.ts, open the panel's "Inside a head" tab: the Q·K heatmap of the selected head
//   2. ctrl+click a head in the Heads view, Run ablation: each token's surprisal change on the panel's text, the loss
//      change, predictions before/after; the editor underlines the tokens whose surprisal changed (ablation colours)
//   3. "Which heads matter here": the ranking runs with progress against the real engine and lists every head
//   4. the Value-weighted toggle goes through the `headlight.attentionMode` setting and comes back to the panel
// The model is the bundled one when its weights exist, else a random GPT-2-vocabulary checkpoint written here.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FrameLocator, Page } from 'playwright-core';
import { frameWith, pollFor } from './frames.js';
import { ROOT, WORKSPACE, editorTextPoint, openWorkbench, startServer, type Server, type Workbench } from './harness.js';
import { writeRandomCheckpoint } from '../fixtures/randomCheckpoint.js';

const BUNDLED = join(ROOT, 'models', 'headlight-tiny');
const WORK = join(ROOT, '.e2e', 'tmp', 'inside');
const SAMPLE = 'greet.ts';
const GRID = 'canvas[aria-roledescription="grid of attention heads"]';

let server: Server | undefined;
let wb: Workbench | undefined;
let shape: { nLayer: number; nHead: number };
const onDisk = new Map<string, Buffer>();

before(async () => {
  for (const name of readdirSync(WORKSPACE)) onDisk.set(name, readFileSync(join(WORKSPACE, name)));
  const settings: Record<string, unknown> = { 'files.autoSave': 'off' };
  let dir = BUNDLED;
  if (!existsSync(join(BUNDLED, 'model.safetensors')) || process.env.HEADLIGHT_E2E_RANDOM_MODEL) {
    rmSync(WORK, { recursive: true, force: true });
    mkdirSync(WORK, { recursive: true });
    dir = (await writeRandomCheckpoint(join(WORK, 'random-gpt2'), { seed: 5, nLayer: 2, nHead: 4, nEmbd: 32, nPositions: 256 })).dir;
    settings['headlight.model'] = dir;
  }
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { n_layer: number; n_head: number };
  shape = { nLayer: config.n_layer, nHead: config.n_head };
  server = await startServer({ settings });
});

after(async () => {
  await wb?.close();
  await server?.stop();
  for (const [name, bytes] of onDisk) {
    const path = join(WORKSPACE, name);
    if (!existsSync(path) || !readFileSync(path).equals(bytes)) writeFileSync(path, bytes);
  }
});

/**
 * Editor decorations with only a bottom border (the ablation underlines; the cursor token's box has four): VS Code
 * draws decoration borders as overlay divs in `.view-overlays`.
 */
function underlined(page: Page): Promise<{ colour: string; width: number }[]> {
  return page.locator('.monaco-editor .lines-content').first().evaluate((root) =>
    Array.from(root.querySelectorAll('.view-overlays div, .view-lines span')).flatMap((s) => {
      const cs = getComputedStyle(s);
      const width = parseFloat(cs.borderBottomWidth);
      return cs.borderBottomStyle === 'solid' && width > 0 && cs.borderTopStyle === 'none' ? [{ colour: cs.borderBottomColor, width }] : [];
    }),
  );
}

test('a user looks inside a head, ablates one from the panel and sees what changed', { timeout: 240_000 }, async (t) => {
  wb = await openWorkbench(server!);
  const page = wb.page;
  await wb.statusItem('headlight.status').waitFor({ state: 'visible', timeout: 30_000 });
  let panel: FrameLocator | undefined;

  await t.test('1. the Inside a head tab shows the Q·K breakdown of the selected head', async () => {
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: SAMPLE }).click();
    await page.locator('.tab.active', { hasText: SAMPLE }).waitFor({ timeout: 10_000 });
    await wb!.runCommand('Headlight: Explain Attention');
    panel = await frameWith(page, GRID);
    await pollFor(() => panel!.locator('.toolbar .title').innerText(), (s) => /\d+ tokens/.test(s), 30_000);
    // put the cursor on a later token, so its query has many keys
    const at = await editorTextPoint(page, 'return', 0);
    assert.ok(at, 'no "return" in the editor');
    await page.mouse.click(at.x + 2, at.y);
    await panel.locator('vscode-tab-header', { hasText: 'Inside a head' }).click();
    const title = panel.locator('#qk-title');
    const text = await pollFor(() => title.innerText(), (s) => /query \d+/.test(s), 30_000);
    assert.match(text, /Q·K — L\d+ H\d+, query \d+/);
    const rows = await pollFor(() => panel!.locator('.sr-table tr[data-j]').count(), (n) => n > 1, 10_000);
    assert.ok(rows > 1, `only ${rows} keys in the Q·K table`);
    const painted = await panel.locator('canvas.qk-canvas').evaluate((c: HTMLCanvasElement) => {
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      const colours = new Set<number>();
      for (let k = 0; k < d.length; k += 16) colours.add((d[k] << 16) | (d[k + 1] << 8) | d[k + 2]);
      return colours.size;
    });
    assert.ok(painted > 20, `the Q·K heatmap looks blank (${painted} colours)`);
    console.log(`  ${text}: ${rows} keys, ${painted} colours`);
    await wb!.screenshot('inside-01-qk');
  });

  await t.test('2. ctrl+click a head, Run ablation: surprisal changes in the panel and the editor', async () => {
    assert.ok(panel, 'no panel');
    const grid = panel.locator(GRID);
    const pitch = await grid.evaluate((c: HTMLCanvasElement, H: number) => (c.clientWidth - 30) / H, shape.nHead);
    const target = { layer: 0, head: Math.min(1, shape.nHead - 1) };
    await grid.click({ modifiers: ['Control'], position: { x: 30 + target.head * pitch + pitch / 2, y: 16 + target.layer * pitch + pitch / 2 } });
    await panel.locator(`.ablate-chip[data-head="${target.layer}.${target.head}"]`).waitFor({ timeout: 5_000 });
    await panel.locator('vscode-button.run-ablation').click();
    const status = await pollFor(() => panel!.locator('.ablation .loss').innerText(), (s) => /→/.test(s) || /failed/.test(s), 60_000);
    assert.match(status, new RegExp(`Without L${target.layer} H${target.head} \\(zero\\): loss [\\d.]+ → [\\d.]+ nats`), status);
    const deltas = await panel.locator('.ablation-text .dtok').evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.delta)));
    const changed = deltas.filter((d) => Number.isFinite(d) && Math.abs(d) > 1e-3).length;
    assert.ok(deltas.length > 20 && changed > 0, `${deltas.length} tokens, ${changed} changed`);
    assert.ok((await panel.locator('.preds ol.before li').count()) > 0, 'no predictions before');
    // the editor underlines tokens whose surprisal moved by ≥ 0.25 bit (headlight.ablationWorse / Better)
    const big = deltas.filter((d) => Math.abs(d) >= 0.25).length;
    const lines = await pollFor(() => underlined(page), (u) => big === 0 || u.length > 0, 10_000);
    await wb!.screenshot('inside-02-ablation');
    if (big > 0) assert.ok(lines.length > 0, `${big} tokens changed by ≥ 0.25 bit but the editor underlines none`);
    console.log(`  ${status.split('.')[0]}; ${changed}/${deltas.length} tokens changed, ${big} ≥ 0.25 bit, ${lines.length} underlined in the editor (${[...new Set(lines.map((l) => l.colour))].join(', ')})`);
  });

  await t.test('3. which heads matter here: the real engine ranks every head, with progress', async () => {
    assert.ok(panel, 'no panel');
    await panel.locator('vscode-button.rank-heads').click();
    const done = await pollFor(() => panel!.locator('.rank-progress').innerText(), (s) => s === 'Done.' || /failed/.test(s), 120_000);
    assert.equal(done, 'Done.');
    const items = await panel.locator('.ranking li').count();
    assert.equal(items, shape.nLayer * shape.nHead);
    const deltas = await panel.locator('.ranking li .delta').allInnerTexts();
    const abs = deltas.map((d) => Math.abs(Number(d)));
    assert.ok(abs.every((x, k) => k === 0 || x <= abs[k - 1] + 1e-9), `not sorted by |Δ|: ${deltas.join(' ')}`);
    console.log(`  ranking: ${deltas.slice(0, 4).join(', ')} …`);
    await panel.locator('.ranking li').first().scrollIntoViewIfNeeded();
    await wb!.screenshot('inside-03-ranking');
  });

  await t.test('4. the Value-weighted toggle round-trips through the setting', async () => {
    assert.ok(panel, 'no panel');
    await panel.locator('vscode-checkbox.mode-toggle').click();
    const on = await pollFor(() => panel!.locator('body').getAttribute('class'), (c) => /\bvalue-weighted\b/.test(c ?? ''), 10_000);
    assert.match(on ?? '', /\bvalue-weighted\b/);
    await panel.locator('vscode-checkbox.mode-toggle').click();
    const off = await pollFor(() => panel!.locator('body').getAttribute('class'), (c) => !/\bvalue-weighted\b/.test(c ?? ''), 10_000);
    assert.doesNotMatch(off ?? '', /\bvalue-weighted\b/);
  });
});
