/** `headlight rollout --dump OUT`: the run's attention rollout as OUT/rollout.f32, [T, T] float32 row-major. */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Run } from '../engine/analyses/engine';
import { Rollout } from '../engine/analyses/rollout';

/** Writes OUT/rollout.f32 (rows sum to 1, zeros above the diagonal); returns the milliseconds the rollout took. */
export async function writeRollout(run: Run, out: string): Promise<number> {
  const t0 = performance.now();
  const matrix = Float32Array.from(new Rollout(run.attention).matrix()); // [T, T]
  const ms = performance.now() - t0;
  await fsp.mkdir(out, { recursive: true });
  await fsp.writeFile(join(out, 'rollout.f32'), new Uint8Array(matrix.buffer, matrix.byteOffset, matrix.byteLength));
  return ms;
}
