/**
 * Verifying a download against the Hub's etag: sha256 for LFS files (`X-Linked-Etag`), git blob sha1 for small
 * files (`ETag` = sha1("blob <len>\0" + content)). Large files are hashed by a worker thread that reads the partial
 * file behind the writer (from the page cache), so hashing overlaps the transfer instead of slowing it down.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Worker } from 'node:worker_threads';

export type EtagKind = 'sha256' | 'git-sha1' | 'unknown';

/** What an etag is a hash of: 64 hex = sha256 of the content, 40 hex = git blob sha1. */
export function etagKind(etag: string): EtagKind {
  if (/^[0-9a-f]{64}$/.test(etag)) return 'sha256';
  if (/^[0-9a-f]{40}$/.test(etag)) return 'git-sha1';
  return 'unknown';
}

/** Strips `W/` and quotes: `W/"abc"` -> `abc`. */
export function normalizeEtag(raw: string): string {
  return raw.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

/** Hashes a file as it grows: `advance(n)` says the first n bytes are on disk, `finish(n)` gives the digest. */
export interface FileHasher {
  advance(bytesOnDisk: number): void;
  finish(totalBytes: number): Promise<string>;
  dispose(): void;
}

function algoFor(kind: EtagKind): string {
  return kind === 'git-sha1' ? 'sha1' : 'sha256';
}

function prefixFor(kind: EtagKind, size: number): string | undefined {
  return kind === 'git-sha1' ? `blob ${size}\0` : undefined;
}

/** Hashes the whole file once it is complete; for small files, where a worker would cost more than it saves. */
class HashAtEnd implements FileHasher {
  constructor(
    private readonly path: string,
    private readonly kind: EtagKind,
  ) {}
  advance(): void {}
  async finish(totalBytes: number): Promise<string> {
    const h = createHash(algoFor(this.kind));
    const prefix = prefixFor(this.kind, totalBytes);
    if (prefix) h.update(prefix);
    for await (const chunk of createReadStream(this.path)) h.update(chunk as Buffer);
    return h.digest('hex');
  }
  dispose(): void {}
}

// Plain JS, evaluated as a CommonJS worker: follows the file as the main thread reports bytes written.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');
const h = crypto.createHash(workerData.algo);
const buf = Buffer.allocUnsafe(4 << 20);
let fd = -1, pos = 0, target = 0, total = -1, prefixed = false;
function pump() {
  if (fd < 0) fd = fs.openSync(workerData.path, 'r');
  while (pos < target) {
    const n = fs.readSync(fd, buf, 0, Math.min(buf.length, target - pos), pos);
    if (n <= 0) break;
    h.update(buf.subarray(0, n));
    pos += n;
  }
  if (total >= 0 && pos >= total) {
    fs.closeSync(fd);
    parentPort.postMessage({ digest: h.digest('hex') });
  }
}
parentPort.on('message', (m) => {
  if (m.prefix !== undefined && !prefixed) { h.update(m.prefix); prefixed = true; }
  if (m.total !== undefined) { total = m.total; target = m.total; }
  else target = Math.max(target, m.upTo);
  try { pump(); } catch (e) { parentPort.postMessage({ error: String(e && e.message || e) }); }
});
`;

/** Hashes in a worker thread that trails the writer; `advance` is a cheap message. */
class HashInWorker implements FileHasher {
  private readonly worker: Worker;
  private readonly result: Promise<string>;
  private lastSent = 0;

  constructor(path: string, private readonly kind: EtagKind) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, algo: algoFor(kind) } });
    this.result = new Promise<string>((resolve, reject) => {
      this.worker.on('message', (m: { digest?: string; error?: string }) => {
        if (m.digest) resolve(m.digest);
        else reject(new Error(`hashing ${path}: ${m.error}`));
      });
      this.worker.on('error', reject);
    });
    this.result.catch(() => undefined);
  }
  advance(bytesOnDisk: number): void {
    // Messages are cheap but not free: send every 8 MiB of progress.
    if (bytesOnDisk - this.lastSent < 8 << 20) return;
    this.lastSent = bytesOnDisk;
    this.worker.postMessage({ upTo: bytesOnDisk });
  }
  async finish(totalBytes: number): Promise<string> {
    this.worker.postMessage({ prefix: prefixFor(this.kind, totalBytes), total: totalBytes });
    try {
      return await this.result;
    } finally {
      this.dispose();
    }
  }
  dispose(): void {
    void this.worker.terminate();
  }
}

/** Git-sha1 needs the length first, so it is always hashed at the end; sha256 of large files trails in a worker. */
export function createFileHasher(path: string, kind: EtagKind, expectedSize: number | undefined): FileHasher {
  const big = expectedSize !== undefined && expectedSize >= 16 << 20;
  return big && kind === 'sha256' ? new HashInWorker(path, kind) : new HashAtEnd(path, kind);
}
