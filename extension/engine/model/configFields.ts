/**
 * Reading config.json fields with Hugging Face's defaults, each refusal a HeadlightError that names the file and the
 * field. The families' config parsers are written with these.
 */
import { basename } from 'node:path';
import { HeadlightError } from '../../common/errors.js';

/**
 * The largest size a config field may give: above every real model's (layers, widths, vocabularies, and contexts
 * such as Llama 4's 10,485,760 positions).
 */
export const MAX_SIZE = 2 ** 24;

export class ConfigFields {
  readonly name: string;

  constructor(
    readonly json: Record<string, unknown>,
    file: string,
    /** Where json sits in the file, for errors: e.g. `text_config.` (a multimodal Gemma 3 config's text model). */
    readonly prefix = '',
  ) {
    this.name = basename(file);
  }

  /** The raw value; `null` counts as absent (configs write null for "use the default"). */
  get(key: string): unknown {
    const v = this.json[key];
    return v === null ? undefined : v;
  }

  fail(key: string, what: string, hint = 'Fix config.json or download the checkpoint again.'): never {
    throw new HeadlightError('checkpoint-bad-config', `${this.name}: "${this.prefix}${key}" ${what}.`, hint);
  }

  int(key: string, fallback?: number): number {
    const v = this.get(key) ?? fallback;
    if (!Number.isSafeInteger(v) || (v as number) <= 0) this.fail(key, `must be a positive integer, got ${describe(this.json[key])}`);
    // A dimension bomb (num_hidden_layers: 1e12) would size arrays before the tensors could disagree with it.
    if ((v as number) > MAX_SIZE) this.fail(key, `is ${v as number}, larger than any model's sizes (at most ${MAX_SIZE})`);
    return v as number;
  }

  num(key: string, fallback?: number): number {
    const v = this.get(key) ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || !(v > 0)) this.fail(key, `must be a positive number, got ${describe(this.json[key])}`);
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.get(key) ?? fallback;
    if (typeof v !== 'boolean') this.fail(key, `must be true or false, got ${describe(v)}`);
    return v;
  }

  /** A token id, or undefined when absent. */
  tokenId(key: string): number | undefined {
    const v = this.get(key);
    if (v === undefined || Array.isArray(v)) return undefined; // some configs list several eos ids
    if (!Number.isSafeInteger(v) || (v as number) < 0) this.fail(key, `must be a token id, got ${describe(v)}`);
    return v as number;
  }

  /**
   * A number field that null switches off (Gemma's soft-caps, sliding_window): the fallback when the key is absent,
   * null when it is null, else a positive number (an integer when `integer`).
   */
  optional(key: string, fallback: number | null, integer = false): number | null {
    if (!(key in this.json)) return fallback;
    if (this.json[key] === null) return null;
    return integer ? this.int(key) : this.num(key);
  }

  /** A nested object (rope_scaling, rope_parameters), or undefined when absent. */
  object(key: string): Record<string, unknown> | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(key, `must be an object, got ${describe(v)}`);
    return v as Record<string, unknown>;
  }
}

/** A value for a message: its JSON, shortened; a value nested too deeply to serialize is named by its kind. */
export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  let s: string;
  try {
    s = JSON.stringify(v);
  } catch {
    s = `${Array.isArray(v) ? 'an array' : 'an object'} nested too deeply to show`; // JSON.stringify recurses
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
