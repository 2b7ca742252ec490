/** The host's choice of what to analyse, and cursor <-> token mapping across CRLF and astral characters. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { chooseSlice, focusOffset, focusOutsideRun, measureCharsPerToken, charBudget, shiftSlice, type SliceRequest } from '../../extension/host/analysisWindow';
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
