/** A half-open range [start, end): token indices (a window) or UTF-16 offsets (a token's text). */
export interface Span {
  start: number;
  end: number;
}

/** One BPE token of an input text. Runs anywhere (host, engine, webview, CLI). */
export interface Token extends Span {
  /** Vocabulary id. */
  id: number;
  /** The token's text as shown to users (decoded bytes; U+FFFD where the token holds part of a character). */
  text: string;
  /** Start offset in UTF-16 code units of the input (what VS Code positions count). */
  start: number;
  /** End offset (exclusive) in UTF-16 code units. */
  end: number;
}
