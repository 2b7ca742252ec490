/**
 * Steps a user takes in the workbench, shared by the end-to-end journeys: open a file, click or hover editor text,
 * wait for a text, and read what a canvas (a heatmap, the model view's grid) drew.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before } from 'node:test';
import type { FrameLocator, Locator, Page } from 'playwright-core';
import { frameWith, pollFor } from './frames.js';
import { ARTIFACTS, editorTextPoint, openWorkbench, ROOT, runCommand, startServer, WORKSPACE, type Server, type Workbench } from './harness.js';
import { writeRandomCheckpoint } from '../fixtures/randomCheckpoint.js';

export async function openFile(page: Page, name: string): Promise<void> {
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: name }).click();
  await page.locator('.tab.active', { hasText: name }).waitFor({ timeout: 10_000 });
  await page.locator('.monaco-editor .view-line').first().waitFor({ timeout: 10_000 });
}

export async function waitForText(locator: Locator, want: RegExp | ((s: string) => boolean), timeoutMs: number): Promise<string> {
  const ok = typeof want === 'function' ? want : (s: string) => want.test(s);
  const text = await pollFor(() => locator.innerText().catch(() => ''), ok, timeoutMs);
  assert.ok(ok(text), `waited ${timeoutMs} ms for ${String(want)}; text is "${text}"`);
  return text;
}

export async function clickEditor(page: Page, text: string, occurrence: number): Promise<{ x: number; y: number }> {
  const at = await editorTextPoint(page, text, occurrence);
  assert.ok(at, `"${text}" is not on a rendered line of the editor`);
  const box = await page.locator('.monaco-editor .overflow-guard').first().boundingBox();
  assert.ok(box && at.x > box.x + 40 && at.x < box.x + box.width - 20 && at.y > box.y && at.y < box.y + box.height,
    `"${text}" is outside the editor's visible area (scrolled away?): ${JSON.stringify(at)} vs ${JSON.stringify(box)}`);
  await page.mouse.click(at.x, at.y);
  return at;
}

/** Double-clicks the `occurrence`-th visible `text` in the editor: the word under it becomes the selection. */
export async function selectWord(page: Page, text: string, occurrence: number): Promise<void> {
  const at = await editorTextPoint(page, text, occurrence);
  assert.ok(at, `"${text}" is not on a rendered line of the editor`);
  await page.mouse.dblclick(at.x, at.y);
}

/** Hovers `text` in the editor and waits for Headlight's part of the hover (other providers may answer first). */
export async function hoverEditor(page: Page, text: string, occurrence: number): Promise<string> {
  const at = await editorTextPoint(page, text, occurrence);
  assert.ok(at, `"${text}" is not visible in the editor`);
  await page.mouse.move(at.x - 40, at.y);
  await page.mouse.move(at.x, at.y, { steps: 4 });
  const hover = page.locator('.monaco-hover:not(.hidden)').first();
  return waitForText(hover, /Surprisal/, 10_000).then((s) => s.replace(/\u00a0/g, ' '));
}

/**
 * Waits until the editor hover is fully shown: Headlight's part rendered to its last line, the widget's fade-in
 * over (no running animation, opacity 1 up its ancestors), and, for at most 10 s, no other provider's part still
 * "(loading...)"; then two frames to settle. Returns what it saw.
 */
export async function hoverShown(page: Page): Promise<{ opacity: number; animations: number; loading: boolean }> {
  const hover = page.locator('.monaco-hover:not(.hidden)').first();
  await waitForText(hover, /Open in the attention panel/, 10_000);
  const read = () => hover.evaluate((el) => {
    let opacity = 1;
    for (let e: Element | null = el; e; e = e.parentElement) opacity *= Number(getComputedStyle(e).opacity);
    const widget = el.closest('.monaco-hover') ?? el;
    const animations = [...widget.getAnimations({ subtree: true }), ...(widget.parentElement?.getAnimations() ?? [])].filter((a) => a.playState === 'running').length;
    return { opacity, animations, loading: /\(loading\.\.\.\)/.test(el.textContent ?? '') };
  });
  const faded = await pollFor(read, (s) => s.opacity === 1 && s.animations === 0, 10_000);
  assert.ok(faded.opacity === 1 && faded.animations === 0, `the hover did not finish fading in: ${JSON.stringify(faded)}`);
  const settled = await pollFor(read, (s) => s.opacity === 1 && s.animations === 0 && !s.loading, 10_000); // TypeScript's part may still load
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  return settled;
}

