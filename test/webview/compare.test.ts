/**
 * The panel's Compare view and the text view's rollout mode, in headless Chromium: the real panel bundle and the
 * real host session (extension/host/comparison.ts over the harness's recorded run).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { halfTable } from '../../extension/common/half';
import type { ScoreResult } from '../../extension/common/engineProtocol';
import { FIXTURE, problems, startHarness, type Harness } from './harness';

const ART = join(import.meta.dirname, '..', '..', 'artifacts', 'webview');
const T: number = FIXTURE.run.tokens.length;
const L: number = FIXTURE.model.nLayer;
const H: number = FIXTURE.model.nHead;
const CHANGED = 6; // the token the other version replaces

function row(l: number, h: number, i: number): number[] {
  const buf = Buffer.from(FIXTURE.triangles[l * H + h], 'base64');
  const bits = new Uint16Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const t = halfTable();
  const base = (i * (i + 1)) / 2;
  return Array.from({ length: i + 1 }, (_, j) => t[bits[base + j]]);
}

/** Rollout row i by the book: full [T, T] matrices per layer, multiplied from the first layer up. */
function plainRolloutRow(i: number): number[] {
  let R: number[][] = Array.from({ length: T }, (_, a) => Array.from({ length: T }, (_, b) => (a === b ? 1 : 0)));
  for (let l = 0; l < L; l++) {
    const A = Array.from({ length: T }, (_, a) => {
      const r = new Array(T).fill(0);
      for (let h = 0; h < H; h++) row(l, h, a).forEach((w, b) => (r[b] += w / H));
      r[a] += 1;
      const s = r.reduce((x, y) => x + y, 0);
      return r.map((x) => x / s);
    });
    R = A.map((ra) => Array.from({ length: T }, (_, b) => ra.reduce((s, w, k) => s + w * R[k][b], 0)));
  }
  return R[i];
}

/** The other version: token CHANGED replaced by a new id, and every later token 5 bits less surprising. */
function otherVersion(): ScoreResult {
  const tokens = FIXTURE.run.tokens.map((t: { id: number; text: string; start: number; end: number }, i: number) => (i === CHANGED ? { ...t, id: 99999, text: ' zebra' } : t));
  const bits = FIXTURE.run.surprisal.map((s: number | null, i: number) => (s === null ? NaN : s - (i > CHANGED ? 5 : 0)));
  return { tokens, window: { start: 0, end: T }, totalTokens: T, logprobs: Float32Array.from(bits, (b: number) => -b * Math.LN2), top: tokens.map(() => []) };
}

async function openPanel(h: Harness): Promise<Page> {
  const page = await h.open('panel');
  const painted = page.evaluate(() => new Promise((r) => window.addEventListener('headlight:painted', (e) => (e as CustomEvent).detail.view === 'matrix' && r(1))));
  await page.evaluate((f) => window.harness.source.setRun(window.harness.fromFixture(f), 1), FIXTURE);
  await painted;
  return page;
}

