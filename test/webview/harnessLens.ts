/**
 * The harness's lens and attribution answers (browser side): from test/fixtures/recorded-lens.json, recorded from the
 * real engine on the recorded run (test/webview/recordLens.ts). A `lensGrid` range is cut from the recorded
 * whole-window grid (the engine computes each position's column on its own, so a range's columns are the same);
 * `lensRequests` logs what the page asked, `lensDelayMs` makes each grid piece take time (progress, cancel).
 */
import type { Attribution, EngineRequests, LensGrid, TokenLens } from '../../extension/common/engineProtocol';
import { HeadlightError } from '../../extension/common/errors';

interface AttributionJson extends Omit<Attribution, 'heads' | 'mlp' | 'attnBias'> {
  heads: string;
  mlp: string;
  attnBias: string | null;
}

export interface LensFixture {
  grid: { start: number; end: number; rows: number; logprob: string; top1: string; topIds: string; topLogprob: string; settles: string };
  at: (Omit<TokenLens, 'logprob'> & { logprob: (number | null)[] })[];
  attributions: Record<string, AttributionJson>;
}

function bytes(s: string): ArrayBuffer {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

const K = 5;

export class LensAnswers {
  /** Every lens/attribution request, as `method start:end` or `method index`. */
  readonly requests: string[] = [];
  delayMs = 0;

  constructor(private readonly f: LensFixture) {}

  lensAt(p: EngineRequests['lensAt'][0]): TokenLens {
    this.requests.push(`lensAt ${p.index}`);
    const a = this.f.at[p.index];
    if (!a) throw new HeadlightError('bad-index', `Token ${p.index} is outside the recorded run.`);
    return { ...a, logprob: Float32Array.from(a.logprob, (x) => (x === null ? NaN : x)) };
  }

  async lensGrid(p: EngineRequests['lensGrid'][0], signal?: AbortSignal): Promise<LensGrid> {
    this.requests.push(`lensGrid ${p.start}:${p.end}`);
    const g = this.f.grid;
    const T = g.end - g.start;
    if (!(p.start >= 0 && p.start < p.end && p.end <= T)) throw new HeadlightError('bad-window', `Lens range ${p.start}:${p.end} is outside the run's ${T} tokens.`);
    if (this.delayMs) {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, this.delayMs);
        signal?.addEventListener('abort', () => {
          clearTimeout(t);
          reject(new HeadlightError('cancelled', 'lensGrid was cancelled.'));
        }, { once: true });
      });
    }
    const n = p.end - p.start;
    const rows = g.rows;
    const logprob = new Float32Array(bytes(g.logprob));
    const top1 = new Int32Array(bytes(g.top1));
    const topIds = new Int32Array(bytes(g.topIds));
    const topLogprob = new Float32Array(bytes(g.topLogprob));
    const out: LensGrid = { start: p.start, end: p.end, rows, logprob: new Float32Array(rows * n), top1: new Int32Array(rows * n), topIds: new Int32Array(rows * n * K), topLogprob: new Float32Array(rows * n * K), settles: new Int32Array(bytes(g.settles)).slice(p.start, p.end), gflops: 1, ms: this.delayMs };
    for (let l = 0; l < rows; l++) {
      out.logprob.set(logprob.subarray(l * T + p.start, l * T + p.end), l * n);
      out.top1.set(top1.subarray(l * T + p.start, l * T + p.end), l * n);
      out.topIds.set(topIds.subarray((l * T + p.start) * K, (l * T + p.end) * K), l * n * K);
      out.topLogprob.set(topLogprob.subarray((l * T + p.start) * K, (l * T + p.end) * K), l * n * K);
    }
    return out;
  }

  attribute(p: EngineRequests['attribute'][0]): Attribution {
    this.requests.push(`attribute ${p.index}${p.vs === undefined ? '' : ` vs ${p.vs}`}`);
    const key = p.vs === undefined && p.target === undefined ? String(p.index) : `${p.index}:${p.target}:${p.vs}`;
    const a = this.f.attributions[key];
    if (!a) throw new HeadlightError('not-recorded', `No recorded attribution ${key}.`);
    return { ...a, heads: new Float32Array(bytes(a.heads)), mlp: new Float32Array(bytes(a.mlp)), attnBias: a.attnBias === null ? null : new Float32Array(bytes(a.attnBias)) };
  }
}
