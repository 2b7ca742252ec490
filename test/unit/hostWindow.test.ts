/** The host's choice of what to analyse, and cursor <-> token mapping across CRLF and astral characters. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { chooseSlice, focusOffset, focusOutsideRun, measureCharsPerToken, charBudget, readWindow, shiftSlice, windowLabel, type DocumentText, type SliceRequest } from '../../extension/host/analysisWindow';
import { checkText } from '../../extension/common/text';
import { HeadlightError } from '../../extension/common/errors';
import { mulberry32 } from '../fixtures/randomCheckpoint';
import { lineStarts, offsetAt, positionAt, tokenAt } from '../../extension/common/text';
import { loadTokenizer } from '../../extension/engine/tokenizer/gpt2Tokenizer';

function req(text: string, over: Partial<SliceRequest>): SliceRequest {
  return { docLength: text.length, charCodeAt: (i) => text.charCodeAt(i), focus: 0, windowTokens: 100, charsPerToken: 4, ...over };
}

describe('chooseSlice', () => {
  test('a short document is analysed whole', () => {
    const text = 'hello world\n'.repeat(10);
    assert.deepEqual(chooseSlice(req(text, { focus: 50 })), { start: 0, end: text.length });
  });

  test('a selection is analysed exactly, capped at the budget', () => {
    const text = 'x'.repeat(10_000);
    assert.deepEqual(chooseSlice(req(text, { selection: { start: 100, end: 200 } })), { start: 100, end: 200 });
    assert.deepEqual(chooseSlice(req(text, { selection: { start: 100, end: 5000 } })), { start: 100, end: 500 });
  });

  test('a long document gives a window of ≈ budget characters around the focus, starting at a line start', () => {
    const text = 'line of code number xx\n'.repeat(100_000); // 2.3 MB
    const focus = 1_000_000;
    const s = chooseSlice(req(text, { focus, windowTokens: 1024 }));
    const budget = charBudget(1024, 4);
    assert.ok(s.start <= focus && focus <= s.end, `${s.start}..${s.end} holds ${focus}`);
    assert.ok(s.end - s.start <= budget && s.end - s.start > budget * 0.9, `length ${s.end - s.start} vs budget ${budget}`);
    assert.equal(text[s.start - 1], '\n', 'starts at a line start');
  });

  test('near the ends the window is clamped to the document', () => {
    const text = 'abc def\n'.repeat(1000);
    assert.equal(chooseSlice(req(text, { focus: 3 })).start, 0);
    assert.equal(chooseSlice(req(text, { focus: text.length })).end, text.length);
  });

  test('the previous slice is kept while the focus stays well inside it, and left when it moves out', () => {
    const text = 'word '.repeat(10_000);
    const first = chooseSlice(req(text, { focus: 20_000 }));
    const kept = chooseSlice(req(text, { focus: 20_050, previous: first }));
    assert.deepEqual(kept, first);
    const moved = chooseSlice(req(text, { focus: 30_000, previous: first }));
    assert.notEqual(moved.start, first.start);
    assert.ok(moved.start <= 30_000 && 30_000 <= moved.end);
  });

  test('never splits a surrogate pair or a CRLF at either end', () => {
    const text = '😀\r\n'.repeat(5000); // 4 UTF-16 units per repeat
    for (let focus = 9000; focus < 9008; focus++) {
      const s = chooseSlice(req(text, { focus }));
      const slice = text.slice(s.start, s.end);
      assert.ok(!/^[\udc00-\udfff]|[\ud800-\udbff]$/.test(slice), `split pair at ${s.start}..${s.end}`);
      assert.ok(!slice.startsWith('\n') || text[s.start - 1] !== '\r', `split CRLF at start ${s.start}`);
      assert.ok(!slice.endsWith('\r'), `split CRLF at end ${s.end}`);
    }
  });

  test('focus: the cursor when visible, else the middle of the visible range', () => {
    assert.equal(focusOffset(50, { start: 0, end: 100 }), 50);
    assert.equal(focusOffset(500, { start: 0, end: 100 }), 50);
    assert.equal(focusOffset(500, undefined), 500);
  });

  test('density measured from a run; a truncated run that stops before the focus asks for a re-slice', () => {
    assert.equal(measureCharsPerToken(4000, 1000), 4);
    assert.equal(measureCharsPerToken(100, 0), 4);
    const toks = [{ start: 0, end: 5 }, { start: 5, end: 9 }];
    assert.equal(focusOutsideRun(toks, 20, true), true);
    assert.equal(focusOutsideRun(toks, 7, true), false);
    assert.equal(focusOutsideRun(toks, 20, false), false);
  });
});

describe('cursor <-> token across CRLF and astral characters', () => {
  test('every token start maps to a position and back to the same token', async () => {
    const tokenizer = await loadTokenizer(join(__dirname, '../../models/headlight-tiny'));
    const text = 'const s = "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 😀";\r\nlet café = 1;\r\n\r\n\tfoo(s)\rbar\n👩‍👩‍👧 end';
    const tokens = tokenizer.encode(text);
    const starts = lineStarts(text);
    let checked = 0;
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i];
      if (i > 0 && tokens[i - 1].end > t.start) continue; // tokens sharing a character: the first one wins
      const pos = positionAt(starts, t.start);
      const off = offsetAt(starts, text.length, pos.line, pos.column);
      assert.equal(off, t.start, `token ${i} ${JSON.stringify(t.text)}`);
      assert.equal(tokenAt(tokens, off), i, `token at ${off}`);
      // The last UTF-16 unit of the token maps back to it too.
      assert.equal(tokenAt(tokens, t.end - 1) <= i, true);
      checked++;
    }
    assert.ok(checked > 10);
    // Line 1 starts after the first CRLF; line 3 is the empty line between two CRLFs; \r alone breaks a line.
    assert.equal(positionAt(starts, text.indexOf('let')).line, 1);
    assert.equal(positionAt(starts, text.indexOf('\tfoo')).line, 3);
    assert.equal(positionAt(starts, text.indexOf('bar')).line, 4);
    // The column counts UTF-16 units: the emoji on line 0 is 2 units wide.
    assert.equal(positionAt(starts, text.indexOf('";')).column, text.indexOf('";'));
  });
});

describe('shiftSlice (a slice follows edits)', () => {
  const s = { start: 100, end: 200 };
  test('an edit before the slice shifts it', () => assert.deepEqual(shiftSlice(s, 10, 5, 8), { start: 103, end: 203 }));
  test('an edit inside the slice moves its end', () => assert.deepEqual(shiftSlice(s, 150, 1, 0), { start: 100, end: 199 }));
  test('an edit after the slice leaves it', () => assert.deepEqual(shiftSlice(s, 200, 3, 1), s));
  test('an edit across the start clamps it', () => assert.deepEqual(shiftSlice(s, 90, 20, 0), { start: 90, end: 180 }));
});

/** A document over a string that counts the characters read through it (VS Code's line index is its own). */
function countingDoc(text: string): DocumentText & { read: number } {
  const starts = lineStarts(text);
  const doc = {
    read: 0,
    length: text.length,
    slice(start: number, end: number) {
      const part = text.slice(start, end);
      doc.read += part.length;
      return part;
    },
    lineAt: (offset: number) => positionAt(starts, offset).line,
  };
  return doc;
}

