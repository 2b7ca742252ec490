/**
 * What the family tests (families, familiesGemma, familiesNeo) share: loading a random family checkpoint into an
 * fp32 engine fed ids directly, and comparing a run with its float64 reference (every head's map and the
 * log-probabilities to 1e-4, logits to 1e-3).
 */
import assert from 'node:assert/strict';
import { loadEngine } from '../../extension/engine/load';
import type { Gpt2Engine, Run } from '../../extension/engine/analyses/engine';
import type { CheckpointSpec, HfCheckpoint, WriteOptions } from '../fixtures/hfCheckpoint';
import { maxDiff } from '../reference/compare';
import type { RefResult } from '../reference/families/types';
import { writeFamilyCheckpoint } from './familyCheckpoint';
import { idTokenizer } from './idTokens';

/** Every head's full map of a run, [L, H, T, T]. */
export function allMaps(run: Run, L: number, H: number): Float32Array {
  const T = run.length;
  const out = new Float32Array(L * H * T * T);
  for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) out.set(run.headMap(l, h), (l * H + h) * T * T);
  return out;
}

/** The arrays one after the other. */
export function flat(parts: Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
}

export function assertClose(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number): void {
  const d = maxDiff(got, want);
  assert.ok(d <= tol, `${what} differs by ${d} (tolerance ${tol})`);
}

/** The engine's run of `ids` against the reference: attention, log-probabilities, logits. */
export function assertMatches(run: Run, ref: RefResult, L: number, H: number, logits = true): void {
  assertClose('attention', allMaps(run, L, H), flat(ref.attention.flat()), 1e-4);
  assertClose('log-probabilities', run.logprobs(), ref.logprobs, 1e-4);
  if (logits) {
    assert.ok(run.logits, 'logits returned');
    assertClose('logits', run.logits, ref.logits, 1e-3);
  }
}

/** Writes `spec` into dir and loads it: an fp32 engine on one thread with logits, fed ids as text (idTokenizer). */
export async function loadFamilyCase(dir: string, spec: CheckpointSpec, write: WriteOptions): Promise<{ ck: HfCheckpoint; engine: Gpt2Engine; L: number; H: number }> {
  const ck = await writeFamilyCheckpoint(dir, spec, write);
  const engine = (await loadEngine(ck.dir, { precision: 'fp32', threads: 1, logits: true, tokenizer: idTokenizer })).engine;
  return { ck, engine, L: engine.dims.nLayer, H: engine.dims.nHead };
}
