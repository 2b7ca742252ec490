/**
 * Inside a head: one query's row taken apart (q, the keys and values it sees, q·k scores before and after the
 * softmax, the value norms). Queries are an output only runs made while someone looks inside heads fetch; for any
 * other run `fillQueries` recomputes the window once to get them.
 */
import type { QkBreakdown } from '../../common/engineProtocol';
import type { ModelDims } from '../model/dims';
import type { GraphRunner } from './graphRunner';
import { KvCache } from './kvCache';
import { qkScores } from './inspect';
import type { RunState } from './runState';

/** Recomputes the state's window from scratch for its queries only (the rest of the state is unchanged). */
export async function fillQueries(runner: GraphRunner, state: RunState): Promise<void> {
  const { nLayer: L } = runner.dims;
  const ids = state.ids;
  const { feeds } = runner.feeds(new KvCache(runner.dims), ids, 0);
  const out = await runner.run(feeds, Array.from({ length: L }, (_, l) => `present_q_${l}`));
  for (let l = 0; l < L; l++) state.storeQueries(l, out[`present_q_${l}`].data as Float32Array, 0, ids.length);
  state.queriesValid = ids.length;
}

/** Query `index` of head layer.head, from a state whose queries cover it; `attention` is the stored row. */
export function qkBreakdown(state: RunState, dims: ModelDims, scale: number, layer: number, head: number, index: number, attention: Float32Array): QkBreakdown {
  const { headDim: D, nPositions: P } = dims;
  const n = index + 1;
  const query = state.queries[layer].slice((head * P + index) * D, (head * P + n) * D); // [D]
  const keys = state.cache.head('keys', layer, head, n); // [i+1, D]
  const values = state.cache.head('values', layer, head, n); // [i+1, D]
  const { scores, probs } = qkScores(query, keys, scale); // [i+1] each
  const valueNorms = state.valueNorms[layer].slice(head * P, head * P + n); // [i+1]
  return { layer, head, index, scale, query, keys, values, scores, probs, attention, valueNorms };
}
