/**
 * What the user sees, measured: geometry and pixels of the panel and sidebar at the sizes VS Code gives them
 * (a ~510 px wide panel beside the editor, a ~300 px sidebar). Each test failed on the layout it replaced.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { halfTable } from '../../extension/common/half';
import { scaleLut } from '../../extension/common/colorScale';
import { FIXTURE, problems, startHarness, type Harness } from './harness';

const ART = join(import.meta.dirname, '..', '..', 'artifacts', 'webview');
const INSIDE = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'recorded-inside.json'), 'utf8'));
const T: number = FIXTURE.run.tokens.length;
const L: number = FIXTURE.model.nLayer;
const H: number = FIXTURE.model.nHead;

function row(l: number, h: number, i: number): number[] {
  const buf = Buffer.from(FIXTURE.triangles[l * H + h], 'base64');
  const bits = new Uint16Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const t = halfTable();
  const base = (i * (i + 1)) / 2;
  return Array.from({ length: i + 1 }, (_, j) => t[bits[base + j]]);
}

interface Box { left: number; top: number; right: number; bottom: number }

/**
 * The part of `selector`'s box the user can see: its rect cut by the viewport and by every ancestor that clips it
 * (overflow other than visible), as the browser computes containing blocks (a fixed box escapes them).
 */
function visibleBox(page: Page, selector: string): Promise<{ box: Box; visible: Box }> {
  return page.evaluate((sel) => {
    const e = document.querySelector(sel) as HTMLElement;
    const r = e.getBoundingClientRect();
    const box = { left: r.left, top: r.top, right: r.right, bottom: r.bottom };
    const v = { left: 0, top: 0, right: document.documentElement.clientWidth, bottom: document.documentElement.clientHeight };
    let pos = getComputedStyle(e).position;
    for (let a = e.parentElement; a; a = a.parentElement) {
      const s = getComputedStyle(a);
      const containing = pos === 'fixed' ? s.transform !== 'none' || s.filter !== 'none' || s.contain.includes('paint') : pos === 'absolute' ? s.position !== 'static' : true;
      if (!containing) continue;
      if (s.overflowX !== 'visible' || s.overflowY !== 'visible') {
        const ar = a.getBoundingClientRect();
        v.left = Math.max(v.left, ar.left);
        v.top = Math.max(v.top, ar.top);
        v.right = Math.min(v.right, ar.right);
        v.bottom = Math.min(v.bottom, ar.bottom);
      }
      pos = s.position;
    }
    return { box, visible: v };
  }, selector);
}

function assertInside(b: Box, v: Box, what: string): void {
  const ok = b.left >= v.left - 0.5 && b.top >= v.top - 0.5 && b.right <= v.right + 0.5 && b.bottom <= v.bottom + 0.5;
  assert.ok(ok, `${what}: ${JSON.stringify(b)} is not inside its visible area ${JSON.stringify(v)}`);
}

async function openPanel(h: Harness, opts: { width?: number; height?: number; theme?: string; ref?: string } = {}): Promise<Page> {
  const page = await h.open('panel', { width: opts.width ?? 510, height: opts.height ?? 800, theme: opts.theme });
  const painted = page.evaluate(() => new Promise((r) => window.addEventListener('headlight:painted', (e) => (e as CustomEvent).detail.view === 'matrix' && r(1))));
  await page.evaluate(([f, ref]) => {
    const data = window.harness.fromFixture(f);
    window.harness.source.setRun(ref ? { ...data, model: { ...data.model, ref } } : data, 1);
  }, [FIXTURE, opts.ref] as const);
  await painted;
  await page.waitForFunction(() => document.querySelector('.model canvas')?.getAttribute('data-painted'));
  return page;
}

/** Overlay pixels of one device-pixel column (x in css px of the matrix), top to bottom: alpha only. */
function overlayColumnAlpha(page: Page, x: number): Promise<number[]> {
  return page.evaluate((x) => {
    const c = document.querySelector('.matrix-overlay') as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(Math.floor(x * devicePixelRatio), 0, 1, c.height).data;
    const out: number[] = [];
    for (let y = 0; y < c.height; y++) out.push(d[y * 4 + 3]);
    return out;
  }, x);
}

