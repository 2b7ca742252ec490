/**
 * Which part of a document to analyse: the selection, else the whole document when it fits, else a character slice
 * around the cursor (or the visible range) sized from the token budget. Only the slice is sent to the engine and
 * tokenized, so a 5 MB file costs what its window costs. Pure: no `vscode`.
 */

/** A half-open range of UTF-16 offsets in the document. */
export interface TextSlice {
  start: number;
  end: number;
}

export interface SliceRequest {
  docLength: number;
  /** Character at a 0-based offset (to avoid splitting surrogate pairs and to snap to line starts). */
  charCodeAt: (offset: number) => number;
  /** A non-empty selection analyses exactly that (up to the budget). */
  selection?: TextSlice;
  /** Where the user looks: the cursor, or the visible range's middle (see `focusOffset`). */
  focus: number;
  /** Tokens to aim for (≤ the model's context). */
  windowTokens: number;
  /** Characters per token of this document, measured on the previous run; 4 before any run. */
  charsPerToken: number;
  /** The previous slice of this document: kept while the focus stays well inside it (so the cache is reused). */
  previous?: TextSlice;
}

export const DEFAULT_CHARS_PER_TOKEN = 4;
/** How far (characters) the start of a slice may move forward to begin at a line start. */
const MAX_LINE_SNAP = 256;

/** The cursor when it is visible, else the middle of the visible range. */
export function focusOffset(cursor: number, visible: TextSlice | undefined): number {
  if (!visible || (cursor >= visible.start && cursor <= visible.end)) return cursor;
  return Math.floor((visible.start + visible.end) / 2);
}

/** Character budget of a window of `windowTokens` tokens. */
export function charBudget(windowTokens: number, charsPerToken: number): number {
  return Math.max(16, Math.ceil(windowTokens * Math.max(0.5, charsPerToken)));
}

export function chooseSlice(req: SliceRequest): TextSlice {
  const { docLength, selection, focus, previous } = req;
  const budget = charBudget(req.windowTokens, req.charsPerToken);
  if (selection && selection.end > selection.start) {
    return avoidSplitPairs(req, { start: selection.start, end: Math.min(selection.end, selection.start + budget) });
  }
  if (docLength <= budget) return { start: 0, end: docLength };
  const margin = Math.floor(budget / 8);
  if (previous && previous.start < docLength) {
    const end = Math.min(docLength, previous.start + budget);
    const lo = previous.start === 0 ? 0 : previous.start + margin;
    const hi = end === docLength ? docLength : end - margin;
    if (focus >= lo && focus <= hi && end - previous.start >= budget * 0.9) return avoidSplitPairs(req, { start: previous.start, end });
  }
  let start = Math.max(0, Math.min(docLength - budget, focus - Math.floor(budget / 2)));
  if (start > 0) start = snapToLineStart(req, start, Math.min(MAX_LINE_SNAP, margin));
  return avoidSplitPairs(req, { start, end: Math.min(docLength, start + budget) });
}

/** Moves `start` forward to just after the next line break, if one is within `limit` characters. */
function snapToLineStart(req: SliceRequest, start: number, limit: number): number {
  if (start > 0 && isBreak(req.charCodeAt(start - 1))) return start;
  for (let i = start; i < Math.min(req.docLength, start + limit); i++) {
    const c = req.charCodeAt(i);
    if (c === 10) return i + 1;
    if (c === 13) return req.charCodeAt(i + 1) === 10 ? i + 2 : i + 1;
  }
  return start;
}

function isBreak(c: number): boolean {
  return c === 10 || c === 13;
}

/** Keeps surrogate pairs and CRLF pairs whole at both ends. */
function avoidSplitPairs(req: SliceRequest, s: TextSlice): TextSlice {
  let { start, end } = s;
  if (start > 0 && start < req.docLength && (isLow(req.charCodeAt(start)) && isHigh(req.charCodeAt(start - 1)))) start++;
  if (start > 0 && start < req.docLength && req.charCodeAt(start) === 10 && req.charCodeAt(start - 1) === 13) start++;
  if (end < req.docLength && end > start && isHigh(req.charCodeAt(end - 1)) && isLow(req.charCodeAt(end))) end--;
  if (end < req.docLength && end > start && req.charCodeAt(end - 1) === 13 && req.charCodeAt(end) === 10) end++;
  return { start, end: Math.max(start, end) };
}

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff;

/** Characters per token measured on a run of `tokens` tokens over `chars` characters (clamped to sane values). */
export function measureCharsPerToken(chars: number, tokens: number): number {
  if (tokens <= 0 || chars <= 0) return DEFAULT_CHARS_PER_TOKEN;
  return Math.min(16, Math.max(0.5, chars / tokens));
}

/**
 * True when a run over a slice stopped short of the focus: the slice held more tokens than the model's window and
 * the engine kept only its first ones. The controller then re-slices with the measured density.
 */
export function focusOutsideRun(tokens: readonly { start: number; end: number }[], focus: number, truncated: boolean): boolean {
  if (!truncated || tokens.length === 0) return false;
  return focus > tokens[tokens.length - 1].end;
}

/** The slice after one edit of `removed` characters at `offset` replaced by `inserted` ones. */
export function shiftSlice(s: TextSlice, offset: number, removed: number, inserted: number): TextSlice {
  const delta = inserted - removed;
  if (offset + removed <= s.start) return { start: s.start + delta, end: s.end + delta };
  if (offset >= s.end) return s;
  if (offset < s.start) return { start: offset, end: Math.max(offset, s.end + delta) }; // the edit swallowed the start
  return { start: s.start, end: Math.max(s.start, s.end + delta) };
}