/** The window's reads may exceed its budget by a few 512-character blocks at its edges, and nothing else. */
const EDGE_READS = 4 * 512;

describe('readWindow reads the window, not the document', () => {
  const budget = charBudget(1024, 4);

  test('a 50 MB file: one window around the cursor, ≈ budget characters read', () => {
    const text = 'const value = compute(index, 42); // line\n'.repeat(1_200_000); // 50.4 M characters
    const doc = countingDoc(text);
    const focus = 30_000_000;
    const w = readWindow(doc, { focus, windowTokens: 1024, charsPerToken: 4 });
    assert.equal(w.text, text.slice(w.slice.start, w.slice.end));
    assert.ok(w.slice.start <= focus && focus <= w.slice.end);
    assert.ok(doc.read <= budget + EDGE_READS, `${doc.read} characters read for a budget of ${budget}`);
    assert.equal(text[w.slice.start - 1], '\n', 'starts at a line start');
    assert.deepEqual([w.extent.cutStart, w.extent.docLength], [false, text.length]);
    assert.equal(w.extent.firstLine, positionAt(lineStarts(text.slice(0, w.slice.start + 1)), w.slice.start).line);
  });

  test('a single 5 MB line is cut around the cursor, never read whole', () => {
    const text = 'x = [' + '1234, '.repeat(850_000) + '];'; // 5.1 M characters, no line break
    const doc = countingDoc(text);
    for (const focus of [0, 2_500_000, text.length]) {
      doc.read = 0;
      const w = readWindow(doc, { focus, windowTokens: 1024, charsPerToken: 2 });
      assert.ok(w.slice.start <= focus && focus <= w.slice.end, `focus ${focus} in ${w.slice.start}..${w.slice.end}`);
      assert.ok(w.text.length <= charBudget(1024, 2), `slice of ${w.text.length}`);
      assert.ok(doc.read <= charBudget(1024, 2) + EDGE_READS, `${doc.read} characters read at focus ${focus}`);
      assert.deepEqual([w.extent.firstLine, w.extent.lastLine], [0, 0]);
      assert.deepEqual([w.extent.cutStart, w.extent.cutEnd], [focus > 0, focus < text.length]);
      const label = windowLabel({ tokens: 1024, totalTokens: 1030 }, w.extent, 2_550_000, false);
      if (focus === 2_500_000) assert.equal(label.short, '1,024 of ~2.6M tok · L1 (cut)');
    }
  });

  test('typing in a 50 MB file: every keystroke reads the kept window, not the file', () => {
    const text = 'word '.repeat(10_000_000);
    const doc = countingDoc(text);
    let previous = readWindow(doc, { focus: 25_000_000, windowTokens: 1024, charsPerToken: 4 }).slice;
    let most = 0;
    for (let k = 1; k <= 50; k++) {
      doc.read = 0;
      const w = readWindow(doc, { focus: 25_000_000 + k, windowTokens: 1024, charsPerToken: 4, previous });
      assert.deepEqual(w.slice, previous, 'the window stays put while the cursor stays inside it');
      previous = w.slice;
      most = Math.max(most, doc.read);
    }
    assert.ok(most <= budget + EDGE_READS, `${most} characters read per keystroke`);
  });

  test('binary garbage without NUL bytes: a clear refusal after reading one window', () => {
    const random = mulberry32(3);
    const chars: string[] = [];
    for (let i = 0; i < 2_000_000; i++) {
      const r = random() % 256;
      chars.push(r === 0 ? '\ufffd' : String.fromCharCode(r)); // bytes read as Latin-1, NUL replaced as undecodable
    }
    const doc = countingDoc(chars.join(''));
    const w = readWindow(doc, { focus: 1_000_000, windowTokens: 1024, charsPerToken: 4 });
    assert.ok(doc.read <= budget + EDGE_READS);
    assert.throws(() => checkText(w.text, 'blob.bin around line 3'), (e: unknown) => e instanceof HeadlightError && e.code === 'binary' && /blob\.bin around line 3 looks binary/.test(e.message) && !!e.hint);
  });

  test('labels: whole document, a window of lines, the first tokens of a short dense file', () => {
    const whole = { start: 0, end: 500, docLength: 500, firstLine: 0, lastLine: 9, cutStart: false, cutEnd: false };
    assert.equal(windowLabel({ tokens: 120, totalTokens: 120 }, whole, 120, true).short, '120 tok');
    const part = { start: 40_000, end: 44_096, docLength: 50_400_000, firstLine: 952, lastLine: 1_049, cutStart: false, cutEnd: false };
    const l = windowLabel({ tokens: 1024, totalTokens: 1024 }, part, 12_600_000, false);
    assert.equal(l.short, '1,024 of ~12.6M tok · L953–1,050');
    assert.match(l.detail, /characters 40,000–44,096 of 50,400,000, lines 953–1,050/);
    assert.equal(windowLabel({ tokens: 1024, totalTokens: 3000 }, whole, 3000, true).short, '1,024 of 3,000 tok');
  });
});