describe('layout of the panel and sidebar (Chromium)', () => {
  let h: Harness;
  before(async () => {
    mkdirSync(ART, { recursive: true });
    h = await startHarness();
  });
  after(async () => h?.close());

  it('model view: the tooltip of a last-row thumbnail stays whole on screen', async () => {
    const page = await openPanel(h);
    const rect = await page.evaluate(() => document.querySelector('.model canvas')!.getBoundingClientRect().toJSON());
    const pitch = (rect.width - 30) / H;
    for (const [l, hd] of [[L - 1, H - 1], [L - 1, 0]]) {
      await page.mouse.move(rect.x + 30 + hd * pitch + pitch / 2, rect.y + 16 + l * pitch + pitch / 2);
      await page.waitForSelector('.model .tooltip:not([hidden])');
      assert.match((await page.textContent('.model .tooltip')) ?? '', new RegExp(`^L${l} H${hd}`));
      const { box, visible } = await visibleBox(page, '.model .tooltip');
      assert.ok(box.bottom - box.top > 10, 'the tooltip has a height');
      assertInside(box, visible, `tooltip of L${l} H${hd}`);
    }
    await page.screenshot({ path: join(ART, 'layout-model-tooltip.png') });
    await page.mouse.move(1, 1);
    await page.waitForSelector('.model .tooltip[hidden]', { state: 'attached' });
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  for (const [width, height] of [[510, 800], [510, 560], [1200, 700]]) {
    it(`head matrix at ${width}×${height}: after Fit the whole matrix, labels included, is on screen`, async () => {
      const page = await openPanel(h, { width, height });
      await page.mouse.click(5, 5); // zoom in first, so Fit has work to do
      await page.click('vscode-button[title="Zoom in"]');
      await page.click('vscode-button[title="Fit the whole matrix"]');
      const m = await visibleBox(page, '.matrix');
      const scale = Math.min(Math.floor(m.box.right - m.box.left) - 78 - 8, Math.floor(m.box.bottom - m.box.top) - 64 - 8) / T;
      assert.ok(scale > (height < 600 ? 1.5 : 4), `a usable matrix: ${scale.toFixed(2)} px per token`);
      // the plot with its labels (LEFT 78, TOP 64) is inside the matrix area, and the area is what the user sees
      const plot = { left: m.box.left, top: m.box.top, right: m.box.left + 78 + T * scale, bottom: m.box.top + 64 + T * scale };
      assertInside(plot, m.visible, 'the fitted matrix');
      assertInside(plot, m.box, 'the fitted matrix in its area');
      // it fits: one side fills its room
      const room = Math.min(m.box.right - m.box.left - 86, m.box.bottom - m.box.top - 72);
      assert.ok(T * scale >= room - 1, `fills the room: ${T * scale} of ${room}`);
      // the bottom-right cell is really painted there (the scale's colour of its weight) and nothing covers it
      const w = row(0, 0, T - 1)[T - 1];
      const lut = scaleLut('dark');
      const k = Math.round(Math.sqrt(0) * 0) + Math.round(w * 255) * 4; // linear scale
      const at = { x: m.box.left + 78 + (T - 0.5) * scale, y: m.box.top + 64 + (T - 0.5) * scale };
      const seen = await page.evaluate(({ x, y }) => {
        const hit = document.elementFromPoint(x, y);
        const c = document.querySelector('.matrix-base') as HTMLCanvasElement;
        const r = c.getBoundingClientRect();
        const d = c.getContext('2d')!.getImageData(Math.floor((x - r.left) * devicePixelRatio), Math.floor((y - r.top) * devicePixelRatio), 1, 1).data;
        return { hit: hit?.className ?? '', px: [d[0], d[1], d[2]] };
      }, at);
      assert.equal(seen.hit, 'matrix-overlay');
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(seen.px[c] - lut[k + c]) <= 4, `cell (${T - 1}, ${T - 1}): ${seen.px} vs ${lut.slice(k, k + 3)}`);
      if (width === 510 && height === 800) await page.screenshot({ path: join(ART, 'layout-matrix-fit.png') });
      assert.deepEqual(problems(page), []);
      await page.close();
    });
  }

  it('surprisal strip: the tooltip of the last token, guesses included, stays whole on screen', async () => {
    const page = await openPanel(h, { height: 340 }); // a short panel: the strip ends at the bottom of its tab
    await page.click('vscode-tab-header:nth-of-type(2)');
    await page.waitForSelector('.strip canvas', { state: 'visible' });
    await page.evaluate(() => document.querySelector('.strip')!.scrollIntoView({ block: 'end' }));
    const r = await page.evaluate(() => document.querySelector('.strip canvas')!.getBoundingClientRect().toJSON());
    for (const x of [r.right - 1, r.left + (1.5 * r.width) / T]) { // the last token, then the second (the first has no guesses)
      await page.mouse.move(x, r.y + r.height / 2);
      await page.waitForFunction(() => /expected: /.test(document.querySelector('.strip .tooltip:not([hidden])')?.textContent ?? ''));
      const { box, visible } = await visibleBox(page, '.strip .tooltip');
      assert.ok(box.bottom - box.top > 10, 'the tooltip has a height');
      assertInside(box, visible, `strip tooltip at x=${Math.round(x)}`);
    }
    await page.screenshot({ path: join(ART, 'layout-strip-tooltip.png') });
    await page.mouse.move(r.left + 1, r.bottom + 200);
    await page.waitForSelector('.strip .tooltip[hidden]', { state: 'attached' });
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  it('Inside a head: the Q·K tooltip of the last key row, at the right edge, stays whole on screen', async () => {
    const page = await h.open('panel', { width: 510, height: 560 });
    const painted = page.evaluate(() => new Promise((r) => window.addEventListener('headlight:painted', (e) => (e as CustomEvent).detail.view === 'matrix' && r(1))));
    await page.evaluate(([f, ins]) => {
      window.harness.setInside(ins);
      window.harness.source.setRun(window.harness.fromFixture(f), 1);
    }, [FIXTURE, INSIDE]);
    await painted;
    await page.evaluate(() => {
      window.harness.source.setSelection({ layer: 1, head: 2 });
      window.harness.source.setCursor(30);
    });
    await page.click('vscode-tab-header.inside-tab');
    await page.waitForFunction(() => document.querySelector('#qk-title')?.textContent?.includes('L1 H2, query 30'));
    await page.waitForFunction(() => document.querySelectorAll('.sr-table tr[data-j]').length > 0);
    // the canvas's last key row scrolled to the bottom of the view, then pointed at near the right edge
    await page.evaluate(() => document.querySelector('.qk-canvas')!.scrollIntoView({ block: 'end' }));
    const c = await page.evaluate(() => document.querySelector('.qk-canvas')!.getBoundingClientRect().toJSON());
    const vw = await page.evaluate(() => document.documentElement.clientWidth);
    for (const [x, y] of [[Math.min(c.right, vw) - 3, c.bottom - 6], [c.left + 100, c.bottom - 6]]) {
      await page.mouse.move(x, y);
      await page.waitForSelector('.qk-wrap .tooltip:not([hidden])');
      assert.match((await page.textContent('.qk-wrap .tooltip')) ?? '', /^key \d+ /);
      const { box, visible } = await visibleBox(page, '.qk-wrap .tooltip');
      assert.ok(box.bottom - box.top > 10, 'the tooltip has a height');
      assertInside(box, visible, `Q·K tooltip at (${Math.round(x)}, ${Math.round(y)})`);
    }
    await page.screenshot({ path: join(ART, 'layout-qk-tooltip.png') });
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  it('head matrix: no crosshair or tooltip until the pointer or the keys move it; then they show inside the view', async () => {
    const page = await openPanel(h);
    await page.evaluate(() => window.harness.source.setCursor(0)); // the editor's cursor on the first token
    await page.waitForSelector('.tok.selected[data-i="0"]', { state: 'attached' });
    await page.waitForTimeout(50);
    assert.equal(await page.isHidden('.matrix .tooltip'), true);
    const m = await visibleBox(page, '.matrix');
    const scale = Math.min(Math.floor(m.box.right - m.box.left) - 86, Math.floor(m.box.bottom - m.box.top) - 72) / T;
    // no vertical crosshair line through key 0 (the selected query's row line alone is drawn)
    const col = await overlayColumnAlpha(page, 78 + 0.5 * scale);
    const below = col.slice(Math.ceil((64 + 2 * scale) * 1), Math.floor((64 + T * scale) * 1));
    assert.equal(below.filter((a) => a > 0).length, 0, 'no crosshair line down key 0 before the pointer came');
    // the pointer over cell (30, 12): crosshair and tooltip, the tooltip inside the viewport
    await page.mouse.move(m.box.left + 78 + 12.5 * scale, m.box.top + 64 + 30.5 * scale);
    await page.waitForSelector('.matrix .tooltip:not([hidden])');
    assert.match((await page.textContent('.matrix .tooltip')) ?? '', /^query #30 .* key #12 /);
    const tip = await visibleBox(page, '.matrix .tooltip');
    assertInside(tip.box, tip.visible, 'the crosshair tooltip');
    const line = await overlayColumnAlpha(page, Math.round(78 + 12.5 * scale) + 0.5);
    assert.ok(line.filter((a) => a > 0).length > 20, 'the crosshair line is drawn down key 12');
    // a cell near the bottom-right corner: the tooltip flips or shifts to stay on screen
    await page.mouse.move(m.box.left + 78 + (T - 1.5) * scale, m.box.top + 64 + (T - 0.5) * scale);
    await page.waitForFunction((n) => /^query #(\d+)/.exec(document.querySelector('.matrix .tooltip')?.textContent ?? '')?.[1] === String(n), T - 1);
    const tip2 = await visibleBox(page, '.matrix .tooltip');
    assertInside(tip2.box, tip2.visible, 'the corner tooltip');
    // the pointer leaves: nothing stays
    await page.mouse.move(2, 2);
    await page.waitForSelector('.matrix .tooltip[hidden]', { state: 'attached' });
    // keyboard: focus and arrows move the crosshair from where it was, and the tooltip follows
    await page.focus('.matrix-overlay');
    assert.equal(await page.isHidden('.matrix .tooltip'), true, 'focus alone shows nothing');
    await page.keyboard.press('ArrowUp');
    await page.waitForSelector('.matrix .tooltip:not([hidden])');
    assert.equal(await page.getAttribute('.matrix-overlay', 'data-crosshair'), `${T - 2},${T - 2}`);
    await page.keyboard.press('ArrowLeft');
    assert.equal(await page.getAttribute('.matrix-overlay', 'data-crosshair'), `${T - 2},${T - 3}`);
    const tip3 = await visibleBox(page, '.matrix .tooltip');
    assertInside(tip3.box, tip3.visible, 'the keyboard tooltip');
    await page.evaluate(() => (document.activeElement as HTMLElement).blur());
    await page.waitForSelector('.matrix .tooltip[hidden]', { state: 'attached' });
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  it('title: file on one line, model and size under it, neither cut at a 510 px panel; the bundled model is headlight-tiny', async () => {
    const page = await openPanel(h, { ref: 'bundled' });
    const t = await page.evaluate(() => {
      const title = document.querySelector('.toolbar .title') as HTMLElement;
      return [...title.children].map((c) => ({ text: c.textContent, cut: c.scrollWidth > c.clientWidth + 1, h: c.getBoundingClientRect().height })).concat([{ text: title.title, cut: false, h: 0 }]);
    });
    assert.equal(t[0].text, 'example.js');
    assert.equal(t[1].text, `headlight-tiny · ${L}×${H} heads · ${T} tokens`);
    assert.ok(!t[0].cut && !t[1].cut, `nothing cut: ${JSON.stringify(t)}`);
    assert.ok(t[0].h > 8 && t[1].h > 8, 'both lines are shown');
    assert.equal(t[2].text, `example.js\nheadlight-tiny · ${L}×${H} heads · ${T} tokens`);
    assert.doesNotMatch((await page.textContent('.toolbar')) ?? '', /bundled/);
    // at 300 px the model line wraps between its parts and nothing in the header overlaps
    await page.setViewportSize({ width: 300, height: 800 });
    await page.waitForFunction(() => document.body.clientWidth === 300);
    const narrow = await page.evaluate(() => {
      const s = document.querySelector('.toolbar .subtitle') as HTMLElement;
      const boxes = [...document.querySelectorAll('.toolbar > *')].map((e) => e.getBoundingClientRect()).filter((r) => r.width > 0);
      let overlaps = 0;
      for (let a = 0; a < boxes.length; a++)
        for (let b = a + 1; b < boxes.length; b++) {
          const [p, q] = [boxes[a], boxes[b]];
          if (p.left < q.right - 0.5 && q.left < p.right - 0.5 && p.top < q.bottom - 0.5 && q.top < p.bottom - 0.5) overlaps++;
        }
      return { cut: s.scrollWidth > s.clientWidth + 1, overlaps, right: Math.max(...boxes.map((r) => r.right)) };
    });
    assert.equal(narrow.cut, false);
    assert.equal(narrow.overlaps, 0, 'title, toggles and buttons do not overlap');
    assert.ok(narrow.right <= 300, `the header fits the panel: ${narrow.right}`);
    await page.close();
  });

  it('status line names what the editor and sidebar show: one head, a layer mean, the mean of all layers', async () => {
    const page = await openPanel(h);
    const status = () => page.textContent('.status .shown');
    await page.evaluate(() => window.harness.source.setSelection({ layer: 'mean', head: 'mean' }));
    await page.waitForFunction(() => /mean of all layers/.test(document.querySelector('.status')?.textContent ?? ''));
    assert.equal(await status(), 'Editor and sidebar: mean of all layers · head matrix: L0 H0');
    await page.evaluate(() => window.harness.source.setSelection({ layer: 1, head: 'mean' }));
    await page.waitForFunction(() => /layer 1 mean/.test(document.querySelector('.status')?.textContent ?? ''));
    assert.equal(await status(), 'Editor and sidebar: layer 1 mean · head matrix: L0 H0');
    await page.evaluate(() => window.harness.source.setSelection({ layer: 2, head: 3 }));
    await page.waitForFunction(() => /L2 H3/.test(document.querySelector('.status')?.textContent ?? ''));
    assert.equal(await status(), 'Editor and sidebar: L2 H3');
    assert.doesNotMatch((await page.textContent('.status')) ?? '', /mean/);
    // picking a head in the model view makes it the shown one everywhere
    const rect = await page.evaluate(() => document.querySelector('.model canvas')!.getBoundingClientRect().toJSON());
    const pitch = (rect.width - 30) / H;
    await page.mouse.click(rect.x + 30 + 1 * pitch + 8, rect.y + 16 + 0 * pitch + 8);
    await page.waitForFunction(() => /^Editor and sidebar: L0 H1$/.test(document.querySelector('.status .shown')?.textContent ?? ''));
    // keyboard in the model view moves the head, and the status follows
    await page.focus('.model canvas');
    await page.keyboard.press('ArrowDown');
    await page.waitForFunction(() => /^Editor and sidebar: L1 H1$/.test(document.querySelector('.status .shown')?.textContent ?? ''));
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  for (const theme of ['vscode-dark', 'vscode-high-contrast']) {
    it(`panel at 510×800 in ${theme}: screenshot with a selected token and hovered cell`, async () => {
      const page = await openPanel(h, { theme, ref: 'bundled' });
      await page.evaluate(() => window.harness.source.setCursor(30));
      await page.waitForSelector('.tok.selected[data-i="30"]', { state: 'attached' });
      const m = await visibleBox(page, '.matrix');
      const scale = Math.min(Math.floor(m.box.right - m.box.left) - 86, Math.floor(m.box.bottom - m.box.top) - 72) / T;
      await page.mouse.move(m.box.left + 78 + 20.5 * scale, m.box.top + 64 + 30.5 * scale);
      await page.waitForSelector('.matrix .tooltip:not([hidden])');
      await page.screenshot({ path: join(ART, `layout-panel-${theme.replace('vscode-', '')}.png`) });
      assert.deepEqual(problems(page), []);
      await page.close();
    });
  }

  for (const dpr of [1, 1.5, 2]) {
    it(`sidebar heatmap at devicePixelRatio ${dpr}: as wide as the view, one flat colour per cell, labels drawn`, async () => {
      const page = await h.open('sidebar', { width: 300, height: 640, dpr });
      await page.evaluate((f) => window.harness.source.setRun(window.harness.fromFixture(f), 1), FIXTURE);
      const painted = page.evaluate(() => new Promise((r) => window.addEventListener('headlight:painted', (e) => (e as CustomEvent).detail.view === 'sidebar' && r(1))));
      await page.evaluate(() => window.harness.source.setCursor(30));
      await painted;
      const g = await page.evaluate(() => {
        const c = document.querySelector('.heat canvas') as HTMLCanvasElement;
        const r = c.getBoundingClientRect();
        return { width: r.width, height: r.height, body: document.body.clientWidth, w: c.width, h: c.height };
      });
      assert.ok(g.width >= g.body - 16 - 1, `heatmap ${g.width} px of ${g.body - 16} px`);
      assert.equal(g.w, Math.floor(g.width * dpr + 1e-6), 'canvas pixels are device pixels');
      // every pixel of a row through the middle of the last layer is transparent (gap) or exactly one cell colour
      const lut = scaleLut('dark');
      const colours = Array.from({ length: H }, (_, hd) => {
        const peak = Math.max(...row(L - 1, hd, 30).slice(1));
        const k = Math.round(Math.min(1, peak) * 255) * 4;
        return [lut[k], lut[k + 1], lut[k + 2]];
      });
      const line = await page.evaluate((L) => {
        const c = document.querySelector('.heat canvas') as HTMLCanvasElement;
        const g = JSON.parse(c.dataset.grid!);
        const y = Math.floor((g.y0 + (L - 0.5) * g.cellH) * devicePixelRatio);
        const x0 = Math.round(g.x0 * devicePixelRatio);
        const d = c.getContext('2d')!.getImageData(0, y, c.width, 1).data;
        const labels = Array.from({ length: x0 }, (_, x) => d[x * 4 + 3]).filter((a) => a > 0).length;
        const px: number[][] = [];
        for (let x = x0; x < c.width; x++) px.push([d[x * 4], d[x * 4 + 1], d[x * 4 + 2], d[x * 4 + 3]]);
        return { px, labels, font: g.font as number };
      }, L);
      assert.ok(line.font >= 10, `label font ${line.font}px`);
      assert.ok(line.labels > 0, 'the layer label is drawn beside the row');
      let cells = 0;
      let seam = 0;
      let prev = -1;
      for (const p of line.px) {
        if (p[3] === 0) {
          prev = -1;
          continue;
        }
        const k = colours.findIndex((c) => c.every((v, i) => Math.abs(v - p[i]) <= 2));
        if (k < 0 || p[3] !== 255) seam++;
        else if (k !== prev) {
          cells++;
          prev = k;
        }
      }
      assert.equal(seam, 0, 'no blended pixels at cell edges');
      assert.ok(cells >= H - 1, `${cells} cells seen across`); // neighbours of one colour may merge
      await page.screenshot({ path: join(ART, `layout-sidebar-dpr${dpr}.png`) });
      assert.deepEqual(problems(page), []);
      await page.close();
    });
  }

  it('sidebar in high contrast: keyboard moves the head cursor and Enter selects it', async () => {
    const page = await h.open('sidebar', { width: 300, height: 640, theme: 'vscode-high-contrast' });
    await page.evaluate((f) => window.harness.source.setRun(window.harness.fromFixture(f), 1), FIXTURE);
    await page.evaluate(() => window.harness.source.setCursor(30));
    await page.waitForSelector('.sources li');
    await page.focus('.heat canvas');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => JSON.stringify(window.harness.source.selection) === JSON.stringify({ layer: 1, head: 1 }));
    await page.waitForFunction(() => /^L1 H1: weights over the window$/.test(document.querySelector('.sel-label')?.textContent ?? ''));
    await page.screenshot({ path: join(ART, 'layout-sidebar-hc.png') });
    assert.deepEqual(problems(page), []);
    await page.close();
  });
});
