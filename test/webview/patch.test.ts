/**
 * The panel's Patching view in headless Chromium: the real panel bundle, the real host session and Patching class
 * (extension/host/patching.ts), answers recorded from the real engine (test/fixtures/recorded-patch.json,
 * test/webview/recordPatch.ts) streamed cell by cell in the engine's order, after the engine's first progress event
 * (the clean and corrupted metrics, before any cell).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURE, problems, startHarness, type Harness } from './harness';

const ART = join(import.meta.dirname, '..', '..', 'artifacts', 'webview');
const REC = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'recorded-patch.json'), 'utf8'));
const T: number = FIXTURE.run.tokens.length;
const L: number = FIXTURE.model.nLayer;
const H: number = FIXTURE.model.nHead;
const f32 = (s: string) => {
  const b = Buffer.from(s, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};
type Cell = { target: 'resid' | 'heads'; layer: number; index: number; value: number };

/** The pixel at the centre of every cell of both heatmaps: [r, g, b], and the background. */
async function pixels(page: import('playwright-core').Page) {
  return page.evaluate(() => {
    const read = (sel: string) => {
      const c = document.querySelector(sel) as HTMLCanvasElement;
      const g = JSON.parse(c.dataset.grid!);
      const ctx = c.getContext('2d')!;
      const dpr = devicePixelRatio;
      const out: number[][][] = [];
      for (let r = 0; r < g.rows; r++) {
        out.push([]);
        for (let k = 0; k < g.cols; k++) out[r].push(Array.from(ctx.getImageData(Math.floor((g.x0 + (k + 0.5) * g.cellW) * dpr), Math.floor((g.y0 + (r + 0.5) * g.cellH) * dpr), 1, 1).data.slice(0, 3)));
      }
      return { out, g };
    };
    const probe = document.createElement('canvas').getContext('2d')!; // the theme background, as a canvas paints it
    probe.fillStyle = getComputedStyle(document.body).getPropertyValue('--vscode-editor-background').trim();
    probe.fillRect(0, 0, 1, 1);
    return { resid: read('canvas.patch-resid'), heads: read('canvas.patch-heads'), bg: Array.from(probe.getImageData(0, 0, 1, 1).data.slice(0, 3)) };
  });
}

/** Blue (the chart blue: toward the clean metric) or red, by which channel dominates; 'bg': the theme background. */
let BG: number[] = [];
const hue = (px: number[]) => (px.every((v, k) => Math.abs(v - BG[k]) <= 1) ? 'bg' : px[2] > px[0] + 20 ? 'blue' : px[0] > px[2] + 20 ? 'red' : 'grey');

