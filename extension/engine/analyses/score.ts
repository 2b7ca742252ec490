/**
 * Another version of a text, scored without touching the live run: the ids go through a plain scratch run on a
 * scratch key/value cache (ablation.ts `score`, the machinery ablations use), and this file turns its arrays into
 * the protocol's answer: per-token log-probabilities and each position's top-k guesses. Comparing two versions of a
 * text (and, later, patching activations between them) reads these.
 */
import type { ScoreResult } from '../../common/engineProtocol';
import type { Span, Token } from '../../common/tokens';
import type { ScratchResult } from './ablation';
import { topPredictions } from './runState';

export function scoreResult(tokens: Token[], window: Span, totalTokens: number, scratch: ScratchResult | undefined, k: number, decode: (ids: number[]) => string): ScoreResult {
  const T = tokens.length;
  const logprobs = scratch?.logprobs ?? new Float32Array(T).fill(NaN); // [T], NaN first
  const top = Array.from({ length: T }, (_, i) => (scratch ? topPredictions(scratch.topIds, scratch.topLogprob, i, k, decode) : [])); // [T] × ≤k
  return { tokens, window, totalTokens, logprobs, top };
}