/** Pixels that differ from the canvas's top-left pixel, distinct colours, and a hash of the pixels. */
export function canvasStats(canvas: Locator): Promise<{ painted: number; colours: number; hash: number; width: number; height: number }> {
  return canvas.evaluate((c: HTMLCanvasElement) => {
    const ctx = c.getContext('2d');
    if (!ctx || c.width === 0 || c.height === 0) return { painted: 0, colours: 0, hash: 0, width: c.width, height: c.height };
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    const colours = new Set<number>();
    let painted = 0;
    let hash = 2166136261;
    for (let k = 0; k < d.length; k += 4) {
      const diff = Math.abs(d[k] - d[0]) + Math.abs(d[k + 1] - d[1]) + Math.abs(d[k + 2] - d[2]);
      if (diff > 12) painted++;
      if (colours.size < 4096) colours.add((d[k] << 16) | (d[k + 1] << 8) | d[k + 2]);
      hash = Math.imul(hash ^ (d[k] + 3 * d[k + 1] + 7 * d[k + 2]), 16777619) >>> 0;
    }
    return { painted, colours: colours.size, hash, width: c.width, height: c.height };
  });
}

export interface GridCheck {
  cells: number;
  pitch: number;
  blank: string[];
  cssWidth: number;
  cssHeight: number;
}

/**
 * Reads the model view's canvas as a grid: its css size must be the labels plus a whole number of equal pitches,
 * L rows by H columns (webview/modelView.ts: 30 px row labels, 16 px column labels, thumbnails `pitch` apart), and
 * every thumbnail must hold pixels that are not the background. Waits until thumbnails arrived.
 */
export async function waitForGrid(canvas: Locator, want: { nLayer: number; nHead: number }): Promise<GridCheck> {
  const read = () =>
    canvas.evaluate((c: HTMLCanvasElement, { L, H }: { L: number; H: number }) => {
      const LABEL_W = 30;
      const LABEL_H = 16;
      const cssWidth = c.clientWidth;
      const cssHeight = c.clientHeight;
      const pitchW = (cssWidth - LABEL_W) / H;
      const pitchH = (cssHeight - LABEL_H) / L;
      const blank: string[] = [];
      if (pitchW !== pitchH || !Number.isInteger(pitchW) || pitchW < 4) return { cells: 0, pitch: pitchW, blank, cssWidth, cssHeight };
      const ctx = c.getContext('2d')!;
      const scale = c.width / cssWidth;
      const bg = ctx.getImageData(1, 1, 1, 1).data;
      let cells = 0;
      for (let l = 0; l < L; l++) {
        for (let h = 0; h < H; h++) {
          const x = Math.round((LABEL_W + h * pitchW) * scale);
          const y = Math.round((LABEL_H + l * pitchW) * scale);
          const size = Math.max(1, Math.floor((pitchW - 3) * scale) - 2);
          const d = ctx.getImageData(x + 1, y + 1, size, size).data;
          let painted = 0;
          for (let k = 0; k < d.length; k += 4) if (Math.abs(d[k] - bg[0]) + Math.abs(d[k + 1] - bg[1]) + Math.abs(d[k + 2] - bg[2]) > 12) painted++;
          cells++;
          if (painted === 0) blank.push(`L${l}H${h}`);
        }
      }
      return { cells, pitch: pitchW, blank, cssWidth, cssHeight };
    }, { L: want.nLayer, H: want.nHead });
  return pollFor(read, (g) => g.cells > 0 && g.blank.length === 0, 15_000);
}

/**
 * The settings of a journey on the bundled model: the bundled one when its weights exist, else (or with
 * HEADLIGHT_E2E_RANDOM_MODEL=1) a random GPT-2-vocabulary checkpoint written into `work` and chosen through
 * `headlight.model`. No auto-save, and TypeScript's syntax server only (its project load would fill the hovers).
 */
