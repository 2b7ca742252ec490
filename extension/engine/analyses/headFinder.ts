/**
 * The head finder: scores in [0, 1] for what each head does, read from attention maps.
 *   previous-token  mean weight of query t on key t−1 (t ≥ 1)
 *   first-token     mean weight on key 0, the "attention sink" (t ≥ 1)
 *   duplicate-token mean weight on earlier occurrences of the query's own token (queries whose token occurred before)
 *   local           mean weight on the last LOCAL_SPAN keys t−LOCAL_SPAN+1..t, over queries t ≥ 2·LOCAL_SPAN (so a
 *                   uniform head over a short prefix does not count as local)
 *   induction       on a repeated random token sequence r₁…rₙ r₁…rₙ: mean weight from position n+i to i+1, the
 *                   token after the earlier occurrence of the current token (a text-independent diagnostic)
 * A head earns a badge when its score reaches BADGE_THRESHOLD.
 */
import type { AttentionStore } from './attentionStore';

export type HeadRole = 'previous-token' | 'first-token' | 'duplicate-token' | 'local' | 'induction';

export const HEAD_ROLES: readonly HeadRole[] = ['previous-token', 'first-token', 'duplicate-token', 'local', 'induction'];
export const BADGE_THRESHOLD = 0.5;
export const LOCAL_SPAN = 4;

export interface HeadScores {
  nLayer: number;
  nHead: number;
  /** role -> [L * H] scores in [0, 1] (NaN when the text offers no case, e.g. no repeated token). */
  scores: Partial<Record<HeadRole, Float32Array>>;
}

/** Scores every head on the attention of a text whose token ids are `ids`. */
export function scoreText(store: AttentionStore, ids: readonly number[]): HeadScores {
  const { nLayer: L, nHead: H } = store;
  const T = store.length;
  const prev = new Float32Array(L * H).fill(NaN);
  const first = new Float32Array(L * H).fill(NaN);
  const local = new Float32Array(L * H).fill(NaN);
  const dup = new Float32Array(L * H).fill(NaN);
  // Earlier positions of each query's token.
  const earlier: number[][] = [];
  const seen = new Map<number, number[]>();
  for (let t = 0; t < T; t++) {
    const list = seen.get(ids[t]) ?? [];
    earlier.push([...list]);
    list.push(t);
    seen.set(ids[t], list);
  }
  const dupQueries = earlier.reduce((n, e) => n + (e.length ? 1 : 0), 0);
  // Only the cells each score reads: key t−1, key 0, the last LOCAL_SPAN keys and earlier occurrences.
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      let p = 0;
      let f = 0;
      let loc = 0;
      let d = 0;
      for (let t = 1; t < T; t++) {
        const r = store.rawRow(l, h, t);
        p += store.decode(r[t - 1]);
        f += store.decode(r[0]);
        if (t >= 2 * LOCAL_SPAN) for (let j = t - LOCAL_SPAN + 1; j <= t; j++) loc += store.decode(r[j]);
        for (const s of earlier[t]) d += store.decode(r[s]);
      }
      const k = l * H + h;
      if (T > 1) {
        prev[k] = clamp01(p / (T - 1));
        first[k] = clamp01(f / (T - 1));
      }
      if (T > 2 * LOCAL_SPAN) local[k] = clamp01(loc / (T - 2 * LOCAL_SPAN));
      if (dupQueries) dup[k] = clamp01(d / dupQueries);
    }
  }
  return { nLayer: L, nHead: H, scores: { 'previous-token': prev, 'first-token': first, 'duplicate-token': dup, local } };
}

/** The repeated random sequence for the induction diagnostic: n random ids, then the same n again. */
export function inductionSequence(n: number, vocabSize: number, seed = 1234): number[] {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  // Avoid the lowest ids (bytes and punctuation); draw from the common-word range of the vocabulary.
  const lo = Math.min(1000, vocabSize - 1);
  const hi = Math.min(vocabSize - 1, 30000);
  const first = Array.from({ length: n }, () => lo + Math.floor(next() * Math.max(1, hi - lo)));
  return [...first, ...first];
}

/** Induction score of every head from the attention over `inductionSequence(n)`: [L * H]. */
export function scoreInduction(store: AttentionStore, n: number): Float32Array {
  const { nLayer: L, nHead: H } = store;
  const out = new Float32Array(L * H);
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      let sum = 0;
      // Query n+i holds the second copy of the token at i; the induction target is the token after it, at i+1.
      for (let i = 0; i < n - 1; i++) sum += store.at(l, h, n + i, i + 1);
      out[l * H + h] = clamp01(sum / (n - 1));
    }
  }
  return out;
}

/** Roles whose score reaches the badge threshold, per head: "L.H" -> roles, strongest first. */
export function badges(scores: HeadScores, threshold = BADGE_THRESHOLD): Record<string, HeadRole[]> {
  const out: Record<string, HeadRole[]> = {};
  for (let l = 0; l < scores.nLayer; l++) {
    for (let h = 0; h < scores.nHead; h++) {
      const k = l * scores.nHead + h;
      const roles = HEAD_ROLES.map((role) => [role, scores.scores[role]?.[k] ?? NaN] as const)
        .filter(([, v]) => v >= threshold)
        .sort((a, b) => b[1] - a[1])
        .map(([role]) => role);
      if (roles.length) out[`${l}.${h}`] = roles;
    }
  }
  return out;
}

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}
