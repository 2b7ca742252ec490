/** The real panel bundle in headless Chromium, fed a run recorded from the real engine. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { halfTable } from '../../extension/common/half';
import { scaleLut } from '../../extension/common/colorScale';
import { FIXTURE, problems, startHarness, type Harness } from './harness';

const ART = join(import.meta.dirname, '..', '..', 'artifacts', 'webview');
const T: number = FIXTURE.run.tokens.length;
const H: number = FIXTURE.model.nHead;

/** Weights of query i for head (l, h), decoded from the recorded fp16 triangle. */
function row(l: number, h: number, i: number): number[] {
  const buf = Buffer.from(FIXTURE.triangles[l * H + h], 'base64'); // may sit in Node's shared pool: copy out
  const bits = new Uint16Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const t = halfTable();
  const base = (i * (i + 1)) / 2;
  return Array.from({ length: i + 1 }, (_, j) => t[bits[base + j]]);
}

async function openPanel(h: Harness, theme = 'vscode-dark'): Promise<Page> {
  const page = await h.open('panel', { theme });
  const painted = page.evaluate(() => new Promise((r) => window.addEventListener('headlight:painted', (e) => (e as CustomEvent).detail.view === 'matrix' && r(1))));
  await page.evaluate((f) => window.harness.source.setRun(window.harness.fromFixture(f), 1), FIXTURE);
  await painted;
  await page.waitForFunction(() => document.querySelector('.model canvas')?.getAttribute('data-painted'));
  return page;
}

async function litTokens(page: Page): Promise<Map<number, number>> {
  const pairs = await page.$$eval('.tok[data-w]', (els) => els.map((e) => [Number((e as HTMLElement).dataset.i), Number((e as HTMLElement).dataset.w)] as [number, number]));
  return new Map(pairs);
}

async function showText(page: Page): Promise<void> {
  await page.click('vscode-tab-header:nth-of-type(2)');
  await page.waitForSelector('.text .tok', { state: 'visible' });
}

