// Drives the packaged extension in a real VS Code: code-server 4.100.3 (VS Code 1.100.3) serves the workbench and
// runs the real Node extension host; Playwright drives Debian's Chromium against it.
// Why these versions and flags: code-server 4.100.3 is the newest release that runs on Node 20 (so the extension's
// engines.vscode stays at ^1.100.0 or lower); it is always started with --config (127.0.0.1, auth none) and
// throwaway user-data and extensions folders, in its own process group, which is what stopping it kills. Webview
// content is two iframes deep (iframe.webview.ready, then #active-frame); the editor draws decorations as overlay
// divs in .view-overlays and uses U+00A0 for spaces in line text.
//
// Typical test file:
//   const server = await startServer();            // fresh code-server with the VSIX installed
//   const wb = await openWorkbench(server, WORKSPACE); // Chromium on ?folder=WORKSPACE, waits for the workbench
//   await wb.runCommand('Headlight: Explain Attention');
//   ... finally: await wb.close(); await server.stop();
//
// `npm run test:e2e` (scripts/e2e/run.mjs) installs code-server, packages the VSIX and sets HEADLIGHT_VSIX.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format } from 'node:util';
import { build } from 'esbuild';
import { chromium, type BrowserContext, type FrameLocator, type Locator, type Page } from 'playwright-core';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const WORKSPACE = join(ROOT, 'test', 'e2e', 'workspace');
export const ARTIFACTS = join(ROOT, 'artifacts', 'e2e');
const CACHE = join(ROOT, '.e2e');
const CODE_SERVER = join(CACHE, 'code-server', 'node_modules', 'code-server', 'out', 'node', 'entry.js');
const CHROMIUM = '/usr/bin/chromium';

const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { publisher: string; name: string; version: string };
/** `publisher.name`, as VS Code identifies the extension. */
export const EXTENSION_ID = `${manifest.publisher}.${manifest.name}`;

/** DOM id of a contributed status bar item: `<publisher>.<name>.<itemId>`. */
export function statusItemSelector(itemId: string): string {
  return `[id="${EXTENSION_ID}.${itemId}"]`;
}

/** User settings for every run: no welcome page, no tips, quick hovers, no update checks. */
const USER_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'security.workspace.trust.enabled': false,
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'update.mode': 'none',
  'telemetry.telemetryLevel': 'off',
  'editor.hover.delay': 200,
  'window.commandCenter': false,
  'chat.commandCenter.enabled': false,
  'git.openRepositoryInParentFolders': 'never',
};

export interface Server {
  url: string;
  port: number;
  /** .e2e/run-*: config, user data, extensions, server log. Removed by stop() unless HEADLIGHT_E2E_KEEP is set. */
  runDir: string;
  userDataDir: string;
  extensionsDir: string;
  /** Stops the whole process group (the main PID alone leaves file watchers behind). Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** VSIX to install; default $HEADLIGHT_VSIX, else the linux-x64 VSIX `npm run package` leaves in the root. */
  vsix?: string;
  /** Extra variables for code-server; they reach the extension host's process.env. */
  env?: Record<string, string>;
  /** User settings merged over the defaults. */
  settings?: Record<string, unknown>;
  /** Port on 127.0.0.1; default a free one. */
  port?: number;
}

export function defaultVsix(): string {
  return process.env.HEADLIGHT_VSIX ?? join(ROOT, `${manifest.name}-${manifest.version}-linux-x64.vsix`);
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

function codeServerArgs(runDir: string): string[] {
  return [
    CODE_SERVER,
    '--config', join(runDir, 'config.yaml'),
    '--user-data-dir', join(runDir, 'user-data'),
    '--extensions-dir', join(runDir, 'extensions'),
    '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
  ];
}

function installVsix(runDir: string, vsix: string): void {
  if (!existsSync(vsix)) {
    throw new Error(`e2e: no VSIX at ${vsix}; run \`npm run package\` (or \`npm run test:e2e\`, which packages first)`);
  }
  const result = spawnSync(process.execPath, [...codeServerArgs(runDir), '--install-extension', vsix], { encoding: 'utf8' });
  if (result.status !== 0 || !/successfully installed/i.test(result.stdout)) {
    throw new Error(`e2e: code-server could not install ${vsix} (exit ${result.status}):\n${result.stdout}${result.stderr}`);
  }
}

async function waitForHealth(url: string, child: ChildProcess, logFile: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`e2e: code-server exited with ${child.exitCode} before it served; see ${logFile}`);
    }
    try {
      const response = await fetch(`${url}/healthz`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`e2e: code-server did not answer ${url}/healthz within ${timeoutMs} ms; see ${logFile}`);
}

