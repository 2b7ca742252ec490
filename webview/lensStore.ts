/**
 * The logit lens of the panel's run, as far as it was computed: columns (one token at every layer) filled from
 * `lensGrid` pieces for the tokens the Logit lens tab shows, and the texts of the guesses' token ids (from `lensAt`,
 * which decodes them). Nothing is asked while the tab is closed: the grid, the commitment strip and the cell tooltips
 * read what is here. One store per run version; a new run empties it.
 */
import type { LensGrid, TokenLens } from '../extension/common/engineProtocol';

/** Tokens per `lensGrid` request: progress steps and the unit a cancel drops. */
export const LENS_PIECE = 32;
/** Guesses kept per cell (the engine's LENS_TOP_K). */
export const LENS_K = 5;

export interface LensRequests {
  lensGrid(version: number, start: number, end: number, signal: AbortSignal): Promise<LensGrid>;
  lensAt(version: number, index: number, signal?: AbortSignal): Promise<TokenLens>;
}

/** What the store is doing: `total` tokens asked for this pass, `done` of them arrived; `stopped`: cancelled. */
export interface LensProgress {
  done: number;
  total: number;
  busy: boolean;
  stopped: boolean;
  error?: string;
}

export class LensStore {
  private version: number | undefined;
  private model: string | undefined;
  private T = 0;
  /** L + 1 once the first piece arrived. */
  rows = 0;
  /** [T·rows] layer-major per token: logprob[i * rows + l] (NaN: no target). Filled where `has[i]`. */
  private logprob = new Float32Array(0);
  /** [T·rows·K]: topIds[(i * rows + l) * K + k]. */
  private topIds = new Int32Array(0);
  private topLogprob = new Float32Array(0);
  private settles = new Int32Array(0);
  private has = new Uint8Array(0);
  /** Token id -> its text, from every `lensAt` answer. */
  readonly texts = new Map<number, string>();
  private readonly lenses = new Map<number, Promise<TokenLens>>();
  private inflight: AbortController | undefined;
  private queue: [number, number][] = [];
  progress: LensProgress = { done: 0, total: 0, busy: false, stopped: false };
  private readonly listeners = new Set<() => void>();

  constructor(private readonly req: LensRequests) {}

