/**
 * The panel's head maps for the current run: one head's attention, or its value-weighted attention (the triangle
 * re-weighted by the head's value norms), fetched from the host on demand. One request per head in flight; at most
 * `MAP_CACHE` maps kept, the least recently used dropped first.
 */
import type { AttentionMode, HeadTriangle } from '../extension/common/engineProtocol';
import { HeadMap } from './attention';
import { valueWeightedTriangle } from './valueWeighted';

const MAP_CACHE = 12;

/** What the maps are made from (the host's answers) and where a failure is reported. */
export interface HeadMapSource {
  headTriangle(version: number, layer: number, head: number): Promise<HeadTriangle>;
  valueNorms(version: number, layer: number, head: number): Promise<Float32Array>;
  /** A head could not be loaded. */
  failed(layer: number, head: number, err: Error): void;
}

export class HeadMaps {
  private readonly maps = new Map<string, HeadMap>();
  private readonly loading = new Map<string, Promise<HeadMap | undefined>>();
  private version: number | undefined;
  private mode: AttentionMode = 'attention';

  constructor(private readonly source: HeadMapSource) {}

  /** A new run or attention mode: every map is dropped (answers still in flight are not kept). */
  reset(version: number | undefined, mode: AttentionMode): void {
    this.version = version;
    this.mode = mode;
    this.maps.clear();
    this.loading.clear();
  }

  /** A map already loaded, without a request. */
  cached(layer: number, head: number): HeadMap | undefined {
    return this.version === undefined ? undefined : this.maps.get(`${this.version}:${layer}.${head}`);
  }

  /** The head's map (undefined: no run, or it failed and `failed` was told). */
  load(layer: number, head: number): Promise<HeadMap | undefined> {
    const { version, mode } = this;
    if (version === undefined) return Promise.resolve(undefined);
    const key = `${version}:${layer}.${head}`;
    const have = this.maps.get(key);
    if (have) {
      this.maps.delete(key); // LRU: re-insert as newest
      this.maps.set(key, have);
      return Promise.resolve(have);
    }
    const pending = this.loading.get(key);
    if (pending) return pending;
    const triangle = this.source.headTriangle(version, layer, head);
    const weights =
      mode === 'value-weighted'
        ? Promise.all([triangle, this.source.valueNorms(version, layer, head)]).then(([tri, norms]) => valueWeightedTriangle(tri, norms))
        : triangle;
    const p = weights.then(
      (tri) => {
        const map = HeadMap.fromTriangle(layer, head, tri);
        if (this.loading.get(key) === p) this.loading.delete(key);
        if (this.version !== version || this.mode !== mode) return map;
        this.maps.set(key, map);
        while (this.maps.size > MAP_CACHE) this.maps.delete(this.maps.keys().next().value!);
        return map;
      },
      (err: Error) => {
        if (this.loading.get(key) === p) this.loading.delete(key);
        this.source.failed(layer, head, err);
        return undefined;
      },
    );
    this.loading.set(key, p);
    return p;
  }
}
