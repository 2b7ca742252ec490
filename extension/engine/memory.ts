/**
 * Garbage collection after large runs. onnxruntime-node copies every output into a fresh ArrayBuffer; after a run
 * of T=1024 on GPT-2 small ~330 MB of them are garbage once the run is stored, but V8 frees ArrayBuffers only at its
 * next major collection, so the next run's outputs were allocated beside them (engine peak RSS 2.44 GB; 2.10 GB
 * with a collection after each large run). A full collection of the engine's small JS heap takes a few ms.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

/** Runs a full garbage collection on the next turn of the event loop (after the caller's reply is sent). */
export function collectSoon(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  setImmediate(gc);
}
