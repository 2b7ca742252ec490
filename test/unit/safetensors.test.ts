import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HeadlightError } from '../../extension/common/errors.js';
import { openSafetensors, type SafetensorsFile } from '../../extension/engine/model/safetensors.js';
import {
  f32ToBf16Bits,
  f32ToF16Bits,
  roundInPlace,
  writeRawSafetensors,
  writeSafetensors,
} from '../fixtures/safetensorsWriter.js';

let dir: string;
before(async () => {
  dir = await fsp.mkdtemp(join(tmpdir(), 'headlight-st-'));
});
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

/** Values that exercise rounding: ordinary, tiny (subnormal in F16), huge (overflow in F16), signed zeros. */
function sampleValues(): Float32Array {
  const v = [0, -0, 1, -1, 1 / 3, Math.PI, 1e-3, -2.5e-6, 6e-8, 1e-9, 65504, 70000, -1e5, 3e38, 1 + 2 ** -11, 1 + 3 * 2 ** -11];
  for (let i = 0; i < 40; i++) v.push(Math.sin(i * 12.9898) * 10 ** ((i % 9) - 4));
  return Float32Array.from(v);
}

async function withFile<T>(path: string, fn: (f: SafetensorsFile) => Promise<T>): Promise<T> {
  const f = await openSafetensors(path);
  try {
    return await fn(f);
  } finally {
    await f.close();
  }
}

/** Expect opening `path` to fail with a HeadlightError whose message matches every pattern. */
async function rejectsWith(path: string, ...patterns: RegExp[]): Promise<HeadlightError> {
  let caught: unknown;
  try {
    const f = await openSafetensors(path);
    await f.close();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof HeadlightError, `expected a HeadlightError, got ${String(caught)}`);
  for (const p of patterns) assert.match(caught.message, p);
  return caught;
}