describe('patching view (Chromium)', () => {
  let h: Harness;
  before(async () => {
    mkdirSync(ART, { recursive: true });
    h = await startHarness();
  });
  after(async () => h?.close());

  it("the engine's first progress event carries the final result's clean and corrupted metrics", () => {
    assert.equal(REC.first.done, 0);
    assert.equal(REC.first.total, REC.cells.length);
    assert.ok(Math.abs(REC.first.metricClean - REC.result.metricClean) <= 1e-9, `${REC.first.metricClean} vs ${REC.result.metricClean}`);
    assert.ok(Math.abs(REC.first.metricCorrupt - REC.result.metricCorrupt) <= 1e-9, `${REC.first.metricCorrupt} vs ${REC.result.metricCorrupt}`);
    assert.ok(Math.abs(REC.first.metricClean - REC.first.metricCorrupt) > 1e-3, 'the two ends differ: normalizing means something');
  });

  it('streams recorded cells into the right places normalized from the first, Cancel keeps them, a finished run colours the same, a head click selects it', async () => {
    const page = await h.open('panel');
    const painted = page.evaluate(() => new Promise((r) => window.addEventListener('headlight:painted', (e) => (e as CustomEvent).detail.view === 'matrix' && r(1))));
    await page.evaluate((f) => window.harness.source.setRun(window.harness.fromFixture(f), 1), FIXTURE);
    await painted;
    await page.evaluate(async ({ rec }) => {
      const hs = window.harness;
      hs.setPatch(rec);
      hs.source.scoreAnswer = { tokens: rec.otherTokens, window: { start: 0, end: rec.otherTokens.length }, totalTokens: rec.otherTokens.length, logprobs: Float32Array.from(rec.otherLogprobs, (x: number | null) => (x === null ? NaN : x)), top: rec.otherTokens.map(() => []) };
      await hs.comparisons.start({ kind: 'replace', label: 'selection replaced by “there”', text: rec.corrupt, offsetBase: 0 });
      hs.source.patchStepMs = 25;
      (window as unknown as { run: Promise<unknown> }).run = hs.patching.start({ answer: rec.answer, wrong: rec.wrong }).catch((e: Error) => e.message);
    }, { rec: REC });
    await page.waitForSelector('section.patch[data-state="running"]', { state: 'visible' });
    assert.match((await page.textContent('.patch-sides')) ?? '', /Clean: this version · corrupted: selection replaced by “there”/);
    assert.match((await page.textContent('.patch-metric')) ?? '', new RegExp(`Metric after token ${T - 1} .*logit\\(.*\\) − logit\\(.*\\).*\\(patched − corrupted\\) / \\(clean − corrupted\\)`));
    await page.waitForFunction(() => (window.harness.patching.current?.done ?? 0) >= 40);
    // while the cells stream in: both ends in the header, the legend and the hidden table already normalized
    const { metricClean: mc, metricCorrupt: mk } = REC.first;
    const signed3 = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(3)}`;
    assert.equal(await page.getAttribute('section.patch', 'data-state'), 'running');
    assert.ok(((await page.textContent('.patch-metric')) ?? '').includes(`Clean ${signed3(mc)}, corrupted ${signed3(mk)}.`), 'the header shows both ends while running');
    assert.match((await page.textContent('.patch-legend')) ?? '', /\+1 = clean.*normalized; 0 = corrupted/);
    const streamedText = await page.$$eval('.sr-only table.patch-table td', (tds) => tds.map((t) => t.textContent ?? '').filter((t) => t !== 'pending'));
    assert.ok(streamedText.length >= 40 && streamedText.every((t) => /\(normalized -?\d+\.\d{3}\)$/.test(t)), `streamed table cells are normalized: ${streamedText.slice(0, 3).join(' | ')}`);
    await page.click('vscode-button.patch-cancel');
    await page.waitForSelector('section.patch[data-state="cancelled"]');
    const done = await page.evaluate(() => window.harness.patching.current!.done);
    assert.ok(done >= 40 && done < REC.cells.length, `cancelled part way (${done} of ${REC.cells.length})`);
    await page.waitForTimeout(100); // the last frame
    const px = await pixels(page);
    BG = px.bg;
    const streamed: Cell[] = REC.cells.slice(0, done);
    const norm = (v: number) => (v - mk) / (mc - mk);
    const seen = new Set(streamed.map((c) => `${c.target}:${c.layer}:${c.index}`));
    const rawMax = Math.max(...streamed.map((c) => Math.abs(c.value)));
    let strong = 0;
    let asCorrupted = 0; // normalized ≈ 0 but a strong raw value: near the background, where the raw scale paints full colour
    for (const c of streamed) {
      const got = hue((c.target === 'resid' ? px.resid : px.heads).out[c.layer][c.index]);
      const n = norm(c.value);
      if (Math.abs(n) < 0.05 && Math.abs(c.value) > 0.5 * rawMax) {
        asCorrupted++;
        assert.ok(got === 'bg' || got === 'grey', `${c.target} L${c.layer} ${c.index} = ${c.value} (normalized ${n}) is painted ${got}, as on the raw scale`);
      }
      if (Math.abs(n) <= 0.3) continue;
      strong++;
      assert.equal(got, n > 0 ? 'blue' : 'red', `${c.target} L${c.layer} ${c.index} = ${c.value}, normalized ${n}`);
    }
    for (let l = 0; l < L; l++) {
      for (let t = 0; t < T; t++) if (!seen.has(`resid:${l}:${t}`)) assert.equal(hue(px.resid.out[l][t]), 'bg', `pending resid L${l} t${t} is empty`);
      for (let k = 0; k < H; k++) if (!seen.has(`heads:${l}:${k}`)) assert.equal(hue(px.heads.out[l][k]), 'bg', `pending head L${l} H${k} is empty`);
    }
    assert.ok(strong > 0, 'some streamed cells are strong enough to check');
    assert.ok(asCorrupted > 0, 'some streamed cells are as corrupted with a strong raw value (the test tells the two scales apart)');

    // the whole request: the normalized metric's colours, the table, a head click
    await page.evaluate(() => {
      window.harness.source.patchStepMs = 1;
      return window.harness.patching.start(window.harness.patching.lastRequest!);
    });
    await page.waitForSelector('section.patch[data-state="done"]');
    await page.waitForTimeout(100);
    const all = await pixels(page);
    assert.equal(REC.result.metricClean, mc);
    assert.equal(REC.result.metricCorrupt, mk);
    const resid = f32(REC.result.resid);
    const heads = f32(REC.result.heads);
    let checked = 0;
    for (let l = 0; l < L; l++) {
      for (let t = 0; t < T; t++) {
        const n = (resid[l * T + t] - mk) / (mc - mk);
        if (Math.abs(n) > 0.3) (checked++, assert.equal(hue(all.resid.out[l][t]), n > 0 ? 'blue' : 'red', `resid L${l} t${t} normalized ${n}`));
      }
      for (let k = 0; k < H; k++) {
        const n = (heads[l * H + k] - mk) / (mc - mk);
        if (Math.abs(n) > 0.3) (checked++, assert.equal(hue(all.heads.out[l][k]), n > 0 ? 'blue' : 'red', `head L${l} H${k} normalized ${n}`));
      }
    }
    assert.ok(checked > 0, 'some cells are strong enough to check');
    // layer 0 at the replaced token: the only difference between the runs is that token's embedding, so the clean
    // metric comes back whole (normalized 1, full blue)
    const changed = FIXTURE.run.tokens.findIndex((t: { id: number }, i: number) => t.id !== REC.otherTokens[i].id);
    assert.ok(Math.abs((resid[changed] - mk) / (mc - mk) - 1) < 1e-3);
    assert.equal(hue(all.resid.out[0][changed]), 'blue');
    const table = await page.$$eval('.sr-only table.patch-table', (ts) => ts.map((t) => t.textContent ?? ''));
    assert.ok(table.some((t) => t.includes('normalized 1.000')), 'the hidden table lists normalized values');
    await page.locator('section.patch').screenshot({ path: join(ART, 'panel-patch-dark.png') });
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth + 1), 'the view fits the panel width (the hidden tables too)');
    // click head L1 H2: selected everywhere
    const g = all.heads.g;
    const box = (await page.$eval('canvas.patch-heads', (c) => c.getBoundingClientRect().toJSON())) as DOMRect;
    await page.mouse.click(box.x + g.x0 + 2.5 * g.cellW, box.y + g.y0 + 1.5 * g.cellH);
    await page.waitForFunction(() => JSON.stringify(window.harness.source.selection) === JSON.stringify({ layer: 1, head: 2 }));
    assert.deepEqual(problems(page), []);
    await page.close();
  });
});
