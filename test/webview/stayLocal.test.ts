/**
 * The webviews stay local (issue #22 item 5): the real panel and sidebar bundles in headless Chromium, every view
 * exercised (tabs, hovers, zoom, Inside a head with Q·K, ablation and ranking, exports, value-weighted mode, theme
 * switches, a second run), and every request they make recorded (harness.ts: the context's route, its request
 * events, websockets, and loads the CSP refused). Each must be one of the extension's own resources as the harness
 * serves them (the page, dist/webview/*.js with @vscode-elements bundled in, media/*.css, the harness's stand-in for
 * VS Code): zero others. The page's CSP, as extension/host/webviewHtml.ts renders it, names no remote source.
 * A last test adds remote URLs to a live page (image, stylesheet, CSS @import, font, fetch, websocket, beacon,
 * iframe, prefetch, a script carrying the nonce) and checks that each one is caught, so a view that adds one fails here.
 *
 * Prints `STRESS|…` rows (the reliability table; test/stress/webviewLocal.test.ts runs this file too).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { VIEW_STYLES, webviewHtml } from '../../extension/host/webviewHtml';
import { FIXTURE, problems, requests, startHarness, type Harness, type PageRequest } from './harness';

const INSIDE = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'recorded-inside.json'), 'utf8'));
const T: number = FIXTURE.run.tokens.length;
const H: number = FIXTURE.model.nHead;

/** What VS Code gives as `webview.cspSource` (the webview's resource origin; the harness uses its own origin). */
const VSCODE_CSP_SOURCE = 'https://*.vscode-cdn.net';

/**
 * Scheme sources a directive may list beyond the page's own origin, each with its reason. None today: canvases are
 * drawn from pixels and PNG exports use toBlob, so no image is loaded from data: or blob: URLs.
 */
const JUSTIFIED: Record<string, string[]> = {};

/** Problems with a policy: every directive may list only 'none', 'self', this render's nonce and `cspSource`. */
export function cspProblems(policy: string, cspSource: string, nonce: string): string[] {
  const out: string[] = [];
  const directives = new Map<string, string[]>();
  for (const part of policy.split(';').map((p) => p.trim()).filter(Boolean)) {
    const [name, ...sources] = part.split(/\s+/);
    if (directives.has(name.toLowerCase())) out.push(`${name} is given twice`);
    directives.set(name.toLowerCase(), sources);
  }
  if (directives.get('default-src')?.join(' ') !== "'none'") out.push(`default-src must be 'none', not ${JSON.stringify(directives.get('default-src'))}`);
  for (const [name, sources] of directives) {
    if (sources.length === 0) out.push(`${name} lists nothing`);
    for (const s of sources) {
      const ok = s === "'none'" || s === "'self'" || s === `'nonce-${nonce}'` || s === cspSource || (JUSTIFIED[name] ?? []).includes(s);
      if (!ok) out.push(`${name} allows ${s}`);
    }
  }
  return out;
}

function policyOf(html: string): string {
  const m = /<meta http-equiv="Content-Security-Policy" content="([^"]*)">/.exec(html);
  assert.ok(m, 'the page has a CSP meta');
  return m[1].replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&amp;/g, '&');
}

/** Why a request is not one of the extension's own resources (undefined: it is). */
function foreign(r: PageRequest, origin: string): string | undefined {
  if (r.seen === 'csp') return `the CSP refused ${r.type} ${r.url}`;
  let url: URL;
  try {
    url = new URL(r.url);
  } catch {
    return `not a URL: ${r.url}`;
  }
  if (url.origin !== origin) return `remote: ${r.url} (${r.type})`;
  const own = ['/panel.html', '/sidebar.html', '/dist/webview/panel.js', '/dist/webview/sidebar.js', '/harness/host.js', '/harness/themes.css', ...Object.values(VIEW_STYLES).flat().map((f) => `/media/${f}`)];
  return own.includes(url.pathname) ? undefined : `not an extension resource: ${url.pathname} (${r.type})`;
}

