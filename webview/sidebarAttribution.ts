/**
 * The sidebar's second heatmap mode: direct logit attribution at the cursor's token (what writes its next-token
 * logit, per layer and head, the MLPs and the embeddings), following the cursor like the attention heatmap. One
 * `attribute` request per cursor token, the latest winning; click a head to select it everywhere.
 */
import type { Attribution, HeadSelector } from '../extension/common/engineProtocol';
import { AttributionHeatmap, formatLogit } from './attributionHeatmap';
import { el } from './dom';
import type { Palette } from './theme';

export type SidebarHeatMode = 'attention' | 'attribution';

export interface SidebarAttributionHost {
  attribute(version: number, index: number, signal: AbortSignal): Promise<Attribution>;
  select(layer: number, head: number): void;
}

export class SidebarAttribution {
  readonly element: HTMLElement;
  private readonly heat: AttributionHeatmap;
  private readonly note: HTMLElement;
  private inflight: AbortController | undefined;
  private at: { version: number; index: number } | undefined;
  private width = 200;

  constructor(palette: Palette, private readonly host: SidebarAttributionHost) {
    this.heat = new AttributionHeatmap(palette, { onSelect: (l, h) => host.select(l, h) });
    this.note = el('p', { className: 'hint attribution-note', 'aria-live': 'polite' });
    this.element = el('div', { className: 'sidebar-attribution', hidden: true },
      el('p', { className: 'hint' }, 'What writes the next token’s logit, per head, MLP and the embeddings: blue pushes it up, red down. Click a head to select it.'),
      this.heat.element, this.note);
  }

  setPalette(p: Palette): void {
    this.heat.setPalette(p);
  }

  setSelection(sel: HeadSelector): void {
    this.heat.setSelection(sel);
  }

  /** The mode shown: only the attribution mode asks the engine. */
  setShown(shown: boolean): void {
    this.element.hidden = !shown;
    if (!shown) {
      this.inflight?.abort();
      this.at = undefined;
    }
  }

  get shown(): boolean {
    return !this.element.hidden;
  }

  /** The cursor's token (undefined: none); asks once per token while shown. */
  focus(version: number | undefined, index: number | undefined, width: number): void {
    this.width = width;
    if (!this.shown) return;
    if (version === undefined || index === undefined) {
      this.inflight?.abort();
      this.at = undefined;
      this.heat.set(undefined);
      this.note.textContent = '';
      return;
    }
    if (this.at?.version === version && this.at.index === index) {
      this.heat.draw(width);
      return;
    }
    this.at = { version, index };
    this.inflight?.abort();
    const controller = new AbortController();
    this.inflight = controller;
    this.host.attribute(version, index, controller.signal).then(
      (a) => {
        if (controller.signal.aborted) return;
        this.heat.set(a);
        this.heat.draw(this.width);
        const top = [...a.parts].sort((x, y) => Math.abs(y.value) - Math.abs(x.value)).slice(0, 3);
        this.note.textContent = `Logit ${a.logitTarget.toFixed(2)} = the sum of the parts. Largest: ${top.map((p) => `${p.name} ${formatLogit(p.value)}`).join(', ')}.`;
      },
      (err: { code?: string; message: string }) => {
        if (controller.signal.aborted || err.code === 'cancelled' || err.code === 'stale-run') return;
        this.at = undefined;
        this.note.textContent = `The attribution failed: ${err.message}`;
      },
    );
  }
}
