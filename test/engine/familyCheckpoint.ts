/** Random Hugging Face checkpoints of any family that the engine can load (weights + a tokenizer; tests feed ids). */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeHfCheckpoint, type CheckpointSpec, type HfCheckpoint, type WriteOptions } from '../fixtures/hfCheckpoint';
import { mulberry32 } from '../fixtures/randomCheckpoint';

/** Writes `spec` into dir with GPT-2's tokenizer.json beside it (ids are fed as text through idTokenizer). */
export async function writeFamilyCheckpoint(dir: string, spec: CheckpointSpec, opts: WriteOptions): Promise<HfCheckpoint> {
  const ck = await writeHfCheckpoint(dir, spec, opts);
  copyFileSync(join(__dirname, '../fixtures/gpt2-tokenizer/tokenizer.json'), join(ck.dir, 'tokenizer.json'));
  return ck;
}

/** n seeded token ids in 3..vocab−1. */
export function randomIds(seed: number, n: number, vocab: number): number[] {
  const next = mulberry32(seed);
  return Array.from({ length: n }, () => 3 + (next() % (vocab - 3)));
}
