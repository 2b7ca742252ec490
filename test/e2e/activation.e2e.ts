// The packaged VSIX in a real VS Code: the workbench loads, Headlight activates, its status item shows.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { EXTENSION_ID, extensionHostLogs, openWorkbench, startServer, type Server, type Workbench } from './harness.js';

let server: Server | undefined;
let wb: Workbench | undefined;

before(async () => {
  server = await startServer();
});

after(async () => {
  await wb?.close();
  await server?.stop();
});

test('the workbench loads, Headlight activates and shows its status item', async () => {
  const opened = Date.now();
  wb = await openWorkbench(server!);
  const workbenchMs = Date.now() - opened;

  const item = wb.statusItem('headlight.status');
  await item.waitFor({ state: 'visible', timeout: 30_000 });
  const activeMs = Date.now() - opened;
  assert.match(await item.innerText(), /Headlight/);
  // The codicon in `$(eye) Headlight` renders as an icon element, not as literal text.
  assert.equal(await item.locator('.codicon-eye').count(), 1);
  assert.doesNotMatch(await item.innerText(), /\$\(eye\)/);

  // The sample workspace is the folder the window opened.
  await wb.page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'greet.ts' }).waitFor({ timeout: 10_000 });

  const logs = extensionHostLogs(server!).map((file) => readFileSync(file, 'utf8')).join('\n');
  const activation = logs.split('\n').find((line) => line.includes(`_doActivateExtension ${EXTENSION_ID}`));
  assert.ok(activation, `the extension host log names no activation of ${EXTENSION_ID}`);
  assert.match(activation, /onStartupFinished/);
  const hostStarted = logs.split('\n').find((line) => line.includes('Extension host with pid'));
  if (hostStarted) console.log(`activation event ${logTime(activation) - logTime(hostStarted)} ms after the extension host started`);

  const shot = await wb.screenshot('activation');
  console.log(`workbench visible after ${workbenchMs} ms, status item after ${activeMs} ms; ${shot}`);
  console.log(`log: ${activation.trim()}`);
});

/** Milliseconds of a VS Code log line's `YYYY-MM-DD HH:MM:SS.mmm` timestamp. */
function logTime(line: string): number {
  return Date.parse(line.slice(0, 23).replace(' ', 'T'));
}
