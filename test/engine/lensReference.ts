/**
 * The float64 logit lens and direct logit attribution of the tests: a few lines over a reference forward's residual
 * stream and parts (test/reference/gpt2.ts `trace`, RefResult of test/reference/families/*), with the final norm, its
 * frozen scale and the unembedding read from the checkpoint's own tensors. Imports nothing from the engine.
 */
/** The reference's residual stream and parts, every array [T*E]. */
export interface Trace {
  residPre: Float64Array[]; // [L+1]
  headOut: Float64Array[][]; // [L][H], no bias, before any post-attention norm
  attnOut: Float64Array[]; // [L], what the stream receives
  mlpOut: Float64Array[]; // [L]
}

/** The reference's readout: final norm and unembedding by their checkpoint names. */
export interface RefReadout {
  kind: 'layer' | 'rms';
  w: ArrayLike<number>; // applied weight [E]
  b?: ArrayLike<number>; // [E]
  eps: number;
  unembed: Float64Array; // [V, E]
  softcap: number | null;
  /** Post-attention norm of layer l (Gemma), applied weight and eps. */
  postAttn?: (l: number) => { w: ArrayLike<number>; eps: number };
  /** Layer l's attention output bias, if any. */
  attnBias: (l: number) => ArrayLike<number> | undefined;
}

export function row(a: Float64Array, t: number, E: number): Float64Array {
  return a.subarray(t * E, (t + 1) * E);
}

export function normScale(kind: 'layer' | 'rms', x: ArrayLike<number>, eps: number): { mean: number; s: number } {
  const E = x.length;
  let mean = 0;
  if (kind === 'layer') for (let e = 0; e < E; e++) mean += x[e] / E;
  let sq = 0;
  for (let e = 0; e < E; e++) sq += (x[e] - mean) ** 2;
  return { mean, s: 1 / Math.sqrt(sq / E + eps) };
}

/** The final norm, the unembedding and the soft-cap: logits [V] (before the cap too). */
export function refLogits(r: RefReadout, x: ArrayLike<number>): { raw: Float64Array; capped: Float64Array } {
  const E = x.length;
  const V = r.unembed.length / E;
  const { mean, s } = normScale(r.kind, x, r.eps);
  const y = Float64Array.from({ length: E }, (_, e) => (x[e] - mean) * s * r.w[e] + (r.b?.[e] ?? 0));
  const raw = new Float64Array(V);
  for (let v = 0; v < V; v++) for (let e = 0; e < E; e++) raw[v] += y[e] * r.unembed[v * E + e];
  const capped = r.softcap === null ? raw : raw.map((z) => r.softcap! * Math.tanh(z / r.softcap!));
  return { raw, capped };
}

export function logSoftmax(z: Float64Array): Float64Array {
  const max = Math.max(...z);
  const lse = max + Math.log(z.reduce((a, v) => a + Math.exp(v - max), 0));
  return z.map((v) => v - lse);
}

/** Parts by name, at position t, towards u = W_U[target] − W_U[vs]. */
export function refAttribution(r: RefReadout, tr: Trace, t: number, E: number, target: number, vs: number | null): { parts: Map<string, number>; logit: number } {
  const L = tr.headOut.length;
  const u = Float64Array.from({ length: E }, (_, e) => r.unembed[target * E + e] - (vs === null ? 0 : r.unembed[vs * E + e]));
  const x = row(tr.residPre[L], t, E);
  const { s } = normScale(r.kind, x, r.eps);
  const project = (p: ArrayLike<number>) => {
    let pm = 0; // LayerNorm centres each part
    if (r.kind === 'layer') for (let e = 0; e < E; e++) pm += p[e] / E;
    let sum = 0;
    for (let e = 0; e < E; e++) sum += (p[e] - pm) * s * r.w[e] * u[e];
    return sum;
  };
  const parts = new Map<string, number>();
  parts.set('embed', project(row(tr.residPre[0], t, E)));
  for (let l = 0; l < L; l++) {
    const heads = tr.headOut[l].map((h) => row(h, t, E));
    const bias = r.attnBias(l);
    let post: Float64Array | undefined; // Gemma: the post-attention norm frozen at the attention output's scale
    if (r.postAttn) {
      const a = Float64Array.from({ length: E }, (_, e) => heads.reduce((acc, h) => acc + h[e], 0) + (bias?.[e] ?? 0));
      const { w, eps } = r.postAttn(l);
      const { s: sa } = normScale('rms', a, eps);
      post = Float64Array.from({ length: E }, (_, e) => sa * w[e]);
    }
    heads.forEach((h, i) => parts.set(`L${l}H${i}`, project(post ? h.map((v, e) => v * post![e]) : h)));
    if (bias) {
      const attn = row(tr.attnOut[l], t, E);
      parts.set(`L${l} attn bias`, project(attn.map((v, e) => v - heads.reduce((acc, h) => acc + h[e] * (post ? post[e] : 1), 0))));
    }
    parts.set(`L${l} mlp`, project(row(tr.mlpOut[l], t, E)));
  }
  if (r.b) parts.set('final norm bias', Array.from(u).reduce((a, v, e) => a + v * r.b![e], 0));
  const { raw } = refLogits(r, x);
  return { parts, logit: raw[target] - (vs === null ? 0 : raw[vs]) };
}


/** The two largest entries' indices, [first, second]. */
export function top2(z: Float64Array): [number, number] {
  let a = 0;
  let b = -1;
  for (let v = 1; v < z.length; v++) {
    if (z[v] > z[a]) [a, b] = [v, a];
    else if (b < 0 || z[v] > z[b]) b = v;
  }
  return [a, b];
}
