/**
 * The panel's lens store (webview/lensStore.ts) over the real engine's recorded answers (test/fixtures/recorded-lens.json
 * served by the webview harness's LensAnswers): pieces of at most LENS_PIECE tokens, progress that ends at its total
 * even when the view moves mid-piece, Stop keeps nothing of the cancelled piece, texts kept per model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LENS_K, LENS_PIECE, LensStore } from '../../webview/lensStore';
import { LensAnswers, type LensFixture } from '../webview/harnessLens';

const F = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'recorded-lens.json'), 'utf8')) as LensFixture;
const T = F.grid.end - F.grid.start;
const ROWS = F.grid.rows;
const b = (s: string) => {
  const x = Buffer.from(s, 'base64');
  return x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength);
};
const LOGPROB = new Float32Array(b(F.grid.logprob));
const TOPIDS = new Int32Array(b(F.grid.topIds));
const SETTLES = new Int32Array(b(F.grid.settles));

function store(delayMs = 0): { s: LensStore; answers: LensAnswers } {
  const answers = new LensAnswers(F);
  answers.delayMs = delayMs;
  const s = new LensStore({
    lensGrid: (version, start, end, signal) => answers.lensGrid({ version, start, end }, signal),
    lensAt: async (version, index) => answers.lensAt({ version, index }),
  });
  return { s, answers };
}

const idle = (s: LensStore) => new Promise<void>((resolve) => {
  const check = () => (s.progress.busy ? setTimeout(check, 5) : resolve());
  check();
});

test('the whole window in pieces of at most LENS_PIECE, every cell as the engine computed it', async () => {
  const { s, answers } = store();
  s.reset(1, T, 'm');
  s.want(0, T);
  await idle(s);
  assert.deepEqual(answers.requests, Array.from({ length: Math.ceil(T / LENS_PIECE) }, (_, k) => `lensGrid ${k * LENS_PIECE}:${Math.min(T, (k + 1) * LENS_PIECE)}`));
  assert.deepEqual({ done: s.progress.done, total: s.progress.total }, { done: T, total: T });
  for (let i = 0; i < T; i++) {
    assert.equal(s.settleOf(i), SETTLES[i]);
    for (let l = 0; l < ROWS; l++) {
      const want = LOGPROB[l * T + i];
      const got = s.logprobAt(i, l);
      assert.ok(Number.isNaN(want) ? Number.isNaN(got) : got === want, `token ${i} row ${l}`);
      assert.equal(s.top1(i, l), TOPIDS[(l * T + i) * LENS_K]);
    }
  }
  s.want(0, T);
  await idle(s);
  assert.equal(answers.requests.length, Math.ceil(T / LENS_PIECE), 'nothing is asked twice');
});

test('the view moves while a piece is in flight: that piece is not asked again and progress ends at its total', async () => {
  const { s, answers } = store(30);
  s.reset(1, T, 'm');
  s.want(0, 20);
  await new Promise((r) => setTimeout(r, 5));
  s.want(10, 40); // 10..19 are in flight
  await idle(s);
  assert.deepEqual(answers.requests, ['lensGrid 0:20', 'lensGrid 20:40']);
  assert.equal(s.progress.done, s.progress.total);
  assert.equal(s.computed, 40);
});

test('Stop: the piece in flight is cancelled and nothing of it is kept; the next pass goes on from there', async () => {
  const { s, answers } = store(40);
  s.reset(1, T, 'm');
  s.want(0, T);
  await new Promise<void>((resolve) => { // the first piece arrived, the second is in flight
    const check = () => (s.computed === LENS_PIECE ? resolve() : setTimeout(check, 1));
    check();
  });
  assert.equal(answers.requests.length, 2);
  s.cancel();
  assert.equal(s.progress.stopped, true);
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(s.computed, LENS_PIECE);
  answers.delayMs = 0;
  s.want(0, T);
  await idle(s);
  assert.equal(s.computed, T);
  assert.deepEqual(answers.requests.slice(-1), [`lensGrid ${LENS_PIECE}:${T}`]);
});

test("guesses' texts come from lensAt and are kept for runs of the same model only", async () => {
  const { s } = store();
  s.reset(1, T, 'm');
  s.want(0, T);
  await idle(s);
  assert.equal(s.textsKnownAt(5, 0), false);
  await s.lensAt(5);
  assert.equal(s.textsKnownAt(5, 0), true);
  assert.equal(s.top(5, 0)[0].text, F.at[5].top[0][0].text);
  s.reset(2, T, 'm');
  assert.equal(s.texts.size > 0, true, 'same model: texts kept');
  s.reset(3, T, 'other');
  assert.equal(s.texts.size, 0, 'another model: texts dropped');
  assert.equal(s.computed, 0);
});