  onChange(l: () => void): void {
    this.listeners.add(l);
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  /** A new run: everything computed for the old one is dropped, a pass in flight cancelled; the texts too with a new model. */
  reset(version: number, T: number, model: string): void {
    this.cancel(false);
    if (model !== this.model) this.texts.clear(); // token ids name other texts in another vocabulary
    this.model = model;
    this.version = version;
    this.T = T;
    this.rows = 0;
    this.has = new Uint8Array(T);
    this.settles = new Int32Array(T);
    this.lenses.clear();
    this.progress = { done: 0, total: 0, busy: false, stopped: false };
    this.changed();
  }

  get length(): number {
    return this.T;
  }

  hasColumn(i: number): boolean {
    return this.has[i] === 1;
  }

  /** Tokens whose lens is here. */
  get computed(): number {
    let n = 0;
    for (let i = 0; i < this.T; i++) n += this.has[i];
    return n;
  }

  /** ln p(next token) read at layer l (row `rows − 1`: the model's output); NaN without a target or not computed. */
  logprobAt(i: number, l: number): number {
    return this.has[i] ? this.logprob[i * this.rows + l] : NaN;
  }

  top1(i: number, l: number): number {
    return this.has[i] ? this.topIds[(i * this.rows + l) * LENS_K] : -1;
  }

  /** The cell's top guesses: id, ln p and the text when known. */
  top(i: number, l: number): { id: number; logprob: number; text: string | undefined }[] {
    if (!this.has[i]) return [];
    const base = (i * this.rows + l) * LENS_K;
    return Array.from({ length: LENS_K }, (_, k) => {
      const id = this.topIds[base + k];
      return { id, logprob: this.topLogprob[base + k], text: this.texts.get(id) };
    });
  }

  /** The first layer from which the token's lens top-1 is the model's and stays so; undefined when not computed. */
  settleOf(i: number): number | undefined {
    return this.has[i] ? this.settles[i] : undefined;
  }

  /**
   * Makes sure tokens start..end−1 are computed: missing ones are asked in pieces of LENS_PIECE, in order from the
   * first; a new call replaces the queue of the last (the visible range moved); the piece in flight finishes.
   */
  want(start: number, end: number): void {
    if (this.version === undefined) return;
    const pieces: [number, number][] = [];
    const busy = (i: number) => this.has[i] === 1 || (this.inflightRange !== undefined && i >= this.inflightRange[0] && i < this.inflightRange[1]);
    for (let a = Math.max(0, start); a < Math.min(end, this.T); ) {
      if (busy(a)) {
        a++;
        continue;
      }
      let b = a;
      while (b < Math.min(end, this.T) && !busy(b) && b - a < LENS_PIECE) b++;
      pieces.push([a, b]);
      a = b;
    }
    this.queue = pieces;
    const total = pieces.reduce((s, [a, b]) => s + b - a, 0);
    if (!this.inflight) {
      this.progress = { done: 0, total, busy: total > 0, stopped: false };
      this.changed();
      void this.pump();
    } else {
      const inflight = this.inflightRange ? this.inflightRange[1] - this.inflightRange[0] : 0;
      this.progress = { ...this.progress, total: this.progress.done + total + inflight, stopped: false };
      this.changed();
    }
  }

  /** The tokens of the piece in flight. */
  private inflightRange: [number, number] | undefined;

  private async pump(): Promise<void> {
    const version = this.version!;
    while (this.queue.length && this.version === version) {
      const [a, b] = this.queue.shift()!;
      if (this.has.subarray(a, b).every((x) => x === 1)) continue;
      const controller = new AbortController();
      this.inflight = controller;
      this.inflightRange = [a, b];
      try {
        const g = await this.req.lensGrid(version, a, b, controller.signal);
        if (this.version !== version || controller.signal.aborted) return;
        this.put(g);
        this.progress = { ...this.progress, done: this.progress.done + (b - a) };
      } catch (err) {
        if (controller.signal.aborted || this.version !== version) return;
        const e = err as { code?: string; message: string };
        this.queue = [];
        this.progress = { ...this.progress, busy: false, error: e.code === 'stale-run' ? undefined : e.message };
        this.changed();
        return;
      } finally {
        if (this.inflight === controller) {
          this.inflight = undefined;
          this.inflightRange = undefined;
        }
      }
      this.changed();
    }
    if (this.version === version) {
      this.progress = { ...this.progress, busy: false };
      this.changed();
    }
  }

  /** Stops the pass: the piece in flight is cancelled (the engine stops between its runs), the rest dropped. */
  cancel(notify = true): void {
    const was = this.inflight !== undefined || this.queue.length > 0;
    this.queue = [];
    this.inflight?.abort();
    this.inflight = undefined;
    this.inflightRange = undefined;
    if (was) this.progress = { ...this.progress, busy: false, stopped: true };
    if (notify) this.changed();
  }

  private put(g: LensGrid): void {
    const n = g.end - g.start;
    if (!this.rows) {
      this.rows = g.rows;
      this.logprob = new Float32Array(this.T * g.rows);
      this.topIds = new Int32Array(this.T * g.rows * LENS_K);
      this.topLogprob = new Float32Array(this.T * g.rows * LENS_K);
    }
    const R = this.rows;
    for (let j = 0; j < n; j++) {
      const i = g.start + j;
      for (let l = 0; l < R; l++) {
        const cell = l * n + j; // [L+1, n] layer-major
        this.logprob[i * R + l] = g.logprob[cell];
        this.topIds.set(g.topIds.subarray(cell * LENS_K, (cell + 1) * LENS_K), (i * R + l) * LENS_K);
        this.topLogprob.set(g.topLogprob.subarray(cell * LENS_K, (cell + 1) * LENS_K), (i * R + l) * LENS_K);
      }
      this.settles[i] = g.settles[j];
      this.has[i] = 1;
    }
  }

  /** One token's lens at every layer with its guesses' texts (cached; the texts are kept for the grid's cells). */
  lensAt(i: number): Promise<TokenLens> {
    const version = this.version;
    if (version === undefined) return Promise.reject(new Error('Nothing is analysed yet.'));
    let p = this.lenses.get(i);
    if (!p) {
      p = this.req.lensAt(version, i).then((t) => {
        for (const row of t.top) for (const g of row) this.texts.set(g.id, g.text);
        return t;
      });
      this.lenses.set(i, p);
      p.catch(() => this.lenses.delete(i));
    }
    return p;
  }

  /** Whether the guesses of cell (i, l) all have known texts. */
  textsKnownAt(i: number, l: number): boolean {
    return this.top(i, l).every((g) => g.text !== undefined);
  }

  /** Whether every guess id of token i's column has a known text. */
  textsKnown(i: number): boolean {
    if (!this.has[i]) return true;
    for (let l = 0; l < this.rows; l++) if (!this.texts.has(this.top1(i, l))) return false;
    return true;
  }
}
