/**
 * The canvas palette, read from VS Code's theme variables on <body> (getComputedStyle) and re-read when the body's
 * theme class changes (VS Code swaps `vscode-light` / `vscode-dark` / `vscode-high-contrast[-light]`).
 */
import { scaleLut, type ScaleDirection } from '../extension/common/colorScale';

export type Rgb = [number, number, number];

export interface Palette {
  /** Background luminance decides the colour scale's direction (low weights blend into the background). */
  dir: ScaleDirection;
  highContrast: boolean;
  /** 256 RGBA entries of the sequential scale. */
  lut: Uint8ClampedArray;
  background: string;
  backgroundRgb: Rgb;
  foreground: string;
  muted: string;
  border: string;
  focus: string;
  /** Head-finder badges on thumbnails and cells. */
  badgeBackground: string;
  badgeForeground: string;
  /** Distinct hues for comparing heads (VS Code's chart colours). */
  hues: string[];
  huesRgb: Rgb[];
  font: string;
  monoFont: string;
  fontSize: number;
}

const HUE_VARS = ['--vscode-charts-blue', '--vscode-charts-orange', '--vscode-charts-green', '--vscode-charts-purple', '--vscode-charts-red', '--vscode-charts-yellow'];

let probe: CanvasRenderingContext2D | null = null;

/** Any CSS colour -> sRGB bytes, by letting a 1×1 canvas parse and paint it. */
export function parseColor(css: string, fallback: Rgb = [128, 128, 128]): Rgb {
  if (!css) return fallback;
  probe ??= document.createElement('canvas').getContext('2d', { willReadFrequently: true });
  if (!probe) return fallback;
  probe.clearRect(0, 0, 1, 1);
  probe.fillStyle = '#000';
  probe.fillStyle = css;
  probe.fillRect(0, 0, 1, 1);
  const d = probe.getImageData(0, 0, 1, 1).data;
  return [d[0], d[1], d[2]];
}

function luminance([r, g, b]: Rgb): number {
  return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
}

export function readPalette(el: HTMLElement = document.body): Palette {
  const cs = getComputedStyle(el);
  const v = (name: string, fallback: string) => cs.getPropertyValue(name).trim() || fallback;
  const background = v('--vscode-editor-background', v('--vscode-sideBar-background', '#1e1e1e'));
  const backgroundRgb = parseColor(background);
  const dir: ScaleDirection = luminance(backgroundRgb) < 0.5 ? 'dark' : 'light';
  const foreground = v('--vscode-editor-foreground', v('--vscode-foreground', dir === 'dark' ? '#cccccc' : '#333333'));
  const contrastBorder = v('--vscode-contrastBorder', '');
  const cls = document.body.classList;
  const hues = HUE_VARS.map((name, k) => v(name, ['#3794ff', '#d18616', '#89d185', '#b180d7', '#f14c4c', '#cca700'][k]));
  return {
    dir,
    highContrast: cls.contains('vscode-high-contrast') || cls.contains('vscode-high-contrast-light'),
    lut: scaleLut(dir),
    background,
    backgroundRgb,
    foreground,
    muted: v('--vscode-descriptionForeground', foreground),
    border: contrastBorder || v('--vscode-panel-border', v('--vscode-widget-border', '#80808059')),
    focus: v('--vscode-focusBorder', '#007fd4'),
    badgeBackground: v('--vscode-badge-background', dir === 'dark' ? '#616161' : '#c4c4c4'),
    badgeForeground: v('--vscode-badge-foreground', dir === 'dark' ? '#f8f8f8' : '#333333'),
    hues,
    huesRgb: hues.map((h) => parseColor(h)),
    font: v('--vscode-font-family', 'sans-serif'),
    monoFont: v('--vscode-editor-font-family', 'monospace'),
    fontSize: parseFloat(v('--vscode-font-size', '13px')) || 13,
  };
}

/** Calls `onChange` with a fresh palette whenever <body>'s class or style changes. Returns a stop function. */
export function watchTheme(onChange: (p: Palette) => void): () => void {
  const observer = new MutationObserver(() => onChange(readPalette()));
  observer.observe(document.body, { attributes: true, attributeFilter: ['class', 'style'] });
  return () => observer.disconnect();
}

/** Calls `onChange` when devicePixelRatio changes (zoom, moving to another screen). */
export function watchPixelRatio(onChange: () => void): () => void {
  let stop = () => {};
  const arm = () => {
    const mq = matchMedia(`(resolution: ${devicePixelRatio}dppx)`);
    const handler = () => {
      onChange();
      arm();
    };
    mq.addEventListener('change', handler, { once: true });
    stop = () => mq.removeEventListener('change', handler);
  };
  arm();
  return () => stop();
}
