/**
 * Where one token looks, per head, in one pass over the store: the sidebar's heatmap asks this once per cursor move
 * instead of asking for L·H rows.
 *
 * Metric: the largest weight the token puts on any token other than the first. In GPT-2 most heads park most of
 * their weight on the first token (the "attention sink") when they have nothing to do, so the raw maximum lights up
 * nearly every head; the peak over the other tokens picks out heads that single out a token for this position.
 * In value-weighted mode the rows are the value-weighted ones (α times the norm of what each source adds, per head
 * and row normalized), so the heatmap shows which heads move information from a token, not only look at it.
 */
import type { CursorSummary } from '../../common/engineProtocol';
import { HeadlightError } from '../../common/errors';
import type { AttentionStore } from './attentionStore';

export function cursorSummary(
  store: AttentionStore,
  index: number,
  rowOf: (l: number, h: number, out: Float32Array<ArrayBuffer>) => Float32Array = (l, h, out) => store.row(l, h, index, out),
): CursorSummary {
  const { nLayer: L, nHead: H } = store;
  if (!(Number.isInteger(index) && index >= 0 && index < store.length)) {
    throw new HeadlightError('bad-index', `Token ${index} is outside the run's ${store.length} tokens.`, 'Ask about a token of the latest run.');
  }
  const peak = new Float32Array(L * H); // [L * H]
  const peakIndex = new Int32Array(L * H); // [L * H]
  const sink = new Float32Array(L * H); // [L * H]
  const row = new Float32Array(index + 1); // [index + 1]
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      const r = rowOf(l, h, row);
      const k = l * H + h;
      sink[k] = r[0];
      let best = 0;
      let at = 0;
      for (let j = 1; j <= index; j++) {
        if (r[j] > best || at === 0) {
          best = r[j];
          at = j;
        }
      }
      peak[k] = best;
      peakIndex[k] = at;
    }
  }
  return { index, peak, peakIndex, sink };
}
