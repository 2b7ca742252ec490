/** Colour helpers of the Inside-a-head tab: blends toward a theme hue on a symmetric (diverging) scale. */
import type { Rgb } from '../theme';

/** `bg` blended toward `fg` by t in [0, 1]. */
export function blend(bg: Rgb, fg: Rgb, t: number): Rgb {
  const u = Math.max(0, Math.min(1, t));
  return [Math.round(bg[0] + (fg[0] - bg[0]) * u), Math.round(bg[1] + (fg[1] - bg[1]) * u), Math.round(bg[2] + (fg[2] - bg[2]) * u)];
}

/** Diverging colour of v on a symmetric scale ±max: positive toward `pos`, negative toward `neg`. */
export function diverging(v: number, max: number, bg: Rgb, pos: Rgb, neg: Rgb): Rgb {
  if (!(max > 0) || !Number.isFinite(v)) return bg;
  return blend(bg, v >= 0 ? pos : neg, Math.abs(v) / max);
}

/** `rgb(r, g, b)` for canvas fills and CSSOM styles. */
export const rgbCss = (c: Rgb): string => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;

/** The largest finite |a_i| (0 when there is none). */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i]) && Math.abs(a[i]) > m) m = Math.abs(a[i]);
  return m;
}