export async function bundledModelSettings(work: string): Promise<Record<string, unknown>> {
  const settings: Record<string, unknown> = { 'files.autoSave': 'off', 'typescript.tsserver.useSyntaxServer': 'always' };
  if (!existsSync(join(ROOT, 'models', 'headlight-tiny', 'model.safetensors')) || process.env.HEADLIGHT_E2E_RANDOM_MODEL) {
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    const model = await writeRandomCheckpoint(join(work, 'random-gpt2'), { seed: 5, nLayer: 2, nHead: 4, nEmbd: 32, nPositions: 256 });
    settings['headlight.model'] = model.dir;
  }
  return settings;
}

/** Opens `file` from the explorer, runs Explain Attention and waits for the panel's title to count tokens. */
export async function explainAttention(page: Page, file: string, timeoutMs = 30_000): Promise<{ panel: FrameLocator; title: string }> {
  await openFile(page, file);
  await runCommand(page, 'Headlight: Explain Attention');
  const panel = await frameWith(page, 'canvas[aria-roledescription="grid of attention heads"]');
  const title = await waitForText(panel.locator('.toolbar .title'), /\d+ tokens/, timeoutMs);
  return { panel, title };
}

/**
 * Runs a command from the palette whose own QuickPick or input box follows (so the widget does not close in between,
 * unlike runCommand): F1, its title, Enter.
 */
export async function startCommand(page: Page, title: string): Promise<void> {
  const input = page.locator('.quick-input-widget input');
  await page.keyboard.press('F1');
  await input.waitFor({ state: 'visible', timeout: 10_000 });
  await input.fill(`>${title}`);
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first().waitFor({ state: 'visible', timeout: 10_000 });
  await input.press('Enter');
}

/** Waits for the quick input showing `showing` (its title or a row) and clicks its row with `row` (default the first row). */
export async function pickQuickItem(page: Page, showing: string, row?: string, timeoutMs = 10_000): Promise<string> {
  const widget = page.locator('.quick-input-widget', { hasText: showing });
  await widget.waitFor({ state: 'visible', timeout: timeoutMs });
  const item = (row === undefined ? widget.locator('.monaco-list-row') : widget.locator('.monaco-list-row', { hasText: row })).first();
  await item.waitFor({ state: 'visible', timeout: timeoutMs });
  const label = (await item.innerText()).replace(/\u00a0/g, ' ');
  await item.click();
  return label;
}

/** Headlight: Compare With… → "this text with the selection replaced by…" → `word` (the selection must be made). */
export async function compareWithReplacement(page: Page, word: string): Promise<void> {
  await startCommand(page, 'Headlight: Compare With…');
  await pickQuickItem(page, 'selection replaced by', 'selection replaced by');
  const input = page.locator('.quick-input-widget input');
  await page.locator('.quick-input-widget', { hasText: 'replace the selection by' }).waitFor({ state: 'visible', timeout: 10_000 });
  await input.fill(word);
  await input.press('Enter');
  await input.waitFor({ state: 'hidden', timeout: 10_000 });
}

/** Saves a screenshot of one element (a webview's too) to artifacts/e2e/<name>.png and returns its path. */
export async function screenshotOf(locator: Locator, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = join(ARTIFACTS, `${name}.png`);
  await locator.screenshot({ path: file });
  return file;
}

/**
 * A journey on the bundled model (bundledModelSettings): its code-server starts before the file's tests and stops
 * after them, and the workspace file it may edit (`sample`) is put back as it was. `open()` opens the workbench and
 * waits for Headlight's status item; `original` is the sample's bytes before the journey.
 */
export function bundledJourney(work: string, sample?: string): { open(): Promise<Workbench>; original(): Buffer } {
  let server: Server | undefined;
  let wb: Workbench | undefined;
  let original = Buffer.alloc(0);
  before(async () => {
    if (sample) original = readFileSync(join(WORKSPACE, sample));
    server = await startServer({ settings: await bundledModelSettings(work) });
  });
  after(async () => {
    await wb?.close();
    await server?.stop();
    if (!sample) return;
    const path = join(WORKSPACE, sample);
    if (!readFileSync(path).equals(original)) writeFileSync(path, original);
  });
  return {
    async open() {
      wb = await openWorkbench(server!);
      await wb.statusItem('headlight.status').waitFor({ state: 'visible', timeout: 30_000 });
      return wb;
    },
    original: () => original,
  };
}