describe('attention panel (Chromium)', () => {
  let h: Harness;
  before(async () => {
    mkdirSync(ART, { recursive: true });
    h = await startHarness();
  });
  after(async () => h?.close());

  it('renders the run with no CSP violations or errors, and draws the selected head in the matrix', async () => {
    const page = await openPanel(h);
    assert.deepEqual(problems(page), []);
    assert.match((await page.textContent('.title')) ?? '', new RegExp(`${T} tokens`));
    assert.equal(await page.$$eval('.tok', (e) => e.length), T);
    await page.screenshot({ path: join(ART, 'panel-matrix-dark.png') });
    await page.close();
  });

  it('selecting a head in the model view updates the matrix (pixels follow the colour scale) and the host', async () => {
    const page = await openPanel(h);
    const rect = await page.evaluate(() => document.querySelector('.model canvas')!.getBoundingClientRect().toJSON());
    // thumbnail of layer 1, head 2: LABEL_W 30 + 2 * pitch, LABEL_H 16 + 1 * pitch; pitch from the canvas width
    const pitch = (rect.width - 30) / H;
    const painted = page.evaluate(() => new Promise((r) => window.addEventListener('headlight:painted', (e) => (e as CustomEvent).detail.view === 'matrix' && r(1))));
    await page.mouse.click(rect.x + 30 + 2 * pitch + 8, rect.y + 16 + 1 * pitch + 8);
    await painted;
    await page.waitForFunction(() => JSON.stringify(window.harness.source.selection) === JSON.stringify({ layer: 1, head: 2 }));
    assert.match((await page.getAttribute('.matrix-base', 'aria-label')) ?? '', /layer 1, head 2/);
    // the strongest cell of the last row must be painted with the scale's colour of its weight
    const i = T - 1;
    const w = row(1, 2, i);
    const j = w.indexOf(Math.max(...w));
    const px = await page.evaluate(([i, j, T]) => {
      const c = document.querySelector('.matrix-base') as HTMLCanvasElement;
      const r = c.parentElement!.getBoundingClientRect();
      const scale = Math.min(Math.floor(r.width) - 78 - 8, Math.floor(r.height) - 64 - 8) / T;
      const d = c.getContext('2d')!.getImageData(Math.floor((78 + (j + 0.5) * scale) * devicePixelRatio), Math.floor((64 + (i + 0.5) * scale) * devicePixelRatio), 1, 1).data;
      return [d[0], d[1], d[2]];
    }, [i, j, T]);
    const lut = scaleLut('dark');
    const k = Math.round(Math.min(1, w[j]) * 255) * 4;
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(px[c] - lut[k + c]) <= 4, `pixel ${px} vs scale ${[lut[k], lut[k + 1], lut[k + 2]]} for weight ${w[j]}`);
    await page.close();
  });

  it('pointing at a token lights exactly the tokens it attends to (threshold, reverse, sink)', async () => {
    const page = await openPanel(h);
    await showText(page);
    const i = 30;
    await page.hover(`.tok[data-i="${i}"]`);
    await page.waitForSelector('.tok[data-w]');
    const w = row(0, 0, i);
    const expected = new Map(w.map((x, j) => [j, x] as [number, number]).filter(([, x]) => x > 0 && x >= 0.01));
    const lit = await litTokens(page);
    assert.deepEqual([...lit.keys()].sort((a, b) => a - b), [...expected.keys()]);
    for (const [j, x] of expected) assert.ok(Math.abs(lit.get(j)! - x) < 1e-3);
    // the strongest one is painted in the first head hue (charts-blue #3794ff in the dark theme)
    const top = [...expected].sort((a, b) => b[1] - a[1])[0][0];
    assert.match(await page.$eval(`.tok[data-i="${top}"]`, (e) => getComputedStyle(e).backgroundColor), /rgba\(55, 148, 255/);
    await page.screenshot({ path: join(ART, 'panel-text-dark.png') });

    // threshold 0.3: only strong links stay
    await page.$eval('input.threshold', (e) => {
      (e as HTMLInputElement).value = '0.3';
      e.dispatchEvent(new Event('input'));
    });
    const strong = await litTokens(page);
    assert.deepEqual([...strong.keys()].sort((a, b) => a - b), [...expected].filter(([, x]) => x >= 0.3).map(([j]) => j));
    await page.$eval('input.threshold', (e) => {
      (e as HTMLInputElement).value = '0';
      e.dispatchEvent(new Event('input'));
    });

    // reverse: who attends to token i
    await page.click('vscode-checkbox[label^="Reverse"]');
    await page.hover(`.tok[data-i="${i}"]`);
    const rev = await litTokens(page);
    const col = new Map<number, number>();
    for (let q = i; q < T; q++) if (row(0, 0, q)[i] > 0) col.set(q, row(0, 0, q)[i]);
    assert.deepEqual([...rev.keys()].sort((a, b) => a - b), [...col.keys()]);
    for (const [q, x] of col) assert.ok(Math.abs(rev.get(q)! - x) < 1e-3, `query ${q}`);
    await page.click('vscode-checkbox[label^="Reverse"]');

    // dim the sink: token 0 off, the rest renormalised
    await page.click('vscode-checkbox[label^="Dim"]');
    const dim = await litTokens(page);
    assert.equal(dim.has(0), false);
    for (const [j, x] of dim) assert.ok(Math.abs(x - w[j] / (1 - w[0])) < 1e-3, `token ${j}`);
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  it('compares heads in distinct hues (shift+click) and keeps the selection across a new run; marks a stale run', async () => {
    const page = await openPanel(h);
    const rect = await page.evaluate(() => document.querySelector('.model canvas')!.getBoundingClientRect().toJSON());
    const pitch = (rect.width - 30) / H;
    await page.keyboard.down('Shift');
    await page.mouse.click(rect.x + 30 + 3 * pitch + 8, rect.y + 16 + 2 * pitch + 8);
    await page.keyboard.up('Shift');
    await showText(page);
    await page.hover('.tok[data-i="25"]');
    await page.waitForFunction(() => Array.from(document.querySelectorAll('.tok')).some((e) => (e as HTMLElement).style.background.includes('linear-gradient')));
    assert.equal(await page.$$eval('.chip', (e) => e.length), 2);
    // keyboard: focus the model view, move the head right
    await page.focus('.model canvas');
    await page.keyboard.press('ArrowRight');
    await page.waitForFunction(() => JSON.stringify(window.harness.source.selection) === JSON.stringify({ layer: 0, head: 1 }));
    // a new run keeps the selection
    await page.evaluate((f) => window.harness.source.setRun(window.harness.fromFixture(f), 2), FIXTURE);
    await page.waitForFunction(() => /layer 0, head 1/.test(document.querySelector('.matrix-base')?.getAttribute('aria-label') ?? ''));
    assert.equal(await page.isHidden('.stale'), true);
    await page.evaluate(() => (window.harness.session as unknown as { setStale(b: boolean): void }).setStale(true));
    await page.waitForSelector('.stale:not([hidden])');
    await page.close();
  });

  it('opened before any run: shows the host selection once the first run arrives', async () => {
    const page = await h.open('panel', { selection: '1.2' }); // the host selects L1 H2, then the panel opens, then a run comes
    await page.waitForSelector('.empty:not([hidden])');
    const painted = page.evaluate(() => new Promise((r) => window.addEventListener('headlight:painted', (e) => (e as CustomEvent).detail.view === 'matrix' && r(1))));
    await page.evaluate((f) => window.harness.source.setRun(window.harness.fromFixture(f), 1), FIXTURE);
    await painted;
    await page.waitForFunction(() => /layer 1, head 2/.test(document.querySelector('.matrix-base')?.getAttribute('aria-label') ?? ''));
    assert.equal(await page.textContent('.status .shown'), 'Editor and sidebar: L1 H2');
    assert.deepEqual(await page.evaluate(() => window.harness.source.selection), { layer: 1, head: 2 });
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  it('shows the head finder: computed scores in the tooltip, badges on thumbnails, a legend', async () => {
    // Without an override the harness runs the engine's own scorer on the recorded triangles.
    const page = await openPanel(h);
    await page.waitForSelector('.roles-legend:not([hidden])');
    const rect = await page.evaluate(() => document.querySelector('.model canvas')!.getBoundingClientRect().toJSON());
    const pitch = (rect.width - 30) / H;
    await page.mouse.move(rect.x + 30 + 1 * pitch + 8, rect.y + 16 + 2 * pitch + 8);
    const tip = (await page.textContent('.model .tooltip')) ?? '';
    assert.match(tip, /^L2 H1/);
    // first-token of head 2.1: mean weight on token 0 over queries 1..T−1, from the fixture itself
    let sum = 0;
    for (let i = 1; i < T; i++) sum += row(2, 1, i)[0];
    assert.match(tip, new RegExp(`first-token ${(sum / (T - 1)).toFixed(2)}`));
    assert.match(tip, /previous-token \d\.\d\d · first-token/);
    await page.close();

    // Scores the test chooses: badge letters drawn in the thumbnails' empty upper-right corner.
    const page2 = await h.open('panel', { theme: 'vscode-dark' });
    const n = FIXTURE.model.nLayer * H;
    const scores = {
      nLayer: FIXTURE.model.nLayer, nHead: H,
      scores: { 'previous-token': Array.from({ length: n }, (_, k) => (k === 1 * H + 2 ? 0.94 : 0.1)), induction: Array.from({ length: n }, (_, k) => (k === 2 * H + 3 ? 0.71 : 0.02)), 'first-token': Array.from({ length: n }, (_, k) => (k === 0 ? 0.88 : 0.2)) },
      badges: { '1.2': ['previous-token'], '2.3': ['induction'], '0.0': ['first-token'] },
    };
    const painted = page2.evaluate(() => new Promise((r) => window.addEventListener('headlight:painted', (e) => (e as CustomEvent).detail.view === 'matrix' && r(1))));
    await page2.evaluate(([f, s]) => {
      const src = window.harness.source;
      const sc = s as { scores: Record<string, number[]> };
      src.headScores = { ...(s as object), scores: Object.fromEntries(Object.entries(sc.scores).map(([k, v]) => [k, Float32Array.from(v)])) } as typeof src.headScores;
      src.setRun(window.harness.fromFixture(f), 1);
    }, [FIXTURE, scores] as const);
    await painted;
    await page2.waitForSelector('.roles-legend:not([hidden])');
    assert.match((await page2.textContent('.roles-legend')) ?? '', /P previous-token.*I induction.*S first-token \(sink\).*D duplicate-token.*L local.*3 heads/);
    // the badge's background (theme badge colour #616161) sits at the top-right of head 1.2, not on head 1.1
    const badgePx = (l: number, hd: number) => page2.evaluate(([l, hd]) => {
      const c = document.querySelector<HTMLCanvasElement>('.model canvas')!;
      const pitch = (c.getBoundingClientRect().width - 30) / 4;
      const cell = pitch - 3;
      const d = c.getContext('2d')!.getImageData(Math.floor((30 + hd * pitch + cell - 3) * devicePixelRatio), Math.floor((16 + l * pitch + 2) * devicePixelRatio), 1, 1).data;
      return [d[0], d[1], d[2]];
    }, [l, hd]);
    await page2.waitForFunction(() => document.querySelector('.model canvas')?.getAttribute('data-painted'));
    assert.deepEqual(await badgePx(1, 2), [0x61, 0x61, 0x61]);
    assert.deepEqual(await badgePx(2, 3), [0x61, 0x61, 0x61]);
    assert.notDeepEqual(await badgePx(1, 1), [0x61, 0x61, 0x61]);
    // README pictures: a selected token (crosshair), then the same in the light theme
    await page2.evaluate(() => window.harness.source.setCursor(30));
    await page2.waitForSelector('.tok.selected[data-i="30"]', { state: 'attached' }); // the matrix marks its row (its tooltip waits for the pointer)
    await page2.screenshot({ path: join(ART, 'panel-model-dark.png') });
    await page2.evaluate(() => window.harness.setTheme('vscode-light'));
    await page2.waitForFunction(() => {
      const d = document.querySelector<HTMLCanvasElement>('.model canvas')!.getContext('2d')!.getImageData(2, 2, 1, 1).data;
      return d[0] === 255;
    });
    await page2.screenshot({ path: join(ART, 'panel-model-light.png') });
    await page2.evaluate(() => window.harness.setTheme('vscode-dark'));
    const r2 = await page2.evaluate(() => document.querySelector('.model canvas')!.getBoundingClientRect().toJSON());
    const p2 = (r2.width - 30) / H;
    await page2.mouse.move(r2.x + 30 + 2 * p2 + 8, r2.y + 16 + 1 * p2 + 12);
    assert.match((await page2.textContent('.model .tooltip')) ?? '', /L1 H2 — previous-token .*\nprevious-token 0\.94 · induction 0\.02 · first-token 0\.20/);
    await page2.screenshot({ path: join(ART, 'panel-badges-dark.png') });
    assert.deepEqual(problems(page2), []);
    await page2.close();
  });

  it('T=1024 at fit: the matrix shows a max-pooled level, each pixel the strongest weight of its block', async () => {
    const page = await h.open('panel', { width: 1200, height: 800 });
    const painted = page.evaluate(() => new Promise((r) => window.addEventListener('headlight:painted', (e) => (e as CustomEvent).detail.view === 'matrix' && r(1))));
    await page.evaluate(() => {
      window.harness.source.headScores = { nLayer: 12, nHead: 12, scores: {}, badges: {} };
      window.harness.source.setRun(window.harness.synthetic(1024), 1);
    });
    await painted;
    await page.waitForFunction(() => /layer 0, head 0/.test(document.querySelector('.matrix-base')?.getAttribute('aria-label') ?? ''));
    const samples = await page.evaluate(() => {
      const half = (b: number) => {
        const e = (b >> 10) & 31;
        const f = b & 1023;
        return e === 0 ? f * 2 ** -24 : (1 + f / 1024) * 2 ** (e - 15);
      };
      const T = 1024;
      const tri = window.harness.source.data!.triangle(0, 0);
      const c = document.querySelector('.matrix-base') as HTMLCanvasElement;
      const r = c.parentElement!.getBoundingClientRect();
      const scale = Math.min(Math.floor(r.width) - 78 - 8, Math.floor(r.height) - 64 - 8) / T;
      const k = Math.ceil(Math.log2(1 / scale) - 1e-9);
      const f = 2 ** k;
      const img = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      const out: [number, number[], number[]][] = [];
      // every 7th device pixel along rows and columns inside the plot, lower triangle only
      for (let py = 64 + 1; py < 64 + T * scale - 1; py += 7) {
        for (let px = 78 + 1; px < 78 + T * scale - 1; px += 7) {
          const cy = Math.floor((py + 0.5 - 64) / (f * scale));
          const cx = Math.floor((px + 0.5 - 78) / (f * scale));
          const fx = (px + 0.5 - 78) / (f * scale) - cx;
          const fy = (py + 0.5 - 64) / (f * scale) - cy;
          if (cx > cy || Math.min(fx, fy, 1 - fx, 1 - fy) < 0.02) continue; // on a cell edge either cell may be sampled
          let w = 0;
          for (let i = cy * f; i < Math.min(T, (cy + 1) * f); i++) for (let j = cx * f; j < Math.min(i + 1, (cx + 1) * f); j++) w = Math.max(w, half(tri[(i * (i + 1)) / 2 + j]));
          const o = (py * c.width + px) * 4;
          out.push([w, [img[o], img[o + 1], img[o + 2]], [px, py]]);
        }
      }
      return { k, out };
    });
    assert.ok(samples.k >= 1, `a pooled level is shown (level ${samples.k})`);
    assert.ok(samples.out.length > 1000, `${samples.out.length} samples`);
    const lut = scaleLut('dark');
    const bad = samples.out.filter(([w, px]) => {
      const k = Math.round(Math.min(1, w) * 255) * 4;
      return [0, 1, 2].some((c) => Math.abs(px[c] - lut[k + c]) > 4);
    });
    assert.equal(bad.length, 0, `${bad.length} of ${samples.out.length} pixels differ, e.g. ${JSON.stringify(bad.slice(0, 3))}`);
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  it('exports PNG, SVG and JSON through the host', async () => {
    const page = await openPanel(h);
    for (const label of ['PNG', 'SVG', 'JSON']) await page.click(`vscode-button:has-text("${label}")`);
    await page.waitForFunction(() => window.harness.saves.length === 3);
    const saves = await page.evaluate(() => window.harness.saves.map((s) => ({ kind: s.kind, name: s.suggestedName, head: typeof s.data === 'string' ? s.data.slice(0, 200000) : Array.from(s.data.slice(0, 8)) })));
    assert.deepEqual(saves.map((s) => s.kind), ['png', 'svg', 'json']);
    assert.deepEqual(saves[0].head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.match(saves[1].head as string, /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.equal(((saves[1].head as string).match(/<rect x=/g) ?? []).length, (T * (T + 1)) / 2);
    const json = JSON.parse(saves[2].head as string);
    assert.equal(json.mode, 'attention');
    assert.equal(json.layer, 0);
    assert.equal(json.weights.length, T);
    assert.ok(Math.abs(json.weights[T - 1][3] - row(0, 0, T - 1)[3]) < 1e-5);
    assert.equal(saves[2].name, 'example-L0H0.json');
    await page.close();
  });

  for (const theme of ['vscode-light', 'vscode-dark', 'vscode-high-contrast']) {
    it(`is readable in ${theme}: canvas colours follow the theme, and switching the body class re-reads them`, async () => {
      const page = await openPanel(h, theme);
      const bgOf = () => page.evaluate(() => Array.from(document.querySelector<HTMLCanvasElement>('.matrix-base')!.getContext('2d')!.getImageData(2, 2, 1, 1).data.slice(0, 3)));
      const bg = await bgOf();
      const expect = { 'vscode-light': [255, 255, 255], 'vscode-dark': [31, 31, 31], 'vscode-high-contrast': [0, 0, 0] }[theme]!;
      assert.deepEqual(bg, expect);
      const name = theme.replace('vscode-', '');
      await page.screenshot({ path: join(ART, `panel-matrix-${name}.png`) });
      await showText(page);
      await page.hover('.tok[data-i="38"]');
      await page.screenshot({ path: join(ART, `panel-text-${name}.png`) });
      // switch theme live
      await page.evaluate((t) => window.harness.setTheme(t), theme === 'vscode-light' ? 'vscode-dark' : 'vscode-light');
      await page.click('vscode-tab-header:nth-of-type(1)');
      await page.waitForFunction((old) => {
        const d = document.querySelector<HTMLCanvasElement>('.matrix-base')!.getContext('2d')!.getImageData(2, 2, 1, 1).data;
        return d[0] !== old[0];
      }, bg);
      assert.deepEqual(problems(page), []);
      await page.close();
    });
  }
});
