/** The tab's buttons: vscode-elements buttons whose accessible name is also their tooltip. */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import { el } from '../dom';

/** A `vscode-button` labelled `label`, named `aria` (also its title), secondary unless told. */
export function button(label: string, aria: string, onClick: () => void, secondary = true): HTMLElement {
  const b = el('vscode-button', { secondary, 'aria-label': aria, title: aria }, label);
  b.addEventListener('click', onClick);
  return b;
}
