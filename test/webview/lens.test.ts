/**
 * The logit lens and direct logit attribution views, in headless Chromium: the real panel and sidebar bundles and
 * the real host sessions over the harness's recorded run, the engine's answers recorded from the real engine on that
 * run (test/fixtures/recorded-lens.json, test/webview/recordLens.ts). Colours are checked against the fixture's
 * numbers through the same scales the views name (extension/common/colorScale.ts, webview/insideHead/colours.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { scaleLut } from '../../extension/common/colorScale';
import { diverging } from '../../webview/insideHead/colours';
import { FIXTURE, THEMES, problems, startHarness, type Harness } from './harness';

const ART = join(import.meta.dirname, '..', '..', 'artifacts', 'webview');
const LENS = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'recorded-lens.json'), 'utf8'));
const T: number = FIXTURE.run.tokens.length;
const L: number = FIXTURE.model.nLayer;
const H: number = FIXTURE.model.nHead;
const ROWS = L + 1;
const K = 5;
const LUT = scaleLut('dark');
type Rgb = [number, number, number];

const bytes = (s: string) => {
  const b = Buffer.from(s, 'base64');
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
};
const GRID = { logprob: new Float32Array(bytes(LENS.grid.logprob)), topIds: new Int32Array(bytes(LENS.grid.topIds)), topLogprob: new Float32Array(bytes(LENS.grid.topLogprob)), settles: new Int32Array(bytes(LENS.grid.settles)) };
const lutAt = (t: number): Rgb => {
  const k = Math.round(Math.min(1, Math.max(0, t)) * 255) * 4;
  return [LUT[k], LUT[k + 1], LUT[k + 2]];
};
const hex = (h: string): Rgb => [1, 3, 5].map((k) => parseInt(h.slice(k, k + 2), 16)) as Rgb;
const near = (a: number[], b: number[], tol = 2) => a.every((x, k) => Math.abs(x - b[k]) <= tol);

async function openPanel(h: Harness): Promise<Page> {
  const page = await h.open('panel');
  const painted = page.evaluate(() => new Promise((r) => window.addEventListener('headlight:painted', (e) => (e as CustomEvent).detail.view === 'matrix' && r(1))));
  await page.evaluate((f) => {
    window.harness.setLens(f.lens);
    window.harness.source.setRun(window.harness.fromFixture(f.run), 1);
  }, { run: FIXTURE, lens: LENS });
  await painted;
  return page;
}

const lensRequests = (page: Page) => page.evaluate(() => window.harness.source.lens!.requests.slice());
const gridView = (page: Page) => page.$eval('.lens-canvas', (c) => JSON.parse((c as HTMLCanvasElement).dataset.view ?? '{}')) as Promise<{ x0: number; top: number; cellW: number; cellH: number; scrollLeft: number; start: number; end: number; rows: number }>;

/** Device pixels of a canvas at css (x, y). */
function pixel(page: Page, selector: string, x: number, y: number): Promise<number[]> {
  return page.$eval(selector, (c, [x, y]) => {
    const cv = c as HTMLCanvasElement;
    const r = cv.width / cv.clientWidth;
    return Array.from(cv.getContext('2d')!.getImageData(Math.floor(x * r), Math.floor(y * r), 1, 1).data.slice(0, 3));
  }, [x, y]);
}

/** The token ranges of the `lensGrid` requests made so far, as a set of token indices. */
function requested(reqs: string[]): Set<number> {
  const out = new Set<number>();
  for (const r of reqs) {
    const m = /^lensGrid (\d+):(\d+)$/.exec(r);
    if (m) for (let i = Number(m[1]); i < Number(m[2]); i++) out.add(i);
  }
  return out;
}

