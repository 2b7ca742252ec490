/** The hover's logit-lens line: where the guess for the hovered token settled, and what the layer before guessed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hoverMarkdown, lensLine } from '../../extension/host/hoverMarkdown';
import type { Prediction, TokenInfo, TokenLens } from '../../extension/common/engineProtocol';

const g = (id: number, text: string, logprob = -1): Prediction => ({ id, text, logprob });

/** A 12-layer lens whose top-1 is " bar" up to L6 and " foo" from L7 on. */
function lens12(settles: number, finalText = ' foo', beforeText = ' bar'): TokenLens {
  const top = Array.from({ length: 13 }, (_, l) => [l >= settles ? g(1, finalText) : g(2, beforeText), g(3, 'x')]);
  return { index: 4, target: 1, logprob: new Float32Array(13), top, settles };
}

test('settling mid-way: the layer, the final guess and what the layer before guessed', () => {
  assert.equal(lensLine(lens12(7)), 'Logit lens: settles at L7 of 12 on **·foo**; L6 guessed **·bar**');
});

test('decided at the embeddings, or only at the output', () => {
  assert.equal(lensLine(lens12(0)), 'Logit lens: **·foo** from the embeddings on (layer 0 of 12)');
  assert.equal(lensLine(lens12(12)), 'Logit lens: settles only at the output (L12 of 12) on **·foo**; L11 guessed **·bar**');
});

test('token texts are escaped Markdown', () => {
  assert.equal(lensLine(lens12(3, '*a*', '`b`')), 'Logit lens: settles at L3 of 12 on **\\*a\\***; L2 guessed **\\`b\\`**');
});

test('the line in the hover, after the model’s guesses; absent without one', () => {
  const info: TokenInfo = { index: 5, token: { id: 9, text: 'x', start: 0, end: 1 }, piece: 'x', surprisal: 3, predictions: [g(9, 'x', -0.5)], sources: [] } as unknown as TokenInfo;
  const ctx = { info, tokens: [], selection: { layer: 0, head: 0 }, lineOf: () => 1, openCommand: 'command:x' };
  const md = hoverMarkdown({ ...ctx, lensLine: lensLine(lens12(7)) });
  const lines = md.split('\n');
  const guesses = lines.findIndex((l) => l.startsWith("Model's guesses here"));
  assert.ok(guesses >= 0);
  assert.equal(lines[guesses + 2], 'Logit lens: settles at L7 of 12 on **·foo**; L6 guessed **·bar**');
  assert.ok(!hoverMarkdown(ctx).includes('Logit lens'));
});

test('on the real engine’s lenses (recorded): the layer before the settle layer guessed something else', () => {
  const f = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'recorded-lens.json'), 'utf8')) as { at: TokenLens[] };
  let mid = 0;
  for (const t of f.at) {
    const L = t.top.length - 1;
    const line = lensLine(t)!;
    assert.ok(line.startsWith('Logit lens: '), line);
    if (t.settles > 0) assert.notEqual(t.top[t.settles - 1][0].id, t.top[L][0].id, `token ${t.index}: the settle layer is the first of the final run`);
    if (t.settles > 0 && t.settles < L) {
      mid++;
      assert.match(line, new RegExp(`^Logit lens: settles at L${t.settles} of ${L} on .*; L${t.settles - 1} guessed `));
    }
  }
  assert.ok(mid > 0, 'some recorded token settles mid-way');
});
