/** Number formats of the Inside-a-head tab. */

/** x with d decimals; '–' when not finite. */
export const fmt = (x: number, d = 3): string => (Number.isFinite(x) ? x.toFixed(d) : '–');

/** Like `fmt`, with a '+' before positive values. */
export const signed = (x: number, d = 3): string => `${x > 0 ? '+' : ''}${fmt(x, d)}`;

/** A natural-log probability as a percentage. */
export const pct = (logprob: number): string => `${(Math.exp(logprob) * 100).toFixed(1)}%`;
