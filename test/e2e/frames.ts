/**
 * Waiting helpers of the UI e2e tests: find the webview frame that holds an element, and poll a value until it
 * passes a check (VS Code's webviews load and repaint asynchronously, out of Playwright's auto-waiting reach).
 */
import type { FrameLocator, Page } from 'playwright-core';

/** The content frame of the webview (two iframes deep: VS Code's host frame, then `#active-frame`) that holds `selector`. */
export async function frameWith(page: Page, selector: string, timeoutMs = 20_000): Promise<FrameLocator> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const frames = page.locator('iframe.webview.ready');
    const n = await frames.count();
    for (let i = 0; i < n; i++) {
      const frame = frames.nth(i).contentFrame().frameLocator('#active-frame');
      if ((await frame.locator(selector).count().catch(() => 0)) > 0) return frame;
    }
    await page.waitForTimeout(200);
  }
  throw new Error(`e2e: no webview holds ${selector} after ${timeoutMs} ms`);
}

/** Reads a value every 150 ms until `ok(value)` or the time is up; returns the last value read (the caller asserts). */
export async function pollFor<T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!ok(value) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 150));
    value = await read();
  }
  return value;
}
