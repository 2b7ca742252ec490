/** Exports of the panel: PNG of a view, SVG of the head matrix, JSON of the selected head's map. */
import { weightToT } from '../extension/common/colorScale';
import type { AttentionMode } from '../extension/common/engineProtocol';
import type { Token } from '../extension/common/tokens';
import type { RunView, SaveKind } from '../extension/common/webviewProtocol';
import type { HeadMap } from './attention';
import { tokenLabel } from './canvas';
import type { Palette } from './theme';

/** Cells per side of the SVG at most: beyond it cells are max-pooled (an SVG of 1024² rects would not open). */
export const SVG_MAX_CELLS = 192;

export async function canvasPng(canvas: HTMLCanvasElement): Promise<Uint8Array> {
  const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/png'));
  if (!blob) throw new Error('The canvas could not be encoded as PNG.');
  return new Uint8Array(await blob.arrayBuffer());
}

function hex(lut: Uint8ClampedArray, t: number): string {
  const k = Math.round(Math.min(1, Math.max(0, t)) * 255) * 4;
  return '#' + [lut[k], lut[k + 1], lut[k + 2]].map((c) => c.toString(16).padStart(2, '0')).join('');
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** The head's matrix as SVG: one rect per (pooled) cell of the causal triangle, token labels when T is small. */
export function matrixSvg(map: HeadMap, labels: string[], palette: Palette, log: boolean, title: string): string {
  const T = map.T;
  const n = Math.min(T, SVG_MAX_CELLS);
  const cell = 8;
  const margin = T <= SVG_MAX_CELLS ? 90 : 40;
  const size = n * cell;
  // [n, n] max-pooled weights of the [T, T] map
  const pooled = new Float32Array(n * n);
  for (let i = 0; i < T; i++) {
    const y = Math.floor((i * n) / T);
    for (let j = 0; j <= i; j++) {
      const k = y * n + Math.floor((j * n) / T);
      const w = map.at(i, j);
      if (w > pooled[k]) pooled[k] = w;
    }
  }
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${size + margin + 10}" height="${size + margin + 10}" viewBox="0 0 ${size + margin + 10} ${size + margin + 10}" font-family="monospace" font-size="7">`);
  parts.push(`<title>${esc(title)}</title>`);
  parts.push(`<rect width="100%" height="100%" fill="${palette.background}"/>`);
  parts.push(`<g transform="translate(${margin},${margin})" shape-rendering="crispEdges">`);
  parts.push(`<rect width="${size}" height="${size}" fill="${hex(palette.lut, 0)}" opacity="0.25"/>`);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x <= y; x++) {
      const t = weightToT(pooled[y * n + x], log);
      parts.push(`<rect x="${x * cell}" y="${y * cell}" width="${cell}" height="${cell}" fill="${hex(palette.lut, t)}"/>`);
    }
  }
  parts.push('</g>');
  if (T <= SVG_MAX_CELLS) {
    parts.push(`<g fill="${palette.foreground}">`);
    for (let i = 0; i < T; i++) {
      const label = esc(tokenLabel(labels[i] ?? '', 12));
      parts.push(`<text x="${margin - 3}" y="${margin + i * cell + 6}" text-anchor="end">${label}</text>`);
      parts.push(`<text transform="translate(${margin + i * cell + 6},${margin - 3}) rotate(-90)">${label}</text>`);
    }
    parts.push('</g>');
  }
  parts.push('</svg>');
  return parts.join('\n');
}

/** The selected head's map as JSON: tokens and rows (row i has i+1 weights); `meta` says what they are (model, mode). */
export function headJson(map: HeadMap, tokens: Pick<Token, 'text' | 'start' | 'end'>[], meta: Record<string, unknown>): string {
  const rows: number[][] = [];
  for (let i = 0; i < map.T; i++) {
    const row: number[] = [];
    for (let j = 0; j <= i; j++) row.push(Math.round(map.at(i, j) * 1e6) / 1e6);
    rows.push(row);
  }
  return JSON.stringify({ ...meta, layer: map.layer, head: map.head, T: map.T, tokens, weights: rows }, null, 0);
}