describe('fp32 rounding in the writer', () => {
  test('F16 rounds to nearest, ties to even, and saturates to infinity', () => {
    assert.equal(f32ToF16Bits(1), 0x3c00);
    assert.equal(f32ToF16Bits(-2), 0xc000);
    assert.equal(f32ToF16Bits(1 / 3), 0x3555); // 0.333251953125
    assert.equal(f32ToF16Bits(1 + 2 ** -11), 0x3c00); // tie: down to the even mantissa
    assert.equal(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie: up to the even mantissa
    assert.equal(f32ToF16Bits(65504), 0x7bff);
    assert.equal(f32ToF16Bits(65520), 0x7c00); // tie between 65504 and 2^16: even is infinity
    assert.equal(f32ToF16Bits(2 ** -24), 0x0001); // smallest subnormal
    assert.equal(f32ToF16Bits(2 ** -25), 0x0000); // tie to even zero
    assert.equal(f32ToF16Bits(1.5 * 2 ** -24), 0x0002);
    assert.equal(f32ToF16Bits(-0), 0x8000);
    assert.equal(f32ToF16Bits(NaN) & 0x7c00, 0x7c00);
  });

  test('BF16 keeps the top 16 bits, rounded to nearest even', () => {
    assert.equal(f32ToBf16Bits(1), 0x3f80);
    assert.equal(f32ToBf16Bits(1 / 3), 0x3eab); // 0.333984375
    assert.equal(f32ToBf16Bits(1 + 2 ** -8), 0x3f80); // tie down to even
    assert.equal(f32ToBf16Bits(1 + 3 * 2 ** -8), 0x3f82); // tie up to even
    assert.equal(f32ToBf16Bits(-Infinity), 0xff80);
    assert.ok(Number.isNaN(roundInPlace(Float32Array.of(NaN), 'BF16')[0]));
  });
});

describe('reading good files', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    test(`${dtype} values round-trip through writer and reader`, async () => {
      const path = join(dir, `good-${dtype}.safetensors`);
      const a = sampleValues();
      const b = Float32Array.from({ length: 6 }, (_, i) => i - 2.75);
      await writeSafetensors(
        path,
        [
          { name: 'a', dtype, shape: [a.length], data: a },
          { name: 'b.weight', dtype, shape: [2, 3], data: b },
          { name: 'scalar', dtype, shape: [], data: Float32Array.of(7) },
          { name: 'empty', dtype, shape: [0, 4], data: new Float32Array(0) },
        ],
        { format: 'pt' },
      );
      await withFile(path, async (f) => {
        assert.deepEqual([...f.tensors.keys()].sort(), ['a', 'b.weight', 'empty', 'scalar']);
        assert.deepEqual(f.tensors.get('b.weight'), {
          name: 'b.weight',
          dtype,
          shape: [2, 3],
          offsets: f.tensors.get('b.weight')!.offsets,
        });
        assert.deepEqual(f.metadata, { format: 'pt' });
        const expected = roundInPlace(Float32Array.from(a), dtype);
        const got = await f.readF32('a');
        assert.deepEqual(got, expected);
        if (dtype !== 'F32') assert.notDeepEqual(got, a, 'rounding should change some values');
        assert.deepEqual(await f.readF32('b.weight'), b); // small halves of integers are exact in every dtype
        assert.deepEqual(await f.readF32('scalar'), Float32Array.of(7));
        assert.equal((await f.readF32('empty')).length, 0);
      });
    });
  }

  test('F16 subnormals, infinities and signed zero decode exactly', async () => {
    const path = join(dir, 'f16-special.safetensors');
    const bits = Uint16Array.of(0x0001, 0x03ff, 0x0400, 0x7bff, 0x7c00, 0xfc00, 0x8000, 0x7e00);
    await writeSafetensors(path, [{ name: 'x', dtype: 'F16', shape: [bits.length], bytes: new Uint8Array(bits.buffer) }]);
    await withFile(path, async (f) => {
      const x = await f.readF32('x');
      assert.deepEqual([...x.slice(0, 7)], [2 ** -24, 1023 * 2 ** -24, 2 ** -14, 65504, Infinity, -Infinity, -0]);
      assert.ok(Number.isNaN(x[7]));
    });
  });

  test('readRaw returns the stored bytes of any dtype; readF32 refuses integers', async () => {
    const path = join(dir, 'raw.safetensors');
    const ids = BigInt64Array.of(1n, -2n, 3n);
    await writeSafetensors(path, [
      { name: 'ids', dtype: 'I64', shape: [3], bytes: new Uint8Array(ids.buffer) },
      { name: 'f', dtype: 'F32', shape: [2], data: Float32Array.of(1.5, -2) },
    ]);
    await withFile(path, async (f) => {
      const raw = await f.readRaw('ids');
      assert.deepEqual(new BigInt64Array(raw.buffer), ids);
      assert.deepEqual(new Float32Array((await f.readRaw('f')).buffer), Float32Array.of(1.5, -2));
      await assert.rejects(f.readF32('ids'), /tensor ids is I64; only F32, F16 and BF16/);
      await assert.rejects(f.readF32('nope'), /no tensor named nope/);
    });
  });

  test('reads a tensor that lies past 2 GiB (sparse file)', async () => {
    const path = join(dir, 'big.safetensors');
    const hole = 2 ** 31 + 4096; // bytes of a U8 tensor never read
    const header = {
      pad: { dtype: 'U8', shape: [hole], data_offsets: [0, hole] },
      far: { dtype: 'F32', shape: [4], data_offsets: [hole, hole + 16] },
    };
    await writeRawSafetensors(path, header, new Uint8Array(0));
    const headerBytes = (await fsp.stat(path)).size - 8;
    const far = Float32Array.of(1, -2, 3.25, 1e-7);
    const handle = await fsp.open(path, 'r+');
    await handle.write(new Uint8Array(far.buffer), 0, 16, 8 + headerBytes + hole);
    await handle.close();
    await withFile(path, async (f) => {
      assert.ok(f.size > 2 ** 31);
      assert.deepEqual(await f.readF32('far'), far);
    });
  });
});

