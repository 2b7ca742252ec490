/**
 * Headlight's sequential colour scale for attention weights, generated here (not copied from any published map).
 *
 * The path runs through OKLCH (OKLab in polar form): lightness rises linearly with t (so the order of values reads
 * from lightness alone, for every kind of colour vision and in greyscale), while the hue turns from violet-blue
 * through teal to a warm yellow. Blue–yellow is the axis that deuteranopes and protanopes keep; the hue turn only
 * adds separation on top of the lightness ramp. Chroma is as high as the sRGB gamut allows at each point, capped
 * so that steps stay close to perceptually even.
 *
 * Two directions: on dark backgrounds t = 0 is the dark end (zero weights sink into the background), on light
 * backgrounds it is the light end. Runs anywhere (host, webview, tests).
 */

export type ScaleDirection = 'dark' | 'light';

/** Lightness at t = 0 and t = 1 of the dark-background direction (the light direction swaps them). */
const L_LOW = 0.24;
const L_HIGH = 0.96;
/** Hue in degrees at t = 0 and t = 1. */
const HUE_LOW = 285;
const HUE_HIGH = 100;
/** Chroma cap: higher would leave the gamut for most of the ramp and make steps uneven. */
const CHROMA_MAX = 0.13;

export interface Oklab {
  L: number;
  a: number;
  b: number;
}

/** OKLab -> linear sRGB (Björn Ottosson's published matrices). */
export function oklabToLinearSrgb({ L, a, b }: Oklab): [number, number, number] {
  const l_ = L + 0.3963377774 * a + 0.2158037573 * b;
  const m_ = L - 0.1055613458 * a - 0.0638541728 * b;
  const s_ = L - 0.0894841775 * a - 1.291485548 * b;
  const l = l_ ** 3;
  const m = m_ ** 3;
  const s = s_ ** 3;
  return [
    4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s,
    -1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s,
    -0.0041960863 * l - 0.7034186147 * m + 1.707614701 * s,
  ];
}

function encode(c: number): number {
  const x = c <= 0.0031308 ? 12.92 * c : 1.055 * c ** (1 / 2.4) - 0.055;
  return Math.round(Math.min(1, Math.max(0, x)) * 255);
}

function inGamut(rgb: [number, number, number]): boolean {
  return rgb.every((c) => c >= -1e-4 && c <= 1 + 1e-4);
}

/** The scale's OKLab point at t in [0, 1] (before gamut mapping of chroma). */
function pathPoint(t: number, dir: ScaleDirection): { L: number; h: number } {
  const u = Math.min(1, Math.max(0, t));
  const L = dir === 'dark' ? L_LOW + (L_HIGH - L_LOW) * u : L_HIGH - (L_HIGH - L_LOW) * u;
  const h = HUE_LOW + (HUE_HIGH - HUE_LOW) * u;
  return { L, h };
}

/** The largest chroma <= CHROMA_MAX that keeps (L, C, h) inside sRGB, by bisection. */
function gamutChroma(L: number, hDeg: number): number {
  const h = (hDeg * Math.PI) / 180;
  const ok = (C: number) => inGamut(oklabToLinearSrgb({ L, a: C * Math.cos(h), b: C * Math.sin(h) }));
  if (ok(CHROMA_MAX)) return CHROMA_MAX;
  let lo = 0;
  let hi = CHROMA_MAX;
  for (let k = 0; k < 24; k++) {
    const mid = (lo + hi) / 2;
    if (ok(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** The OKLab colour of t in [0, 1]. */
export function scaleOklab(t: number, dir: ScaleDirection = 'dark'): Oklab {
  const { L, h } = pathPoint(t, dir);
  const C = gamutChroma(L, h);
  const rad = (h * Math.PI) / 180;
  return { L, a: C * Math.cos(rad), b: C * Math.sin(rad) };
}

/** sRGB bytes of t in [0, 1]. */
export function scaleRgb(t: number, dir: ScaleDirection = 'dark'): [number, number, number] {
  const [r, g, b] = oklabToLinearSrgb(scaleOklab(t, dir));
  return [encode(r), encode(g), encode(b)];
}

/** A lookup table of n colours as RGBA bytes (alpha 255), index k for t = k / (n − 1). */
export function scaleLut(dir: ScaleDirection = 'dark', n = 256): Uint8ClampedArray {
  const out = new Uint8ClampedArray(n * 4);
  for (let k = 0; k < n; k++) {
    const [r, g, b] = scaleRgb(k / (n - 1), dir);
    out.set([r, g, b, 255], k * 4);
  }
  return out;
}

/** Maps an attention weight to t: linear, or log10 over [1e-4, 1] (weights below 1e-4 map to 0). */
export function weightToT(w: number, log: boolean): number {
  if (!(w > 0)) return 0;
  if (!log) return Math.min(1, w);
  const floor = -4;
  return Math.min(1, Math.max(0, (Math.log10(w) - floor) / -floor));
}
