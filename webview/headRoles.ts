/**
 * The head finder's roles as the views show them: a letter for badges, a name for legends and tooltips.
 * Scores come from extension/engine/analyses/headFinder.ts through the `heads` event.
 */
import type { HeadRole } from '../extension/common/engineProtocol';
import type { HeadFinderView } from '../extension/common/webviewProtocol';

export const ROLES: readonly { role: HeadRole; letter: string; name: string; help: string }[] = [
  { role: 'previous-token', letter: 'P', name: 'previous-token', help: 'attends to the token just before' },
  { role: 'induction', letter: 'I', name: 'induction', help: 'on a repeated sequence, attends to the token after the earlier copy' },
  { role: 'first-token', letter: 'S', name: 'first-token (sink)', help: 'parks its weight on the first token' },
  { role: 'duplicate-token', letter: 'D', name: 'duplicate-token', help: 'attends to earlier copies of its own token' },
  { role: 'local', letter: 'L', name: 'local', help: 'attends to the last few tokens' },
];

export function roleLetter(role: string): string {
  return ROLES.find((r) => r.role === role)?.letter ?? '?';
}

/** Badge roles of head (l, h), strongest first. */
export function headBadges(heads: HeadFinderView | undefined, l: number, h: number): HeadRole[] {
  return heads?.badges[`${l}.${h}`] ?? [];
}

/** Every score of head (l, h), in the legend's order: "previous-token 0.94 · induction 0.02 · …". */
export function scoreLine(heads: HeadFinderView | undefined, l: number, h: number): string {
  if (!heads) return '';
  const k = l * heads.nHead + h;
  return ROLES.map(({ role }) => {
    const v = heads.scores[role]?.[k];
    return v === undefined ? '' : `${role} ${Number.isFinite(v) ? v.toFixed(2) : '—'}`;
  })
    .filter(Boolean)
    .join(' · ');
}
