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

/** A hidden tooltip div, shown by the view that owns it. */
export function tooltip(): HTMLDivElement {
  return el('div', { className: 'tooltip', hidden: true }) as HTMLDivElement;
}

/** A screen-reader-only region that announces what the pointer or keyboard points at. */
export function liveRegion(): HTMLDivElement {
  return el('div', { className: 'sr-only', 'aria-live': 'polite' }) as HTMLDivElement;
}
