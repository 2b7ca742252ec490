/** The real sidebar bundle in headless Chromium, on the harness's host session and the recorded run. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { halfTable } from '../../extension/common/half';
import { scaleLut } from '../../extension/common/colorScale';
import { FIXTURE, problems, startHarness, type Harness } from './harness';

const ART = join(import.meta.dirname, '..', '..', 'artifacts', 'webview');
const L: number = FIXTURE.model.nLayer;
const H: number = FIXTURE.model.nHead;
const CURSOR = 30;
const INSIDE = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'recorded-inside.json'), 'utf8'));
function f32(b64: string): Float32Array {
  const buf = Buffer.from(b64, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

function row(l: number, h: number, i: number): number[] {
  const buf = Buffer.from(FIXTURE.triangles[l * H + h], 'base64');
  const bits = new Uint16Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const t = halfTable();
  const base = (i * (i + 1)) / 2;
  return Array.from({ length: i + 1 }, (_, j) => t[bits[base + j]]);
}

/** Head scores the test chooses: 1.2 previous-token, 2.3 induction. */
const SCORES = {
  nLayer: L,
  nHead: H,
  scores: {
    'previous-token': Array.from({ length: L * H }, (_, k) => (k === 1 * H + 2 ? 0.94 : 0.1)),
    induction: Array.from({ length: L * H }, (_, k) => (k === 2 * H + 3 ? 0.71 : 0.02)),
  },
  badges: { '1.2': ['previous-token'], '2.3': ['induction'] },
};

function nextPaint(page: Page): Promise<unknown> {
  return page.evaluate(() => new Promise((r) => window.addEventListener('headlight:painted', (e) => (e as CustomEvent).detail.view === 'sidebar' && r(1), { once: false })));
}

async function openSidebar(h: Harness, theme = 'vscode-dark'): Promise<Page> {
  const page = await h.open('sidebar', { theme, width: 300, height: 640 });
  await page.evaluate(([f, s]) => {
    const src = window.harness.source;
    const sc = s as { scores: Record<string, number[]> };
    src.headScores = { ...(s as object), scores: Object.fromEntries(Object.entries(sc.scores).map(([k, v]) => [k, Float32Array.from(v)])) } as typeof src.headScores;
    src.setRun(window.harness.fromFixture(f), 1);
  }, [FIXTURE, SCORES] as const);
  const painted = nextPaint(page);
  await page.evaluate((i) => window.harness.source.setCursor(i), CURSOR);
  await painted;
  await page.waitForFunction(() => document.querySelectorAll('.sources li').length > 0);
  return page;
}

/** The heatmap's grid in css px (label margins x0, y0 and the cell size), as the sidebar laid it out. */
interface Grid { x0: number; y0: number; cellW: number; cellH: number }
function heatGrid(page: Page): Promise<Grid & { x: number; y: number }> {
  return page.evaluate(() => {
    const c = document.querySelector('.heat canvas') as HTMLCanvasElement;
    const r = c.getBoundingClientRect();
    return { ...JSON.parse(c.dataset.grid!), x: r.x, y: r.y };
  });
}

/** Colour of cell (l, h) of the heatmap, away from its corner badge. */
function cellPixel(page: Page, l: number, hd: number): Promise<number[]> {
  return page.evaluate(([l, hd]) => {
    const c = document.querySelector('.heat canvas') as HTMLCanvasElement;
    const g = JSON.parse(c.dataset.grid!);
    const d = c.getContext('2d')!.getImageData(Math.floor((g.x0 + (hd + 0.3) * g.cellW) * devicePixelRatio), Math.floor((g.y0 + (l + 0.7) * g.cellH) * devicePixelRatio), 1, 1).data;
    return [d[0], d[1], d[2]];
  }, [l, hd]);
}

