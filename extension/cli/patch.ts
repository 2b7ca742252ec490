/**
 * `headlight patch --model M --clean F1 --corrupt F2 --answer ID --wrong ID [--at INDEX] [--window A:B] --dump OUT`:
 * activation patching (engine/analyses/patching.ts) of the corrupted file with the clean one's activations.
 *   OUT/patch.json  {position, answer, wrong, metric_clean, metric_corrupt, resid_pre: [L rows of T values],
 *                    head_out: [L rows of H values]}: raw logit(answer) − logit(wrong) at `position`, unnormalized.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { HeadlightError } from '../common/errors';
import type { PatchResult } from '../common/engineProtocol';

/** Reads one of the pair (`--clean F` / `--corrupt F`) as UTF-8. */
export async function readVersion(flag: string, file: string | undefined): Promise<string> {
  if (file === undefined) throw new HeadlightError('usage', `patch needs ${flag} FILE (the ${flag.slice(2)} version of the text).`);
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    throw new HeadlightError('file', `Cannot read ${file} (${flag}): ${(err as Error).message}.`, 'Give a readable text file.');
  }
}

/** --answer ID / --wrong ID: a token id, required. */
export function parseTokenId(flag: string, value: string | undefined): number {
  if (value === undefined) throw new HeadlightError('usage', `patch needs ${flag} ID (a token id of the model's vocabulary).`);
  if (!/^\d+$/.test(value)) throw new HeadlightError('usage', `${flag} ${value}: expected a token id (a non-negative integer).`);
  return Number(value);
}

function rows(data: Float32Array, width: number): number[][] {
  return Array.from({ length: width ? data.length / width : 0 }, (_, r) => Array.from(data.subarray(r * width, (r + 1) * width)));
}

export async function writePatch(r: PatchResult, out: string): Promise<void> {
  const json = {
    position: r.position,
    answer: r.answer,
    wrong: r.wrong,
    metric_clean: r.metricClean,
    metric_corrupt: r.metricCorrupt,
    resid_pre: rows(r.resid, r.tokens),
    head_out: rows(r.heads, r.nHead),
  };
  await fsp.mkdir(out, { recursive: true });
  await fsp.writeFile(join(out, 'patch.json'), JSON.stringify(json));
}

/** One line for stderr. */
export function patchSummary(r: PatchResult, out: string): string {
  return `headlight: patched ${r.cells} cells in ${r.runs} runs (${r.nLayer}×${r.tokens} residual, ${r.heads.length} heads) at token ${r.position} in ${r.ms.toFixed(0)} ms; metric clean ${r.metricClean.toFixed(4)}, corrupted ${r.metricCorrupt.toFixed(4)} -> ${out}\n`;
}
