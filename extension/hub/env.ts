/**
 * Hugging Face environment, read the way Python's huggingface_hub reads it. Every function takes the environment
 * as data (`env`, default `process.env`) so tests and the extension can point at a private cache.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export type Env = Record<string, string | undefined>;

/** Where the Hub is and where its cache lives, as resolved from the environment. */
export interface HubEnv {
  /** `HF_ENDPOINT`, default `https://huggingface.co`, no trailing slash. */
  endpoint: string;
  /** `HF_HOME`, default `$XDG_CACHE_HOME/huggingface` or `~/.cache/huggingface`. */
  hfHome: string;
  /** `HF_HUB_CACHE`, legacy `HUGGINGFACE_HUB_CACHE`, default `$HF_HOME/hub`. */
  hubCache: string;
  /** `HF_HUB_OFFLINE` or `TRANSFORMERS_OFFLINE` set to 1/ON/YES/TRUE: no HTTP request at all. */
  offline: boolean;
  /** `HF_TOKEN`, then `HUGGING_FACE_HUB_TOKEN`, then the file `$HF_HOME/token` (or `HF_TOKEN_PATH`). */
  token?: string;
}

const TRUE_VALUES = new Set(['1', 'ON', 'YES', 'TRUE']);

function nonEmpty(v: string | undefined): string | undefined {
  return v !== undefined && v.trim() !== '' ? v.trim() : undefined;
}

function expandHome(p: string, env: Env): string {
  if (p === '~' || p.startsWith('~/') || p.startsWith('~\\')) return join(homeOf(env), p.slice(1));
  return p;
}

function homeOf(env: Env): string {
  return nonEmpty(env.HOME) ?? nonEmpty(env.USERPROFILE) ?? homedir();
}

function isTrue(v: string | undefined): boolean {
  return v !== undefined && TRUE_VALUES.has(v.trim().toUpperCase());
}

function readTokenFile(path: string): string | undefined {
  try {
    return nonEmpty(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Resolves endpoint, cache folders, offline mode and token from `env` (default `process.env`). */
export function hubEnv(env: Env = process.env): HubEnv {
  const xdg = nonEmpty(env.XDG_CACHE_HOME);
  const hfHome = resolve(
    expandHome(nonEmpty(env.HF_HOME) ?? join(xdg ? expandHome(xdg, env) : join(homeOf(env), '.cache'), 'huggingface'), env),
  );
  const cacheVar = nonEmpty(env.HF_HUB_CACHE) ?? nonEmpty(env.HUGGINGFACE_HUB_CACHE);
  const hubCache = resolve(cacheVar ? expandHome(cacheVar, env) : join(hfHome, 'hub'));
  const endpoint = (nonEmpty(env.HF_ENDPOINT) ?? 'https://huggingface.co').replace(/\/+$/, '');
  const offline = isTrue(env.HF_HUB_OFFLINE) || isTrue(env.TRANSFORMERS_OFFLINE);
  const tokenPath = nonEmpty(env.HF_TOKEN_PATH) ? expandHome(env.HF_TOKEN_PATH!.trim(), env) : join(hfHome, 'token');
  const token = nonEmpty(env.HF_TOKEN) ?? nonEmpty(env.HUGGING_FACE_HUB_TOKEN) ?? readTokenFile(tokenPath);
  return { endpoint, hfHome, hubCache, offline, token };
}
