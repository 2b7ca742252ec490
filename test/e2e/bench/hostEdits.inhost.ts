// In-host half of `npm run bench:host` (driver: test/e2e/bench/hostEdits.ts). VS Code calls `run()` inside the real
// extension host (the workbench's extensionTestsPath). With headlight.model at $HEADLIGHT_BENCH_MODEL and a debounce
// of 0, it analyses a document of about 1,000 tokens, then makes one-character edits near its end through the
// VS Code API (insert "x", delete it, insert, …) and measures for each the time from the edit to the run of the new
// document version arriving in the host, and the extension host's heap (heapUsed after a forced GC). A measurement,
// not a test: it asserts nothing and writes its figures to $HEADLIGHT_BENCH_RESULT.
import { writeFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as vscode from 'vscode';
import type { HeadlightApi } from '../../../extension/extension';
import type { CurrentAnalysis } from '../../../extension/host/analysisSource';

const EXTENSION_ID = 'headlight.headlight';
/** Edits before the measured ones (the first edit after Explain Attention is a full run), reported apart. */
const WARM_UP = 2;

/** A forced full GC: --expose-gc set at run time, `gc` taken from a fresh context (the host was not started with it). */
function gcFunction(): (() => void) | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}

/** Deterministic English-like prose (a seeded word list), about `chars` characters in sentences and paragraphs. */
function prose(chars: number): string {
  const words = ('the model reads each token once and keeps its keys and values so that an edit near the end only ' +
    'recomputes what follows it while the attention maps of earlier tokens stay as they were in the previous run ' +
    'which is why typing in a long file should feel immediate even on a laptop without a graphics card').split(' ');
  let seed = 7;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  let out = '';
  let sentence = 0;
  while (out.length < chars) {
    const n = 6 + Math.floor(rand() * 12);
    const s = Array.from({ length: n }, () => words[Math.floor(rand() * words.length)]).join(' ');
    out += s[0].toUpperCase() + s.slice(1) + (rand() < 0.15 ? ', 2026' : '') + '.';
    out += ++sentence % 5 === 0 ? '\n\n' : ' ';
  }
  return out.slice(0, chars).trimEnd() + '\n';
}

function nextRun(api: HeadlightApi, version: number, timeoutMs = 120_000): Promise<CurrentAnalysis> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.dispose();
      reject(new Error(`no run of document version ${version} within ${timeoutMs} ms`));
    }, timeoutMs);
    const sub = api.controller.onDidChangeRun((cur) => {
      if (cur.documentVersion !== version) return;
      clearTimeout(timer);
      sub.dispose();
      resolve(cur);
    });
  });
}