/** Starts a fresh code-server on 127.0.0.1 with its own config, user data and extensions, and the VSIX installed. */
export async function startServer(options: StartOptions = {}): Promise<Server> {
  if (!existsSync(CODE_SERVER)) {
    throw new Error(`e2e: code-server is not installed at ${CODE_SERVER}; run \`node scripts/e2e/install.mjs\``);
  }
  mkdirSync(CACHE, { recursive: true });
  const runDir = mkdtempSync(join(CACHE, 'run-'));
  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  writeFileSync(join(runDir, 'config.yaml'), `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
  const userDataDir = join(runDir, 'user-data');
  const extensionsDir = join(runDir, 'extensions');
  mkdirSync(join(userDataDir, 'User'), { recursive: true });
  writeFileSync(join(userDataDir, 'User', 'settings.json'), JSON.stringify({ ...USER_SETTINGS, ...options.settings }, null, 2));
  installVsix(runDir, options.vsix ?? defaultVsix());

  const logFile = join(runDir, 'server.log');
  const log = createWriteStream(logFile);
  // detached: a new process group (setsid), so stop() can signal code-server and every child it started.
  const child = spawn(process.execPath, codeServerArgs(runDir), {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    killGroup(child.pid!, 'SIGTERM');
    const exitedInTime = await withTimeout(exited, 5_000, () => 'not in time').then(() => true, () => false);
    // The group may outlive its leader (watchers, extension host): always finish with SIGKILL.
    killGroup(child.pid!, 'SIGKILL');
    if (!exitedInTime) await exited;
    log.end();
    if (!process.env.HEADLIGHT_E2E_KEEP) rmSync(runDir, { recursive: true, force: true });
  };
  try {
    await waitForHealth(url, child, logFile);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, port, runDir, userDataDir, extensionsDir, stop };
}

/** Settles like `promise`, or rejects with message() after ms; the timer never keeps the process alive. */
function withTimeout<T>(promise: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message())), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

export interface Workbench {
  page: Page;
  context: BrowserContext;
  server: Server;
  /** Browser console lines, including the extension host's `[Extension Host] …` output. */
  console: string[];
  runCommand(title: string): Promise<void>;
  hover(text: string, options?: { occurrence?: number }): Promise<string>;
  screenshot(name: string): Promise<string>;
  webviewFrame(options?: { srcIncludes?: string; nth?: number }): FrameLocator;
  statusItem(itemId: string): Locator;
  close(): Promise<void>;
}

const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

async function launchBrowser(): Promise<{ context: BrowserContext; profile: string }> {
  const profile = mkdtempSync(join(CACHE, 'chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    viewport: { width: 1400, height: 900 },
    headless: true,
  });
  return { context, profile };
}

/** Opens Chromium on the workbench with `folder` open and waits until the workbench is on screen. */
export async function openWorkbench(server: Server, folder: string = WORKSPACE, payload?: [string, string][]): Promise<Workbench> {
  const { context, profile } = await launchBrowser();
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleLines: string[] = [];
  page.on('console', (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
  const query = new URLSearchParams({ folder: resolve(folder) });
  if (payload) query.set('payload', JSON.stringify(payload));
  try {
    await page.goto(`${server.url}/?${query}`);
    await page.locator('.monaco-workbench').waitFor({ timeout: 30_000 });
  } catch (error) {
    await closeBrowser(page, context, profile);
    throw error;
  }
  return makeWorkbench(page, context, profile, server, consoleLines);
}

async function closeBrowser(page: Page, context: BrowserContext, profile: string): Promise<void> {
  // Leaving the page first lets the window's extension host shut down instead of lingering.
  await page.goto('about:blank').catch(() => undefined);
  await context.close().catch(() => undefined);
  rmSync(profile, { recursive: true, force: true });
}

function makeWorkbench(page: Page, context: BrowserContext, profile: string, server: Server, consoleLines: string[]): Workbench {
  return {
    page,
    context,
    server,
    console: consoleLines,
    runCommand: (title) => runCommand(page, title),
    hover: (text, options) => hover(page, text, options?.occurrence ?? 0),
    screenshot: (name) => screenshot(page, name),
    webviewFrame: (options) => webviewFrame(page, options),
    statusItem: (itemId) => page.locator(statusItemSelector(itemId)),
    close: () => closeBrowser(page, context, profile),
  };
}

/** Runs a command by its palette title, e.g. `Headlight: Explain Attention`. Fails if no entry has that title. */
export async function runCommand(page: Page, title: string): Promise<void> {
  const input = page.locator('.quick-input-widget input');
  await page.keyboard.press('F1');
  await input.waitFor({ state: 'visible', timeout: 10_000 });
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first();
  await row.waitFor({ state: 'visible', timeout: 10_000 });
  await input.press('Enter');
  await input.waitFor({ state: 'hidden', timeout: 10_000 });
}

/**
 * Centre, in page pixels, of the `occurrence`-th visible occurrence of `text` in the editors' lines (a DOM Range
 * inside `.view-line`), or null. Editor lines render spaces as U+00A0; both sides are compared with plain spaces.
 */
export async function editorTextPoint(page: Page, text: string, occurrence = 0): Promise<{ x: number; y: number } | null> {
  return page.evaluate(({ text, occurrence }) => {
    const lines = Array.from(document.querySelectorAll('.monaco-editor .view-line'));
    // Monaco draws lines in DOM order that need not be visual order: sort by position.
    lines.sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top);
    let seen = 0;
    for (const line of lines) {
      // A line is split into one span per syntax token: match on the line's whole text, then map back to nodes.
      const nodes: Text[] = [];
      const walker = document.createTreeWalker(line, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) nodes.push(node as Text);
      const content = nodes.map((n) => n.data).join('').replace(/\u00a0/g, ' ');
      for (let at = content.indexOf(text); at >= 0; at = content.indexOf(text, at + 1)) {
        if (seen++ < occurrence) continue;
        const range = document.createRange();
        let offset = 0;
        for (const node of nodes) {
          const len = node.data.length;
          if (at >= offset && at <= offset + len) range.setStart(node, at - offset);
          if (at + text.length >= offset && at + text.length <= offset + len) {
            range.setEnd(node, at + text.length - offset);
            break;
          }
          offset += len;
        }
        const r = range.getBoundingClientRect();
        return { x: r.x + r.width / 2, y: r.y + r.height / 2 };
      }
    }
    return null;
  }, { text, occurrence });
}

/**
 * Moves the mouse over the `occurrence`-th visible occurrence of `text` in the active editor and returns the hover's
 * text. Editor lines render spaces as U+00A0; both sides are compared with plain spaces.
 */
export async function hover(page: Page, text: string, occurrence = 0): Promise<string> {
  const rect = await editorTextPoint(page, text, occurrence);
  if (!rect) throw new Error(`e2e: "${text}" (occurrence ${occurrence}) is not on a visible line of the editor`);
  await page.mouse.move(rect.x - 40, rect.y);
  await page.mouse.move(rect.x, rect.y, { steps: 4 });
  const contents = page.locator('.monaco-hover:not(.hidden) .hover-contents').first();
  await contents.waitFor({ state: 'visible', timeout: 10_000 });
  return (await contents.innerText()).replace(/\u00a0/g, ' ');
}

/** Saves a full-page screenshot to artifacts/e2e/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/**
 * The content of a webview, two iframes deep: the workbench's `iframe.webview.ready`, then its `#active-frame`.
 * With several webviews open, pick one by a part of its iframe's src (e.g. the view type) or by position.
 */
export function webviewFrame(page: Page, options: { srcIncludes?: string; nth?: number } = {}): FrameLocator {
  let outer = page.locator('iframe.webview.ready');
  if (options.srcIncludes) outer = page.locator(`iframe.webview.ready[src*="${options.srcIncludes}"]`);
  return outer.nth(options.nth ?? 0).contentFrame().frameLocator('#active-frame');
}

/** The extension host's log files (exthost.log / remoteexthost.log) under the server's user data. */
export function extensionHostLogs(server: Server): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/exthost\.log$/.test(name)) found.push(path);
    }
  };
  const logs = join(server.userDataDir, 'logs');
  if (existsSync(logs)) walk(logs);
  return found;
}

