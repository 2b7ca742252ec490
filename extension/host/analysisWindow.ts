/**
 * Which part of a document to analyse: the selection, else the whole document when it fits, else a character slice
 * around the cursor (or the visible range) sized from the token budget. Only the slice is read, sent to the engine
 * and tokenized, so a 50 MB file, or a single 5 MB line, costs what its window costs: `readWindow` reads the
 * document through `DocumentText` in a few small blocks at the slice's edges, then the slice itself. A long line
 * is cut inside (a character neighbourhood of the focus), never read whole. Pure: no `vscode`.
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

/** A document as the window reads it (the controller adapts vscode.TextDocument: ranges, never getText()). */
export interface DocumentText {
  /** Length in UTF-16 units. */
  readonly length: number;
  /** The text of [start, end). */
  slice(start: number, end: number): string;
  /** 0-based line of an offset. */
  lineAt(offset: number): number;
}

/** What a run covers of its document, for the status bar: characters, lines, and whether a line was cut. */
export interface WindowExtent {
  start: number;
  end: number;
  docLength: number;
  /** 0-based lines of the first and last character. */
  firstLine: number;
  lastLine: number;
  /** The slice begins after the start of its first line / stops before the end of its last one. */
  cutStart: boolean;
  cutEnd: boolean;
}

export const DEFAULT_CHARS_PER_TOKEN = 4;
/** Characters per read when the window looks at the document around a point (snapping, pair checks). */
const BLOCK = 512;
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

/**
 * Chooses the slice and reads it: the document is read only in BLOCK-sized pieces where the choice looks (its
 * edges) and over the slice, so the characters read are at most the slice plus a few blocks, whatever the
 * document's size.
 */
export function readWindow(doc: DocumentText, req: Omit<SliceRequest, 'docLength' | 'charCodeAt'>): { slice: TextSlice; text: string; extent: WindowExtent } {
  const docLength = doc.length;
  const blocks = new Map<number, string>();
  const charCodeAt = (i: number): number => {
    if (!(i >= 0 && i < docLength)) return NaN;
    const b = Math.floor(i / BLOCK);
    let block = blocks.get(b);
    if (block === undefined) {
      block = doc.slice(b * BLOCK, Math.min(docLength, (b + 1) * BLOCK));
      blocks.set(b, block);
    }
    return block.charCodeAt(i - b * BLOCK);
  };
  const slice = chooseSlice({ ...req, docLength, charCodeAt });
  const text = doc.slice(slice.start, slice.end);
  const extent: WindowExtent = {
    ...slice,
    docLength,
    firstLine: doc.lineAt(slice.start),
    lastLine: doc.lineAt(Math.max(slice.start, slice.end - 1)),
    cutStart: slice.start > 0 && !isBreak(charCodeAt(slice.start - 1)),
    cutEnd: slice.end < docLength && !isBreak(charCodeAt(slice.end)),
  };
  return { slice, text, extent };
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

/** What a run covered, for the status bar: `short` for its text, `detail` for its tooltip. */
export interface WindowLabel {
  short: string;
  detail: string;
}

/**
 * Describes a run's coverage: "380 tok" for a document analysed whole; "1,024 of ~1.2M tok · L10–80" for a window of
 * a long one; "1,024 of ~1.3M tok · L1 (cut)" when the window is a piece of one long line.
 */
export function windowLabel(run: { tokens: number; totalTokens: number }, extent: WindowExtent | undefined, documentTokens: number | undefined, exact: boolean): WindowLabel {
  const n = count(run.tokens);
  if (!extent || documentTokens === undefined) return { short: `${n} tok`, detail: `${n} tokens` };
  const whole = extent.start === 0 && extent.end === extent.docLength;
  if (whole && run.tokens === run.totalTokens) return { short: `${n} tok`, detail: `${n} tokens: the whole document` };
  const total = exact ? count(documentTokens) : `~${compact(documentTokens)}`;
  const lines = extent.firstLine === extent.lastLine ? `L${count(extent.firstLine + 1)}` : `L${count(extent.firstLine + 1)}–${count(extent.lastLine + 1)}`;
  // Every window of a long file ends inside some line; what matters is a window inside one long line.
  const cut = extent.firstLine === extent.lastLine && (extent.cutStart || extent.cutEnd);
  const short = whole ? `${n} of ${total} tok` : `${n} of ${total} tok · ${lines}${cut ? ' (cut)' : ''}`;
  const where = whole
    ? 'the first tokens of the document (the model sees no more)'
    : `characters ${count(extent.start)}–${count(extent.end)} of ${count(extent.docLength)}, lines ${count(extent.firstLine + 1)}–${count(extent.lastLine + 1)}` +
      (cut ? '; a piece of one long line (only this neighbourhood of the cursor is read)' : '');
  return { short, detail: `${n} tokens of ${exact ? '' : 'about '}${count(documentTokens)} in the document: ${where}` };
}

const count = (n: number) => n.toLocaleString('en-US');
const compact = (n: number) => new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 }).format(n);
