/**
 * The attention panel's page: toolbar (title, stale badge, value-weighted toggle, exports), the Heads pane, the
 * tabs (head matrix, text, inside a head) with their controls, the status line. It builds the DOM and wires each
 * control to the panel's handlers (`PanelControls`); panel.ts owns the state and the data.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-tabs/index.js';
import '@vscode-elements/elements/dist/vscode-tab-header/index.js';
import '@vscode-elements/elements/dist/vscode-tab-panel/index.js';
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import type { AttentionMode } from '../extension/common/engineProtocol';
import type { SaveKind } from '../extension/common/webviewProtocol';
import { el } from './dom';
import type { InsideHead } from './insideHead/index';
import type { CompareView } from './compareView';
import type { MatrixView } from './matrixView';
import type { ModelView } from './modelView';
import type { PanelState } from './panelState';
import type { SurprisalStrip } from './surprisalStrip';
import type { TextView } from './textView';
import type { LensGridView } from './lensGrid';
import type { CommitmentStrip } from './commitmentStrip';
import type { AttributionView } from './attributionView';
import type { PatchView } from './patchView';

/** The views the page holds. */
export interface PanelParts {
  model: ModelView;
  matrix: MatrixView;
  text: TextView;
  strip: SurprisalStrip;
  inside: InsideHead;
  compare: CompareView;
  /** The Logit lens tab: the grid and the attribution at the cursor's token; the commitment strip goes in the text tab. */
  lens: LensGridView;
  commitment: CommitmentStrip;
  attribution: AttributionView;
  /** Activation patching, under the Compare view. */
  patch: PatchView;
}

/** What the controls do. */
export interface PanelControls {
  export(kind: SaveKind): void;
  /** The value-weighted toggle (the host writes the setting and answers with `attentionMode`). */
  setAttentionMode(mode: AttentionMode): void;
  /** A display option changed (log scale, reverse, sink dimming, threshold). */
  setOptions(patch: Partial<Pick<PanelState, 'log' | 'reverse' | 'dimSink' | 'threshold' | 'rollout'>>): void;
  selectTab(index: number): void;
  /** The user worked in a view (a PNG export saves the last one). */
  used(view: 'model' | 'matrix' | 'text'): void;
}

export type PanelUi = ReturnType<typeof buildPanelLayout>;

