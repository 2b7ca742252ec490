/** One BPE token of an input text. Runs anywhere (host, engine, webview, CLI). */
export interface Token {
  /** Vocabulary id. */
  id: number;
  /** The token's text as shown to users (decoded bytes; U+FFFD where the token holds part of a character). */
  text: string;
  /** Start offset in UTF-16 code units of the input (what VS Code positions count). */
  start: number;
  /** End offset (exclusive) in UTF-16 code units. */
  end: number;
}