/** Draws the text view (tokens at their laid-out positions, with their highlight) into a canvas. */
export function textCanvas(container: HTMLElement, spans: readonly HTMLElement[], palette: Palette): HTMLCanvasElement {
  const box = container.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  const width = Math.ceil(container.clientWidth);
  const height = Math.ceil(Math.min(container.scrollHeight, 8000));
  const canvas = document.createElement('canvas');
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  const ctx = canvas.getContext('2d')!;
  ctx.scale(dpr, dpr);
  ctx.fillStyle = palette.background;
  ctx.fillRect(0, 0, width, height);
  const dx = -box.left + container.scrollLeft;
  const dy = -box.top + container.scrollTop;
  const cs = getComputedStyle(container);
  ctx.font = `${cs.fontSize} ${cs.fontFamily}`;
  ctx.textBaseline = 'top';
  for (const s of spans) {
    const bg = getComputedStyle(s).backgroundColor;
    const gradient = s.style.background.startsWith('linear-gradient');
    for (const r of Array.from(s.getClientRects())) {
      if (gradient) {
        // stripes: repeat the gradient's colours as bands
        const colours = s.style.background.match(/rgba\([^)]*\)|transparent/g) ?? [];
        colours.forEach((c, k) => {
          ctx.fillStyle = c;
          ctx.fillRect(r.left + dx, r.top + dy + (k * r.height) / colours.length, r.width, r.height / colours.length);
        });
      } else if (bg && bg !== 'rgba(0, 0, 0, 0)') {
        ctx.fillStyle = bg;
        ctx.fillRect(r.left + dx, r.top + dy, r.width, r.height);
      }
    }
    const rects = s.getClientRects();
    if (rects.length === 1 && s.textContent && s.textContent.trim()) {
      ctx.fillStyle = palette.foreground;
      const r = rects[0];
      ctx.fillText(s.textContent.replace(/\n/g, ''), r.left + dx, r.top + dy + 1);
    }
  }
  return canvas;
}

/** What the panel exports: the run, the head matrix's head and how it is drawn, and the view a PNG shows. */
export interface ExportSubject {
  run: RunView;
  /** The head matrix's map (undefined: none loaded yet). */
  map: HeadMap | undefined;
  layer: number;
  head: number;
  /** The maps shown (and exported) are value-weighted in value-weighted mode. */
  mode: AttentionMode;
  log: boolean;
  palette: Palette;
  /** The view a PNG shows, and its pixels. */
  view: 'model' | 'matrix' | 'text';
  canvas(): HTMLCanvasElement;
}

/** The file of an export and the name the save dialog suggests (`<document>-L<l>H<h>[-value-weighted]…`). */
export async function exportFile(kind: SaveKind, s: ExportSubject): Promise<{ data: Uint8Array | string; suggestedName: string }> {
  const { run, map } = s;
  const vw = s.mode === 'value-weighted';
  const base = `${run.documentLabel.replace(/\.[^.]*$/, '')}-L${s.layer}H${s.head}${vw ? '-value-weighted' : ''}`;
  if (kind === 'png') return { data: await canvasPng(s.canvas()), suggestedName: `${base}-${s.view}.png` };
  if (!map) throw new Error('No head is loaded.');
  if (kind === 'svg') {
    const labels = run.tokens.map((t) => t.text);
    return { data: matrixSvg(map, labels, s.palette, s.log, `Layer ${map.layer}, head ${map.head}${vw ? ' (value-weighted)' : ''}: ${run.documentLabel}`), suggestedName: `${base}.svg` };
  }
  const tokens = run.tokens.map(({ text, start, end }) => ({ text, start, end }));
  return { data: headJson(map, tokens, { model: run.model.ref, document: run.documentLabel, version: run.version, window: run.window, mode: s.mode }), suggestedName: `${base}.json` };
}