describe('compare view and rollout mode (Chromium)', () => {
  let h: Harness;
  before(async () => {
    mkdirSync(ART, { recursive: true });
    h = await startHarness();
  });
  after(async () => h?.close());

  it('a comparison opens the Compare tab: both strips painted, the changed region marked, the biggest moves listed; Stop clears it', async () => {
    const page = await openPanel(h);
    const other = otherVersion();
    await page.evaluate(async (o) => {
      window.harness.source.scoreAnswer = { ...o, logprobs: Float32Array.from(o.logprobs as unknown as number[]) };
      await window.harness.comparisons.start({ kind: 'replace', label: 'selection replaced by “zebra”', text: 'the other text', offsetBase: 0 });
    }, { ...other, logprobs: Array.from(other.logprobs) as unknown as Float32Array });
    await page.waitForSelector('.compare-summary:has-text("Compared with")', { state: 'visible' });
    assert.match((await page.textContent('.compare-summary')) ?? '', /selection replaced by “zebra” · 1 changed region/);
    // one marked region, over the column of the changed token (matched tokens share columns: column = token index)
    const regions = await page.$$eval('.compare-region', (els) => els.map((e) => (e as HTMLElement).dataset.cols));
    assert.deepEqual(regions, [`${CHANGED}:${CHANGED + 1}`]);
    const box = await page.$eval('.compare-region', (e) => e.getBoundingClientRect().toJSON());
    const strip = await page.$eval('.compare-strips canvas', (e) => e.getBoundingClientRect().toJSON());
    assert.ok(Math.abs(box.x - (strip.x + (CHANGED / T) * strip.width)) < 2, 'the region sits over its column');
    // both surprisal strips and the difference strip are painted at a matched column after the change
    const k = CHANGED + 2;
    const px = await page.evaluate(([k, T]) => {
      const c = document.querySelector('.compare-strips canvas') as HTMLCanvasElement;
      const x = Math.floor(((k + 0.5) / T) * c.width);
      const at = (y: number) => Array.from(c.getContext('2d')!.getImageData(x, Math.floor(y * devicePixelRatio), 1, 1).data.slice(0, 3));
      return { top: at(8), mid: at(26), diff: at(44), bg: getComputedStyle(document.body).getPropertyValue('--vscode-editor-background') };
    }, [k, T]);
    assert.notDeepEqual(px.top, px.mid, 'the other version is 5 bits less surprised: a different colour');
    assert.ok(px.diff[2] > px.diff[0] + 40, `the difference strip is blue where the other version is less surprised (${px.diff})`);
    // the biggest moves: −5 bits, marked as over the 2-bit threshold
    const moves = await page.$$eval('.compare-move', (els) => els.map((e) => [Number((e as HTMLElement).dataset.i), Number((e as HTMLElement).dataset.delta), e.classList.contains('fell')] as const));
    assert.ok(moves.length > 0);
    for (const [i, d, fell] of moves) {
      assert.ok(i > CHANGED && Math.abs(d + 5) < 1e-3 && fell, `token ${i}: Δ ${d}`);
    }
    await page.screenshot({ path: join(ART, 'panel-compare-dark.png') });
    // picking a move selects the token in the editor
    await page.click('.compare-move');
    await page.waitForFunction(() => window.harness.source.revealed.length > 0);
    assert.equal(await page.evaluate(() => window.harness.source.revealed.at(-1)), moves[0][0]);
    // Stop comparing: the host's comparison ends, the view empties
    await page.click('vscode-button:has-text("Stop comparing")');
    await page.waitForFunction(() => window.harness.comparisons.current === undefined);
    await page.waitForSelector('.compare-empty', { state: 'visible' });
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  it('a new run of the same document (typing) re-aligns the current side without scoring again', async () => {
    const page = await openPanel(h);
    const other = otherVersion();
    await page.evaluate(async (o) => {
      window.harness.source.scoreAnswer = { ...o, logprobs: Float32Array.from(o.logprobs as unknown as number[]) };
      await window.harness.comparisons.start({ kind: 'saved', label: 'saved on disk', text: 'x', offsetBase: 0 });
    }, { ...other, logprobs: Array.from(other.logprobs) as unknown as Float32Array });
    await page.waitForSelector('.compare-region');
    await page.evaluate((f) => window.harness.source.setRun(window.harness.fromFixture(f), 2), FIXTURE);
    await page.waitForFunction(() => window.harness.comparisons.current?.version === 2);
    assert.equal(await page.evaluate(() => window.harness.source.scored.length), 1, 'scored once');
    assert.equal(await page.$$eval('.compare-region', (e) => e.length), 1);
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  it('rollout mode lights what the token is built from (the rollout row), with the caveat in its tooltip', async () => {
    const page = await openPanel(h);
    await page.click('vscode-tab-header:nth-of-type(2)');
    await page.waitForSelector('.text .tok', { state: 'visible' });
    assert.match((await page.getAttribute('.rollout-toggle', 'title')) ?? '', /causal masks bias it toward early tokens/);
    await page.$eval('input.threshold', (e) => {
      (e as HTMLInputElement).value = '0.02';
      e.dispatchEvent(new Event('input'));
    });
    await page.click('vscode-checkbox[label^="Rollout"]');
    const i = T - 1;
    await page.evaluate((i) => window.harness.source.setCursor(i), i); // the editor's cursor moves to the last token
    const expected = plainRolloutRow(i);
    await page.waitForFunction((n) => document.querySelectorAll('.tok[data-w]').length === n, expected.filter((w) => w >= 0.02).length);
    const lit = new Map(await page.$$eval('.tok[data-w]', (els) => els.map((e) => [Number((e as HTMLElement).dataset.i), Number((e as HTMLElement).dataset.w)] as [number, number])));
    for (const [j, w] of lit) assert.ok(Math.abs(w - expected[j]) < 1e-3, `token ${j}: ${w} vs ${expected[j]}`);
    assert.ok(lit.has(0), 'the first token gathers rollout mass (the caveat)');
    assert.deepEqual(problems(page), []);
    await page.close();
  });
});
