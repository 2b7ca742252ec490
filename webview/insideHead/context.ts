/** What the Inside-a-head tab's sections share: the host's services and the tab's state (owned by `InsideHead`). */
import type { AblationMode, HeadRef, QkBreakdown } from '../../extension/common/engineProtocol';
import type { AblationView, RankingView, RunView } from '../../extension/common/webviewProtocol';
import type { Palette } from '../theme';

/** What the tab asks of the panel (which asks the host). */
export interface InsideHeadHost {
  qk(layer: number, head: number, index: number): Promise<QkBreakdown>;
  ablate(heads: HeadRef[], mode: AblationMode, at: number | undefined): Promise<AblationView>;
  rankHeads(mode: AblationMode, signal: AbortSignal): Promise<RankingView>;
  selectHead(layer: number, head: number): void;
  pickToken(index: number): void;
  clearAblation(): void;
}

/** The tab's state as its sections read it; only `InsideHead` writes it. */
export interface InsideState {
  readonly run: RunView | undefined;
  /** The selected head. */
  readonly layer: number;
  readonly head: number;
  /** The selected query token; undefined: none picked (Q·K then shows the last token). */
  readonly token: number | undefined;
  /** The tab is shown: only then is the Q·K breakdown fetched and a shown ablation re-run for a new token. */
  readonly visible: boolean;
  readonly palette: Palette;
}