/** Builds the page into document.body from the saved state `s`. */
export function buildPanelLayout(parts: PanelParts, s: Readonly<PanelState>, c: PanelControls) {
  // two lines, each cut with an ellipsis when narrow (the full text is the title attribute): file, then model and size
  const title = el('div', { className: 'title' }, el('span', { className: 'doc-name' }, 'Headlight'), el('span', { className: 'subtitle' }));
  const stale = el('vscode-badge', { className: 'stale', hidden: true, title: 'The document changed since this analysis; the panel updates when the new one is ready.' }, 'stale');
  // the status line: what the editor and sidebar show (always), then the last message (`status`: loads, exports)
  const shown = el('span', { className: 'shown' });
  const status = el('span', { className: 'note' });
  const statusLine = el('div', { className: 'status', role: 'status', 'aria-live': 'polite' }, shown, status);
  const empty = el('div', { className: 'empty', hidden: true });
  const btn = (label: string, aria: string, onClick: () => void) => {
    const b = el('vscode-button', { secondary: true, 'aria-label': aria, title: aria }, label);
    b.addEventListener('click', onClick);
    return b;
  };
  const check = (label: string, checked: boolean, onChange: (v: boolean) => void) => {
    const box = el('vscode-checkbox', { label, 'aria-label': label }) as HTMLElement & { checked: boolean };
    box.checked = checked;
    box.addEventListener('change', () => onChange(box.checked));
    return box;
  };
  const exportBar = el('div', { className: 'exports', role: 'group', 'aria-label': 'Export' },
    btn('PNG', 'Save the current view as PNG', () => c.export('png')),
    btn('SVG', 'Save the head matrix as SVG', () => c.export('svg')),
    btn('JSON', "Save the selected head's attention map as JSON", () => c.export('json')),
  );
  const modeBox = check('Value-weighted', false, (v) => c.setAttentionMode(v ? 'value-weighted' : 'attention'));
  modeBox.classList.add('mode-toggle');
  modeBox.title = 'Weigh each attention edge by the norm of what the source token adds through the head, α·‖v·W_O‖ (everywhere: panel, sidebar, hover, editor)';
  const header = el('header', { className: 'toolbar' }, title, stale, modeBox, exportBar);

  const modelPane = el('section', { className: 'model-pane', 'aria-label': 'Model view' },
    el('h2', {}, 'Heads'), el('p', { className: 'hint' }, 'Click: select · shift+click: compare in text view'), parts.model.element);
  const logBox = check('Log colour scale', s.log, (v) => c.setOptions({ log: v }));
  const headLabel = el('span', { className: 'head-label' });
  const legend = el('span', { className: 'legend', 'aria-hidden': 'true' });
  const matrixControls = el('div', { className: 'controls', role: 'toolbar', 'aria-label': 'Head matrix controls' },
    headLabel, logBox,
    btn('+', 'Zoom in', () => parts.matrix.zoomBy(1.5)),
    btn('−', 'Zoom out', () => parts.matrix.zoomBy(1 / 1.5)),
    btn('Fit', 'Fit the whole matrix', () => parts.matrix.fit()),
    legend,
  );
  const reverseBox = check('Reverse: who attends to this token', s.reverse, (v) => c.setOptions({ reverse: v }));
  const sinkBox = check('Dim first-token sink', s.dimSink, (v) => c.setOptions({ dimSink: v }));
  const rolloutBox = check('Rollout: what this token is built from', s.rollout, (v) => c.setOptions({ rollout: v }));
  rolloutBox.classList.add('rollout-toggle');
  rolloutBox.title =
    'Attention rollout (Abnar & Zuidema): per layer the mean over heads plus the identity, rows normalized, multiplied through all layers. ' +
    'Caveat: causal masks bias it toward early tokens (the first token is in every row and gathers weight layer after layer).';
  const threshold = el('input', { type: 'range', min: '0', max: '0.5', step: '0.005', value: String(s.threshold), 'aria-label': 'Threshold: hide links weaker than this weight', className: 'threshold' }) as HTMLInputElement;
  const thresholdValue = el('output', { className: 'threshold-value' }, s.threshold.toFixed(3));
  threshold.addEventListener('input', () => {
    const v = Number(threshold.value);
    thresholdValue.textContent = v.toFixed(3);
    c.setOptions({ threshold: v });
  });
  const chips = el('span', { className: 'chips', role: 'list', 'aria-label': 'Compared heads' });
  const textControls = el('div', { className: 'controls', role: 'toolbar', 'aria-label': 'Text view controls' },
    reverseBox, sinkBox, rolloutBox, el('label', { className: 'range' }, 'Threshold ', threshold, thresholdValue), chips);
  const tabs = el('vscode-tabs', { 'selected-index': String(s.tab), className: 'views' },
    el('vscode-tab-header', { slot: 'header' }, 'Head matrix'),
    el('vscode-tab-panel', {}, el('div', { className: 'tab-body' }, matrixControls, parts.matrix.element)),
    el('vscode-tab-header', { slot: 'header' }, 'Text'),
    el('vscode-tab-panel', {}, el('div', { className: 'tab-body' }, textControls, parts.strip.element, parts.commitment.element, parts.text.element)),
    el('vscode-tab-header', { slot: 'header', className: 'inside-tab' }, 'Inside a head'),
    el('vscode-tab-panel', {}, el('div', { className: 'tab-body' }, parts.inside.element)),
    el('vscode-tab-header', { slot: 'header', className: 'compare-tab' }, 'Compare'),
    el('vscode-tab-panel', {}, el('div', { className: 'tab-body' }, parts.compare.element, parts.patch.element)),
    el('vscode-tab-header', { slot: 'header', className: 'lens-tab-header' }, 'Logit lens'),
    el('vscode-tab-panel', {}, el('div', { className: 'tab-body lens-tab' }, parts.lens.element, parts.attribution.element)),
  );
  tabs.addEventListener('vsc-tabs-select', (e) => c.selectTab((e as CustomEvent<{ selectedIndex: number }>).detail.selectedIndex));
  modelPane.addEventListener('pointerdown', () => c.used('model'));
  modelPane.addEventListener('focusin', () => c.used('model'));
  parts.matrix.element.addEventListener('pointerdown', () => c.used('matrix'));
  parts.text.element.addEventListener('pointerdown', () => c.used('text'));
  const main = el('main', { className: 'layout' }, modelPane, tabs);
  document.body.replaceChildren(header, empty, main, statusLine);
  return { modeBox, title, stale, status, shown, empty, chips, tabs, headLabel, legend, main, rolloutBox };
}
