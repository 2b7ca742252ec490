/**
 * Direct logit attribution: the final residual stream at one position split into its parts — the embeddings, each
 * head's output through its slice of the output projection, each layer's attention output bias, each MLP's output —
 * each projected through the final norm with its scale frozen at its actual value and the unembedding, onto the
 * target token (or the target minus a contrast token). The final norm's bias is its own part. By linearity the parts
 * sum to the target's logit (or the logit difference).
 *
 * The frozen final norm, for x = Σ parts at the position and u = W_U[target] (− W_U[vs]):
 *   LayerNorm  y = (x − mean x)·s·w + b,  s = 1/√(var x + ε):  part p gives Σ_e (p_e − mean p)·s·w_e·u_e = p·dir with
 *              dir = s·(w⊙u − mean(w⊙u)) (centering moved onto the direction); the bias gives b·u.
 *   RMSNorm    y = x·s·w (Gemma: w → 1 + w),  s = 1/√(mean x² + ε):  dir = s·w⊙u; no bias part.
 * A post-attention norm (Gemma) is frozen the same way: head h adds headOut_h·s_a·w_a to the stream, where s_a is
 * the norm's scale over the whole attention output Σ_h headOut_h (+ bias), so the heads' parts still sum to what the
 * attention block adds. Gemma 2's final soft-cap is not linear: parts sum to the logit before the cap (the cap is
 * monotonic, so which token wins is the same), and logit_target is that logit.
 *
 * The MLP's part is what is left of the layer's change of the residual stream: resid_{l+1} − resid_l − attention's
 * part (sequential, parallel (NeoX) and post-normed (Gemma) blocks alike).
 */
import type { Attribution, AttributionPart } from '../../common/engineProtocol';
import { HeadlightError } from '../../common/errors';
import type { Gpt2Engine, Run } from './engine';
import { checkIndex, residuals, staleRun, type Lens } from './lens';
import type { NormWeights } from './readoutHead';

export type { Attribution, AttributionPart };

/** The frozen scale of a norm over x [E]: 1/√(var + ε) (LayerNorm) or 1/√(mean x² + ε) (RMSNorm). */
export function frozenScale(norm: Pick<NormWeights, 'kind' | 'eps'>, x: ArrayLike<number>): number {
  return normCentreAndScale(norm, x).scale;
}

/**
 * What a norm subtracts from x[0..E−1] (its mean for LayerNorm, 0 for RMSNorm) and the scale it multiplies by, in
 * float64. E defaults to x's length (a row of a longer array passes its width).
 */
export function normCentreAndScale(norm: Pick<NormWeights, 'kind' | 'eps'>, x: ArrayLike<number>, E = x.length): { mean: number; scale: number } {
  let mean = 0;
  if (norm.kind === 'layer') {
    for (let e = 0; e < E; e++) mean += x[e];
    mean /= E;
  }
  let sq = 0;
  for (let e = 0; e < E; e++) sq += (x[e] - mean) ** 2;
  return { mean, scale: 1 / Math.sqrt(sq / E + norm.eps) };
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>, from = 0): number {
  let s = 0;
  for (let e = 0; e < b.length; e++) s += a[from + e] * b[e];
  return s;
}

/**
 * Attribution of position `index` of `run` to `target` (default: the actual next token; at the window's last
 * position the model's top-1), optionally against `vs`.
 */
