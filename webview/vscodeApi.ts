/** The webview's side of the VS Code bridge: the `acquireVsCodeApi` handle as an rpc Channel, plus saved state. */
import type { Channel } from '../extension/common/rpc';

export interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

/** Acquires the API (callable once per page) and wraps it as a Channel over window `message` events. */
export function connectToHost(): { api: VsCodeApi; channel: Channel } {
  const api = acquireVsCodeApi();
  const channel: Channel = {
    send: (message) => api.postMessage(message),
    onMessage: (listener) => {
      const handler = (e: MessageEvent) => listener(e.data);
      window.addEventListener('message', handler);
      return () => window.removeEventListener('message', handler);
    },
  };
  return { api, channel };
}

/** Typed wrapper over getState/setState that fills missing fields from defaults (state from older versions). */
export function loadState<S extends object>(api: VsCodeApi, defaults: S): S {
  const saved = api.getState();
  return saved && typeof saved === 'object' ? { ...defaults, ...(saved as Partial<S>) } : { ...defaults };
}
