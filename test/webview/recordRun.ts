/**
 * Records a run from the real engine (a random GPT-2 checkpoint, fixed seed) into test/fixtures/recorded-run.json:
 * the run summary, every head's triangle (fp16 bits, base64), thumbnails and top-5 predictions per token.
 *   node --import tsx test/webview/recordRun.ts
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineService } from '../../extension/engine/server';
import type { HeadTriangle, Prediction, RunSummary, Thumbnails, ModelInfo } from '../../extension/common/engineProtocol';
import { writeRandomCheckpoint } from '../fixtures/randomCheckpoint';

export const RECORDED_TEXT = `function greet(name) {
  if (!name) {
    return "Hello, world!";
  }
  return "Hello, " + name + "!";
}
greet("Ada");
`;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'headlight-rec-'));
  try {
    await writeRandomCheckpoint(dir, { seed: 7, nLayer: 3, nHead: 4, nEmbd: 32, nPositions: 128 });
    const service = new EngineService();
    const h = service.handlers;
    const signal = new AbortController().signal;
    const model = (await h.load!({ ref: 'random-seed7', dir }, signal)) as ModelInfo;
    const run = (await h.analyze!({ text: RECORDED_TEXT, incremental: false }, signal)) as RunSummary;
    const T = run.tokens.length;
    const triangles: string[] = [];
    for (let l = 0; l < model.nLayer; l++) {
      for (let hd = 0; hd < model.nHead; hd++) {
        const tri = (await h.headTriangle!({ version: run.version, layer: l, head: hd }, signal)) as HeadTriangle;
        if (!(tri.data instanceof Uint16Array)) throw new Error('expected fp16 triangles');
        triangles.push(Buffer.from(tri.data.buffer, tri.data.byteOffset, tri.data.byteLength).toString('base64'));
      }
    }
    const th = (await h.thumbnails!({ version: run.version, size: 32 }, signal)) as Thumbnails;
    const predictions: Prediction[][] = [];
    for (let i = 0; i < T; i++) predictions.push((await h.predictions!({ version: run.version, index: i, k: 5 }, signal)) as Prediction[]);
    const fixture = {
      model: { ref: model.ref, nLayer: model.nLayer, nHead: model.nHead, nEmbd: model.nEmbd, nPositions: model.nPositions },
      text: RECORDED_TEXT,
      run: { version: run.version, tokens: run.tokens, window: run.window, totalTokens: run.totalTokens, surprisal: Array.from(run.surprisal, (s) => (Number.isNaN(s) ? null : Math.round(s * 1000) / 1000)) },
      triangles,
      thumbnails: { nLayer: th.nLayer, nHead: th.nHead, size: th.size, data: Buffer.from(th.data).toString('base64') },
      predictions,
    };
    const out = join(import.meta.dirname, '..', 'fixtures', 'recorded-run.json');
    writeFileSync(out, JSON.stringify(fixture) + '\n');
    console.log(`recorded ${T} tokens, ${triangles.length} heads -> ${out}`);
    await service.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
