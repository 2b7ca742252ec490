/**
 * Large and odd documents through the host's window logic (issue #22, item 2): a 50 MB text file, a single 5 MB
 * line, a minified bundle, NUL-free binary garbage, a notebook cell, and a document edited while its analysis runs.
 * Each is typed into (a keystroke at the cursor, the slice shifted as the controller shifts it, the window read
 * again as a live run would), counting the characters the host reads through the document per keystroke.
 *
 *   node --import tsx --test --test-reporter=spec test/stress/documents.test.ts
 *
 * Prints STRESS|document <name> (max <n> chars read per keystroke)|1|<keystrokes>|<clear refusals>|<data lost>;
 * data lost: the user's document changed by anything but the user's typing (must be 0: the host never edits).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { charBudget, readWindow, shiftSlice, windowLabel, type DocumentText, type TextSlice } from '../../extension/host/analysisWindow';
import { checkText, lineStarts, positionAt } from '../../extension/common/text';
import { HeadlightError } from '../../extension/common/errors';
import { mulberry32 } from '../fixtures/randomCheckpoint';

const KEYSTROKES = process.env.HEADLIGHT_STRESS === 'full' ? 1000 : 100;

/**
 * A document the user types into at one place (a piece table: the original text, and what was typed at `at`), so
 * that typing into 50 MB copies nothing. It counts what the host reads through it.
 */
class TypedDocument implements DocumentText {
  read = 0;
  typed = '';
  private readonly starts: number[];
  constructor(
    readonly original: string,
    readonly at: number,
  ) {
    this.starts = lineStarts(original);
  }
  get length(): number {
    return this.original.length + this.typed.length;
  }
  slice(start: number, end: number): string {
    const { original, at, typed } = this;
    const piece = (s: number, e: number) => {
      let out = '';
      if (s < at) out += original.slice(s, Math.min(e, at));
      if (e > at && s < at + typed.length) out += typed.slice(Math.max(0, s - at), Math.min(typed.length, e - at));
      if (e > at + typed.length) out += original.slice(Math.max(at, s - typed.length), e - typed.length);
      return out;
    };
    const part = piece(start, end);
    this.read += part.length;
    return part;
  }
  lineAt(offset: number): number {
    const o = offset <= this.at ? offset : Math.max(this.at, offset - this.typed.length); // typing adds no line
    return positionAt(this.starts, o).line;
  }
  /** The text as the user made it: the original with their typing, and nothing else. */
  whole(): string {
    return this.original.slice(0, this.at) + this.typed + this.original.slice(this.at);
  }
}

const digest = (s: string) => createHash('sha256').update(s).digest('hex');

function garbage(n: number, seed: number): string {
  const random = mulberry32(seed);
  const chars: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = random() % 256;
    chars.push(r === 0 ? '\ufffd' : String.fromCharCode(r));
  }
  return chars.join('');
}

interface Case {
  name: string;
  text: () => string;
  /** Where the cursor is (fraction of the document). */
  cursor: number;
  /** Edits that land while the run is in flight: [offset from the cursor, removed, inserted]. */
  duringRun?: [number, number, string][];
}

const CASES: Case[] = [
  { name: '50 MB text file', text: () => 'for (let i = 0; i < rows.length; i++) total += rows[i].value;\n'.repeat(800_000), cursor: 0.6 },
  { name: 'single 5 MB line', text: () => 'data = [' + '0.125, 3.5, -7, '.repeat(320_000) + ']', cursor: 0.5 },
  { name: 'minified bundle', text: () => '!function(e,t){"use strict";var n=e.document,r=function(o){return o&&o.nodeType===1};'.repeat(25_000), cursor: 0.3 },
  { name: 'NUL-free binary garbage', text: () => garbage(3_000_000, 9), cursor: 0.5 },
  { name: 'notebook cell', text: () => 'import numpy as np\nx = np.linspace(0, 1, 100)\nprint(x.mean())\n', cursor: 0.9 },
  {
    name: 'edited while its analysis runs',
    text: () => 'The quick brown fox jumps over the lazy dog.\n'.repeat(1_100_000),
    cursor: 0.4,
    duringRun: [[-4000, 0, 'inserted above the window\n'], [10, 3, ''], [200_000, 0, 'far below']],
  },
];

