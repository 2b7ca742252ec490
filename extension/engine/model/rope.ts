/**
 * Rotary position frequencies from config.json, as transformers' modeling_rope_utils.py computes them: the default
 * inv_freq_k = 1 / θ^(2k/dim), `linear` scaling (inv_freq / factor) and `llama3` (long wavelengths / factor, short
 * ones kept, a smooth blend between). Old configs write `rope_theta` + `rope_scaling` ({type | rope_type, …});
 * transformers v5 writes `rope_parameters` ({rope_type, rope_theta, partial_rotary_factor, …}). Any other type is
 * refused: its positions would be wrong.
 */
import type { ConfigFields } from './configFields.js';
import { describe } from './configFields.js';

export const ROPE_TYPES = ['default', 'linear', 'llama3'] as const;

export interface RopeSpec {
  /** Dims of each head that rotate (even; the first `dims`). */
  dims: number;
  /** [dims / 2] float64 frequencies. */
  invFreq: Float64Array;
}

/**
 * c: the config; headDim: D; theta0: the family's default base; fraction0: the family's default rotary fraction
 * (1 for Llama, 0.25 for NeoX); thetaKey/fractionKey: the family's old field names (`rotary_emb_base`, `rotary_pct`).
 */
export function ropeFromConfig(
  c: ConfigFields,
  headDim: number,
  defaults: { theta: number; fraction: number; thetaKey?: string; fractionKey?: string; params?: { where: string; value: Record<string, unknown> | undefined } },
): RopeSpec {
  // `params`: one entry of rope_parameters keyed by layer type (Gemma 3 in transformers v5), read like rope_parameters.
  const params = defaults.params ? (defaults.params.value ?? {}) : c.object('rope_parameters');
  const scaling = defaults.params ? undefined : c.object('rope_scaling');
  const where = defaults.params?.where ?? (params ? 'rope_parameters' : 'rope_scaling');
  const p = params ?? scaling ?? {};
  const field = (key: string): unknown => (p[key] === null ? undefined : p[key]);
  const positive = (key: string, fallback?: number): number => {
    const v = field(key) ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || !(v > 0)) c.fail(`${where}.${key}`, `must be a positive number, got ${describe(field(key))}`);
    return v;
  };
  const theta = params ? positive('rope_theta', (c.get(defaults.thetaKey ?? 'rope_theta') as number | undefined) ?? defaults.theta) : c.num(defaults.thetaKey ?? 'rope_theta', defaults.theta);
  const fractionRaw = field('partial_rotary_factor') ?? c.get('partial_rotary_factor') ?? (defaults.fractionKey ? c.get(defaults.fractionKey) : undefined) ?? defaults.fraction;
  if (typeof fractionRaw !== 'number' || !(fractionRaw > 0 && fractionRaw <= 1)) c.fail('partial_rotary_factor', `must be a number in (0, 1], got ${describe(fractionRaw)}`);
  const dims = Math.floor(headDim * fractionRaw);
  if (dims < 2 || dims % 2 !== 0) c.fail(defaults.fractionKey ?? 'partial_rotary_factor', `gives ${dims} rotary dims of a head of ${headDim}; it must give an even number ≥ 2`);

  const base = defaultInvFreq(theta, dims); // [dims/2]
  const type = field('rope_type') ?? field('type') ?? 'default';
  switch (type) {
    case 'default':
      return { dims, invFreq: base };
    case 'linear': {
      const factor = positive('factor');
      return { dims, invFreq: base.map((f) => f / factor) };
    }
    case 'llama3': {
      const factor = positive('factor');
      const low = positive('low_freq_factor');
      const high = positive('high_freq_factor');
      const context = positive('original_max_position_embeddings');
      const lowWavelen = context / low;
      const highWavelen = context / high;
      const invFreq = base.map((f) => {
        const wavelen = (2 * Math.PI) / f;
        if (wavelen < highWavelen) return f; // short wavelengths: unchanged
        if (wavelen > lowWavelen) return f / factor; // long ones: slowed by factor
        const smooth = (context / wavelen - low) / (high - low);
        return (1 - smooth) * (f / factor) + smooth * f;
      });
      return { dims, invFreq };
    }
    default:
      return c.fail(
        `${where}.rope_type`,
        `is ${describe(type)}; supported: ${ROPE_TYPES.join(', ')}`,
        'This checkpoint uses a rotary scaling Headlight does not compute; pick a model whose rope scaling is one of these.',
      );
  }
}

/** The unscaled frequencies 1 / θ^(2k/dims), k < dims/2 (Gemma 3's local layers: rope_local_base_freq, no scaling). */
export function defaultInvFreq(theta: number, dims: number): Float64Array {
  return Float64Array.from({ length: dims / 2 }, (_, k) => 1 / theta ** ((2 * k) / dims)); // [dims/2]
}
