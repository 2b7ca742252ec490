/**
 * Added tokens of `tokenizer.json` (`added_tokens`), found in the text before the model sees it, as Hugging Face's
 * `AddedVocabulary` does: leftmost-longest matches, then `single_word`, `lstrip` and `rstrip`. Tokens with
 * `normalized: false` are matched in the raw text, the others in the normalized text.
 */
export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  singleWord: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
}

interface TrieNode {
  next: Map<number, TrieNode>;
  token: AddedToken | null;
}

const WORD_CHAR = /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]/u;
const WHITE = /\p{White_Space}/u;

/** A match: the added token and the range [start, end) it takes (strips included). */
export interface AddedMatch {
  token: AddedToken;
  start: number;
  end: number;
}

export class AddedTokenMatcher {
  private readonly root: TrieNode = { next: new Map(), token: null };
  readonly size: number;

  /** `patterns`: each token with the string to look for (its content, normalized when the token is). */
  constructor(patterns: Array<[AddedToken, string]>) {
    let size = 0;
    for (const [token, pattern] of patterns) {
      if (pattern.length === 0) continue;
      let node = this.root;
      for (let k = 0; k < pattern.length; k++) {
        const c = pattern.charCodeAt(k);
        let child = node.next.get(c);
        if (!child) {
          child = { next: new Map(), token: null };
          node.next.set(c, child);
        }
        node = child;
      }
      if (!node.token) {
        node.token = token;
        size++;
      }
    }
    this.size = size;
  }

  /** The matches in `text`, in order, not overlapping. */
  find(text: string): AddedMatch[] {
    const out: AddedMatch[] = [];
    if (this.size === 0) return out;
    const root = this.root;
    let startOffset = 0;
    for (let i = 0; i < text.length; ) {
      // Longest token starting at i.
      let node: TrieNode | undefined = root.next.get(text.charCodeAt(i));
      let best: AddedToken | null = null;
      let bestEnd = -1;
      for (let j = i + 1; node; j++) {
        if (node.token) {
          best = node.token;
          bestEnd = j;
        }
        if (j >= text.length) break;
        node = node.next.get(text.charCodeAt(j));
      }
      if (!best) {
        i++;
        continue;
      }
      let start = i;
      let stop = bestEnd;
      if (best.singleWord) {
        const startSpace = start === 0 || !endsWithWord(text, start);
        const stopSpace = stop === text.length || !startsWithWord(text, stop);
        if (!startSpace || !stopSpace) {
          // Hugging Face's automaton moves on past this match: the next search starts at its end.
          i = bestEnd;
          continue;
        }
      }
      if (best.lstrip) {
        let s = start;
        while (s > 0 && WHITE.test(text[s - 1]!)) s--;
        start = Math.max(s, startOffset);
      }
      if (best.rstrip) while (stop < text.length && WHITE.test(text[stop]!)) stop++;
      out.push({ token: best, start, end: stop });
      startOffset = stop;
      i = bestEnd;
    }
    return out;
  }
}

function endsWithWord(text: string, at: number): boolean {
  const cp = text.codePointAt(at >= 2 && /[\udc00-\udfff]/.test(text[at - 1]!) ? at - 2 : at - 1)!;
  return WORD_CHAR.test(String.fromCodePoint(cp));
}

function startsWithWord(text: string, at: number): boolean {
  return WORD_CHAR.test(String.fromCodePoint(text.codePointAt(at)!));
}
