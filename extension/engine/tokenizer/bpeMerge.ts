/**
 * The byte-level half of GPT-2's BPE: the byte → printable-character map of the vocabulary, and the merge loop.
 * Symbols are vocabulary ids throughout; merges are looked up by an integer key of the id pair.
 */

/**
 * GPT-2's `bytes_to_unicode`: printable Latin-1 bytes stand for themselves, the other 68 bytes are mapped, in byte
 * order, to U+0100, U+0101, … (so the space 0x20 becomes "Ġ" U+0120). Index: byte; value: its one-character string.
 */
export function byteToUnicode(): string[] {
  const chars = new Array<string>(256);
  let next = 0x100;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    chars[b] = String.fromCharCode(printable ? b : next++);
  }
  return chars;
}

/** Ids must stay below this for the pair key `left * PAIR_BASE + right` to be exact. */
export const PAIR_BASE = 1 << 21;

/**
 * Merge rules by rank: `rank(left, right)` and the id each merge produces. The pairs live in an open-addressing hash
 * table of typed arrays (a Map keyed by `left * PAIR_BASE + right` hashes heap numbers: several times slower).
 */
export class MergeRanks {
  private readonly products: Int32Array;
  private readonly keysLeft: Int32Array; // [capacity] left id of the slot's pair, -1 when empty
  private readonly keysRight: Int32Array; // [capacity]
  private readonly slotRanks: Int32Array; // [capacity]
  private readonly mask: number;

  /** `rules[r]` = [left id, right id, merged id] of the merge of rank r. */
  constructor(rules: ReadonlyArray<readonly [number, number, number]>) {
    this.products = new Int32Array(rules.length);
    let capacity = 16;
    while (capacity < 2 * rules.length) capacity *= 2;
    this.mask = capacity - 1;
    this.keysLeft = new Int32Array(capacity).fill(-1);
    this.keysRight = new Int32Array(capacity);
    this.slotRanks = new Int32Array(capacity);
    rules.forEach(([left, right, merged], rank) => {
      this.products[rank] = merged;
      let slot = hashPair(left, right) & this.mask;
      for (;;) {
        const l = this.keysLeft[slot]!;
        if (l < 0) {
          this.keysLeft[slot] = left;
          this.keysRight[slot] = right;
          this.slotRanks[slot] = rank;
          return;
        }
        // A pair listed twice keeps its first (lowest) rank, as Hugging Face's tokenizers do.
        if (l === left && this.keysRight[slot] === right) return;
        slot = (slot + 1) & this.mask;
      }
    });
  }

  get size(): number {
    return this.products.length;
  }

  /** Rank of merging `left` then `right`, or -1 if no rule merges them. */
  rank(left: number, right: number): number {
    const keysLeft = this.keysLeft;
    let slot = hashPair(left, right) & this.mask;
    for (;;) {
      const l = keysLeft[slot]!;
      if (l === left && this.keysRight[slot] === right) return this.slotRanks[slot]!;
      if (l < 0) return -1;
      slot = (slot + 1) & this.mask;
    }
  }

  /** Id produced by the merge of rank `rank`. */
  product(rank: number): number {
    return this.products[rank]!;
  }
}

function hashPair(left: number, right: number): number {
  let h = Math.imul(left, 0x9e3779b1) ^ Math.imul(right + 0x7f4a7c15, 0x85ebca77);
  h ^= h >>> 15;
  return Math.imul(h, 0x2c1b3c6d) >>> 0;
}

/**
 * Applies the merges to the symbols `ids[0..n)` (with their byte lengths in `lens`) in place, always merging the
 * lowest-ranked adjacent pair, leftmost first. Returns the number of symbols left in `ids`/`lens`.
 * Short words use a linear scan; long ones a heap, so that a 100,000-byte word stays O(n log n).
 */
export function mergeSymbols(ids: Int32Array, lens: Int32Array, n: number, ranks: MergeRanks): number {
  return n <= SCAN_LIMIT ? mergeByScan(ids, lens, n, ranks) : mergeByHeap(ids, lens, n, ranks);
}

const SCAN_LIMIT = 48;

/** mergeByScan's pair ranks, kept between words (the tokenizer is synchronous, so one buffer serves all). */
let scanRanks = new Int32Array(2 * SCAN_LIMIT);

