/**
 * Weights on their way from a checkpoint into the external-data file onnxruntime maps: read in ranges straight into
 * the caller's buffer (safetensors readF32Range, TensorStore.lazy), and streamed through one small buffer by
 * writeExternalData, so no tensor is ever whole in JavaScript while a model loads (issue #22).
 */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TensorStore } from '../../extension/engine/model/tensorStore.js';
import { openSafetensors, type SafetensorsFile } from '../../extension/engine/model/safetensors.js';
import { writeExternalData } from '../../extension/engine/graph/gpt2Graph.js';
import { DataType, type TensorSpec } from '../../extension/engine/graph/onnxProto.js';
import { roundInPlace, writeSafetensors, type FloatDtype } from '../fixtures/safetensorsWriter.js';

let dir: string;
before(async () => {
  dir = await fsp.mkdtemp(join(tmpdir(), 'headlight-stream-'));
});
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

/** Deterministic values with a spread of magnitudes and signs. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    out[i] = ((s / 2 ** 31) * 2 - 1) * 10 ** ((i % 7) - 3);
  }
  return out;
}

async function fileWith(name: string, dtype: FloatDtype, data: Float32Array, shape: number[]): Promise<SafetensorsFile> {
  const path = join(dir, `${name}.safetensors`);
  await writeSafetensors(path, [
    { name: 'before', dtype, shape: [3], data: Float32Array.of(1, 2, 3) }, // the tensor under test does not start the data area
    { name: 'w', dtype, shape, data },
    { name: 'ids', dtype: 'I64', shape: [2], bytes: new Uint8Array(16) },
  ]);
  return openSafetensors(path);
}

describe('readF32Range', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    test(`${dtype}: any range equals the same slice of readF32`, async () => {
      const data = values(1000, 7);
      const f = await fileWith(`range-${dtype}`, dtype, data, [40, 25]);
      try {
        const whole = await f.readF32('w');
        assert.deepEqual(whole, roundInPlace(Float32Array.from(data), dtype));
        for (const [from, n] of [[0, 1000], [0, 1], [999, 1], [13, 487], [500, 0]]) {
          const into = new Float32Array(n);
          await f.readF32Range('w', from, into);
          assert.deepEqual(into, whole.subarray(from, from + n), `${from}..${from + n}`);
        }
        // Into a view that starts inside a larger buffer: only its own elements are written.
        const big = new Float32Array(12).fill(-7);
        await f.readF32Range('w', 100, big.subarray(4, 8));
        assert.deepEqual([...big], [-7, -7, -7, -7, ...whole.subarray(100, 104), -7, -7, -7, -7]);
      } finally {
        await f.close();
      }
    });
  }

  test('a range past the end, a negative or fractional start and an integer tensor are refused', async () => {
    const f = await fileWith('range-bad', 'BF16', values(10, 3), [10]);
    try {
      await assert.rejects(f.readF32Range('w', 5, new Float32Array(6)), /elements 5\.\.11 of tensor w, which has 10/);
      await assert.rejects(f.readF32Range('w', -1, new Float32Array(1)), RangeError);
      await assert.rejects(f.readF32Range('w', 0.5, new Float32Array(1)), RangeError);
      await assert.rejects(f.readF32Range('ids', 0, new Float32Array(1)), /tensor ids is I64; only F32, F16 and BF16/);
      await assert.rejects(f.readF32Range('nope', 0, new Float32Array(1)), /no tensor named nope/);
    } finally {
      await f.close();
    }
  });
});

describe('TensorStore.lazy', () => {
  test('write fills the whole tensor, read any whole-value range, also into an unaligned buffer', async () => {
    const data = values(300, 11);
    const f = await fileWith('lazy', 'F16', data, [300]);
    try {
      const store = new TensorStore('lazy.safetensors', [f], new Map([['*', '']]), undefined, false);
      const lazy = store.lazy('w', [300]);
      const expected = new Uint8Array((await f.readF32('w')).buffer);
      assert.equal(lazy.byteLength, 1200);
      const all = new Uint8Array(1200);
      await lazy.write(all);
      assert.deepEqual(all, expected);
      const part = new Uint8Array(400);
      await lazy.read(part, 400);
      assert.deepEqual(part, expected.subarray(400, 800));
      const odd = new Uint8Array(403).subarray(3); // byteOffset 3: not a Float32Array's alignment
      await lazy.read(odd, 800);
      assert.deepEqual(odd, expected.subarray(800, 1200));
      await assert.rejects(lazy.read(new Uint8Array(4), 2), /whole values/);
      await assert.rejects(lazy.read(new Uint8Array(6), 0), /whole values/);
    } finally {
      await f.close();
    }
  });
});

describe('writeExternalData', () => {
  test('streams a checkpoint tensor larger than its buffer into weights.bin without holding it whole', async () => {
    const n = 12 * 2 ** 20; // 48 MB as fp32: three times the 16 MB stream buffer
    const data = values(n, 5);
    const f = await fileWith('stream', 'BF16', data, [n / 1024, 1024]);
    const out = join(dir, 'external');
    await fsp.mkdir(out);
    try {
      const store = new TensorStore('stream.safetensors', [f], new Map([['*', '']]), undefined, false);
      const small = new Uint8Array(new Float32Array([1, 2, 3]).buffer);
      const inMemory = new Uint8Array(values(5000, 9).buffer);
      const initializers: TensorSpec[] = [
        { name: 'small', dataType: DataType.FLOAT, dims: [3], raw: small },
        { name: 'w', dataType: DataType.FLOAT, dims: [n / 1024, 1024], raw: store.lazy('w', [n / 1024, 1024]) },
        { name: 'mem', dataType: DataType.FLOAT, dims: [5000], raw: inMemory },
      ];
      const buffersBefore = process.memoryUsage().arrayBuffers;
      await writeExternalData(initializers, out);
      // What the write allocated is still counted (no collection ran in between): the 16 MB stream buffer and the
      // file's read chunks, never the 48 MB tensor (reading it whole and copying it counted 96 MB here).
      const grown = process.memoryUsage().arrayBuffers - buffersBefore;
      assert.ok(grown < 40 * 2 ** 20, `array buffers grew by ${Math.round(grown / 2 ** 20)} MB while streaming a 48 MB tensor`);

      const file = await fsp.readFile(join(out, 'weights.bin'));
      const [, w, mem] = initializers;
      assert.equal(initializers[0].raw, small, 'a tensor under 4 KB stays inside the model');
      assert.equal(initializers[0].external, undefined);
      for (const t of [w, mem]) {
        assert.equal(t.raw, undefined);
        assert.equal(t.external!.offset % 65536, 0, 'page-aligned for mapping');
      }
      assert.deepEqual(w.external, { location: 'weights.bin', offset: 0, length: n * 4 });
      assert.deepEqual(new Uint8Array(file.buffer, file.byteOffset + w.external!.offset, n * 4), new Uint8Array((await f.readF32('w')).buffer));
      assert.deepEqual(new Uint8Array(file.buffer, file.byteOffset + mem.external!.offset, mem.external!.length), inMemory);
    } finally {
      await f.close();
    }
  });
});
