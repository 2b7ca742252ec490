/**
 * Node side of the webview harness: bundles the real webview entries and the harness host with esbuild, serves
 * them on 127.0.0.1 with the same HTML and CSP the extension renders, and drives Debian's Chromium through
 * playwright-core. Themes are CSS variable sets keyed on VS Code's body classes.
 */
import * as esbuild from 'esbuild';
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { VIEW_STYLES, webviewHtml } from '../../extension/host/webviewHtml';

const root = join(import.meta.dirname, '..', '..');

export const THEMES: Record<string, Record<string, string>> = {
  'vscode-dark': {
    'editor-background': '#1f1f1f', 'editor-foreground': '#cccccc', foreground: '#cccccc', 'sideBar-background': '#181818',
    descriptionForeground: '#9d9d9d', focusBorder: '#0078d4', 'panel-border': '#2b2b2b', 'widget-border': '#313131',
    'charts-blue': '#3794ff', 'charts-orange': '#d18616', 'charts-green': '#89d185', 'charts-purple': '#b180d7', 'charts-red': '#f14c4c', 'charts-yellow': '#cca700',
    'badge-background': '#616161', 'badge-foreground': '#f8f8f8', 'button-background': '#0078d4', 'button-foreground': '#ffffff',
    'button-secondaryBackground': '#313131', 'button-secondaryForeground': '#cccccc', 'editorHoverWidget-background': '#202020', 'editorHoverWidget-border': '#454545',
    'editorWarning-foreground': '#cca700', 'list-hoverBackground': '#2a2d2e', 'settings-headerBorder': '#2b2b2b', 'panel-background': '#181818',
    'checkbox-background': '#313131', 'checkbox-border': '#3c3c3c', 'checkbox-foreground': '#cccccc',
    // read by @vscode-elements (checkbox, tabs, buttons); VS Code defines every theme colour in a webview
    'settings-checkboxBackground': '#313131', 'settings-checkboxBorder': '#3c3c3c', 'settings-checkboxForeground': '#cccccc',
    'panelTitle-activeForeground': '#cccccc', 'panelTitle-inactiveForeground': '#9d9d9d', 'panelTitle-activeBorder': '#0078d4',
    'activityBarBadge-background': '#0078d4', 'activityBarBadge-foreground': '#ffffff', 'button-hoverBackground': '#026ec1',
    'button-secondaryHoverBackground': '#3c3c3c', 'button-border': '#ffffff12', 'editorWidget-background': '#202020', 'widget-shadow': '#0000005c',
    'settings-dropdownBackground': '#313131', 'settings-dropdownBorder': '#3c3c3c', 'settings-dropdownForeground': '#cccccc', 'settings-dropdownListBorder': '#454545', 'list-activeSelectionBackground': '#04395e', 'list-activeSelectionForeground': '#ffffff',
  },
  'vscode-light': {
    'editor-background': '#ffffff', 'editor-foreground': '#3b3b3b', foreground: '#3b3b3b', 'sideBar-background': '#f8f8f8',
    descriptionForeground: '#717171', focusBorder: '#005fb8', 'panel-border': '#e5e5e5', 'widget-border': '#e5e5e5',
    'charts-blue': '#1a85ff', 'charts-orange': '#d18616', 'charts-green': '#388a34', 'charts-purple': '#652d90', 'charts-red': '#e51400', 'charts-yellow': '#bf8803',
    'badge-background': '#cccccc', 'badge-foreground': '#3b3b3b', 'button-background': '#005fb8', 'button-foreground': '#ffffff',
    'button-secondaryBackground': '#e5e5e5', 'button-secondaryForeground': '#3b3b3b', 'editorHoverWidget-background': '#f8f8f8', 'editorHoverWidget-border': '#c8c8c8',
    'editorWarning-foreground': '#bf8803', 'list-hoverBackground': '#f2f2f2', 'settings-headerBorder': '#e5e5e5', 'panel-background': '#f8f8f8',
    'checkbox-background': '#f8f8f8', 'checkbox-border': '#cecece', 'checkbox-foreground': '#3b3b3b',
    'settings-checkboxBackground': '#f8f8f8', 'settings-checkboxBorder': '#cecece', 'settings-checkboxForeground': '#3b3b3b',
    'panelTitle-activeForeground': '#3b3b3b', 'panelTitle-inactiveForeground': '#3b3b3b', 'panelTitle-activeBorder': '#005fb8',
    'activityBarBadge-background': '#005fb8', 'activityBarBadge-foreground': '#ffffff', 'button-hoverBackground': '#0258a8',
    'button-secondaryHoverBackground': '#cccccc', 'button-border': '#0000001a', 'editorWidget-background': '#f8f8f8', 'widget-shadow': '#00000029',
    'settings-dropdownBackground': '#ffffff', 'settings-dropdownBorder': '#cecece', 'settings-dropdownForeground': '#3b3b3b', 'settings-dropdownListBorder': '#c8c8c8', 'list-activeSelectionBackground': '#e8e8e8', 'list-activeSelectionForeground': '#000000',
  },
  'vscode-high-contrast': {
    'editor-background': '#000000', 'editor-foreground': '#ffffff', foreground: '#ffffff', 'sideBar-background': '#000000',
    descriptionForeground: '#ffffff', focusBorder: '#f38518', 'panel-border': '#6fc3df', contrastBorder: '#6fc3df', 'widget-border': '#6fc3df',
    'charts-blue': '#3794ff', 'charts-orange': '#d18616', 'charts-green': '#89d185', 'charts-purple': '#b180d7', 'charts-red': '#f14c4c', 'charts-yellow': '#cca700',
    'badge-background': '#000000', 'badge-foreground': '#ffffff', 'button-background': '#000000', 'button-foreground': '#ffffff',
    'button-secondaryBackground': '#000000', 'button-secondaryForeground': '#ffffff', 'editorHoverWidget-background': '#0c141f', 'editorHoverWidget-border': '#6fc3df',
    'editorWarning-foreground': '#ffd700', 'list-hoverBackground': '#000000', 'settings-headerBorder': '#6fc3df', 'panel-background': '#000000',
    'checkbox-background': '#000000', 'checkbox-border': '#6fc3df', 'checkbox-foreground': '#ffffff',
    'settings-checkboxBackground': '#000000', 'settings-checkboxBorder': '#6fc3df', 'settings-checkboxForeground': '#ffffff',
    'panelTitle-activeForeground': '#ffffff', 'panelTitle-inactiveForeground': '#ffffff', 'panelTitle-activeBorder': '#6fc3df',
    'activityBarBadge-background': '#000000', 'activityBarBadge-foreground': '#ffffff', 'button-border': '#6fc3df',
    'button-hoverBackground': '#000000', 'button-secondaryHoverBackground': '#000000', 'editorWidget-background': '#0c141f',
    'settings-dropdownBackground': '#000000', 'settings-dropdownBorder': '#6fc3df', 'settings-dropdownForeground': '#ffffff', 'settings-dropdownListBorder': '#6fc3df', 'list-activeSelectionBackground': '#000000', 'list-activeSelectionForeground': '#ffffff',
  },
};

