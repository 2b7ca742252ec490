/**
 * Records what "Inside a head" shows, from the real engine on the same checkpoint and text as recorded-run.json,
 * into test/fixtures/recorded-inside.json: q·k breakdowns (every head, two queries), value norms, value-weighted rows,
 * ablations (every head alone, zero and mean, two prediction positions; one two-head ablation) and head rankings.
 *   node --import tsx test/webview/recordInside.ts
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineService } from '../../extension/engine/server';
import type { AblationMode, AblationSummary, HeadRankingSummary, HeadRef, ModelInfo, QkBreakdown, RunSummary } from '../../extension/common/engineProtocol';
import { writeRandomCheckpoint } from '../fixtures/randomCheckpoint';

const f32 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

async function main(): Promise<void> {
  const recorded = JSON.parse(readFileSync(join(FIXTURES, 'recorded-run.json'), 'utf8'));
  const RECORDED_TEXT: string = recorded.text;
  const dir = mkdtempSync(join(tmpdir(), 'headlight-rec-'));
  try {
    await writeRandomCheckpoint(dir, { seed: 7, nLayer: 3, nHead: 4, nEmbd: 32, nPositions: 128 });
    const service = new EngineService();
    const h = service.handlers;
    const signal = new AbortController().signal;
    const model = (await h.load!({ ref: 'random-seed7', dir }, signal)) as ModelInfo;
    const run = (await h.analyze!({ text: RECORDED_TEXT, incremental: false }, signal)) as RunSummary;
    const T = run.tokens.length;
    if (JSON.stringify(run.tokens) !== JSON.stringify(recorded.run.tokens)) throw new Error('recorded-run.json was made from another run: record it again first');
    const { nLayer: L, nHead: H } = model;
    const queries = [30, T - 1];
    const qk: Record<string, unknown> = {};
    const valueNorms: string[] = [];
    for (let l = 0; l < L; l++) {
      for (let hd = 0; hd < H; hd++) {
        for (const index of queries) {
          const b = (await h.qk!({ version: run.version, layer: l, head: hd, index }, signal)) as QkBreakdown;
          qk[`${l}.${hd}.${index}`] = { scale: b.scale, query: f32(b.query), keys: f32(b.keys), values: f32(b.values), scores: f32(b.scores), probs: f32(b.probs), attention: f32(b.attention), valueNorms: f32(b.valueNorms) };
          if (index === T - 1) valueNorms.push(f32(b.valueNorms));
        }
      }
    }
    // value-weighted rows of one head, straight from the engine (the panel re-weights the triangle itself)
    const vwRows: Record<string, string> = {};
    for (const index of [30, T - 1]) {
      vwRows[`1.2.${index}`] = f32((await h.row!({ version: run.version, sel: { layer: 1, head: 2 }, index, mode: 'value-weighted' }, signal)) as Float32Array);
    }
    const ablations: unknown[] = [];
    const ablate = async (heads: HeadRef[], mode: AblationMode) => {
      const at: Record<number, unknown> = {};
      let first: AblationSummary | undefined;
      for (const pos of [31, T]) {
        const a = (await h.ablate!({ text: RECORDED_TEXT, heads, mode, at: pos, k: 5 }, signal)) as AblationSummary;
        first ??= a;
        at[pos] = { before: a.predictionsBefore, after: a.predictionsAfter };
      }
      const a = first!;
      ablations.push({ heads, mode, window: a.window, lossBefore: a.lossBefore, lossAfter: a.lossAfter, lossDelta: a.lossDelta, surprisalBefore: f32(a.surprisalBefore), surprisalAfter: f32(a.surprisalAfter), surprisalDelta: f32(a.surprisalDelta), at });
    };
    for (const mode of ['zero', 'mean'] as const) for (let l = 0; l < L; l++) for (let hd = 0; hd < H; hd++) await ablate([{ layer: l, head: hd }], mode);
    await ablate([{ layer: 0, head: 1 }, { layer: 2, head: 3 }], 'mean');
    const rankings: unknown[] = [];
    for (const mode of ['zero', 'mean'] as const) {
      const r = (await h.rankHeads!({ text: RECORDED_TEXT, mode }, signal)) as HeadRankingSummary;
      rankings.push({ mode, window: r.window, lossBefore: r.lossBefore, deltas: f32(r.deltas), ranking: r.ranking });
    }
    const out = join(FIXTURES, 'recorded-inside.json');
    writeFileSync(out, JSON.stringify({ model: recorded.model, text: RECORDED_TEXT, queries, qk, valueNorms, vwRows, ablations, rankings }) + '\n');
    console.log(`recorded ${Object.keys(qk).length} q·k breakdowns, ${ablations.length} ablations, ${rankings.length} rankings -> ${out}`);
    await service.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
