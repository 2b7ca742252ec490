/**
 * "Inside a head" and value-weighted mode in the real panel bundle (headless Chromium). The harness host answers
 * with the recorded run (recorded-run.json) and what the real engine said about it (recorded-inside.json: q·k,
 * ablations, rankings, value-weighted rows), through the real host sessions and HeadExperiments.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { scaleLut } from '../../extension/common/colorScale';
import type { HeadRef, Prediction } from '../../extension/common/engineProtocol';
import { FIXTURE, problems, startHarness, THEMES, type Harness } from './harness';

const ART = join(import.meta.dirname, '..', '..', 'artifacts', 'webview');
const INSIDE = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'recorded-inside.json'), 'utf8'));
const T: number = FIXTURE.run.tokens.length;
const H: number = FIXTURE.model.nHead;
const DARK = THEMES['vscode-dark'];

type Rgb = [number, number, number];
const hex = (s: string): Rgb => [1, 3, 5].map((k) => parseInt(s.slice(k, k + 2), 16)) as Rgb;
const blend = (bg: Rgb, fg: Rgb, t: number): Rgb => bg.map((b, k) => Math.round(b + (fg[k] - b) * Math.max(0, Math.min(1, t)))) as Rgb;
function f32(b64: string): Float32Array {
  const buf = Buffer.from(b64, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}
function near(px: number[], want: number[], tol: number, what: string): void {
  for (let c = 0; c < 3; c++) assert.ok(Math.abs(px[c] - want[c]) <= tol, `${what}: pixel ${px.slice(0, 3)} vs expected ${want}`);
}
function rgbOf(css: string): Rgb {
  const m = css.match(/\d+/g)!;
  return [Number(m[0]), Number(m[1]), Number(m[2])];
}

async function openInside(h: Harness, token = 30, head = { layer: 1, head: 2 }): Promise<Page> {
  const page = await h.open('panel', { theme: 'vscode-dark', width: 1300, height: 900 });
  const painted = page.evaluate(() => new Promise((r) => window.addEventListener('headlight:painted', (e) => (e as CustomEvent).detail.view === 'matrix' && r(1))));
  await page.evaluate(([f, ins]) => {
    window.harness.setInside(ins);
    window.harness.source.setRun(window.harness.fromFixture(f), 1);
  }, [FIXTURE, INSIDE]);
  await painted;
  await page.evaluate(([i, sel]) => {
    window.harness.source.setSelection(sel);
    window.harness.source.setCursor(i);
  }, [token, head] as const);
  await page.click('vscode-tab-header.inside-tab');
  await page.waitForFunction(([i, l, hd]) => document.querySelector('#qk-title')?.textContent?.includes(`L${l} H${hd}, query ${i}`), [token, head.layer, head.head]);
  return page;
}

/** The RGB of a canvas pixel at css coordinates. */
function canvasPixel(page: Page, selector: string, x: number, y: number): Promise<number[]> {
  return page.evaluate(([sel, x, y]) => {
    const c = document.querySelector(sel as string) as HTMLCanvasElement;
    const s = c.width / c.getBoundingClientRect().width;
    return Array.from(c.getContext('2d')!.getImageData(Math.floor((x as number) * s), Math.floor((y as number) * s), 1, 1).data);
  }, [selector, x, y] as const);
}