export interface HostSuiteResult {
  /** 0 when every test passed, 1 otherwise (what the extension host reports through codeAutomationExit). */
  code: number;
  /** Mocha's output (spec reporter) and anything else the extension host logged. */
  output: string[];
}

/**
 * Runs a mocha suite (`describe`/`it` imported from 'mocha') inside the real extension host, with this repository
 * loaded as the development extension (its built dist/ and package.json), the way @vscode/test-electron would:
 * the workbench URL's `payload` names extensionDevelopmentPath and extensionTestsPath, and the workbench reports the
 * extension host's log and exit code through window.codeAutomationLog / codeAutomationExit.
 * The suite is bundled with esbuild (vscode, mocha and onnxruntime-node stay external) into .e2e/host-*.
 */
export async function runInHostSuite(server: Server, suitePath: string, options: { folder?: string; timeoutMs?: number } = {}): Promise<HostSuiteResult> {
  const outDir = mkdtempSync(join(CACHE, 'host-'));
  try {
    await build({
      entryPoints: [resolve(ROOT, suitePath)],
      outfile: join(outDir, 'suite.js'),
      bundle: true, platform: 'node', format: 'cjs', target: 'node20', sourcemap: 'inline',
      external: ['vscode', 'mocha', 'onnxruntime-node'], logLevel: 'error',
    });
    writeFileSync(join(outDir, 'index.js'), HOST_RUNNER);
    const remote = (path: string) => `vscode-remote://127.0.0.1:${server.port}${path}`;
    const payload: [string, string][] = [
      ['extensionDevelopmentPath', remote(ROOT.replace(/\/$/, ''))],
      ['extensionTestsPath', remote(join(outDir, 'index.js'))],
    ];
    const { context, profile } = await launchBrowser();
    const page = context.pages()[0] ?? (await context.newPage());
    const output: string[] = [];
    try {
      const exited = new Promise<number>((resolveExit) => {
        void page.exposeFunction('codeAutomationExit', (code: number) => resolveExit(code));
      });
      await page.exposeFunction('codeAutomationLog', (_type: string, args: unknown[]) => {
        // The extension host's console calls arrive as printf-style argument lists ('%s passing', 2).
        output.push(format(...args));
      });
      const query = new URLSearchParams({ folder: resolve(options.folder ?? WORKSPACE), payload: JSON.stringify(payload) });
      await page.goto(`${server.url}/?${query}`);
      const timeoutMs = options.timeoutMs ?? 120_000;
      const code = await withTimeout(exited, timeoutMs,
        () => `e2e: in-host suite ${suitePath} did not finish within ${timeoutMs} ms; output so far:\n${output.join('\n')}`);
      return { code, output };
    } finally {
      await closeBrowser(page, context, profile);
    }
  } finally {
    if (!process.env.HEADLIGHT_E2E_KEEP) rmSync(outDir, { recursive: true, force: true });
  }
}

/** Entry the extension host calls: `run()` resolves when every test passed and rejects otherwise. */
const HOST_RUNNER = `"use strict";
const path = require('path');
const Mocha = require('mocha');
exports.run = function run() {
  const mocha = new Mocha({ ui: 'bdd', color: false, timeout: 60000 });
  mocha.addFile(path.join(__dirname, 'suite.js'));
  return new Promise((resolve, reject) => {
    mocha.run((failures) => (failures ? reject(new Error(failures + ' in-host test(s) failed')) : resolve()));
  });
};
`;