function themeCss(): string {
  const common = "--vscode-font-family: 'DejaVu Sans', sans-serif; --vscode-font-size: 13px; --vscode-editor-font-family: 'DejaVu Sans Mono', monospace; --vscode-editor-font-size: 13px;";
  return Object.entries(THEMES)
    .map(([cls, vars]) => `body.${cls} { ${common} ${Object.entries(vars).map(([k, v]) => `--vscode-${k}: ${v};`).join(' ')} }`)
    .join('\n');
}

export interface Harness {
  browser: Browser;
  url: string;
  /**
   * `selection`: the host's selection before the webview starts ("L.H"). `state`: what the page's getState() returns
   * at start (VS Code keeps it while a hidden panel's page is dropped).
   */
  open(view: 'panel' | 'sidebar', opts?: { theme?: string; width?: number; height?: number; dpr?: number; selection?: string; state?: unknown }): Promise<Page>;
  close(): Promise<void>;
}

async function bundle(entry: string): Promise<string> {
  const out = await esbuild.build({ entryPoints: [join(root, entry)], bundle: true, platform: 'browser', format: 'iife', target: 'chrome120', write: false, logLevel: 'error' });
  return out.outputFiles[0].text;
}

export async function startHarness(): Promise<Harness> {
  const [panel, sidebar, host] = await Promise.all([bundle('webview/panel.ts'), bundle('webview/sidebar.ts'), bundle('test/webview/harnessHost.ts')]);
  const files: Record<string, [string, string]> = {
    '/dist/webview/panel.js': ['text/javascript', panel],
    '/dist/webview/sidebar.js': ['text/javascript', sidebar],
    '/harness/host.js': ['text/javascript', host],
    '/harness/themes.css': ['text/css', themeCss()],
  };
  for (const file of new Set(Object.values(VIEW_STYLES).flat())) files[`/media/${file}`] = ['text/css', readFileSync(join(root, 'media', file), 'utf8')];
  let origin = '';
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', origin);
    const view = url.pathname === '/sidebar.html' ? 'sidebar' : url.pathname === '/panel.html' ? 'panel' : undefined;
    if (view) {
      const nonce = Math.random().toString(36).slice(2);
      let html = webviewHtml({ cspSource: origin, nonce, scriptUri: `${origin}/dist/webview/${view}.js`, styleUris: [`${origin}/harness/themes.css`, ...VIEW_STYLES[view].map((file) => `${origin}/media/${file}`)], title: view, bodyClass: `${view} ${url.searchParams.get('theme') ?? 'vscode-dark'}` });
      html = html.replace(`<script nonce="${nonce}"`, `<script nonce="${nonce}" src="${origin}/harness/host.js"></script>\n<script nonce="${nonce}"`);
      res.writeHead(200, { 'content-type': 'text/html' }).end(html);
      return;
    }
    if (url.pathname === '/favicon.ico') return void res.writeHead(204).end();
    const f = files[url.pathname];
    if (!f) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': f[0] }).end(f[1]);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    browser,
    url: origin,
    async open(view, opts = {}) {
      const ctx = await browser.newContext({ viewport: { width: opts.width ?? 1200, height: opts.height ?? 800 }, deviceScaleFactor: opts.dpr ?? 1 });
      // every request the page makes, however it starts (the route sees anything fetched, the request events also
      // workers', websockets their own event); one not for the harness origin is recorded, then refused
      const requests: PageRequest[] = [];
      await ctx.route('**/*', (route) => {
        const r = route.request();
        requests.push({ url: r.url(), type: r.resourceType(), seen: 'route' });
        return new URL(r.url()).origin === origin ? route.continue() : route.abort('blockedbyclient');
      });
      ctx.on('request', (r) => requests.push({ url: r.url(), type: r.resourceType(), seen: 'request' }));
      const page = await ctx.newPage();
      page.on('websocket', (ws) => requests.push({ url: ws.url(), type: 'websocket', seen: 'websocket' }));
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() !== 'error') return;
        problems.push(m.text());
        // a load the CSP refused never reaches the network: it counts as a request too
        const csp = /^CSP violation: (\S+) (.*)$/.exec(m.text());
        if (csp) requests.push({ url: csp[2], type: csp[1], seen: 'csp' });
      });
      page.on('pageerror', (e) => problems.push(String(e)));
      Object.assign(page, { problems, requests });
      if (opts.state !== undefined) await page.addInitScript((s) => ((globalThis as { harnessState?: unknown }).harnessState = s), opts.state);
      // functions passed to page.evaluate are compiled by tsx with keepNames, which calls a `__name` helper
      await page.addInitScript('globalThis.__name = (f) => f;');
      await page.addInitScript(() => {
        document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
      });
      await page.goto(`${origin}/${view}.html?view=${view}&theme=${opts.theme ?? 'vscode-dark'}${opts.selection ? `&selection=${opts.selection}` : ''}`);
      return page;
    },
    async close() {
      await browser.close();
      await new Promise((r) => server.close(r));
    },
  };
}

export const FIXTURE = JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'recorded-run.json'), 'utf8'));

/** Errors the page logged (console errors, uncaught exceptions, CSP violations). */
export function problems(page: Page): string[] {
  return (page as Page & { problems: string[] }).problems;
}

/** One request a page made, and how the harness saw it (a CSP-refused load is `csp`, its type the directive). */
export interface PageRequest {
  url: string;
  type: string;
  seen: 'route' | 'request' | 'websocket' | 'csp';
}

/** Every request the page and its workers made since it opened, the page itself included, in order. */
export function requests(page: Page): PageRequest[] {
  return (page as Page & { requests: PageRequest[] }).requests;
}
