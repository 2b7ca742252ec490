/**
 * Aligns the tokens of two versions of a text by their ids: Myers' O((N+M)·D) shortest edit script over the two id
 * sequences (after stripping the common prefix and suffix), giving matched pairs and the changed regions between
 * them. BPE can change the token next to an edit, so ids, not characters, decide what matched. Pure: runs anywhere.
 */
import type { Span } from './tokens';

/** A maximal run of unmatched tokens: `a` in the first version, `b` in the second (either may be empty). */
export interface ChangedRegion {
  a: Span;
  b: Span;
}

export interface TokenAlignment {
  /** For each token of the first version, the index of its match in the second, or −1. */
  aToB: Int32Array;
  /** For each token of the second version, the index of its match in the first, or −1. */
  bToA: Int32Array;
  /** Matched pairs [i in a, j in b], in order. */
  pairs: [number, number][];
  /** The changed regions, in order. */
  regions: ChangedRegion[];
}

/** Aligns two id sequences: every id of the longest common subsequence found by the shortest edit script matches. */
export function alignTokens(a: ArrayLike<number>, b: ArrayLike<number>): TokenAlignment {
  const N = a.length;
  const M = b.length;
  let pre = 0;
  while (pre < N && pre < M && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < N - pre && suf < M - pre && a[N - 1 - suf] === b[M - 1 - suf]) suf++;
  const pairs: [number, number][] = [];
  for (let i = 0; i < pre; i++) pairs.push([i, i]);
  for (const [i, j] of middleSnake(a, b, pre, N - suf, pre, M - suf)) pairs.push([i, j]);
  for (let k = suf; k > 0; k--) pairs.push([N - k, M - k]);
  const aToB = new Int32Array(N).fill(-1);
  const bToA = new Int32Array(M).fill(-1);
  for (const [i, j] of pairs) {
    aToB[i] = j;
    bToA[j] = i;
  }
  return { aToB, bToA, pairs, regions: regionsOf(pairs, N, M) };
}

/** The changed regions between consecutive matched pairs (and before the first, after the last). */
function regionsOf(pairs: readonly [number, number][], N: number, M: number): ChangedRegion[] {
  const regions: ChangedRegion[] = [];
  let ai = 0;
  let bj = 0;
  for (const [i, j] of [...pairs, [N, M] as [number, number]]) {
    if (i > ai || j > bj) regions.push({ a: { start: ai, end: i }, b: { start: bj, end: j } });
    ai = i + 1;
    bj = j + 1;
  }
  return regions;
}

/**
 * Myers' greedy shortest edit script between a[a0..a1) and b[b0..b1): the matched pairs of one shortest script, in
 * order. The trace keeps, per edit count d, the furthest x on diagonals −d..d (Σ(2d+1) = D² values in all).
 */
function middleSnake(a: ArrayLike<number>, b: ArrayLike<number>, a0: number, a1: number, b0: number, b1: number): [number, number][] {
  const N = a1 - a0;
  const M = b1 - b0;
  if (N === 0 || M === 0) return [];
  const max = N + M;
  const off = max + 1;
  const V = new Int32Array(2 * max + 3); // furthest x on diagonal k = x − y, at V[off + k]
  const trace: Int32Array[] = []; // trace[d]: V on diagonals −d..d before step d
  let D = -1;
  for (let d = 0; d <= max && D < 0; d++) {
    trace.push(V.slice(off - d, off + d + 1));
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && V[off + k - 1] < V[off + k + 1]) ? V[off + k + 1] : V[off + k - 1] + 1;
      let y = x - k;
      while (x < N && y < M && a[a0 + x] === b[b0 + y]) {
        x++;
        y++;
      }
      V[off + k] = x;
      if (x >= N && y >= M) {
        D = d;
        break;
      }
    }
  }
  // Walk back from (N, M): each step d undoes one insertion or deletion and the diagonal run (snake) after it.
  const out: [number, number][] = [];
  let x = N;
  let y = M;
  for (let d = D; d > 0; d--) {
    const v = trace[d]; // diagonals −d..d, but only −(d−1)..d−1 were reached before step d
    const at = (k: number) => v[k + d];
    const k = x - y;
    const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const prevX = at(prevK);
    const prevY = prevX - prevK;
    const startX = prevK === k + 1 ? prevX : prevX + 1; // after the edit: down (insertion) or right (deletion)
    const startY = startX - k;
    while (x > startX && y > startY) {
      x--;
      y--;
      out.push([a0 + x, b0 + y]);
    }
    x = prevX;
    y = prevY;
  }
  while (x > 0 && y > 0) {
    x--;
    y--;
    out.push([a0 + x, b0 + y]);
  }
  return out.reverse();
}
