/** Nats and bits. Runs anywhere. */

export const LN2 = Math.log(2);

/** Surprisal in bits of a natural-log probability: −ln p / ln 2 (NaN stays NaN). */
export function surprisalBits(logprob: number): number {
  return -logprob / LN2;
}
