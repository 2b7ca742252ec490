/** The hover's head-finder line for the selected head. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { headRoleLine, hoverMarkdown } from '../../extension/host/hoverMarkdown';
import type { HeadScoresAnswer } from '../../extension/common/engineProtocol';

// 2 layers × 2 heads; head 1.1 is a previous-token head, head 0.1 earns no badge.
const scores: HeadScoresAnswer = {
  nLayer: 2,
  nHead: 2,
  scores: {
    'previous-token': Float32Array.of(0.1, 0.2, 0.3, 0.94),
    'first-token': Float32Array.of(0.8, 0.31, 0.1, 0.02),
    induction: Float32Array.of(0, 0.05, 0.6, 0.01),
    'duplicate-token': Float32Array.of(NaN, NaN, NaN, NaN),
  },
  badges: { '0.0': ['first-token'], '1.0': ['induction'], '1.1': ['previous-token'] },
};

test('a badged head: its roles with scores, strongest first', () => {
  assert.equal(headRoleLine(scores, { layer: 1, head: 1 }), 'head 1.1: previous-token 0.94');
  assert.equal(headRoleLine(scores, { layer: 1, head: 0 }), 'head 1.0: induction 0.60');
});

test('no badge: the strongest finite score; NaN scores are skipped', () => {
  assert.equal(headRoleLine(scores, { layer: 0, head: 1 }), 'head 0.1: no clear role (strongest: first-token 0.31)');
});

test('means and heads outside the model get no line', () => {
  assert.equal(headRoleLine(scores, { layer: 1, head: 'mean' }), undefined);
  assert.equal(headRoleLine(scores, { layer: 'mean', head: 'mean' }), undefined);
  assert.equal(headRoleLine(scores, { layer: 2, head: 0 }), undefined);
});

test('the hover shows the line above the sources, escaped', () => {
  const token = { id: 1, text: 'x', start: 0, end: 1 };
  const md = hoverMarkdown({
    info: { index: 0, token, piece: 'x', surprisal: NaN, predictions: [], sources: [{ index: 0, weight: 1 }] },
    tokens: [token],
    selection: { layer: 1, head: 1 },
    lineOf: () => 1,
    openCommand: 'command:x',
    headLine: 'head 1.1: previous-token 0.94',
  });
  const lines = md.split('\n');
  const at = lines.findIndex((l) => l.startsWith('Head finder:'));
  assert.ok(at >= 0, md);
  assert.equal(lines[at], 'Head finder: head 1\\.1: previous\\-token 0\\.94');
  assert.ok(at < lines.findIndex((l) => l.startsWith('Looks at')));
});
