/** Small DOM helpers shared by the webview entries. */

type Attrs = Record<string, string | boolean | undefined> & { className?: string };

/** Creates an element: string attributes become attributes, booleans toggle them, `className` sets the class. */
export function el(tag: string, attrs: Attrs = {}, ...children: (Node | string)[]): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === 'className') e.className = String(v);
    else if (k === 'hidden') e.hidden = Boolean(v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  e.append(...children);
  return e;
}

/** Announces that a view finished drawing (tests and the benchmark listen for it). */
export function painted(view: string, ms: number): void {
  window.dispatchEvent(new CustomEvent('headlight:painted', { detail: { view, ms, at: performance.now() } }));
}

/** A hidden tooltip div, shown by the view that owns it (with `placeTooltip`). */
export function tooltip(): HTMLDivElement {
  return el('div', { className: 'tooltip', hidden: true }) as HTMLDivElement;
}

/** A rectangle in viewport (client) coordinates, css px. */
export interface ClientRect {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

const EDGE = 4; // css px kept free between a tooltip and the viewport's edge

/**
 * Shows a tooltip beside `anchor` (client coordinates) and keeps it inside the viewport: below the anchor when it
 * fits there, else above, else against the bottom edge; shifted left when it would pass the right edge. Fixed
 * positioning, so no scrolling pane it sits in can clip it. Call after setting its text (it measures itself).
 */
export function placeTooltip(tip: HTMLElement, anchor: ClientRect, gap = 6): void {
  tip.style.position = 'fixed';
  tip.style.left = '0px';
  tip.style.top = '0px';
  tip.hidden = false;
  const vw = document.documentElement.clientWidth;
  const vh = document.documentElement.clientHeight;
  const { width, height } = tip.getBoundingClientRect();
  let top = anchor.bottom + gap;
  if (top + height > vh - EDGE) {
    const above = anchor.top - gap - height;
    top = above >= EDGE ? above : Math.max(EDGE, vh - EDGE - height);
  }
  const left = Math.max(EDGE, Math.min(anchor.left, vw - EDGE - width));
  tip.style.left = `${Math.round(left)}px`;
  tip.style.top = `${Math.round(top)}px`;
}

/** `rect` (css px of `element`'s own box) in client coordinates. */
export function toClient(element: Element, rect: { x: number; y: number; width: number; height: number }): ClientRect {
  const r = element.getBoundingClientRect();
  return { left: r.left + rect.x, top: r.top + rect.y, right: r.left + rect.x + rect.width, bottom: r.top + rect.y + rect.height };
}

/** A screen-reader-only region that announces what the pointer or keyboard points at. */
export function liveRegion(): HTMLDivElement {
  return el('div', { className: 'sr-only', 'aria-live': 'polite' }) as HTMLDivElement;
}
