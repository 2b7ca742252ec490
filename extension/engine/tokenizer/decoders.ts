/**
 * Decoders of `tokenizer.json` (ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence): token strings
 * in, text out, chained as Hugging Face's `decode_chain` does. Also the text one token shows users.
 */
import { HeadlightError } from '../../common/errors.js';
import { byteToUnicode } from './bpeMerge.js';
import { patternRegex } from './normalizers.js';
import { shown } from './shown.js';

/** One step of the chain: the list of token strings in, a new list out. */
export type DecodeStep = (tokens: string[]) => string[];

const CHAR_TO_BYTE = new Map(byteToUnicode().map((ch, b) => [ch, b] as const));
const utf8 = new TextDecoder('utf-8');
const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

function byteLevel(tokens: string[]): string[] {
  const bytes: number[] = [];
  for (const t of tokens) {
    const mapped: number[] = [];
    let all = true;
    for (const ch of t) {
      const b = CHAR_TO_BYTE.get(ch);
      if (b === undefined) {
        all = false;
        break;
      }
      mapped.push(b);
    }
    if (all) bytes.push(...mapped);
    else bytes.push(...new TextEncoder().encode(t));
  }
  return [utf8.decode(Uint8Array.from(bytes))];
}

function byteFallback(tokens: string[]): string[] {
  const out: string[] = [];
  let pending: number[] = [];
  const flush = (): void => {
    if (pending.length === 0) return;
    try {
      out.push(new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(pending)));
    } catch {
      for (let k = 0; k < pending.length; k++) out.push('\ufffd');
    }
    pending = [];
  };
  for (const t of tokens) {
    const m = t.length === 6 ? BYTE_TOKEN.exec(t) : null;
    if (m) pending.push(parseInt(m[1]!, 16));
    else {
      flush();
      out.push(t);
    }
  }
  flush();
  return out;
}

function unsupported(where: string, what: string): HeadlightError {
  return new HeadlightError(
    'tokenizer-unsupported',
    `${where}: the decoder ${what} is not supported.`,
    'Headlight reads the decoders ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip and Sequence; please open an issue with the model name.',
  );
}

/** The chain of a `decoder` JSON object (null: tokens are joined as they are). */
export function buildDecoder(json: unknown, where: string): DecodeStep[] {
  if (json === null || json === undefined) return [];
  const spec = json as Record<string, unknown>;
  switch (spec['type']) {
    case 'Sequence': {
      const list = spec['decoders'];
      if (!Array.isArray(list)) throw unsupported(where, 'Sequence without a "decoders" list');
      return list.flatMap((d, k) => buildDecoder(d, `${where}.decoders[${k}]`));
    }
    case 'ByteLevel':
      return [byteLevel];
    case 'ByteFallback':
      return [byteFallback];
    case 'Fuse':
      return [(tokens) => [tokens.join('')]];
    case 'Replace': {
      const re = patternRegex(spec['pattern'], `${where}.pattern`);
      const content = String(spec['content'] ?? '');
      return [(tokens) => tokens.map((t) => t.replace(re, () => content))];
    }
    case 'Strip': {
      const content = String(spec['content'] ?? ' ');
      const start = Number(spec['start'] ?? 0);
      const stop = Number(spec['stop'] ?? 0);
      return [
        (tokens) =>
          tokens.map((t) => {
            const chars = [...t];
            let s = 0;
            while (s < start && s < chars.length && chars[s] === content) s++;
            let e = chars.length;
            while (chars.length - e < stop && e > s && chars[e - 1] === content) e--;
            return chars.slice(s, e).join('');
          }),
      ];
    }
    case 'Metaspace': {
      const replacement = typeof spec['replacement'] === 'string' ? spec['replacement'] : '▁';
      let scheme = (spec['prepend_scheme'] as string | undefined) ?? 'always';
      if (spec['add_prefix_space'] === false) scheme = 'never';
      return [(tokens) => tokens.map((t, i) => [...t].map((c) => (c === replacement ? (i === 0 && scheme !== 'never' ? '' : ' ') : c)).join(''))];
    }
    default:
      throw unsupported(where, shown(spec['type']));
  }
}

export function runDecoder(steps: DecodeStep[], tokens: string[]): string {
  return steps.reduce((acc, step) => step(acc), tokens).join('');
}

/**
 * The text of one token as users see it: the chain applied to the token alone, except the steps that only make sense
 * at the start of a text (Strip, Metaspace's dropped first space), so "▁the" shows as " the"; a byte of a split
 * character shows as U+FFFD.
 */
export function displayStepsOf(json: unknown, where: string): DecodeStep[] {
  if (json === null || json === undefined) return [];
  const spec = json as Record<string, unknown>;
  if (spec['type'] === 'Sequence' && Array.isArray(spec['decoders'])) return spec['decoders'].flatMap((d, k) => displayStepsOf(d, `${where}.decoders[${k}]`));
  if (spec['type'] === 'Strip') return [];
  if (spec['type'] === 'Metaspace') return buildDecoder({ ...spec, prepend_scheme: 'never', add_prefix_space: undefined }, where);
  return buildDecoder(spec, where);
}
