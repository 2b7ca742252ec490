/**
 * Heads by name: which [layer, head] pairs a selector covers, and `LAYER.HEAD` as users type it. Runs anywhere
 * (engine, CLI, webview).
 */
import { HeadlightError } from './errors';
import type { HeadRef, HeadSelector } from './engineProtocol';

/** The heads a selector covers, as [layer, head] pairs: one head, every head of a layer, or every head. */
export function selectorHeads(sel: HeadSelector, nLayer: number, nHead: number): [number, number][] {
  if (typeof sel.head === 'number') return [[sel.layer as number, sel.head]];
  const layers = sel.layer === 'mean' ? Array.from({ length: nLayer }, (_, l) => l) : [sel.layer];
  return layers.flatMap((l) => Array.from({ length: nHead }, (_, h): [number, number] => [l, h]));
}

const HEAD = /^(\d+)\.(\d+)$/;

/** `--head L.H` -> one head (checked against the model by the engine). */
export function parseHead(spec: string | undefined, flag = '--head'): HeadRef {
  const m = spec === undefined ? null : HEAD.exec(spec.trim());
  if (!m) throw new HeadlightError('usage', `${flag} ${spec ?? ''}: expected LAYER.HEAD, e.g. 5.1.`);
  return { layer: Number(m[1]), head: Number(m[2]) };
}

/** `--heads 5.1,5.5` -> heads (checked against the model by the engine). */
export function parseHeads(spec: string, flag = '--heads'): HeadRef[] {
  const heads = spec.split(',').map((s) => s.trim()).filter(Boolean);
  if (!heads.length) throw new HeadlightError('usage', `${flag} ${spec}: name at least one head as LAYER.HEAD, e.g. 5.1,5.5.`);
  return heads.map((s) => {
    if (!HEAD.test(s)) throw new HeadlightError('usage', `${flag}: "${s}" is not LAYER.HEAD (e.g. 5.1).`);
    return parseHead(s, flag);
  });
}