/** Quadratic in the word length, but with no allocation: the fastest choice for ordinary words. */
export function mergeByScan(ids: Int32Array, lens: Int32Array, n: number, ranks: MergeRanks): number {
  if (n < 2) return n;
  if (scanRanks.length < n) scanRanks = new Int32Array(2 * n);
  const pairRanks = scanRanks; // [n-1] rank of (ids[i], ids[i+1]) or -1; reused from word to word
  for (let i = 0; i < n - 1; i++) pairRanks[i] = ranks.rank(ids[i]!, ids[i + 1]!);
  while (n > 1) {
    let best = -1;
    let at = -1;
    for (let i = 0; i < n - 1; i++) {
      const r = pairRanks[i]!;
      if (r >= 0 && (best < 0 || r < best)) {
        best = r;
        at = i;
      }
    }
    if (at < 0) break;
    ids[at] = ranks.product(best);
    lens[at] = lens[at]! + lens[at + 1]!;
    ids.copyWithin(at + 1, at + 2, n);
    lens.copyWithin(at + 1, at + 2, n);
    pairRanks.copyWithin(at + 1, at + 2, n - 1);
    n--;
    if (at > 0) pairRanks[at - 1] = ranks.rank(ids[at - 1]!, ids[at]!);
    if (at < n - 1) pairRanks[at] = ranks.rank(ids[at]!, ids[at + 1]!);
  }
  return n;
}

/** Heap key: rank first, then position, so equal ranks merge leftmost first. Exact while rank < 2^20. */
const POS_BASE = 2 ** 32;

/** O(n log n): a linked list of symbols and a min-heap of candidate pairs, validated lazily when popped. */
export function mergeByHeap(ids: Int32Array, lens: Int32Array, n: number, ranks: MergeRanks): number {
  if (n < 2) return n;
  const next = new Int32Array(n); // [n] index of the next live symbol, or -1
  const prev = new Int32Array(n); // [n] index of the previous live symbol, or -1
  for (let i = 0; i < n; i++) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  const heap = new MinHeap();
  for (let i = 0; i < n - 1; i++) {
    const r = ranks.rank(ids[i]!, ids[i + 1]!);
    if (r >= 0) heap.push(r * POS_BASE + i);
  }
  while (heap.length > 0) {
    const key = heap.pop();
    const rank = Math.floor(key / POS_BASE);
    const pos = key - rank * POS_BASE;
    const right = next[pos]!;
    // Stale if `pos` was absorbed, is now last, or its pair changed since the entry was pushed.
    if (ids[pos]! < 0 || right < 0 || ranks.rank(ids[pos]!, ids[right]!) !== rank) continue;
    ids[pos] = ranks.product(rank);
    lens[pos] = lens[pos]! + lens[right]!;
    ids[right] = -1;
    const after = next[right]!;
    next[pos] = after;
    if (after >= 0) prev[after] = pos;
    const before = prev[pos]!;
    if (before >= 0) {
      const r = ranks.rank(ids[before]!, ids[pos]!);
      if (r >= 0) heap.push(r * POS_BASE + before);
    }
    if (after >= 0) {
      const r = ranks.rank(ids[pos]!, ids[after]!);
      if (r >= 0) heap.push(r * POS_BASE + pos);
    }
  }
  let m = 0;
  for (let i = 0; i >= 0; i = next[i]!) {
    ids[m] = ids[i]!;
    lens[m] = lens[i]!;
    m++;
  }
  return m;
}

/** Binary min-heap of numbers in a growable Float64Array (no boxed numbers, no array push/pop). */
class MinHeap {
  private items = new Float64Array(64);
  length = 0;

  push(value: number): void {
    if (this.length === this.items.length) {
      const grown = new Float64Array(2 * this.items.length);
      grown.set(this.items);
      this.items = grown;
    }
    const items = this.items;
    let i = this.length++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (p <= value) break;
      items[i] = p;
      i = parent;
    }
    items[i] = value;
  }

  pop(): number {
    const items = this.items;
    const top = items[0]!;
    const n = --this.length;
    if (n > 0) {
      const last = items[n]!;
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && items[child + 1]! < items[child]!) child++;
        if (items[child]! >= last) break;
        items[i] = items[child]!;
        i = child;
      }
      items[i] = last;
    }
    return top;
  }
}
