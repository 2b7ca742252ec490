/**
 * Records activation patching from the real engine for the panel's Patching view test, on the same checkpoint and
 * text as recorded-run.json (the clean side: the current run) against a copy with "world" replaced by "there",
 * one token each, into test/fixtures/recorded-patch.json: both texts, the metric's tokens (the clean run's top
 * two guesses after the last token), the first progress event (before any run: the clean and corrupted metrics), the
 * cells in the order the engine streamed them, and the final result.
 *   node --import tsx test/webview/recordPatch.ts
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineService } from '../../extension/engine/server';
import type { EngineEvents, PatchCell, PatchResult, Prediction, RunSummary, ScoreResult } from '../../extension/common/engineProtocol';
import { writeRandomCheckpoint } from '../fixtures/randomCheckpoint';

const b64 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

async function main(): Promise<void> {
  const recorded = JSON.parse(readFileSync(join(FIXTURES, 'recorded-run.json'), 'utf8'));
  const dir = mkdtempSync(join(tmpdir(), 'headlight-rec-'));
  try {
    await writeRandomCheckpoint(dir, { seed: 7, nLayer: 3, nHead: 4, nEmbd: 32, nPositions: 128 });
    const service = new EngineService();
    const h = service.handlers;
    const signal = new AbortController().signal;
    await h.load!({ ref: 'random-seed7', dir }, signal);
    const clean: string = recorded.text;
    const run = (await h.analyze!({ text: clean, incremental: false }, signal)) as RunSummary;
    if (JSON.stringify(run.tokens) !== JSON.stringify(recorded.run.tokens)) throw new Error('recorded-run.json was made from another run: record it again first');
    const corrupt = clean.replace('world', 'there');
    const other = (await h.score!({ text: corrupt, k: 5 }, signal)) as ScoreResult;
    if (other.tokens.length !== run.tokens.length) throw new Error(`the corrupted text has ${other.tokens.length} tokens, the clean ${run.tokens.length}: pick another replacement`);
    const T = run.tokens.length;
    const guesses = (await h.predictions!({ version: run.version, index: T, k: 5 }, signal)) as Prediction[];
    const [answer, wrong] = guesses;
    const cells: (PatchCell & { done: number; total: number })[] = [];
    const events: EngineEvents['patchProgress'][] = [];
    service.emit = ((name: string, p: EngineEvents['patchProgress']) => {
      if (name !== 'patchProgress') return;
      events.push(p);
      if (p.cell) cells.push({ ...p.cell, done: p.done, total: p.total });
    }) as typeof service.emit;
    const r = (await h.patch!({ clean, corrupt, answer: answer.id, wrong: wrong.id, window: { start: 0, end: T }, progressId: 'rec' }, signal)) as PatchResult;
    const first = events[0];
    if (!first || first.cell || first.done !== 0) throw new Error('the first patchProgress event should come before any cell');
    const out = join(FIXTURES, 'recorded-patch.json');
    writeFileSync(out, JSON.stringify({
      clean, corrupt, otherTokens: other.tokens, otherLogprobs: Array.from(other.logprobs, (x) => (Number.isNaN(x) ? null : x)),
      answer: { id: answer.id, text: answer.text }, wrong: { id: wrong.id, text: wrong.text }, guesses,
      first: { done: first.done, total: first.total, metricClean: first.metricClean, metricCorrupt: first.metricCorrupt }, cells, result: { ...r, resid: b64(r.resid), heads: b64(r.heads) },
    }) + '\n');
    console.log(`recorded ${cells.length} streamed cells (${r.runs} runs, ${r.ms.toFixed(0)} ms), metric clean ${r.metricClean.toFixed(3)} corrupted ${r.metricCorrupt.toFixed(3)} -> ${out}`);
    await service.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
