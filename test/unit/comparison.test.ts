/** The host's comparison logic (extension/host/comparison.ts, compareHover.ts): slicing, alignment, moved tokens, hover. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildComparison, changedTokens, movedTokens, otherSlice } from '../../extension/host/comparison';
import { compareHoverMarkdown } from '../../extension/host/compareHover';
import type { CurrentAnalysis } from '../../extension/host/analysisSource';
import type { ScoreResult } from '../../extension/common/engineProtocol';

const tok = (id: number, text: string, start: number) => ({ id, text, start, end: start + text.length });

function current(): CurrentAnalysis {
  // "The cat sat" analysed from offset 10 of its document
  const tokens = [tok(1, 'The', 10), tok(2, ' cat', 13), tok(3, ' sat', 17)];
  return {
    run: { version: 4, tokens, window: { start: 0, end: 3 }, totalTokens: 3, surprisal: Float32Array.from([NaN, 5, 6]), stats: { computed: 3, reused: 0, graphMs: 1, totalMs: 1 } },
    model: { ref: 'm', dir: '/m', nLayer: 1, nHead: 1, nEmbd: 4, nPositions: 64, vocabSize: 10, fileDtype: 'F32', loadMs: 1 },
    document: { toString: () => 'file:///doc.txt' } as CurrentAnalysis['document'],
    documentVersion: 1,
  };
}

test('otherSlice: the run\'s characters, shifted by the change in length', () => {
  const doc = '0123456789The cat sat\n';
  const other = '0123456789The zebra sat\n';
  assert.deepEqual(otherSlice(current(), doc.length, other), { text: 'The zebra sat', offsetBase: 10 });
});

test('buildComparison: aligned by ids; deltas where matched; moved tokens past the threshold; changed region; hover lines', () => {
  const scored: ScoreResult = {
    tokens: [tok(1, 'The', 10), tok(9, ' zebra', 13), tok(3, ' sat', 19)],
    window: { start: 0, end: 3 },
    totalTokens: 3,
    logprobs: Float32Array.from([NaN, -9 * Math.LN2, -9 * Math.LN2]),
    top: [[], [{ id: 2, text: ' cat', logprob: -1 }], [{ id: 3, text: ' sat', logprob: Math.log(0.5) }]],
  };
  const c = buildComparison(current(), { kind: 'replace', label: 'selection replaced by “zebra”', text: 'The zebra sat', offsetBase: 10 }, scored);
  assert.deepEqual(Array.from(c.alignment.aToB), [0, -1, 2]);
  assert.deepEqual(c.alignment.regions, [{ a: { start: 1, end: 2 }, b: { start: 1, end: 2 } }]);
  assert.ok(Number.isNaN(c.delta[0]) && Number.isNaN(c.delta[1]));
  assert.ok(Math.abs(c.delta[2] - 3) < 1e-5, `delta ${c.delta[2]}`);
  assert.deepEqual(movedTokens(c, 2), { rose: [2], fell: [] });
  assert.deepEqual(movedTokens(c, 3.5), { rose: [], fell: [] });
  assert.deepEqual(changedTokens(c), [1]);
  const md = compareHoverMarkdown(c, 2, [{ id: 7, text: ' ran', logprob: Math.log(0.25) }]);
  assert.match(md, /this version 6\.00 bits · other 9\.00 bits \(\+3\.00\)/);
  assert.match(md, /this version: ·ran 25\.0%/);
  assert.match(md, /other version: ·sat 50\.0%/);
  assert.match(compareHoverMarkdown(c, 1, []), /not in the other version/);
});
