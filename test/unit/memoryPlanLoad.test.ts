/**
 * loadEngine's memory check: the window shrinks to what the budget holds, and a model too big for it is refused by
 * the plan before any weight is read — here a checkpoint whose header claims 64 GB of weights over a sparse file
 * (the data area is a hole: nothing was written and reading it would allocate 64 GB).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { HeadlightError } from '../../extension/common/errors';
import { loadEngine } from '../../extension/engine/load';
import { planMemory } from '../../extension/engine/model/memoryPlan';
import { llamaSpec } from '../fixtures/hfCheckpoint';
import { encodeHeader } from '../fixtures/safetensorsWriter';
import { writeFamilyCheckpoint } from '../engine/familyCheckpoint';

const root = mkdtempSync(join(tmpdir(), 'headlight-memplan-'));
after(() => rmSync(root, { recursive: true, force: true }));
const GPT2_TOKENIZER = join(__dirname, '../fixtures/gpt2-tokenizer/tokenizer.json');

describe('loadEngine and the memory plan', () => {
  it('runs the longest window the budget holds, and says the budget limited it', async () => {
    const dir = join(root, 'small');
    await writeFamilyCheckpoint(dir, llamaSpec({ modelType: 'llama', layers: 2, hidden: 32, heads: 4, kvHeads: 2, intermediate: 64, vocab: 50257, maxPositions: 4096 }), { seed: 3 });
    const roomy = await loadEngine(dir, { budget: { bytes: 64 * 2 ** 30, source: 'test' }, maxWindow: 2048 });
    assert.equal(roomy.engine.dims.nPositions, 2048);
    assert.equal(roomy.memory.limitedBy, 'context');
    const budgetBytes = roomy.memory.plan.total - roomy.memory.plan.attention / 2; // well short of the 2048 window
    await roomy.engine.dispose();

    const tight = await loadEngine(dir, { budget: { bytes: budgetBytes, source: 'test' }, maxWindow: 2048 });
    try {
      const w = tight.engine.dims.nPositions;
      assert.ok(w < 2048 && w >= 64, `window ${w}`);
      assert.equal(tight.memory.limitedBy, 'memory');
      assert.ok(tight.memory.plan.total <= budgetBytes);
      assert.equal(tight.memory.plan.attention, 2 * 4 * ((w * (w + 1)) / 2) * 2, 'the plan is of the chosen window');
      const run = await tight.engine.analyze('hello world '.repeat(5));
      assert.ok(run.length > 0);
    } finally {
      await tight.engine.dispose();
    }
  });

  it('refuses a model too big for the budget before reading any weight (64 GB claimed over a sparse file)', async () => {
    const dir = join(root, 'huge');
    await fsp.mkdir(dir, { recursive: true });
    const [L, E, H, I, V] = [1, 4096, 32, 11008, 4_000_000];
    const spec = llamaSpec({ modelType: 'llama', layers: L, hidden: E, heads: H, intermediate: I, vocab: V, tie: true, maxPositions: 4096 });
    await fsp.writeFile(join(dir, 'config.json'), JSON.stringify(spec.config));
    const header: Record<string, unknown> = {};
    let offset = 0;
    for (const t of spec.tensors) {
      const bytes = t.shape.reduce((a, d) => a * d, 1) * 4;
      header[t.key] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
      offset += bytes;
    }
    const headerBytes = encodeHeader(header);
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(headerBytes.length));
    const path = join(dir, 'model.safetensors');
    await fsp.writeFile(path, Buffer.concat([prefix, headerBytes]));
    await fsp.truncate(path, 8 + headerBytes.length + offset); // a hole: no data on disk
    copyFileSync(GPT2_TOKENIZER, join(dir, 'tokenizer.json'));
    assert.ok(offset > 64e9, `claims ${offset} bytes`);

    const before = process.memoryUsage();
    const t0 = performance.now();
    const err = await loadEngine(dir, { budget: { bytes: 4 * 2 ** 30, source: 'test budget' } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const ms = performance.now() - t0;
    assert.ok(err instanceof HeadlightError, `got ${String(err)}`);
    assert.equal(err.code, 'model-too-big', err.message);
    assert.match(err.message, /^huge: needs about \d+\.\d GB for a window of \d+ tokens \(.*weights \d+\.\d GB/);
    assert.match(err.message, /over the budget of 4,096 MB \(test budget\)/);
    assert.match(err.hint!, /smaller model/);
    const estimate = planMemory({ dims: { nLayer: L, nHead: H, nKvHead: H, headDim: E / H, nEmbd: E, vocabSize: V }, tensors: [], window: 64 });
    assert.ok(estimate.total < 4 * 2 ** 30, 'only the weights are over the budget');
    const grew = process.memoryUsage().rss - before.rss;
    assert.ok(grew < 200 * 2 ** 20, `RSS grew ${grew} bytes`);
    assert.ok(ms < 5000, `${ms} ms`);
  });
});