describe('refusing bad files', () => {
  const good = { t: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } };

  test('a file shorter than the length field', async () => {
    const path = join(dir, 'tiny.safetensors');
    await fsp.writeFile(path, Uint8Array.of(1, 2, 3));
    await rejectsWith(path, /tiny\.safetensors/, /3 bytes/);
  });

  test('a header length past the end of the file', async () => {
    const path = join(dir, 'header-past-eof.safetensors');
    await writeRawSafetensors(path, good, new Uint8Array(16), { headerLength: 10_000n });
    const err = await rejectsWith(path, /header-past-eof\.safetensors/, /10000 bytes/, /truncated/);
    assert.equal(err.code, 'safetensors-truncated');
  });

  test('a truncated file names the tensor, where it ends and the data size', async () => {
    const path = join(dir, 'model.safetensors');
    await writeSafetensors(path, [
      { name: 'h.0.attn.c_attn.weight', dtype: 'F32', shape: [10, 25], data: new Float32Array(250) },
    ]);
    const size = (await fsp.stat(path)).size;
    await fsp.truncate(path, size - 100);
    await rejectsWith(path, /^model\.safetensors: tensor h\.0\.attn\.c_attn\.weight ends at byte 1000 but the file's data area has 900 bytes/, /truncated/);
  });

  test('a header that is not JSON, or not an object', async () => {
    const path = join(dir, 'not-json.safetensors');
    await writeRawSafetensors(path, '{"t": {"dtype": "F32",', new Uint8Array(16));
    await rejectsWith(path, /not valid UTF-8 JSON/);
    await writeRawSafetensors(path, [1, 2], new Uint8Array(0));
    await rejectsWith(path, /not a JSON object/);
  });

  test('offsets that disagree with shape × dtype', async () => {
    const path = join(dir, 'lying-size.safetensors');
    await writeRawSafetensors(path, { t: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 16] } }, new Uint8Array(16));
    await rejectsWith(path, /tensor t \(F32 \[2, 3\]\) needs 24 bytes but its data_offsets \[0, 16\] span 16/);
  });

  test('malformed offsets and shapes', async () => {
    const path = join(dir, 'malformed.safetensors');
    await writeRawSafetensors(path, { t: { dtype: 'F32', shape: [4], data_offsets: [16, 0] } }, new Uint8Array(16));
    await rejectsWith(path, /data_offsets \[16,0\]/);
    await writeRawSafetensors(path, { t: { dtype: 'F32', shape: [-4], data_offsets: [0, 16] } }, new Uint8Array(16));
    await rejectsWith(path, /shape \[-4\]/);
    await writeRawSafetensors(path, { t: { dtype: 'F32', shape: [4] } }, new Uint8Array(16));
    await rejectsWith(path, /data_offsets undefined/);
    await writeRawSafetensors(path, { t: 'F32' }, new Uint8Array(16));
    await rejectsWith(path, /tensor t has no \{dtype, shape, data_offsets\}/);
  });

  test('overlapping tensors', async () => {
    const path = join(dir, 'overlap.safetensors');
    const header = {
      a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
      b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
    };
    await writeRawSafetensors(path, header, new Uint8Array(16));
    await rejectsWith(path, /tensors a \[0, 16\) and b \[8, 16\) overlap/);
  });

  test('an unknown dtype', async () => {
    const path = join(dir, 'dtype.safetensors');
    await writeRawSafetensors(path, { t: { dtype: 'F12', shape: [4], data_offsets: [0, 6] } }, new Uint8Array(6));
    const err = await rejectsWith(path, /tensor t has dtype "F12"/);
    assert.equal(err.code, 'safetensors-unsupported-dtype');
  });

  test('__metadata__ is allowed, but only with string values', async () => {
    const path = join(dir, 'meta.safetensors');
    await writeRawSafetensors(path, { __metadata__: { format: 'pt' }, ...good }, new Uint8Array(16));
    await withFile(path, async (f) => {
      assert.deepEqual(f.metadata, { format: 'pt' });
      assert.deepEqual([...f.tensors.keys()], ['t']);
    });
    await writeRawSafetensors(path, { __metadata__: { step: 3 }, ...good }, new Uint8Array(16));
    await rejectsWith(path, /__metadata__\.step is not a string/);
  });

  test('a missing file', async () => {
    await rejectsWith(join(dir, 'absent.safetensors'), /absent\.safetensors: cannot open .*ENOENT/);
  });
});