test(`large and odd documents: ${KEYSTROKES} keystrokes each, host reads bounded by the window`, { timeout: 300_000 }, () => {
  const windowTokens = 1024;
  for (const c of CASES) {
    const original = c.text();
    const before = digest(original);
    const at = Math.floor(original.length * c.cursor);
    const doc = new TypedDocument(original, at);
    let slice: TextSlice | undefined;
    let charsPerToken = 4;
    let most = 0;
    let refusals = 0;
    let lost = 0;
    for (let k = 0; k < KEYSTROKES; k++) {
      // The user types a character at the cursor; the controller shifts the slice (no reads), then a live run reads.
      doc.typed += 'abcdefghij'[k % 10];
      if (slice) slice = shiftSlice(slice, at + doc.typed.length - 1, 0, 1);
      doc.read = 0;
      const focus = at + doc.typed.length;
      const w = readWindow(doc, { focus, windowTokens, charsPerToken, previous: slice });
      most = Math.max(most, doc.read);
      const budget = charBudget(windowTokens, charsPerToken);
      assert.ok(doc.read <= budget + 4 * 512, `${c.name}: ${doc.read} characters read at keystroke ${k} (budget ${budget})`);
      assert.ok(w.slice.start <= focus && focus <= w.slice.end, `${c.name}: the window holds the cursor`);
      try {
        checkText(w.text, `${c.name} around line ${w.extent.firstLine + 1}`);
      } catch (err) {
        assert.ok(err instanceof HeadlightError && err.code === 'binary' && err.message.includes(c.name) && !!err.hint, String(err));
        refusals++;
        continue;
      }
      // What the engine would report: about 1 token per 3.7 characters of this kind of text.
      charsPerToken = Math.min(16, Math.max(0.5, w.text.length / Math.ceil(w.text.length / 3.7)));
      slice = w.slice;
      const label = windowLabel({ tokens: Math.ceil(w.text.length / 3.7), totalTokens: Math.ceil(w.text.length / 3.7) }, w.extent, Math.round(doc.length / charsPerToken), false);
      assert.ok(label.short.length <= 40, `status bar text stays short: ${label.short}`);
      if (w.extent.firstLine === w.extent.lastLine && w.extent.docLength > 1e6) assert.match(label.short, /\(cut\)/, `${c.name}: a cut line says so`);
    }
    if (c.duringRun && slice) {
      // Edits arrive while the run over `slice` is in flight: the slice follows them, the next run reads its window.
      let s = slice;
      for (const [delta, removed, inserted] of c.duringRun) {
        const offset = at + delta;
        s = shiftSlice(s, offset, removed, inserted.length);
        // The piece table models typing at one place; these edits are checked on the slice arithmetic alone.
      }
      assert.equal(s.start, slice.start + 'inserted above the window\n'.length, 'an edit above moves the window down');
      assert.equal(s.end - s.start, slice.end - slice.start - 3, 'an edit inside changes its length');
    }
    if (digest(original) !== before || doc.whole() !== original.slice(0, at) + doc.typed + original.slice(at)) lost++;
    console.log(`STRESS|document ${c.name} (max ${most} chars read per keystroke of ${doc.length.toLocaleString('en-US')})|1|${KEYSTROKES}|${refusals}|${lost}`);
    assert.equal(lost, 0);
    if (c.name.includes('garbage')) assert.equal(refusals, KEYSTROKES, 'garbage is refused at every keystroke');
    else assert.equal(refusals, 0, `${c.name} is text`);
  }
});
