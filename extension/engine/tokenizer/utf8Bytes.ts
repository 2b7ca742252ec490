/**
 * The UTF-8 bytes of text[from, to), each with the code units it came from: the byte-level BPE alphabet of GPT-2's
 * tokenizer (gpt2Tokenizer.ts) and of tokenizer.json's byte-level models (bpeModel.ts). A lone surrogate encodes as
 * U+FFFD, as TextEncoder does.
 */

/** Calls visit(byte, start, end) for each UTF-8 byte of text[from, to); start/end: its code units, relative to `from`. */
export function forEachUtf8Byte(text: string, from: number, to: number, visit: (byte: number, start: number, end: number) => void): void {
  for (let i = from; i < to; ) {
    let cp = text.codePointAt(i)!;
    const units = cp > 0xffff ? 2 : 1;
    const s = i - from;
    const e = s + units;
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd; // lone surrogate, as TextEncoder does
    if (cp < 0x80) {
      visit(cp, s, e);
    } else if (cp < 0x800) {
      visit(0xc0 | (cp >> 6), s, e);
      visit(0x80 | (cp & 0x3f), s, e);
    } else if (cp < 0x10000) {
      visit(0xe0 | (cp >> 12), s, e);
      visit(0x80 | ((cp >> 6) & 0x3f), s, e);
      visit(0x80 | (cp & 0x3f), s, e);
    } else {
      visit(0xf0 | (cp >> 18), s, e);
      visit(0x80 | ((cp >> 12) & 0x3f), s, e);
      visit(0x80 | ((cp >> 6) & 0x3f), s, e);
      visit(0x80 | (cp & 0x3f), s, e);
    }
    i += units;
  }
}