describe('sidebar (Chromium)', () => {
  let h: Harness;
  before(async () => {
    mkdirSync(ART, { recursive: true });
    h = await startHarness();
  });
  after(async () => h?.close());

  it("shows the cursor token's per-head heatmap from one cursorSummary, the selected head's row and its top sources", async () => {
    const page = await openSidebar(h);
    assert.deepEqual(problems(page), []);
    assert.match((await page.textContent('.focus-token')) ?? '', new RegExp(`^Token #${CURSOR} `));
    // one batched request per cursor move, plus the selected head's row: never L·H rows
    const queries = await page.evaluate(() => window.harness.source.queries);
    assert.equal(queries.filter((q) => q === 'cursorSummary').length, 1, queries.join(','));
    assert.equal(queries.filter((q) => q === 'row').length, 1, queries.join(','));
    // every cell is coloured by the head's peak weight on a token other than the first
    const lut = scaleLut('dark');
    for (let l = 0; l < L; l++) {
      for (let hd = 0; hd < H; hd++) {
        if (SCORES.badges[`${l}.${hd}` as keyof typeof SCORES.badges]) continue; // a badge letter sits in the corner
        const peak = Math.max(...row(l, hd, CURSOR).slice(1));
        const k = Math.round(Math.min(1, peak) * 255) * 4;
        const px = await cellPixel(page, l, hd);
        for (let c = 0; c < 3; c++) assert.ok(Math.abs(px[c] - lut[k + c]) <= 3, `cell ${l}.${hd}: ${px} vs ${lut.slice(k, k + 3)} for peak ${peak}`);
      }
    }
    // the top-sources list is the selected head's (0.0) row, strongest first
    const w = row(0, 0, CURSOR);
    const top = w.map((x, j) => [j, x] as const).sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, 8);
    const listed = await page.$$eval('.sources .tok-text', (els) => els.map((e) => Number(/^#(\d+)/.exec(e.textContent ?? '')![1])));
    assert.deepEqual(listed, top.map(([j]) => j));
    // the strip: its strongest column has the colour of sqrt(max weight)
    const strip = await page.evaluate(() => {
      const c = document.querySelector('.strip canvas') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, Math.floor(c.height / 2), c.width, 1).data;
      const out: number[][] = [];
      for (let x = 0; x < c.width; x++) out.push([d[x * 4], d[x * 4 + 1], d[x * 4 + 2]]);
      return out;
    });
    const kMax = Math.round(Math.sqrt(Math.max(...w)) * 255) * 4;
    assert.ok(strip.some((px) => [0, 1, 2].every((c) => Math.abs(px[c] - lut[kMax + c]) <= 3)), 'the strip shows the strongest weight');
    await page.close();
  });

  it('clicking a cell selects that head through the host; the list and label follow; a source click moves the cursor', async () => {
    const page = await openSidebar(h);
    const g = await heatGrid(page);
    const at = (l: number, hd: number) => [g.x + g.x0 + (hd + 0.5) * g.cellW, g.y + g.y0 + (l + 0.5) * g.cellH] as const;
    const painted = nextPaint(page);
    await page.mouse.click(...at(2, 1));
    await page.waitForFunction(() => JSON.stringify(window.harness.source.selection) === JSON.stringify({ layer: 2, head: 1 }));
    await painted;
    await page.waitForFunction(() => /^L2 H1: weights over the window$/.test(document.querySelector('.sel-label')?.textContent ?? ''));
    const w = row(2, 1, CURSOR);
    const first = w.indexOf(Math.max(...w));
    await page.waitForFunction((j) => document.querySelector('.sources .tok-text')?.textContent?.startsWith(`#${j} `), first);
    // the tooltip names the head's peak token and its scores
    await page.mouse.move(...at(1, 2));
    const tip = (await page.textContent('.heat .tooltip')) ?? '';
    assert.match(tip, /^L1 H2 \(previous-token\): /);
    assert.match(tip, /previous-token 0\.94 · induction 0\.02/);
    // a selected head with a badge names its role
    await page.mouse.click(...at(1, 2));
    await page.waitForFunction(() => /^L1 H2 \(previous-token\): weights/.test(document.querySelector('.sel-label')?.textContent ?? ''));
    assert.equal(await page.isHidden('vscode-badge.mode'), true, 'plain attention: no mode badge');
    // clicking a source reveals it in the editor
    await page.click('.sources li:nth-child(2) button');
    await page.waitForFunction(() => window.harness.source.revealed.length === 1);
    await page.screenshot({ path: join(ART, 'sidebar-select-dark.png') });
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  it('value-weighted mode: the header and the label say so, and the list is the engine\'s value-weighted row', async () => {
    const page = await openSidebar(h);
    await page.evaluate((ins) => window.harness.setInside(ins), INSIDE);
    await page.evaluate(() => window.harness.source.setSelection({ layer: 1, head: 2 }));
    await page.waitForFunction(() => /^L1 H2 \(previous-token\): weights over the window$/.test(document.querySelector('.sel-label')?.textContent ?? ''));
    await page.evaluate(() => window.harness.experiments.setAttentionMode('value-weighted'));
    await page.waitForFunction(() => /^L1 H2 \(previous-token\) · value-weighted: weights over the window$/.test(document.querySelector('.sel-label')?.textContent ?? ''));
    assert.equal(await page.isVisible('vscode-badge.mode'), true);
    assert.equal((await page.textContent('vscode-badge.mode'))?.trim(), 'value-weighted');
    // the list shows the engine's value-weighted row (recorded), which differs from the plain one
    const want = f32(INSIDE.vwRows[`1.2.${CURSOR}`]);
    const plain = row(1, 2, CURSOR);
    const top = Array.from(want, (x, j) => [j, x] as const).sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, 8).map(([j]) => j);
    const topPlain = plain.map((x, j) => [j, x] as const).sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, 8).map(([j]) => j);
    assert.notDeepEqual(top, topPlain, 'the recording tells the two modes apart');
    await page.waitForFunction((t) => JSON.stringify(Array.from(document.querySelectorAll('.sources .tok-text'), (e) => Number(/^#(\d+)/.exec(e.textContent ?? '')![1]))) === JSON.stringify(t), top);
    // the heatmap too (drawn from the same focus message as the list): each cell is the peak of the head's value-weighted row (α·‖v·W_O‖, normalized) past token 0
    const lut = scaleLut('dark');
    const vwPeak = (l: number, hd: number) => {
      const n = f32(INSIDE.valueNorms[l * H + hd]);
      const w = row(l, hd, CURSOR).map((a, j) => a * n[j]);
      const total = w.reduce((a, b) => a + b, 0);
      return Math.max(...w.slice(1).map((x) => x / total));
    };
    let differs = 0;
    for (let l = 0; l < L; l++) {
      for (let hd = 0; hd < H; hd++) {
        if (SCORES.badges[`${l}.${hd}` as keyof typeof SCORES.badges]) continue; // a badge letter sits in the corner
        const k = Math.round(Math.min(1, vwPeak(l, hd)) * 255) * 4;
        const plainK = Math.round(Math.min(1, Math.max(...row(l, hd, CURSOR).slice(1))) * 255) * 4;
        if (Math.abs(k - plainK) > 8) differs++;
        const px = await cellPixel(page, l, hd);
        for (let c = 0; c < 3; c++) assert.ok(Math.abs(px[c] - lut[k + c]) <= 3, `value-weighted cell ${l}.${hd}: ${px} vs ${lut.slice(k, k + 3)}`);
      }
    }
    assert.ok(differs > 0, 'some head peaks differently in value-weighted mode');
    await page.screenshot({ path: join(ART, 'sidebar-value-weighted-dark.png') });
    // back to plain attention
    await page.evaluate(() => window.harness.experiments.setAttentionMode('attention'));
    await page.waitForFunction(() => /^L1 H2 \(previous-token\): weights over the window$/.test(document.querySelector('.sel-label')?.textContent ?? ''));
    assert.equal(await page.isHidden('vscode-badge.mode'), true);
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  it('with the cursor outside the window it says so', async () => {
    const page = await openSidebar(h);
    await page.evaluate(() => window.harness.source.setCursor(undefined));
    await page.waitForFunction(() => /Put the cursor inside/.test(document.querySelector('.focus-token')?.textContent ?? ''));
    assert.equal(await page.$$eval('.sources li', (e) => e.length), 0);
    await page.close();
  });

  for (const theme of ['vscode-light', 'vscode-dark', 'vscode-high-contrast']) {
    it(`is readable in ${theme}`, async () => {
      const page = await openSidebar(h, theme);
      const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      const expect = { 'vscode-light': 'rgb(248, 248, 248)', 'vscode-dark': 'rgb(24, 24, 24)', 'vscode-high-contrast': 'rgb(0, 0, 0)' }[theme];
      assert.equal(bg, expect);
      const bottom = await page.evaluate(() => Math.ceil(document.querySelector('.sources')!.getBoundingClientRect().bottom) + 8);
      await page.screenshot({ path: join(ART, `sidebar-${theme.replace('vscode-', '')}.png`), clip: { x: 0, y: 0, width: 300, height: Math.min(640, bottom) } });
      assert.deepEqual(problems(page), []);
      await page.close();
    });
  }
});
