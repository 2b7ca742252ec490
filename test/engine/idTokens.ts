/**
 * Token ids as text, for tests and benchmarks that need exact ids through the engine's public text API: "12 7 5"
 * encodes to the ids 12, 7, 5 (offsets into the text); decoding is the model's own.
 */
import type { Token } from '../../extension/common/tokens';
import type { TextTokenizer } from '../../extension/engine/analyses/engine';

/** The text `idTokenizer` reads as exactly these ids. */
export function idText(ids: readonly number[]): string {
  return ids.join(' ');
}

/** A tokenizer that reads `idText` and decodes with `model`. Pass it as `loadEngine(dir, { tokenizer: idTokenizer })`. */
export function idTokenizer(model: TextTokenizer): TextTokenizer {
  return {
    encode(text: string): Token[] {
      const tokens: Token[] = [];
      for (const m of text.matchAll(/\d+/g)) tokens.push({ id: Number(m[0]), text: m[0], start: m.index, end: m.index + m[0].length });
      return tokens;
    },
    decode: (ids) => model.decode(ids),
  };
}
