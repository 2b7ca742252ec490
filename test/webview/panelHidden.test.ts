/**
 * A hidden panel closes Inside a head (extension/host/webviewSession.ts PanelSession.setVisible, called by panel.ts
 * on onDidChangeViewState): VS Code may drop a hidden panel's page before it can say `insideHead {open: false}`,
 * so the host itself tells the engine `keepQueries {on: false}`. A recreated page says `ready`, then its real tab
 * state (from getState), and the engine follows it. Real panel bundle and host session in headless Chromium.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { PanelSession } from '../../extension/host/webviewSession';
import { DEFAULTS } from '../../webview/panelState';
import { FIXTURE, problems, startHarness, type Harness } from './harness';

const INSIDE = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'recorded-inside.json'), 'utf8'));

async function openPanel(h: Harness, state?: unknown): Promise<Page> {
  const page = await h.open('panel', { width: 1300, height: 900, state });
  const painted = page.evaluate(() => new Promise((r) => window.addEventListener('headlight:painted', (e) => (e as CustomEvent).detail.view === 'matrix' && r(1))));
  await page.evaluate(([f, ins]) => {
    window.harness.setInside(ins);
    window.harness.source.setSelection({ layer: 1, head: 2 });
    window.harness.source.setRun(window.harness.fromFixture(f), 1);
    window.harness.source.setCursor(30);
  }, [FIXTURE, INSIDE]);
  await painted;
  return page;
}

const keepQueries = (page: Page) => page.evaluate(() => window.harness.source.keepQueries);
const setVisible = (page: Page, visible: boolean) => page.evaluate((v) => (window.harness.session as PanelSession).setVisible(v), visible);
/** The page's own visibility, as a browser reports it (what a page that is not dropped sees). */
const setPageHidden = (page: Page, hidden: boolean) => page.evaluate((hd) => {
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (hd ? 'hidden' : 'visible') });
  document.dispatchEvent(new Event('visibilitychange'));
}, hidden);
const insideEvents = (page: Page) => page.evaluate(() => window.harness.webviewEvents.filter((e) => e.name === 'insideHead').length);

describe('a hidden panel closes Inside a head (Chromium)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => h?.close());

  it('hidden by VS Code with the page silent: the host turns keepQueries off; shown again, the page\'s last word holds', async () => {
    const page = await openPanel(h);
    await page.click('vscode-tab-header.inside-tab');
    await page.waitForFunction(() => window.harness.source.keepQueries.length === 1);
    assert.deepEqual(await keepQueries(page), [true]);
    const said = await insideEvents(page);

    // VS Code hides the panel; the page sends nothing (it was dropped first)
    await setVisible(page, false);
    await setVisible(page, false); // no repeat
    await page.waitForTimeout(50);
    assert.equal(await insideEvents(page), said, 'the page said nothing');
    assert.deepEqual(await keepQueries(page), [true, false], 'the host closed it by itself');

    // late words from the hidden page do not turn queries back on while the panel is hidden
    await setPageHidden(page, true);
    await setPageHidden(page, false);
    await page.waitForFunction((n) => window.harness.webviewEvents.filter((e) => e.name === 'insideHead').length === n + 2, said);
    await page.waitForTimeout(50);
    assert.deepEqual(await keepQueries(page), [true, false]);

    // shown again: the page (not dropped this time) last said open, so queries come back on
    await setVisible(page, true);
    await page.waitForFunction(() => window.harness.source.keepQueries.length === 3);
    assert.deepEqual(await keepQueries(page), [true, false, true]);

    // the tab closed, then hidden: nothing to turn off; shown: still off
    await page.click('vscode-tab-header:nth-of-type(2)');
    await page.waitForFunction(() => window.harness.source.keepQueries.length === 4);
    await setVisible(page, false);
    await setVisible(page, true);
    await page.waitForTimeout(50);
    assert.deepEqual(await keepQueries(page), [true, false, true, false]);

    // the tab open, then the panel closed: disposing the session turns them off
    await page.click('vscode-tab-header.inside-tab');
    await page.waitForFunction(() => window.harness.source.keepQueries.length === 5);
    await page.evaluate(() => window.harness.session.dispose());
    assert.deepEqual(await keepQueries(page), [true, false, true, false, true, false]);
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  it('a recreated page says ready, then its real tab from getState: open on Inside a head, queries on and Q·K asked', async () => {
    const page = await openPanel(h, { ...DEFAULTS, tab: 2, layer: 1, head: 2 });
    await page.waitForFunction(() => window.harness.source.keepQueries.length === 1);
    const events = await page.evaluate(() => window.harness.webviewEvents.map((e) => [e.name, e.payload] as const));
    assert.deepEqual(events.slice(0, 2), [['ready', {}], ['insideHead', { open: true }]]);
    assert.deepEqual(await keepQueries(page), [true]);
    await page.waitForFunction(() => window.harness.source.queries.includes('qk'));
    assert.deepEqual(problems(page), []);
    await page.close();

    // restored on another tab: it says closed, and the engine (off from the start) is told nothing
    const other = await openPanel(h, { ...DEFAULTS, tab: 1 });
    await other.waitForFunction(() => window.harness.webviewEvents.some((e) => e.name === 'insideHead'));
    const first = await other.evaluate(() => window.harness.webviewEvents.find((e) => e.name === 'insideHead')!.payload);
    assert.deepEqual(first, { open: false });
    await other.waitForTimeout(50);
    assert.deepEqual(await keepQueries(other), []);
    assert.ok(!(await other.evaluate(() => window.harness.source.queries)).includes('qk'));
    await other.close();
  });
});
