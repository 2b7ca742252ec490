/**
 * Records what the logit-lens tab and the attribution views show, from the real engine on the same checkpoint and
 * text as recorded-run.json, into test/fixtures/recorded-lens.json: the lens grid of the whole window, the lens of
 * every token (`lensAt`, with its guesses' texts), direct logit attribution at every token (default target) and,
 * at two tokens, against the model's second guess.
 *   node --import tsx test/webview/recordLens.ts
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineService } from '../../extension/engine/server';
import type { Attribution, LensGrid, ModelInfo, RunSummary, TokenLens } from '../../extension/common/engineProtocol';
import { writeRandomCheckpoint } from '../fixtures/randomCheckpoint';

const b64 = (a: Float32Array | Int32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

function attributionJson(a: Attribution): unknown {
  return { ...a, heads: b64(a.heads), mlp: b64(a.mlp), attnBias: a.attnBias && b64(a.attnBias) };
}

async function main(): Promise<void> {
  const recorded = JSON.parse(readFileSync(join(FIXTURES, 'recorded-run.json'), 'utf8'));
  const dir = mkdtempSync(join(tmpdir(), 'headlight-rec-'));
  try {
    await writeRandomCheckpoint(dir, { seed: 7, nLayer: 3, nHead: 4, nEmbd: 32, nPositions: 128 });
    const service = new EngineService();
    const h = service.handlers;
    const signal = new AbortController().signal;
    await h.load!({ ref: 'random-seed7', dir }, signal) as ModelInfo;
    const run = (await h.analyze!({ text: recorded.text, incremental: false }, signal)) as RunSummary;
    if (JSON.stringify(run.tokens) !== JSON.stringify(recorded.run.tokens)) throw new Error('recorded-run.json was made from another run: record it again first');
    const T = run.tokens.length;
    const version = run.version;
    const g = (await h.lensGrid!({ version, start: 0, end: T }, signal)) as LensGrid;
    const grid = { start: g.start, end: g.end, rows: g.rows, logprob: b64(g.logprob), top1: b64(g.top1), topIds: b64(g.topIds), topLogprob: b64(g.topLogprob), settles: b64(g.settles) };
    const at: unknown[] = [];
    const attributions: Record<string, unknown> = {};
    for (let i = 0; i < T; i++) {
      const one = (await h.lensAt!({ version, index: i }, signal)) as TokenLens;
      at.push({ ...one, logprob: Array.from(one.logprob, (x) => (Number.isNaN(x) ? null : x)) });
      attributions[String(i)] = attributionJson((await h.attribute!({ version, index: i }, signal)) as Attribution);
    }
    // "why the target rather than the model's first other guess?" at two tokens (the panel's contrast picker)
    for (const i of [20, T - 1]) {
      const one = at[i] as TokenLens;
      const target = ((await h.attribute!({ version, index: i }, signal)) as Attribution).target;
      const vs = one.top[one.top.length - 1].find((g) => g.id !== target)!.id;
      const a = (await h.attribute!({ version, index: i, target, vs }, signal)) as Attribution;
      attributions[`${i}:${target}:${vs}`] = attributionJson(a);
    }
    const out = join(FIXTURES, 'recorded-lens.json');
    writeFileSync(out, JSON.stringify({ model: recorded.model, grid, at, attributions }) + '\n');
    console.log(`recorded a ${g.rows}×${T} lens grid, ${at.length} token lenses, ${Object.keys(attributions).length} attributions -> ${out}`);
    await service.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
