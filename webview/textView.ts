/**
 * The analysed text as tokens, laid out like the source (white-space: pre-wrap keeps line breaks and indentation,
 * since token texts carry them). Pointing at a token (or selecting it) lights the tokens it attends to, one hue per
 * compared head; a head's lit tokens carry `data-w` (the weight) for tests and screen readers.
 */
import type { Token } from '../extension/common/tokens';
import type { Rgb } from './theme';

export interface TextCallbacks {
  /** Pointer entered a token (undefined: left the text). */
  onPoint(index: number | undefined): void;
  /** Click or Enter: make this the selected token (and move the editor's cursor there). */
  onPick(index: number): void;
}

export interface HeadWeights {
  weights: Float32Array;
  hue: Rgb;
}

export class TextView {
  readonly element: HTMLDivElement;
  private spans: HTMLSpanElement[] = [];
  /** Background last written per span, to touch only what changes on each pointer move. */
  private painted: string[] = [];
  private focusIndex: number | undefined;
  private selectedIndex: number | undefined;

  constructor(private readonly cb: TextCallbacks) {
    this.element = document.createElement('div');
    this.element.className = 'text';
    this.element.tabIndex = 0;
    this.element.setAttribute('role', 'application');
    this.element.setAttribute('aria-roledescription', 'token text');
    this.element.setAttribute('aria-label', 'Analysed text. Point at a token to light up where it looks. Left and right arrows move the selected token; Enter moves the editor cursor there.');
    this.element.addEventListener('pointerover', (e) => {
      const i = this.indexOf(e.target);
      if (i !== undefined) this.cb.onPoint(i);
    });
    this.element.addEventListener('pointerleave', () => this.cb.onPoint(undefined));
    this.element.addEventListener('click', (e) => {
      const i = this.indexOf(e.target);
      if (i !== undefined) this.cb.onPick(i);
    });
    this.element.addEventListener('keydown', (e) => {
      const n = this.spans.length;
      if (!n) return;
      const cur = this.selectedIndex ?? 0;
      let next = cur;
      if (e.key === 'ArrowLeft') next = Math.max(0, cur - 1);
      else if (e.key === 'ArrowRight') next = Math.min(n - 1, cur + 1);
      else if (e.key === 'Home') next = 0;
      else if (e.key === 'End') next = n - 1;
      else if (e.key !== 'Enter') return;
      e.preventDefault();
      this.cb.onPick(next);
      this.spans[next]?.scrollIntoView({ block: 'nearest' });
    });
  }

  private indexOf(target: EventTarget | null): number | undefined {
    const el = target as HTMLElement | null;
    const i = el?.dataset?.i;
    return i === undefined ? undefined : Number(i);
  }

  setTokens(tokens: Token[]): void {
    const frag = document.createDocumentFragment();
    this.spans = tokens.map((t, i) => {
      const s = document.createElement('span');
      s.className = 'tok';
      s.dataset.i = String(i);
      s.textContent = t.text;
      frag.append(s);
      return s;
    });
    this.painted = new Array(tokens.length).fill('');
    this.element.replaceChildren(frag);
    this.focusIndex = this.selectedIndex = undefined;
  }

  get tokenSpans(): readonly HTMLSpanElement[] {
    return this.spans;
  }

  /** Marks the pointed-at and the selected token. */
  setMarks(focus: number | undefined, selected: number | undefined): void {
    if (focus !== this.focusIndex) {
      if (this.focusIndex !== undefined) this.spans[this.focusIndex]?.classList.remove('focus');
      if (focus !== undefined) this.spans[focus]?.classList.add('focus');
      this.focusIndex = focus;
    }
    if (selected !== this.selectedIndex) {
      if (this.selectedIndex !== undefined) this.spans[this.selectedIndex]?.classList.remove('selected');
      if (selected !== undefined) this.spans[selected]?.classList.add('selected');
      this.selectedIndex = selected;
    }
  }

  /**
   * Lights tokens by weight: one head fills the background with its hue (alpha = √weight, so weak but real links
   * stay visible); several heads share the token as horizontal stripes, one per head (BertViz's idea).
   * Weights below `threshold` are not lit.
   */
  paint(heads: HeadWeights[], threshold: number): void {
    const n = this.spans.length;
    for (let k = 0; k < n; k++) {
      let bg = '';
      let max = 0;
      if (heads.length === 1) {
        const w = heads[0].weights[k];
        if (w > 0 && w >= threshold) {
          bg = rgba(heads[0].hue, alpha(w));
          max = w;
        }
      } else if (heads.length > 1) {
        let any = false;
        const stops: string[] = [];
        const step = 100 / heads.length;
        for (let h = 0; h < heads.length; h++) {
          const w = heads[h].weights[k];
          const lit = w > 0 && w >= threshold;
          any ||= lit;
          if (w > max) max = w;
          const c = lit ? rgba(heads[h].hue, alpha(w)) : 'transparent';
          stops.push(`${c} ${(h * step).toFixed(1)}% ${((h + 1) * step).toFixed(1)}%`);
        }
        if (any) bg = `linear-gradient(to bottom, ${stops.join(', ')})`;
        else max = 0;
      }
      if (bg === this.painted[k]) continue;
      this.painted[k] = bg;
      const s = this.spans[k];
      s.style.background = bg;
      if (bg) s.dataset.w = max.toFixed(4);
      else delete s.dataset.w;
    }
  }
}

function alpha(w: number): number {
  return Math.min(0.9, 0.12 + Math.sqrt(w) * 0.85);
}

function rgba([r, g, b]: Rgb, a: number): string {
  return `rgba(${r}, ${g}, ${b}, ${a.toFixed(2)})`;
}