export async function attribute(lens: Lens, run: Run, index: number, opts: { target?: number; vs?: number } = {}): Promise<Attribution> {
  checkIndex(run, index);
  const engine: Gpt2Engine = lens.engine;
  const { nLayer: L, nHead: H, headDim: D, nEmbd: E, vocabSize: V } = engine.dims;
  for (const [field, id] of [['target', opts.target], ['vs', opts.vs]] as const) {
    if (id !== undefined && !(Number.isInteger(id) && id >= 0 && id < V)) {
      throw new HeadlightError('bad-token-id', `Attribution ${field} ${id} is not a token id of this model (0..${V - 1}).`, `Pick an id below ${V}.`);
    }
  }
  const head = await lens.readoutHead();
  const ids = run.tokens.map((t) => t.id);
  const { resid, headZ } = await engine.scratch(async (runner, state) => {
    if (run.stale) throw staleRun();
    return residuals(runner, state, index, index + 1, true);
  });
  let target = opts.target ?? (index + 1 < ids.length ? ids[index + 1] : undefined);
  if (target === undefined) target = (await head.lens(resid[L], [0])).topIds[0]; // the model's top-1
  const vs = opts.vs ?? null;
  const rows = await head.unembedRows(vs === null ? [target] : [target, vs]); // [1 or 2, E]

  // u = W_U[target] − W_U[vs]; the final norm frozen at the final residual's scale, centering moved onto dir.
  const norm = head.finalNorm;
  const x = resid[L]; // [E]
  const s = frozenScale(norm, x);
  const u = new Float64Array(E);
  for (let e = 0; e < E; e++) u[e] = rows[e] - (vs === null ? 0 : rows[E + e]);
  const dir = new Float64Array(E);
  for (let e = 0; e < E; e++) dir[e] = s * norm.weight[e] * u[e];
  if (norm.kind === 'layer') {
    const mean = dir.reduce((a, b) => a + b, 0) / E;
    for (let e = 0; e < E; e++) dir[e] -= mean;
  }
  // The logits themselves (before any soft-cap): the normed final residual · W_U[id].
  const normed = new Float64Array(E);
  const mean = norm.kind === 'layer' ? x.reduce((a, b) => a + b, 0) / E : 0;
  for (let e = 0; e < E; e++) normed[e] = (x[e] - mean) * s * norm.weight[e] + (norm.bias?.[e] ?? 0);
  const logitTarget = dot(rows, normed);
  const logitVs = vs === null ? null : dot(rows.subarray(E), normed);

  const parts: AttributionPart[] = [];
  const heads = new Float32Array(L * H);
  const mlp = new Float32Array(L);
  const hasBias = head.layers.some((l) => l.oBias);
  const attnBias = hasBias ? new Float32Array(L) : null;
  const embed = dot(resid[0], dir);
  parts.push({ name: 'embed', value: embed });
  const headOut = new Float64Array(E);
  const attnOut = new Float64Array(E); // [E]: what the attention block adds (after any post-norm)
  for (let l = 0; l < L; l++) {
    const layer = head.layers[l];
    const z = headZ![l]; // [H, 1, D]
    // Each head's output through its rows of W_O ([H·D, E]), and their sum (+ bias): the attention block's output.
    const perHead: Float64Array[] = [];
    attnOut.fill(0);
    for (let h = 0; h < H; h++) {
      headOut.fill(0);
      for (let d = 0; d < D; d++) {
        const zd = z[h * D + d];
        const row = (h * D + d) * E;
        for (let e = 0; e < E; e++) headOut[e] += zd * layer.oProj[row + e];
      }
      perHead.push(Float64Array.from(headOut));
      for (let e = 0; e < E; e++) attnOut[e] += headOut[e];
    }
    if (layer.oBias) for (let e = 0; e < E; e++) attnOut[e] += layer.oBias[e];
    // A post-attention norm (Gemma) frozen at the attention output's scale: every part scales by s_a·w_a.
    let post: Float64Array | undefined;
    if (layer.postAttnNorm) {
      const sa = frozenScale(layer.postAttnNorm, attnOut);
      post = Float64Array.from(layer.postAttnNorm.weight, (w) => sa * w);
      for (let e = 0; e < E; e++) attnOut[e] *= post[e];
    }
    const through = (p: ArrayLike<number>) => {
      let v = 0;
      for (let e = 0; e < E; e++) v += p[e] * (post ? post[e] : 1) * dir[e];
      return v;
    };
    for (let h = 0; h < H; h++) {
      const v = through(perHead[h]);
      heads[l * H + h] = v;
      parts.push({ name: `L${l}H${h}`, value: v });
    }
    if (layer.oBias) {
      const v = through(layer.oBias);
      attnBias![l] = v;
      parts.push({ name: `L${l} attn bias`, value: v });
    }
    // The MLP: the rest of the layer's change of the stream.
    let v = 0;
    for (let e = 0; e < E; e++) v += (resid[l + 1][e] - resid[l][e] - attnOut[e]) * dir[e];
    mlp[l] = v;
    parts.push({ name: `L${l} mlp`, value: v });
  }
  let normBias: number | null = null;
  if (norm.bias) {
    normBias = dot(norm.bias, u);
    parts.push({ name: 'final norm bias', value: normBias });
  }
  return { position: index, target, vs, logitTarget, logitVs, parts, heads, mlp, attnBias, embed, normBias };
}
