/**
 * What the family tests (families, familiesGemma, familiesNeo) share: loading a random family checkpoint into an
 * fp32 engine fed ids directly, and comparing a run with its float64 reference (every head's map and the
 * log-probabilities to 1e-4, logits to 1e-3), and refusing a checkpoint whose config.json was edited.
 */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { HeadlightError } from '../../extension/common/errors';
import { openModel } from '../../extension/engine/families/registry';
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

/** The reference's head mask [L][H] that zeroes one query head and keeps every other. */
export function headMaskWithout(L: number, H: number, target: { layer: number; head: number }): number[][] {
  return Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => (l === target.layer && h === target.head ? 0 : 1)));
}

/** Writes `spec` into dir and loads it: an fp32 engine on one thread with logits, fed ids as text (idTokenizer). */
export async function loadFamilyCase(dir: string, spec: CheckpointSpec, write: WriteOptions): Promise<{ ck: HfCheckpoint; engine: Gpt2Engine; L: number; H: number }> {
  const ck = await writeFamilyCheckpoint(dir, spec, write);
  const engine = (await loadEngine(ck.dir, { precision: 'fp32', threads: 1, logits: true, tokenizer: idTokenizer })).engine;
  return { ck, engine, L: engine.dims.nLayer, H: engine.dims.nHead };
}

/**
 * A check for bad checkpoints: `refused(spec, edit, code, pattern)` writes spec into root/bad-N (seed seedBase + N + 1),
 * rewrites its config.json through `edit`, and expects openModel to refuse it, before any weight is read, with a
 * HeadlightError of that code whose message matches `pattern` and that says what to do.
 */
export function configRefusal(root: string, seedBase: number) {
  let n = 0;
  return async function refused(spec: CheckpointSpec, edit: (config: Record<string, unknown>) => Record<string, unknown>, code: string, pattern: RegExp): Promise<void> {
    const ck = await writeFamilyCheckpoint(join(root, `bad-${n++}`), spec, { seed: seedBase + n });
    await fsp.writeFile(join(ck.dir, 'config.json'), JSON.stringify(edit(ck.config)));
    await assert.rejects(
      async () => (await openModel(ck.dir)).close(),
      (err: unknown) => err instanceof HeadlightError && err.code === code && pattern.test(err.message) && !!err.hint,
    );
  };
}
