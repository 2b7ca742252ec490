/** Canvas helpers: crisp at any devicePixelRatio. */

/** Sizes a canvas to css width×height at the device's pixel ratio; returns a context scaled to css pixels. */
export function fitCanvas(canvas: HTMLCanvasElement, cssWidth: number, cssHeight: number): CanvasRenderingContext2D {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(cssWidth * dpr));
  const h = Math.max(1, Math.round(cssHeight * dpr));
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  canvas.style.width = `${cssWidth}px`;
  canvas.style.height = `${cssHeight}px`;
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(w / cssWidth, 0, 0, h / cssHeight, 0, 0);
  ctx.imageSmoothingEnabled = false;
  return ctx;
}

/** A canvas holding raw pixels (width×height RGBA), to be drawn scaled with drawImage. */
export function pixelCanvas(width: number, height: number, rgba: Uint8ClampedArray): HTMLCanvasElement {
  const c = document.createElement('canvas');
  c.width = width;
  c.height = height;
  const ctx = c.getContext('2d')!;
  const img = new ImageData(rgba as Uint8ClampedArray<ArrayBuffer>, width, height);
  ctx.putImageData(img, 0, 0);
  return c;
}

/** Shortens a label to at most n characters, showing whitespace visibly. */
export function tokenLabel(text: string, n = 12): string {
  const shown = text.replace(/\n/g, '↵').replace(/\t/g, '⇥').replace(/ /g, '·');
  return shown.length > n ? shown.slice(0, n - 1) + '…' : shown;
}
