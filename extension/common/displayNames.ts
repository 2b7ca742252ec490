/**
 * The names the user reads for a model and for a head selection, one source for every view (status bar, panel,
 * sidebar, hover), so the same thing is never called two names.
 */
import type { HeadSelector } from './engineProtocol';

/** The bundled model's name: its folder in `models/` and its model card. */
export const BUNDLED_MODEL_NAME = 'headlight-tiny';

/**
 * A model reference ('bundled', a Hugging Face repo id, a folder) as a short name: the bundled model's own name,
 * else the last path segment ("openai-community/gpt2" -> "gpt2", "/home/me/models/my-gpt" -> "my-gpt").
 */
export function modelDisplayName(ref: string): string {
  if (ref === 'bundled') return BUNDLED_MODEL_NAME;
  const parts = ref.split(/[\\/]/).filter(Boolean);
  return parts[parts.length - 1] ?? ref;
}

/** What a head selector shows: "L2 H3", "layer 2 mean", "mean of all layers". */
export function selectorLabel(sel: HeadSelector): string {
  if (sel.layer === 'mean') return 'mean of all layers';
  if (sel.head === 'mean') return `layer ${sel.layer} mean`;
  return `L${sel.layer} H${sel.head}`;
}