/** The page's requests, counted once each (the route and the request event both see a fetched one). */
function counted(page: Page): PageRequest[] {
  return requests(page).filter((r) => r.seen !== 'route');
}

const totals = { requests: 0, remote: 0, injected: 0, caught: 0 };

function checkLocal(page: Page, origin: string, what: string): void {
  const all = requests(page);
  const bad = all.map((r) => foreign(r, origin)).filter((x): x is string => x !== undefined);
  totals.requests += counted(page).length;
  totals.remote += bad.length;
  assert.deepEqual(bad, [], `${what} made requests outside the extension's own resources`);
  assert.ok(all.some((r) => r.seen === 'route') && all.some((r) => r.seen === 'request'), 'both recorders saw the page load');
}

async function pageCsp(page: Page): Promise<string> {
  return page.$eval('meta[http-equiv="Content-Security-Policy"]', (m) => (m as HTMLMetaElement).content);
}

function painted(page: Page, view: string): Promise<unknown> {
  return page.evaluate((v) => new Promise((r) => window.addEventListener('headlight:painted', (e) => (e as CustomEvent).detail.view === v && r(1))), view);
}

describe('the webviews stay local (Chromium)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h?.close();
    // STRESS|<row>|<faults injected>|<inputs tried>|<clear errors>|<data lost>
    process.stdout.write(`STRESS|webview requests (panel + sidebar, every view)|0|${totals.requests}|0|0\n`);
    process.stdout.write(`STRESS|webview remote requests (must be 0)|0|${totals.remote}|0|0\n`);
    process.stdout.write(`STRESS|webview remote URLs injected, caught|${totals.injected}|${totals.injected}|${totals.caught}|0\n`);
  });

  it("the CSP webviewHtml renders names no remote source: default-src 'none', then only the nonce and the webview's own origin", () => {
    const nonce = 'bm9uY2Utb2YtdGhpcy1yZW5kZXI=';
    for (const view of ['panel', 'sidebar'] as const) {
      const html = webviewHtml({ cspSource: VSCODE_CSP_SOURCE, nonce, scriptUri: `${VSCODE_CSP_SOURCE}/dist/webview/${view}.js`, styleUris: [], title: view });
      const policy = policyOf(html);
      assert.deepEqual(cspProblems(policy, VSCODE_CSP_SOURCE, nonce), [], policy);
      assert.match(policy, new RegExp(`script-src 'nonce-${nonce.replace(/[+/=]/g, '\\$&')}'(;|$)`), 'scripts only with the nonce');
      assert.doesNotMatch(policy.replaceAll(VSCODE_CSP_SOURCE, 'CSP_SOURCE'), /connect-src|worker-src|frame-src|child-src|unsafe|\*|https?:|data:|blob:/, 'nothing else is allowed anywhere');
    }
    // the checker itself rejects what a remote source would look like
    assert.equal(cspProblems("default-src 'none'; img-src https://cdn.example.com", VSCODE_CSP_SOURCE, nonce).length, 1);
    assert.equal(cspProblems("default-src 'none'; style-src 'unsafe-inline'", VSCODE_CSP_SOURCE, nonce).length, 1);
    assert.equal(cspProblems("default-src 'none'; img-src data:", VSCODE_CSP_SOURCE, nonce).length, 1);
    assert.equal(cspProblems("default-src *; script-src 'nonce-x'", VSCODE_CSP_SOURCE, nonce).length, 3);
  });

  it('panel: every view, hover, zoom, export and theme, and every request is the extension\'s own', async () => {
    const page = await h.open('panel', { theme: 'vscode-dark', width: 1300, height: 900, dpr: 2 });
    const nonce = /'nonce-([^']+)'/.exec(await pageCsp(page))![1];
    assert.deepEqual(cspProblems(await pageCsp(page), h.url, nonce), [], 'the live page\'s CSP');
    const first = painted(page, 'matrix');
    await page.evaluate(([f, ins]) => {
      window.harness.setInside(ins);
      window.harness.source.setRun(window.harness.fromFixture(f), 1);
    }, [FIXTURE, INSIDE]);
    await first;
    await page.evaluate(() => {
      window.harness.source.setSelection({ layer: 1, head: 2 });
      window.harness.source.setCursor(30);
    });
    // model view: hover thumbnails (tooltips), click one, shift+click to compare
    const rect = await page.evaluate(() => document.querySelector('.model canvas')!.getBoundingClientRect().toJSON());
    const pitch = (rect.width - 30) / H;
    const thumb = (l: number, hd: number) => [rect.x + 30 + hd * pitch + pitch / 2, rect.y + 16 + l * pitch + pitch / 2] as const;
    for (const [l, hd] of [[0, 0], [1, 2], [2, 3], [3, 1]]) await page.mouse.move(...thumb(l, hd));
    await page.mouse.click(...thumb(0, 1));
    await page.waitForFunction(() => JSON.stringify(window.harness.source.selection) === JSON.stringify({ layer: 0, head: 1 }));
    await page.keyboard.down('Shift');
    await page.mouse.click(...thumb(2, 3));
    await page.keyboard.up('Shift');
    // head matrix: zoom in and out, fit, point at cells, keys
    for (const title of ['Zoom in', 'Zoom in', 'Zoom out', 'Fit the whole matrix']) await page.click(`vscode-button[title="${title}"]`);
    const m = await page.evaluate(() => document.querySelector('.matrix-overlay')!.getBoundingClientRect().toJSON());
    for (const [x, y] of [[0.3, 0.5], [0.6, 0.9], [0.1, 0.2]]) await page.mouse.move(m.x + x * m.width, m.y + y * m.height);
    await page.focus('.matrix-overlay');
    for (const key of ['ArrowUp', 'ArrowLeft', 'Enter']) await page.keyboard.press(key);
    await page.mouse.wheel(0, 200);
    // exports from the matrix
    for (const label of ['PNG', 'SVG', 'JSON']) await page.click(`vscode-button:has-text("${label}")`);
    await page.waitForFunction(() => window.harness.saves.length === 3);
    // text view: hover and pick tokens, reverse, dim, threshold, the surprisal strip's tooltips, its export
    await page.click('vscode-tab-header:nth-of-type(2)');
    await page.waitForSelector('.text .tok', { state: 'visible' });
    for (const i of [3, 17, 30, T - 2]) await page.hover(`.tok[data-i="${i}"]`);
    await page.click('.tok[data-i="25"]');
    await page.click('vscode-checkbox[label^="Reverse"]');
    await page.hover('.tok[data-i="10"]');
    await page.click('vscode-checkbox[label^="Dim"]');
    await page.$eval('input.threshold', (e) => {
      (e as HTMLInputElement).value = '0';
      e.dispatchEvent(new Event('input'));
    });
    const strip = await page.evaluate(() => document.querySelector('.strip canvas')!.getBoundingClientRect().toJSON());
    for (const x of [0.2, 0.5, 0.99]) {
      await page.mouse.move(strip.x + x * strip.width, strip.y + strip.height / 2);
      await page.waitForFunction(() => /expected: /.test(document.querySelector('.strip .tooltip:not([hidden])')?.textContent ?? ''));
    }
    await page.click('vscode-button:has-text("PNG")');
    await page.waitForFunction(() => window.harness.saves.length === 4);
    // Inside a head: Q·K and its tooltip, an ablation, the ranking, value-weighted mode
    await page.evaluate(() => {
      window.harness.source.setSelection({ layer: 1, head: 2 });
      window.harness.source.setCursor(30); // the query the recording has Q·K and ablations for
    });
    await page.click('vscode-tab-header.inside-tab');
    await page.waitForFunction(() => document.querySelector('#qk-title')?.textContent?.includes('L1 H2, query 30'));
    await page.waitForFunction(() => document.querySelectorAll('.sr-table tr[data-j]').length > 0);
    const qk = await page.evaluate(() => document.querySelector('.qk-canvas')!.getBoundingClientRect().toJSON());
    await page.mouse.move(qk.x + qk.width / 2, qk.y + Math.min(qk.height, 200) / 2);
    await page.keyboard.down('Control');
    await page.mouse.click(...thumb(1, 2));
    await page.keyboard.up('Control');
    await page.waitForSelector('.ablate-chip[data-head="1.2"]');
    await page.click('vscode-button.run-ablation');
    await page.waitForSelector('.ablation-text .dtok');
    await page.hover('.ablation-text .dtok[data-i="12"]');
    await page.click('vscode-button.rank-heads');
    await page.waitForSelector('.ranking li');
    await page.hover('.ranking li[data-rank="0"]');
    await page.click('.ranking li[data-rank="1"]');
    await page.click('vscode-checkbox.mode-toggle');
    await page.waitForFunction(() => document.body.classList.contains('value-weighted'));
    await page.click('vscode-tab-header:nth-of-type(2)');
    await page.hover('.tok[data-i="30"]');
    await page.click('vscode-button:has-text("JSON")');
    await page.waitForFunction(() => window.harness.saves.length === 5);
    await page.click('vscode-checkbox.mode-toggle');
    await page.waitForFunction(() => !document.body.classList.contains('value-weighted'));
    // themes switched live, a resize, a stale mark and a second run
    for (const theme of ['vscode-light', 'vscode-high-contrast', 'vscode-dark']) {
      await page.evaluate((t) => window.harness.setTheme(t), theme);
      await page.click('vscode-tab-header:nth-of-type(1)');
      await page.click('vscode-tab-header.inside-tab');
    }
    await page.setViewportSize({ width: 520, height: 700 });
    await page.evaluate(() => window.harness.session.setStale(true));
    const second = painted(page, 'matrix');
    await page.click('vscode-tab-header:nth-of-type(1)');
    await page.evaluate((f) => window.harness.source.setRun(window.harness.fromFixture(f), 2), FIXTURE);
    await second;
    await page.waitForTimeout(100);
    const queries = await page.evaluate(() => window.harness.source.queries);
    for (const q of ['headTriangle', 'thumbnails', 'predictions', 'headScores', 'qk', 'valueNorms', 'ablate', 'rankHeads']) assert.ok(queries.includes(q), `the walk reached ${q} (${[...new Set(queries)].join(', ')})`);
    checkLocal(page, h.url, 'the panel');
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  it('sidebar: heatmap, hovers, clicks, value-weighted mode and themes, and every request is the extension\'s own', async () => {
    const page = await h.open('sidebar', { theme: 'vscode-light', width: 300, height: 640 });
    const nonce = /'nonce-([^']+)'/.exec(await pageCsp(page))![1];
    assert.deepEqual(cspProblems(await pageCsp(page), h.url, nonce), [], 'the live page\'s CSP');
    await page.evaluate(([f, ins]) => {
      window.harness.setInside(ins);
      window.harness.source.setRun(window.harness.fromFixture(f), 1);
    }, [FIXTURE, INSIDE]);
    const shown = painted(page, 'sidebar');
    await page.evaluate(() => window.harness.source.setCursor(30));
    await shown;
    await page.waitForFunction(() => document.querySelectorAll('.sources li').length > 0);
    const g = await page.evaluate(() => {
      const c = document.querySelector('.heat canvas') as HTMLCanvasElement;
      const r = c.getBoundingClientRect();
      return { ...JSON.parse(c.dataset.grid!), x: r.x, y: r.y };
    });
    const at = (l: number, hd: number) => [g.x + g.x0 + (hd + 0.5) * g.cellW, g.y + g.y0 + (l + 0.5) * g.cellH] as const;
    for (const [l, hd] of [[0, 0], [1, 2], [3, 3]]) await page.mouse.move(...at(l, hd));
    await page.mouse.click(...at(2, 1));
    await page.waitForFunction(() => JSON.stringify(window.harness.source.selection) === JSON.stringify({ layer: 2, head: 1 }));
    await page.click('.sources li:nth-child(2) button');
    await page.waitForFunction(() => window.harness.source.revealed.length === 1);
    await page.evaluate(() => window.harness.experiments.setAttentionMode('value-weighted'));
    await page.waitForFunction(() => /value-weighted/.test(document.querySelector('.sel-label')?.textContent ?? ''));
    await page.evaluate(() => window.harness.experiments.setAttentionMode('attention'));
    for (const theme of ['vscode-dark', 'vscode-high-contrast']) await page.evaluate((t) => window.harness.setTheme(t), theme);
    await page.focus('.heat canvas');
    for (const key of ['ArrowDown', 'ArrowRight', 'Enter']) await page.keyboard.press(key);
    await page.evaluate(() => window.harness.source.setCursor(undefined));
    await page.evaluate(() => window.harness.source.setCursor(5));
    await page.waitForTimeout(150);
    checkLocal(page, h.url, 'the sidebar');
    assert.deepEqual(problems(page), []);
    await page.close();
  });

  it('a remote URL added to a view is caught: image, stylesheet, @import, font, fetch, websocket, beacon, iframe, prefetch, nonced script', async () => {
    const page = await h.open('panel');
    await page.waitForFunction(() => !!window.harness);
    const local = counted(page).length;
    // each probe loads its own URL; .invalid never resolves, and the harness refuses remote requests anyway
    const nonceOf = `/'nonce-([^']+)'/.exec(document.querySelector("meta[http-equiv=Content-Security-Policy]").content)[1]`;
    const probes: [string, string, string][] = [
      ['image', 'https://example.invalid/x.png', 'document.body.append(Object.assign(document.createElement("img"), { src: URL }))'],
      ['stylesheet', 'https://example.invalid/x.css', 'document.head.append(Object.assign(document.createElement("link"), { rel: "stylesheet", href: URL }))'],
      ['CSS @import', 'https://example.invalid/y.css', `(() => { const s = document.createElement("style"); s.nonce = ${nonceOf}; s.textContent = "@import url(" + URL + ");"; document.head.append(s); })()`],
      ['font', 'https://example.invalid/f.woff2', 'new FontFace("Remote", "url(" + URL + ")").load().catch(() => undefined)'],
      ['fetch', 'https://example.invalid/data.json', 'fetch(URL).catch(() => undefined)'],
      ['websocket', 'wss://example.invalid/socket', '(() => { try { new WebSocket(URL); } catch {} })()'],
      ['beacon', 'https://example.invalid/beacon', '(() => { try { navigator.sendBeacon(URL, "x"); } catch {} })()'],
      ['iframe', 'https://example.invalid/frame.html', 'document.body.append(Object.assign(document.createElement("iframe"), { src: URL }))'],
      ['prefetch', 'https://example.invalid/p.js', 'document.head.append(Object.assign(document.createElement("link"), { rel: "prefetch", href: URL }))'],
      // a script with this render's nonce passes the CSP: only the request recorder can catch it
      ['nonced script', 'https://example.invalid/s.js', `(() => { const s = document.createElement("script"); s.nonce = ${nonceOf}; s.src = URL; document.head.append(s); })()`],
    ];
    for (const [name, url, code] of probes) {
      const from = requests(page).length;
      await page.evaluate(`(() => { const URL = ${JSON.stringify(url)}; ${code}; })()`);
      totals.injected++;
      // a refused frame is reported by its origin alone
      const hit = () => requests(page).slice(from).find((r) => r.url === url || (r.url.length > 0 && url.startsWith(r.url.replace(/\/?$/, '/'))));
      for (let k = 0; k < 80 && !hit(); k++) await page.waitForTimeout(25);
      const r = hit();
      assert.ok(r, `the ${name} probe (${url}) was not recorded`);
      assert.ok(foreign(r, h.url), `the ${name} probe counts as foreign`);
      totals.caught++;
      if (name === 'nonced script') assert.notEqual(r.seen, 'csp', 'the nonced script got past the CSP and was caught as a request');
    }
    assert.ok(local > 0);
    await page.close();
  });
});
