/** Highlight buckets, hover bars and hover Markdown; the debouncer. */
import { test, describe, mock } from 'node:test';
import assert from 'node:assert/strict';
import { attentionEdges, bar, bucketOf, groupByBucket, SURPRISAL_EDGES_BITS } from '../../extension/host/intensity';
import { Debouncer } from '../../extension/host/debounce';
import { escapeMarkdown, hoverMarkdown, visibleText } from '../../extension/host/hoverMarkdown';
import { selectorLabel } from '../../extension/common/displayNames';
import type { TokenInfo } from '../../extension/common/engineProtocol';

describe('buckets', () => {
  test('attention edges start at the threshold and rise', () => {
    const e = attentionEdges(0.05);
    assert.equal(e[0], 0.05);
    for (let i = 1; i < e.length; i++) assert.ok(e[i] > e[i - 1]);
    assert.ok(e[3] < 1);
  });
  test('bucketOf: below the threshold and NaN are -1; each edge opens its bucket', () => {
    const e = attentionEdges(0.1);
    assert.equal(bucketOf(0.05, e), -1);
    assert.equal(bucketOf(NaN, e), -1);
    assert.equal(bucketOf(e[0], e), 0);
    assert.equal(bucketOf(e[2] - 1e-9, e), 1);
    assert.equal(bucketOf(e[2], e), 2);
    assert.equal(bucketOf(1, e), 3);
    assert.equal(bucketOf(7, SURPRISAL_EDGES_BITS), 0);
    assert.equal(bucketOf(20, SURPRISAL_EDGES_BITS), 3);
  });
  test('groupByBucket splits indices by level and honours skip', () => {
    const g = groupByBucket([0.01, 0.9, 0.2, 0.6, 0.07], attentionEdges(0.05), (i) => i === 3);
    assert.deepEqual(g, [[4], [2], [], [1]]); // edges 0.05, 0.145, 0.2875, 0.525
  });
});

describe('bars', () => {
  test('eighth-cell bars', () => {
    assert.equal(bar(0), '');
    assert.equal(bar(1), '████████');
    assert.equal(bar(0.5), '████');
    assert.equal(bar(1 / 64), '▏');
    assert.equal(bar(2), '████████');
    assert.equal(bar(NaN), '');
    assert.equal(bar(0.5, 4), '██');
  });
});

describe('hover markdown', () => {
  const tokens = [
    { id: 1, text: 'Hello', start: 0, end: 5 },
    { id: 2, text: ' |wor`ld', start: 5, end: 13 },
    { id: 3, text: '\n', start: 13, end: 14 },
  ];
  const info: TokenInfo = {
    index: 2,
    token: tokens[2],
    piece: 'Ċ',
    surprisal: 3,
    predictions: [{ id: 9, text: ' the', logprob: Math.log(0.25) }],
    sources: [
      { index: 0, weight: 0.75 },
      { index: 2, weight: 0.25 },
    ],
  };
  test('shows the token, piece, surprisal, guesses, sources with bars and the command link', () => {
    const md = hoverMarkdown({ info, tokens, selection: { layer: 1, head: 0 }, lineOf: (t) => (t.start >= 14 ? 2 : 1), openCommand: 'command:headlight.explainAttention' });
    assert.match(md, /token \*\*↵\*\* \(#2\)/);
    assert.match(md, /piece \*\*Ċ\*\*/);
    assert.match(md, /3\.00 bits\*\* \(p = 12\.5%\)/);
    assert.match(md, /·the 25\.0%/);
    assert.match(md, /Looks at \(L1 H0\):/);
    assert.match(md, /\| Hello \| 1 \| 0\.750 \| ██████ \|/);
    assert.match(md, /\| ↵ \(itself\) \| 1 \| 0\.250 \| ██ \|/);
    assert.match(md, /\[Open in the attention panel\]\(command:headlight\.explainAttention\)/);
  });
  test('escapes Markdown and table pipes in token text', () => {
    assert.equal(escapeMarkdown(visibleText(' |wor`ld')), '·\\|wor\\`ld');
    assert.equal(escapeMarkdown('<b>'), '&lt;b&gt;');
  });
  test('first token: no surprisal', () => {
    const md = hoverMarkdown({ info: { ...info, surprisal: NaN }, tokens, selection: { layer: 'mean', head: 'mean' }, lineOf: () => 1, openCommand: 'command:x' });
    assert.match(md, /first token of the window/);
    assert.match(md, /Looks at \(mean of all layers\):/);
  });
  test('names the selection as every other view does (selectorLabel)', () => {
    const sel = { layer: 2, head: 'mean' } as const;
    assert.equal(selectorLabel(sel), 'layer 2 mean');
    const md = hoverMarkdown({ info, tokens, selection: sel, lineOf: () => 1, openCommand: 'command:x' });
    assert.match(md, /Looks at \(layer 2 mean\):/);
  });
});

describe('Debouncer', () => {
  test('runs once, delay after the last trigger; flush and cancel', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      let runs = 0;
      const d = new Debouncer(100, () => runs++);
      d.trigger();
      mock.timers.tick(60);
      d.trigger();
      mock.timers.tick(60);
      assert.equal(runs, 0, 'restarted by the second trigger');
      mock.timers.tick(40);
      assert.equal(runs, 1);
      d.trigger();
      d.flush();
      assert.equal(runs, 2);
      assert.equal(d.pending, false);
      d.trigger();
      d.cancel();
      mock.timers.tick(500);
      assert.equal(runs, 2);
      d.setDelay(10);
      d.trigger();
      mock.timers.tick(10);
      assert.equal(runs, 3);
    } finally {
      mock.timers.reset();
    }
  });
});
