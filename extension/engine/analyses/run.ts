/**
 * One analysis as callers see it: the window's tokens and the queries on it (rows, columns, top sources,
 * surprisal, predictions, value norms). It reads the engine's run state, so a run replaced by a newer one is stale
 * and refuses queries.
 */
import type { AttentionMode, HeadSelector, Prediction, RunStats, Source } from '../../common/engineProtocol';
import { HeadlightError } from '../../common/errors';
import type { Span, Token } from '../../common/tokens';
import { surprisalBits } from '../../common/units';
import type { AttentionStore } from './attentionStore';
import type { Gpt2Engine } from './engine';
import { topPredictions, type RunState } from './runState';
import { valueWeightedColumn, valueWeightedRow } from './valueWeighting';

export class Run {
  constructor(
    private readonly engine: Gpt2Engine,
    readonly version: number,
    /** Tokens of the window, offsets in UTF-16 units of the analysed text. */
    readonly tokens: readonly Token[],
    readonly window: Span,
    /** Total tokens in the text (the window may cover part of it). */
    readonly totalTokens: number,
    readonly stats: RunStats,
    /** [T, vocab] logits, when asked for with `logits: true`. */
    readonly logits?: Float32Array,
  ) {}

  get length(): number {
    return this.tokens.length;
  }

  get stale(): boolean {
    return this.engine.version !== this.version;
  }

  private get state(): RunState {
    if (this.stale) throw new HeadlightError('stale-run', 'This analysis was replaced by a newer one.', 'Query the latest run.');
    return this.engine.state;
  }

  /** ln p(token i | tokens before it in the window); NaN for the first token. */
  logprob(i: number): number {
    return i === 0 ? NaN : this.state.nextLogprob[i - 1];
  }

  /** Surprisal of token i in bits: −log₂ p(token i | tokens before it); NaN for the first token. */
  surprisal(i: number): number {
    return surprisalBits(this.logprob(i));
  }

  /** All logprobs of the window as a new array (`[T]`, NaN first). */
  logprobs(): Float32Array {
    const out = new Float32Array(this.length);
    for (let i = 0; i < this.length; i++) out[i] = this.logprob(i);
    return out;
  }

  /** The model's top guesses for the token at position i (made at i−1); for i = length, the next token. */
  predictions(i: number, k = 5): Prediction[] {
    const s = this.state;
    return topPredictions(s.topIds, s.topLogprob, i, k, (ids) => this.engine.tokenizer.decode(ids));
  }

  /**
   * Attention weights of query i over keys 0..i for a head, a layer's mean or the overall mean. `value-weighted`
   * weighs each key by the norm of what it adds, α_ij·‖v_j·W_O^h‖, summed over the selected heads and normalized so
   * the row sums to 1.
   */
  row(sel: HeadSelector, i: number, mode: AttentionMode = 'attention'): Float32Array {
    const s = this.state;
    const heads = this.engine.headsOf(sel);
    if (mode === 'value-weighted') return valueWeightedRow(s, this.engine.dims, heads, i);
    if (heads.length === 1) return s.attention.row(heads[0][0], heads[0][1], i);
    const out = new Float32Array(i + 1); // [i+1]
    const tmp = new Float32Array(i + 1); // [i+1]
    for (const [l, h] of heads) {
      s.attention.row(l, h, i, tmp);
      for (let j = 0; j <= i; j++) out[j] += tmp[j];
    }
    for (let j = 0; j <= i; j++) out[j] /= heads.length;
    return out;
  }

  /** Who attends to key j: weights of queries j..T−1 on j, indexed by query (zeros before j). */
  column(sel: HeadSelector, j: number, mode: AttentionMode = 'attention'): Float32Array {
    const s = this.state;
    const heads = this.engine.headsOf(sel);
    if (mode === 'value-weighted') return valueWeightedColumn(s, this.engine.dims, heads, j);
    const T = this.length;
    const out = new Float32Array(T); // [T]
    for (const [l, h] of heads) for (let i = j; i < T; i++) out[i] += s.attention.at(l, h, i, j);
    for (let i = j; i < T; i++) out[i] /= heads.length;
    return out;
  }

  /** The k keys query i attends to most. */
  topSources(sel: HeadSelector, i: number, k = 5, mode: AttentionMode = 'attention'): Source[] {
    return topK(this.row(sel, i, mode), k);
  }

  /** ‖v_j·W_O^h‖ for every position j of the window: what each token adds through head h per unit of attention. */
  valueNorms(layer: number, head: number): Float32Array {
    const s = this.state;
    this.engine.checkHead(layer, head);
    const P = this.engine.dims.nPositions;
    if (!s.valueNorms[layer]) return new Float32Array(0); // nothing analysed yet
    return s.valueNorms[layer].slice(head * P, head * P + this.length);
  }

  /** One head's full [T, T] map (fp32, zeros above the diagonal). */
  headMap(layer: number, head: number): Float32Array {
    return this.state.attention.map(layer, head);
  }

  /** Direct access to the store (binary answers for webviews, dumps). */
  get attention(): AttentionStore {
    return this.state.attention;
  }
}

/** The k largest values with their indices, largest first (ties: lower index first). */
export function topK(values: ArrayLike<number>, k: number): Source[] {
  const idx = Array.from({ length: values.length }, (_, i) => i);
  idx.sort((a, b) => values[b] - values[a] || a - b);
  return idx.slice(0, k).map((index) => ({ index, weight: values[index] }));
}