describe('inside a head (Chromium)', () => {
  let h: Harness;
  before(async () => {
    mkdirSync(ART, { recursive: true });
    h = await startHarness();
  });
  after(async () => h?.close());

  it('Q·K: keys sorted by score, then by position; heatmap pixels follow q⊙k, the softmax weight and the value norms', async () => {
    const page = await openInside(h);
    const q = INSIDE.qk['1.2.30'];
    const scores = f32(q.scores);
    const probs = f32(q.probs);
    const query = f32(q.query);
    const keys = f32(q.keys);
    const D = query.length;
    const byScore = Array.from({ length: 31 }, (_, j) => j).sort((a, b) => scores[b] - scores[a] || a - b);
    const rows = await page.$$eval('.sr-table tr[data-j]', (trs) => trs.map((t) => Number((t as HTMLElement).dataset.j)));
    assert.deepEqual(rows, byScore);
    // the table states the engine's numbers
    const first = await page.$eval('.sr-table tr[data-j] .weight', (e) => Number(e.textContent));
    assert.ok(Math.abs(first - probs[byScore[0]]) < 1e-4);

    const geo = await page.$eval('canvas.qk-canvas', (c) => ({ ...(c as HTMLCanvasElement).dataset }));
    const cellW = Number(geo.cellW), rowH = Number(geo.rowH), labelW = Number(geo.labelW), top = Number(geo.top), numX = Number(geo.numX), numW = Number(geo.numW);
    const bg = hex(DARK['editor-background']);
    const orange = hex(DARK['charts-orange']);
    const blue = hex(DARK['charts-blue']);
    // product cells of the first row, every dimension, on one ±max scale over the shown keys
    let pMax = 0;
    for (const j of byScore) for (let d = 0; d < D; d++) pMax = Math.max(pMax, Math.abs(query[d] * keys[j * D + d]));
    for (let d = 0; d < D; d++) {
      const v = query[d] * keys[byScore[0] * D + d];
      const px = await canvasPixel(page, 'canvas.qk-canvas', labelW + d * cellW + 1, top + 4);
      near(px, blend(bg, v >= 0 ? orange : blue, Math.abs(v) / pMax), 3, `q⊙k dim ${d}`);
    }
    // the α column of every shown row uses the sequential scale
    const lut = scaleLut('dark');
    for (let r = 0; r < byScore.length; r += 7) {
      const w = probs[byScore[r]];
      const k = Math.round(w * 255) * 4;
      const px = await canvasPixel(page, 'canvas.qk-canvas', numX + numW + 3, top + r * rowH + 4);
      near(px, [lut[k], lut[k + 1], lut[k + 2]], 3, `α of key ${byScore[r]}`);
    }
    await page.screenshot({ path: join(ART, 'inside-qk-dark.png') });

    // sort by position
    await page.evaluate(() => {
      const s = document.querySelector('.qk-sort') as HTMLElement & { value: string };
      s.value = 'position';
      s.dispatchEvent(new Event('change'));
    });
    await page.waitForFunction(() => document.querySelector('.sr-table tr[data-j]')?.getAttribute('data-j') === '0');
    const pos = await page.$$eval('.sr-table tr[data-j]', (trs) => trs.map((t) => Number((t as HTMLElement).dataset.j)));
    assert.deepEqual(pos, Array.from({ length: 31 }, (_, j) => j));
    // clicking a key row picks that token (the editor's cursor follows through the host)
    const geo2 = await page.$eval('canvas.qk-canvas', (c) => c.getBoundingClientRect().toJSON());
    await page.mouse.click(geo2.x + 20, geo2.y + top + 5 * rowH + 4);
    await page.waitForFunction(() => window.harness.source.revealed.includes(5));
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  it('ablation: ctrl+click a head, run, and see the surprisal change per token, the loss and the predictions before/after', async () => {
    const page = await openInside(h);
    // ctrl+click layer 1, head 2 in the Heads view
    const rect = await page.evaluate(() => document.querySelector('.model canvas')!.getBoundingClientRect().toJSON());
    const pitch = (rect.width - 30) / H;
    await page.keyboard.down('Control');
    await page.mouse.click(rect.x + 30 + 2 * pitch + 8, rect.y + 16 + 1 * pitch + 8);
    await page.keyboard.up('Control');
    await page.waitForSelector('.ablate-chip[data-head="1.2"]');
    assert.deepEqual(await page.evaluate(() => window.harness.source.selection), { layer: 1, head: 2 }, 'ctrl+click does not change the selection');
    await page.click('vscode-button.run-ablation');
    await page.waitForSelector('.ablation-text .dtok');
    assert.deepEqual(await page.evaluate(() => window.harness.source.experiments), [{ method: 'ablate', heads: [{ layer: 1, head: 2 }], mode: 'zero', at: 31 }]);
    const rec = INSIDE.ablations.find((a: { heads: HeadRef[]; mode: string }) => a.mode === 'zero' && a.heads.length === 1 && a.heads[0].layer === 1 && a.heads[0].head === 2);
    const delta = f32(rec.surprisalDelta);
    const shown = await page.$$eval('.ablation-text .dtok', (s) => s.map((e) => [Number((e as HTMLElement).dataset.i), Number((e as HTMLElement).dataset.delta), getComputedStyle(e).backgroundColor] as [number, number, string]));
    assert.equal(shown.length, T);
    for (const [i, d] of shown) if (Number.isFinite(delta[i])) assert.ok(Math.abs(d - delta[i]) < 1e-3, `token ${i}: ${d} vs ${delta[i]}`);
    // colours: worse (more surprising) toward charts-red, better toward charts-blue, scaled by the largest |Δ|
    let max = 1;
    for (const d of delta) if (Number.isFinite(d)) max = Math.max(max, Math.abs(d));
    const bg = hex(DARK['editor-background']);
    for (const [i, , css] of shown) {
      const d = delta[i];
      if (!Number.isFinite(d) || d === 0) continue;
      near(rgbOf(css), blend(bg, hex(d > 0 ? DARK['charts-red'] : DARK['charts-blue']), Math.abs(d) / max), 2, `token ${i} Δ ${d}`);
    }
    assert.match(await page.textContent('.ablation .loss') ?? '', new RegExp(`${rec.lossBefore.toFixed(3)} → ${rec.lossAfter.toFixed(3)}`));
    const before = await page.$$eval('.preds ol.before li', (l) => l.map((e) => e.textContent));
    const afterP = await page.$$eval('.preds ol.after li', (l) => l.map((e) => e.textContent));
    const pct = (lp: number) => `${(Math.exp(lp) * 100).toFixed(1)}%`;
    assert.deepEqual(before, rec.at['31'].before.map((p: Prediction) => `“${p.text}” ${pct(p.logprob)}`));
    assert.deepEqual(afterP, rec.at['31'].after.map((p: Prediction) => `“${p.text}” ${pct(p.logprob)}`));
    // the host keeps it for the editor's colours
    assert.equal(await page.evaluate(() => window.harness.experiments.lastAblation?.heads.length), 1);
    await page.screenshot({ path: join(ART, 'inside-ablation-dark.png') });

    // moving the cursor to the last token re-runs the shown ablation there: predictions of the next token
    await page.evaluate((i) => window.harness.source.setCursor(i), T - 1);
    await page.waitForFunction((n) => window.harness.source.experiments.length === 2 && document.querySelector('.preds strong')?.textContent?.includes(`after token ${n}`), T - 1);
    assert.deepEqual((await page.evaluate(() => window.harness.source.experiments))[1], { method: 'ablate', heads: [{ layer: 1, head: 2 }], mode: 'zero', at: T });
    const beforeEnd = await page.$$eval('.preds ol.before li', (l) => l.map((e) => e.textContent));
    assert.deepEqual(beforeEnd, rec.at[String(T)].before.map((p: Prediction) => `“${p.text}” ${pct(p.logprob)}`));

    // mean ablation of two heads (the second added with "Add selected head")
    await page.click('vscode-button.clear-ablation');
    await page.waitForSelector('.ablation-text', { state: 'hidden' });
    assert.equal(await page.evaluate(() => window.harness.experiments.lastAblation), undefined);
    await page.keyboard.down('Control');
    await page.mouse.click(rect.x + 30 + 2 * pitch + 8, rect.y + 16 + 1 * pitch + 8); // remove 1.2 again
    await page.keyboard.up('Control');
    await page.waitForSelector('.ablate-chip', { state: 'detached' });
    for (const sel of [{ layer: 0, head: 1 }, { layer: 2, head: 3 }]) {
      await page.evaluate((s) => window.harness.source.setSelection(s), sel);
      await page.waitForFunction((s) => document.querySelector('vscode-button[aria-label^="Add the selected head"]')?.textContent === `Add L${s.layer} H${s.head}`, sel);
      await page.click('vscode-button[aria-label^="Add the selected head"]');
    }
    await page.evaluate(() => window.harness.source.setCursor(30));
    await page.click('vscode-radio[value="mean"]');
    await page.click('vscode-button.run-ablation');
    await page.waitForFunction(() => window.harness.source.experiments.length === 3 && document.querySelector('.ablation .loss')?.textContent?.includes('mean'));
    assert.deepEqual((await page.evaluate(() => window.harness.source.experiments))[2], { method: 'ablate', heads: [{ layer: 0, head: 1 }, { layer: 2, head: 3 }], mode: 'mean', at: 31 });
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  it('which heads matter here: progress, the sorted ranking, clicking selects the head; Cancel stops the engine', async () => {
    const page = await openInside(h);
    const progressSeen: number[] = [];
    await page.exposeFunction('seenProgress', (v: number) => progressSeen.push(v));
    await page.evaluate(() => {
      const p = document.querySelector('.rank progress') as HTMLProgressElement;
      new MutationObserver(() => (window as unknown as { seenProgress(v: number): void }).seenProgress(p.value)).observe(p, { attributes: true });
    });
    await page.click('vscode-button.rank-heads');
    await page.waitForSelector('.ranking li');
    const rec = INSIDE.rankings.find((r: { mode: string }) => r.mode === 'zero');
    const items = await page.$$eval('.ranking li', (l) => l.map((e) => [(e as HTMLElement).dataset.head, e.querySelector('.delta')!.textContent]));
    assert.deepEqual(items, rec.ranking.map((r: { layer: number; head: number; lossDelta: number }) => [`${r.layer}.${r.head}`, `${r.lossDelta > 0 ? '+' : ''}${r.lossDelta.toFixed(3)}`]));
    assert.ok(progressSeen.length >= 3 && progressSeen.some((v) => v > 0 && v < rec.ranking.length), `progress values ${progressSeen}`);
    assert.equal(await page.textContent('.rank-progress'), 'Done.');
    // bar widths follow |Δ| relative to the largest
    const widths = await page.$$eval('.ranking li .bar', (b) => b.map((e) => (e as HTMLElement).getBoundingClientRect().width));
    assert.ok(widths[0] > widths[widths.length - 1] && widths.every((w, k) => k === 0 || w <= widths[k - 1] + 0.5));
    // clicking the third selects it everywhere (host selection, matrix)
    const third = rec.ranking[2];
    await page.click('.ranking li[data-rank="2"]');
    await page.waitForFunction((t) => JSON.stringify(window.harness.source.selection) === JSON.stringify({ layer: t.layer, head: t.head }), third);
    await page.screenshot({ path: join(ART, 'inside-ranking-dark.png') });

    // Cancel: the host aborts the engine's ranking (no more progress) and the panel says so
    await page.evaluate(() => (window.harness.source.rankStepMs = 150));
    await page.click('vscode-button.rank-heads');
    await page.waitForFunction(() => (document.querySelector('.rank progress') as HTMLProgressElement).value >= 1);
    await page.click('vscode-button.cancel-rank');
    await page.waitForFunction(() => document.querySelector('.rank-progress')?.textContent === 'Cancelled.');
    const n = progressSeen.length;
    await page.waitForTimeout(400);
    assert.equal(progressSeen.length, n, 'no progress after Cancel');
    assert.ok(await page.$eval('vscode-button.cancel-rank', (e) => (e as HTMLElement).hidden));
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  it('tells the host when the tab opens and closes (insideHead), and asks for Q·K only while it is open', async () => {
    const page = await h.open('panel', { theme: 'vscode-dark', width: 1300, height: 900 });
    const painted = page.evaluate(() => new Promise((r) => window.addEventListener('headlight:painted', (e) => (e as CustomEvent).detail.view === 'matrix' && r(1))));
    await page.evaluate(([f, ins]) => {
      window.harness.setInside(ins);
      window.harness.source.setRun(window.harness.fromFixture(f), 1);
    }, [FIXTURE, INSIDE]);
    await painted;
    await page.evaluate(() => window.harness.source.setCursor(30));
    const opens = () => page.evaluate(() => window.harness.webviewEvents.filter((e) => e.name === 'insideHead').map((e) => (e.payload as { open: boolean }).open));
    const names = await page.evaluate(() => window.harness.webviewEvents.map((e) => e.name));
    assert.deepEqual(names.slice(0, 2), ['ready', 'insideHead'], 'the tab state follows ready');
    assert.deepEqual(await opens(), [false], 'the panel opens on the head matrix');
    assert.ok(!(await page.evaluate(() => window.harness.source.queries)).includes('qk'), 'no Q·K while the tab is closed');

    await page.click('vscode-tab-header.inside-tab');
    await page.waitForFunction(() => document.querySelector('#qk-title')?.textContent?.includes('query 30'));
    assert.deepEqual(await opens(), [false, true]);
    assert.ok((await page.evaluate(() => window.harness.source.queries)).includes('qk'));

    await page.click('vscode-tab-header:nth-of-type(2)'); // Text
    await page.waitForFunction(() => window.harness.webviewEvents.filter((e) => e.name === 'insideHead').length === 3);
    assert.deepEqual(await opens(), [false, true, false]);
    // the cursor moves while the tab is closed: no Q·K request
    const qkBefore = await page.evaluate(() => window.harness.source.queries.filter((q) => q === 'qk').length);
    await page.evaluate(() => window.harness.source.setCursor(20));
    await page.waitForTimeout(200);
    assert.equal(await page.evaluate(() => window.harness.source.queries.filter((q) => q === 'qk').length), qkBefore);

    // back, then the page is hidden (VS Code hides the panel) and shown again, then unloaded
    await page.click('vscode-tab-header.inside-tab');
    await page.waitForFunction(() => window.harness.webviewEvents.filter((e) => e.name === 'insideHead').length === 4);
    const setHidden = (hidden: boolean) => page.evaluate((h) => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
      document.dispatchEvent(new Event('visibilitychange'));
    }, hidden);
    await setHidden(true);
    await setHidden(true); // no repeat
    await setHidden(false);
    await page.evaluate(() => window.dispatchEvent(new PageTransitionEvent('pagehide')));
    await page.waitForFunction(() => window.harness.webviewEvents.filter((e) => e.name === 'insideHead').length === 7);
    assert.deepEqual(await opens(), [false, true, false, true, false, true, false]);
    // the host turns each change into the engine's keepQueries (it starts off, so the first `false` is no change)
    await page.waitForFunction(() => window.harness.source.keepQueries.length === 6);
    assert.deepEqual(await page.evaluate(() => window.harness.source.keepQueries), [true, false, true, false, true, false]);
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  it('value-weighted mode: the toggle saves the setting and the text view lights the engine\'s value-weighted row', async () => {
    const page = await openInside(h);
    await page.click('vscode-checkbox.mode-toggle');
    await page.waitForFunction(() => window.harness.modeWrites.length === 1);
    assert.deepEqual(await page.evaluate(() => window.harness.modeWrites), ['value-weighted']);
    await page.waitForFunction(() => document.body.classList.contains('value-weighted'));
    await page.click('vscode-tab-header:nth-of-type(2)');
    await page.waitForSelector('.text .tok', { state: 'visible' });
    await page.$eval('input.threshold', (e) => {
      (e as HTMLInputElement).value = '0';
      e.dispatchEvent(new Event('input'));
    });
    await page.hover('.tok[data-i="30"]');
    const want = f32(INSIDE.vwRows['1.2.30']);
    await page.waitForFunction(() => document.querySelectorAll('.tok[data-w]').length > 0);
    // the value-weighted row is not the plain one (else this test would not tell them apart)
    const plain = f32(INSIDE.qk['1.2.30'].attention);
    assert.ok(want.some((w, j) => Math.abs(w - plain[j]) > 0.01));
    await page.waitForFunction((w) => {
      const el = document.querySelector(`.tok[data-i="${w.j}"]`) as HTMLElement | null;
      return el?.dataset.w !== undefined && Math.abs(Number(el.dataset.w) - w.v) < 2e-3;
    }, { j: want.indexOf(Math.max(...want)), v: Math.max(...want) });
    const lit = new Map(await page.$$eval('.tok[data-w]', (els) => els.map((e) => [Number((e as HTMLElement).dataset.i), Number((e as HTMLElement).dataset.w)] as [number, number])));
    for (let j = 0; j <= 30; j++) if (want[j] >= 0.001) assert.ok(Math.abs((lit.get(j) ?? 0) - want[j]) < 2e-3, `token ${j}: ${lit.get(j)} vs engine ${want[j]}`);
    // the JSON export says which mode its weights are, and they are the value-weighted map's
    await page.click('vscode-button:has-text("JSON")');
    await page.waitForFunction(() => window.harness.saves.some((s) => s.kind === 'json'));
    const save = await page.evaluate(() => window.harness.saves.find((s) => s.kind === 'json')!);
    assert.match(save.suggestedName, /-L1H2-value-weighted\.json$/);
    const json = JSON.parse(save.data as string);
    assert.equal(json.mode, 'value-weighted');
    assert.deepEqual([json.layer, json.head], [1, 2]);
    for (let j = 0; j <= 30; j++) assert.ok(Math.abs(json.weights[30][j] - want[j]) < 2e-3, `exported weight ${j}: ${json.weights[30][j]} vs engine ${want[j]}`);
    // and back
    await page.click('vscode-checkbox.mode-toggle');
    await page.waitForFunction(() => !document.body.classList.contains('value-weighted'));
    assert.deepEqual(problems(page), []);
    await page.close();
  });
});