async function until(cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sortNum = (a: number[]) => [...a].sort((x, y) => x - y);
const quantile = (a: number[], q: number) => {
  const s = sortNum(a);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};
const median = (a: number[]) => {
  const s = sortNum(a);
  const m = s.length >> 1;
  return s.length ? (s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2) : NaN;
};

export async function run(): Promise<void> {
  const out = process.env.HEADLIGHT_BENCH_RESULT!;
  const progressFile = `${out}.progress`;
  const result: Record<string, unknown> = { startedAt: new Date().toISOString() };
  try {
    const model = process.env.HEADLIGHT_BENCH_MODEL!;
    const wanted = Number(process.env.HEADLIGHT_BENCH_EDITS ?? 1000);
    const maxMs = Number(process.env.HEADLIGHT_BENCH_MAX_S ?? 1200) * 1000;
    const targetTokens = Number(process.env.HEADLIGHT_BENCH_TOKENS ?? 1000);
    const events: string[] = []; // the controller's last state changes, for an error report
    const gc = gcFunction();
    result.gc = Boolean(gc);
    const ext = vscode.extensions.getExtension<HeadlightApi>(EXTENSION_ID);
    if (!ext) throw new Error(`${EXTENSION_ID} is not installed`);
    const api = await ext.activate();
    api.controller.onDidChangeState((e) => {
      events.push(`${e.state} ${e.reason}${e.error ? ` ${e.error.code}: ${e.error.message}` : ''} (doc v${vscode.window.activeTextEditor?.document.version}, run v${api.controller.current?.documentVersion})`);
      if (events.length > 20) events.shift();
    });
    result.events = events;
    const cfg = vscode.workspace.getConfiguration('headlight');
    await cfg.update('model', model, vscode.ConfigurationTarget.Global);
    await cfg.update('debounceMs', 0, vscode.ConfigurationTarget.Global);
    await cfg.update('live', true, vscode.ConfigurationTarget.Global);
    await until(() => api.config().model === model && api.config().debounceMs === 0, 'the settings');

    // A document of about targetTokens tokens, all of it in the window: analyse, then resize the text by the measured
    // density (the first run's window assumes 4 characters a token; later ones use the measured density).
    let chars = targetTokens * 4;
    const doc = await vscode.workspace.openTextDocument({ content: prose(chars), language: 'plaintext' });
    const editor = await vscode.window.showTextDocument(doc);
    let cur: CurrentAnalysis | undefined;
    const fullRunMs: number[] = []; // the first includes loading the model
    for (let attempt = 0; ; attempt++) {
      const end = doc.positionAt(doc.getText().length);
      editor.selection = new vscode.Selection(end, end);
      const t0 = performance.now();
      cur = await api.controller.analyze(editor, 'command');
      if (!cur) throw new Error('an analysis of the whole document gave no run');
      fullRunMs.push(performance.now() - t0);
      const toks = cur.run.tokens;
      const whole = toks[0].start === 0 && toks[toks.length - 1].end >= doc.getText().trimEnd().length;
      if ((whole && Math.abs(toks.length - targetTokens) <= targetTokens * 0.02) || attempt === 5) break;
      const density = (toks[toks.length - 1].end - toks[0].start) / toks.length;
      chars = Math.floor(density * targetTokens);
      const all = new vscode.Range(doc.positionAt(0), doc.positionAt(doc.getText().length));
      await editor.edit((b) => b.replace(all, prose(chars)));
    }
    result.fullRunMs = fullRunMs;
    result.document = { chars: doc.getText().length, tokens: cur.run.tokens.length, totalTokens: cur.run.totalTokens, window: cur.run.window };
    result.model = { ref: model, nLayer: cur.model.nLayer, nHead: cur.model.nHead, nEmbd: cur.model.nEmbd, nPositions: cur.model.nPositions, vocabSize: cur.model.vocabSize };

    // The edits: "x" inserted 12 characters before the end, then deleted; one character each time.
    const at = doc.getText().length - 12;
    const ms: number[] = [];
    const engineMs: number[] = [];
    const computed: number[] = [];
    const heapNoGc: number[] = [];
    const heapGc: { edit: number; mb: number }[] = [];
    const mb = (b: number) => b / 2 ** 20;
    const sampleHeap = (edit: number) => {
      gc?.();
      heapGc.push({ edit, mb: mb(process.memoryUsage().heapUsed) });
    };
    const warmUpMs: number[] = [];
    const started = performance.now();
    let stoppedBy = 'count';
    for (let i = -WARM_UP; i < wanted; i++) {
      if (i === 0) sampleHeap(0);
      if (performance.now() - started > maxMs) {
        stoppedBy = 'time';
        break;
      }
      const insert = (i + WARM_UP) % 2 === 0;
      const arrived = nextRun(api, doc.version + 1);
      const te = performance.now();
      const ok = await editor.edit((b) => (insert ? b.insert(doc.positionAt(at), 'x') : b.delete(new vscode.Range(doc.positionAt(at), doc.positionAt(at + 1)))), { undoStopBefore: false, undoStopAfter: false });
      if (!ok) throw new Error(`edit ${i} was not applied`);
      let run: CurrentAnalysis;
      try {
        run = await arrived;
      } catch (err) {
        // a run that never came: stop here and report what was measured (the versions would no longer match)
        result.stopError = `${(err as Error).message} (edit ${i}; events: ${events.join(' | ')})`;
        stoppedBy = 'error';
        break;
      }
      if (i < 0) {
        warmUpMs.push(performance.now() - te);
        continue;
      }
      ms.push(performance.now() - te);
      engineMs.push(run.run.stats.totalMs);
      computed.push(run.run.stats.computed);
      heapNoGc.push(mb(process.memoryUsage().heapUsed));
      if ((i + 1) % 50 === 0) {
        sampleHeap(i + 1);
        writeFileSync(progressFile, JSON.stringify({ edits: i + 1, medianMs: median(ms), heapMb: heapGc[heapGc.length - 1].mb }));
      }
    }
    if (heapGc[heapGc.length - 1]?.edit !== ms.length) sampleHeap(ms.length);
    const first = heapGc[0].mb;
    const last = heapGc[heapGc.length - 1].mb;
    Object.assign(result, {
      warmUpEditMs: warmUpMs,
      edits: ms.length,
      stoppedBy,
      editsSeconds: (performance.now() - started) / 1000,
      editToRunMs: { median: median(ms), p90: quantile(ms, 0.9), p99: quantile(ms, 0.99), min: Math.min(...ms), max: Math.max(...ms) },
      engineTotalMs: { median: median(engineMs), p90: quantile(engineMs, 0.9) },
      computedTokens: { median: median(computed), max: Math.max(...computed) },
      heapMb: {
        forcedGc: Boolean(gc),
        first,
        last,
        growth: last - first,
        max: Math.max(...heapGc.map((h) => h.mb)),
        samples: heapGc,
        // without a forced GC: median of the last 50 edits minus the median of the first 50
        noGcGrowth: median(heapNoGc.slice(-50)) - median(heapNoGc.slice(0, 50)),
      },
      perEditMs: ms.map((x) => Math.round(x * 10) / 10),
      finishedAt: new Date().toISOString(),
    });
    Object.assign(result, await hoverAndHighlight(api, editor));
    await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
  } catch (err) {
    result.error = (err as Error).stack ?? String(err);
  }
  writeFileSync(out, JSON.stringify(result, null, 1));
}

/**
 * Issue #4's other bars on the document as the edits left it (its run is current): activation, hovers (the host's
 * own time from the request to the Markdown, and the round trip of vscode.executeHoverProvider) and cursor
 * highlights (the host's time from the cursor-token change to setDecorations, and from setting the selection through
 * the API until the decorations are set), each over HOVER_SAMPLES tokens spread over the window.
 */
async function hoverAndHighlight(api: HeadlightApi, editor: vscode.TextEditor): Promise<Record<string, unknown>> {
  const HOVER_SAMPLES = 50;
  const doc = editor.document;
  const tokens = api.controller.current!.run.tokens;
  const picks = Array.from({ length: HOVER_SAMPLES }, (_, k) => tokens[Math.floor(((k + 0.5) * tokens.length) / HOVER_SAMPLES)]);
  const mid = (t: { start: number; end: number }) => doc.positionAt(Math.floor((t.start + t.end) / 2));
  const hoverMs: number[] = [];
  const hoverRoundTripMs: number[] = [];
  for (const t of picks) {
    api.stats.lastHoverMs = undefined;
    const w0 = performance.now();
    await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', doc.uri, mid(t));
    hoverRoundTripMs.push(performance.now() - w0);
    if (api.stats.lastHoverMs !== undefined) hoverMs.push(api.stats.lastHoverMs);
  }
  const highlightMs: number[] = [];
  const highlightRoundTripMs: number[] = [];
  for (const t of picks) {
    const before = api.stats.highlightUpdates;
    const at = mid(t);
    const w0 = performance.now();
    editor.selection = new vscode.Selection(at, at);
    const deadline = w0 + 5000;
    while (api.stats.highlightUpdates === before && performance.now() < deadline) await new Promise((r) => setTimeout(r, 1));
    if (api.stats.highlightUpdates === before) continue; // no update (the cursor token did not change): not a sample
    highlightRoundTripMs.push(performance.now() - w0);
    highlightMs.push(api.stats.lastHighlightMs!);
  }
  const summary = (a: number[]) => ({ n: a.length, median: median(a), p90: quantile(a, 0.9), max: a.length ? Math.max(...a) : NaN });
  return {
    activationMs: api.stats.activationMs,
    hoverMs: summary(hoverMs),
    hoverRoundTripMs: summary(hoverRoundTripMs),
    highlightMs: summary(highlightMs),
    highlightRoundTripMs: summary(highlightRoundTripMs),
  };
}
