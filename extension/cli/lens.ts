/**
 * `headlight lens` and `headlight attribute`: the files they dump (the arithmetic is in engine/analyses/lens.ts and
 * attribution.ts).
 *   lens:      OUT/lens_logprob.f32  float32 [L+1, T]: ln p(token t+1 | layer l's residual at t), NaN for the last t
 *              OUT/lens_top1.i32     int32 [L+1, T]: the lens's argmax id
 *   attribute: OUT/attribution.json  {position, target, vs, logit_target, logit_vs, parts: [{name, value}]}
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { HeadlightError } from '../common/errors';
import type { Attribution } from '../engine/analyses/attribution';
import type { LensGrid } from '../engine/analyses/lens';

const bytes = (a: Float32Array | Int32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export async function writeLensDump(grid: LensGrid, out: string): Promise<void> {
  await fsp.writeFile(join(out, 'lens_logprob.f32'), bytes(grid.logprob));
  await fsp.writeFile(join(out, 'lens_top1.i32'), bytes(grid.top1));
}

export async function writeAttribution(a: Attribution, out: string): Promise<void> {
  const json = { position: a.position, target: a.target, vs: a.vs, logit_target: a.logitTarget, logit_vs: a.logitVs, parts: a.parts };
  await fsp.writeFile(join(out, 'attribution.json'), JSON.stringify(json, null, 1));
}

/** --at INDEX (a token index in the window), --target ID, --vs ID: non-negative integers. */
export function parseCount(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new HeadlightError('usage', `${flag} ${value}: expected a non-negative integer.`);
  return Number(value);
}

/** One line for stderr: the grid's size, time and rate. */
export function lensSummary(grid: LensGrid, out: string): string {
  return `headlight: lens of ${grid.end - grid.start} tokens × ${grid.rows} layers in ${grid.ms.toFixed(0)} ms (unembedding at ${grid.gflops.toFixed(1)} GFLOP/s) -> ${out}\n`;
}