describe('logit lens and attribution views (Chromium)', () => {
  let h: Harness;
  before(async () => {
    mkdirSync(ART, { recursive: true });
    h = await startHarness();
  });
  after(async () => h?.close());

  it('the Logit lens tab asks nothing while closed; open, it asks only the tokens in view and paints each cell by p(next token), the settle layer marked', async () => {
    const page = await openPanel(h);
    await page.evaluate(() => window.harness.source.setCursor(3));
    await page.waitForTimeout(200);
    assert.deepEqual(await lensRequests(page), [], 'a closed tab costs the engine nothing');
    await page.click('vscode-tab-header.lens-tab-header');
    await page.waitForFunction(() => /tokens computed/.test(document.querySelector('.lens-progress')?.textContent ?? ''));
    const v = await gridView(page);
    assert.equal(v.rows, ROWS);
    assert.ok(v.end < T, `the panel shows part of the ${T} tokens at this zoom (${v.start}–${v.end})`);
    const asked = requested(await lensRequests(page));
    assert.deepEqual([...asked].sort((a, b) => a - b), Array.from({ length: v.end - v.start }, (_, k) => v.start + k), 'exactly the tokens in view');
    for (const r of await lensRequests(page)) if (r.startsWith('lensGrid')) assert.ok(Number(/:(\d+)$/.exec(r)![1]) - Number(/ (\d+):/.exec(r)![1]) <= 32, `pieces of at most 32 tokens (${r})`);
    // every cell in view: the sequential scale at p = exp(logprob) of the recorded grid (the cursor's column aside)
    let checked = 0;
    for (let i = v.start; i < v.end; i++) {
      if (i === 3) continue;
      for (let l = 0; l < ROWS; l++) {
        const lp = GRID.logprob[l * T + i];
        const want = lutAt(Number.isFinite(lp) ? Math.exp(lp) : 0);
        const got = await pixel(page, '.lens-canvas', v.x0 + (i + 0.5) * v.cellW - v.scrollLeft, v.top + (l + 0.5) * v.cellH);
        assert.ok(near(got, want), `cell token ${i} row ${l}: ${got} vs ${want}`);
        checked++;
      }
      // the settle bar: the focus colour along the top of the settle row
      const s = GRID.settles[i];
      const bar = await pixel(page, '.lens-canvas', v.x0 + (i + 0.5) * v.cellW - v.scrollLeft, v.top + s * v.cellH);
      assert.ok(near(bar, hex(THEMES['vscode-dark'].focusBorder), 3), `token ${i}: settle bar at row ${s} (${bar})`);
    }
    assert.ok(checked >= 20 * ROWS);
    // the hidden table says the same for screen readers
    const row = await page.$eval('.lens-table tr[data-i="5"]', (tr) => Array.from(tr.children).map((c) => c.textContent));
    assert.equal(row.length, 2 + ROWS);
    assert.match(row[2]!, /p\(next\) /);
    await page.screenshot({ path: join(ART, 'panel-lens-dark.png') });
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  it("hovering a cell shows that cell's top-5 with probabilities; zoomed in, cells carry their top-1 text", async () => {
    const page = await openPanel(h);
    await page.click('vscode-tab-header.lens-tab-header');
    await page.waitForFunction(() => /tokens computed/.test(document.querySelector('.lens-progress')?.textContent ?? ''));
    const v = await gridView(page);
    const [i, l] = [7, 1];
    const box = (await (await page.$('.lens-canvas'))!.boundingBox())!;
    await page.mouse.move(box.x + v.x0 + (i + 0.5) * v.cellW - v.scrollLeft, box.y + v.top + (l + 0.5) * v.cellH);
    const tops = LENS.at[i].top[l] as { id: number; text: string; logprob: number }[];
    await page.waitForFunction((t) => (document.querySelector('.lens-tip') as HTMLElement | null)?.textContent?.includes(t) ?? false, tops[4].text.replace(/ /g, '·').slice(0, 13));
    const tip = (await page.textContent('.lens-tip'))!;
    assert.match(tip, new RegExp(`#${i} `));
    assert.match(tip, /entering layer 1/);
    for (let k = 0; k < K; k++) {
      const id = GRID.topIds[(l * T + i) * K + k];
      assert.equal(id, tops[k].id, 'the grid and lensAt agree on the guesses');
      const pct = `${(Math.exp(GRID.topLogprob[(l * T + i) * K + k]) * 100).toFixed(1)}%`;
      assert.ok(tip.includes(pct), `top-${k + 1} ${pct} in “${tip}”`);
    }
    assert.match(tip, new RegExp(`settles at ${GRID.settles[i] === L ? 'the output' : `layer ${GRID.settles[i]} of ${L}`}`));
    // zoomed in: each column in view asks its texts (lensAt) and draws them
    await page.click('.lens-controls vscode-button[aria-label^="Zoom in"]');
    await page.click('.lens-controls vscode-button[aria-label^="Zoom in"]');
    await page.waitForFunction(() => JSON.parse((document.querySelector('.lens-canvas') as HTMLCanvasElement).dataset.view!).cellW >= 40);
    const z = await gridView(page);
    await page.waitForFunction((n) => window.harness.source.lens!.requests.filter((r) => r.startsWith('lensAt')).length >= n, z.end - z.start - 1);
    // every column in view now names its guesses: the table's cells carry lensAt's texts of the grid's top-1 ids
    const j = z.end - 2;
    await page.waitForFunction((j) => !/^id \d/.test(document.querySelector(`.lens-table tr[data-i="${j}"] td:nth-of-type(2)`)?.textContent ?? 'id 0'), j);
    const cells = await page.$$eval(`.lens-table tr[data-i="${j}"] td`, (tds) => tds.slice(1).map((td) => td.textContent!));
    assert.equal(cells.length, ROWS);
    cells.forEach((c, l) => assert.ok(c.startsWith(`${LENS.at[j].top[l][0].text} · p(next) `), `token ${j} row ${l}: “${c}”`));
    await page.screenshot({ path: join(ART, 'panel-lens-zoomed-dark.png') });
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  it('progress and Stop: new tokens in view are computed with progress; Stop cancels; the commitment strip is partial and marks settle layers', async () => {
    const page = await openPanel(h);
    await page.click('vscode-tab-header.lens-tab-header');
    await page.waitForFunction(() => /tokens computed/.test(document.querySelector('.lens-progress')?.textContent ?? ''));
    const first = await gridView(page);
    await page.evaluate(() => (window.harness.source.lens!.delayMs = 1500));
    await page.$eval('.lens-scroll', (s) => (s.scrollLeft = s.scrollWidth));
    await page.waitForFunction(() => /Computing the lens of the tokens in view: 0 of \d+/.test(document.querySelector('.lens-progress')?.textContent ?? ''));
    assert.equal(await page.isVisible('vscode-button[aria-label="Stop computing the lens"]'), true);
    await page.click('vscode-button[aria-label="Stop computing the lens"]');
    await page.waitForFunction(() => /^Stopped: \d+ of 50 tokens computed/.test(document.querySelector('.lens-progress')?.textContent ?? ''));
    await page.waitForTimeout(1700); // the cancelled piece would have arrived by now
    const computed = await page.evaluate(() => Number(/Stopped: (\d+)/.exec(document.querySelector('.lens-progress')!.textContent!)![1]));
    assert.equal(computed, first.end - first.start, 'nothing of the cancelled piece was kept');
    // the commitment strip (text tab) shows what the grid computed, and says it is partial
    await page.evaluate(() => (window.harness.source.lens!.delayMs = 0));
    await page.click('vscode-tab-header:nth-of-type(2)');
    await page.waitForSelector('.commitment canvas', { state: 'visible' });
    assert.match((await page.textContent('.commitment-label'))!, new RegExp(`partial: ${computed} of ${T} tokens`));
    const width = await page.$eval('.commitment canvas', (c) => (c as HTMLCanvasElement).clientWidth);
    const border = hex(THEMES['vscode-dark']['panel-border']);
    for (let i = 0; i < T; i++) {
      const x = ((i + 0.5) / T) * width;
      if (i < first.end) {
        const want = lutAt(1 - GRID.settles[i] / L);
        const got = await pixel(page, '.commitment canvas', x, 2);
        assert.ok(near(got, want), `token ${i} settles at ${GRID.settles[i]}: ${got} vs ${want}`);
      } else {
        const got = await pixel(page, '.commitment canvas', x, 5.5);
        assert.ok(near(got, border, 3), `token ${i} not computed: a thin line (${got})`);
      }
    }
    // its tooltip says the layer in words
    const cbox = (await (await page.$('.commitment canvas'))!.boundingBox())!;
    const k = 2;
    await page.mouse.move(cbox.x + ((k + 0.5) / T) * width, cbox.y + 4);
    const s = GRID.settles[k];
    const words = s >= L ? `decided only at the output (layer ${L})` : s === 0 ? `decided at the embeddings (layer 0 of ${L})` : `decided at layer ${s} of ${L}`;
    await page.waitForFunction((w) => Array.from(document.querySelectorAll('.commitment .tooltip')).some((t) => !(t as HTMLElement).hidden && t.textContent!.endsWith(w)), `its guess for the next token, ${words}`);
    await page.screenshot({ path: join(ART, 'panel-commitment-dark.png') });
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  it('attribution follows the cursor: head colours follow signs, a click selects the head everywhere, a contrast token asks "rather than"', async () => {
    const page = await openPanel(h);
    await page.click('vscode-tab-header.lens-tab-header');
    const i = 20;
    await page.evaluate((i) => window.harness.source.setCursor(i), i);
    await page.waitForFunction((i) => document.querySelector('#attribution-title')?.textContent?.startsWith(`Direct logit attribution at #${i} `) ?? false, i);
    const a = LENS.attributions[String(i)];
    const heads = new Float32Array(bytes(a.heads));
    const mlp = new Float32Array(bytes(a.mlp));
    const bias = a.attnBias ? Array.from(new Float32Array(bytes(a.attnBias))) : [];
    const max = Math.max(...[...heads, ...mlp, ...bias, a.embed].map(Math.abs));
    const theme = THEMES['vscode-dark'];
    const [bg, pos, neg] = [hex(theme['editor-background']), hex(theme['charts-blue']), hex(theme['charts-red'])];
    const g = await page.$eval('.attribution-heat', (c) => JSON.parse((c as HTMLCanvasElement).dataset.grid!));
    let plus = 0;
    let minus = 0;
    for (let l = 0; l < L; l++) {
      for (let hd = 0; hd < H; hd++) {
        const v = heads[l * H + hd];
        const got = await pixel(page, '.attribution-heat', g.x0 + (hd + 0.5) * g.cellW, g.y0 + (l + 0.5) * g.cellH);
        assert.ok(near(got, diverging(v, max, bg, pos, neg), 3), `L${l}H${hd} ${v}: ${got}`);
        if (v > 0) plus++;
        else minus++;
      }
      const m = await pixel(page, '.attribution-heat', g.x0 + H * g.cellW + g.gap + g.cellW / 2, g.y0 + (l + 0.5) * g.cellH);
      assert.ok(near(m, diverging(mlp[l], max, bg, pos, neg), 3), `L${l} MLP ${mlp[l]}: ${m}`);
    }
    assert.ok(plus > 0 && minus > 0, 'both signs occur');
    const e = await pixel(page, '.attribution-heat', g.x0 + g.cellW / 2, g.embedY + g.cellH / 2);
    assert.ok(near(e, diverging(a.embed, max, bg, pos, neg), 3), `embeddings ${a.embed}: ${e}`);
    // the ranked list: largest |value| first, the values of the recorded parts
    const list = await page.$$eval('.attribution-part', (els) => els.map((x) => [x.querySelector('.part-name')!.textContent, x.querySelector('.part-value')!.textContent]));
    const ranked = [...a.parts].sort((x: { value: number }, y: { value: number }) => Math.abs(y.value) - Math.abs(x.value));
    assert.equal(list[0][1], `${ranked[0].value >= 0 ? '+' : '−'}${Math.abs(ranked[0].value).toFixed(2)}`);
    // a click on head 2.1 selects it for the host (editor and sidebar) and the panel
    const box = (await (await page.$('.attribution-heat'))!.boundingBox())!;
    await page.mouse.click(box.x + g.x0 + 1.5 * g.cellW, box.y + g.y0 + 2.5 * g.cellH);
    await page.waitForFunction(() => { const s = window.harness.source.selection; return s.layer === 2 && s.head === 1; });
    await page.screenshot({ path: join(ART, 'panel-attribution-dark.png') });
    // why the target rather than the model's other guess
    const key = Object.keys(LENS.attributions).find((k) => k.startsWith(`${i}:`))!;
    const vs = Number(key.split(':')[2]);
    await page.$eval('.attribution-vs', (s, vs) => {
      (s as HTMLElement & { value: string }).value = String(vs);
      s.dispatchEvent(new Event('change'));
    }, vs);
    await page.waitForFunction(() => / rather than “/.test(document.querySelector('#attribution-title')?.textContent ?? ''));
    assert.ok((await lensRequests(page)).includes(`attribute ${i} vs ${vs}`));
    const c = LENS.attributions[key];
    assert.match((await page.textContent('.attribution-note'))!, new RegExp(`Logit difference [+−]${Math.abs(c.logitTarget - c.logitVs).toFixed(2)}`));
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  it("the sidebar's second mode: the attribution heatmap at the cursor's token; a click selects the head", async () => {
    const page = await h.open('sidebar', { width: 320, height: 700 });
    await page.evaluate((f) => {
      window.harness.setLens(f.lens);
      window.harness.source.setRun(window.harness.fromFixture(f.run), 1);
      window.harness.source.setCursor(12);
    }, { run: FIXTURE, lens: LENS });
    await page.waitForSelector('.heat canvas');
    assert.deepEqual(await lensRequests(page), [], 'the attention mode asks no attribution');
    await page.$eval('.heat-mode', (s) => {
      (s as HTMLElement & { value: string }).value = 'attribution';
      s.dispatchEvent(new Event('change'));
    });
    await page.waitForFunction(() => /^Logit -?\d/.test(document.querySelector('.sidebar-attribution .attribution-note')?.textContent ?? ''));
    assert.deepEqual(await lensRequests(page), ['attribute 12']);
    assert.equal(await page.isVisible('.attention-heat'), false);
    const a = LENS.attributions['12'];
    assert.match((await page.textContent('.sidebar-attribution .attribution-note'))!, new RegExp(`^Logit ${a.logitTarget.toFixed(2).replace('-', '\\-')}`));
    const g = await page.$eval('.attribution-heat', (c) => JSON.parse((c as HTMLCanvasElement).dataset.grid!));
    const heads = new Float32Array(bytes(a.heads));
    const theme = THEMES['vscode-dark'];
    const bias = a.attnBias ? Array.from(new Float32Array(bytes(a.attnBias))) : [];
    const max = Math.max(...[...heads, ...new Float32Array(bytes(a.mlp)), ...bias, a.embed].map(Math.abs));
    const got = await pixel(page, '.attribution-heat', g.x0 + 2.5 * g.cellW, g.y0 + 1.5 * g.cellH);
    assert.ok(near(got, diverging(heads[1 * H + 2], max, hex(theme['editor-background']), hex(theme['charts-blue']), hex(theme['charts-red'])), 3), `L1H2: ${got}`);
    // the cursor moves: the heatmap follows
    await page.evaluate(() => window.harness.source.setCursor(30));
    await page.waitForFunction(() => window.harness.source.lens!.requests.includes('attribute 30'));
    const box = (await (await page.$('.attribution-heat'))!.boundingBox())!;
    await page.mouse.click(box.x + g.x0 + 0.5 * g.cellW, box.y + g.y0 + 1.5 * g.cellH);
    await page.waitForFunction(() => { const s = window.harness.source.selection; return s.layer === 1 && s.head === 0; });
    await page.screenshot({ path: join(ART, 'sidebar-attribution-dark.png') });
    assert.deepEqual(problems(page), []);
    await page.close();
  });
});
