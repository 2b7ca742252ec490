/**
 * Webview benchmark: the real panel bundle in headless Chromium with GPT-2-small shapes (12 × 12 heads, T = 1024,
 * synthetic weights). Medians of: model view first paint after the run arrives (bar 300 ms), switching the selected
 * head (50 ms), token highlight on pointer move (16 ms), bytes sent to the webview for the initial panel (2 MB).
 *   node --import tsx bench/webview.ts
 */
import { startHarness } from '../test/webview/harness';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const h = await startHarness();
  try {
    const firstPaint: number[] = [];
    const bytes: number[] = [];
    const switches: number[] = [];
    const highlights: number[] = [];
    for (let rep = 0; rep < 3; rep++) {
      const page = await h.open('panel', { width: 1400, height: 900 });
      // data generation (the engine's work) is outside the measurement: warm the synthetic triangles first
      await page.evaluate(() => {
        const d = window.harness.synthetic(1024);
        for (let l = 0; l < 2; l++) for (let hd = 0; hd < 12; hd++) d.triangle(l, hd);
        // the head finder's scores are the engine's work too: hand the harness a ready answer
        const zeros = () => new Float32Array(144);
        window.harness.source.headScores = { nLayer: 12, nHead: 12, scores: { 'previous-token': zeros(), 'first-token': zeros() }, badges: { '1.1': ['previous-token'] } };
        (window as unknown as { data: unknown }).data = d;
      });
      const ms = await page.evaluate(() => new Promise<number>((resolve) => {
        const t0 = performance.now();
        window.addEventListener('headlight:painted', function on(e) {
          if ((e as CustomEvent).detail.view !== 'model') return;
          window.removeEventListener('headlight:painted', on);
          requestAnimationFrame(() => resolve(performance.now() - t0));
        });
        window.harness.source.setRun((window as unknown as { data: Parameters<typeof window.harness.source.setRun>[0] }).data, 1);
      }));
      firstPaint.push(ms);
      await page.waitForFunction(() => /layer 0, head 0/.test(document.querySelector('.matrix-base')?.getAttribute('aria-label') ?? ''));
      await page.waitForTimeout(200);
      bytes.push(await page.evaluate(() => window.harness.bytesToWebview));
      // switch heads: click thumbnails of layer 1, heads 0..7; time from click to the matrix painted + a frame
      const rect = await page.evaluate(() => document.querySelector('.model canvas')!.getBoundingClientRect().toJSON());
      const pitch = (rect.width - 30) / 12;
      for (let hd = 0; hd < 8; hd++) {
        const x = rect.x + 30 + hd * pitch + 5;
        const y = rect.y + 16 + pitch + 5;
        const t = await page.evaluate(([x, y]) => new Promise<number>((resolve) => {
          const t0 = performance.now();
          window.addEventListener('headlight:painted', function on(e) {
            const d = (e as CustomEvent).detail;
            if (d.view !== 'matrix' || !/head/.test(document.querySelector('.matrix-base')!.getAttribute('aria-label')!)) return;
            window.removeEventListener('headlight:painted', on);
            requestAnimationFrame(() => resolve(performance.now() - t0));
          });
          const c = document.querySelector('.model canvas')!;
          const r = c.getBoundingClientRect();
          c.dispatchEvent(new MouseEvent('click', { clientX: x, clientY: y, bubbles: true, ...{ offsetX: x - r.x } }));
        }), [x, y]);
        switches.push(t);
      }
      // highlight: pointer over 60 tokens of the text view; the panel reports the time to compute and paint
      await page.click('vscode-tab-header:nth-of-type(2)');
      await page.waitForSelector('.text .tok');
      const hl = await page.evaluate(() => new Promise<number[]>((resolve) => {
        const out: number[] = [];
        const spans = Array.from(document.querySelectorAll('.tok'));
        let k = 0;
        const step = () => {
          if (k >= 60) return resolve(out);
          const t0 = performance.now();
          spans[100 + k * 15].dispatchEvent(new PointerEvent('pointerover', { bubbles: true }));
          requestAnimationFrame(() => {
            out.push(performance.now() - t0);
            k++;
            step();
          });
        };
        step();
      }));
      const work = await page.evaluate(() => new Promise<number>((resolve) => {
        window.addEventListener('headlight:painted', (e) => resolve((e as CustomEvent).detail.ms), { once: true });
        document.querySelectorAll('.tok')[777].dispatchEvent(new PointerEvent('pointerover', { bubbles: true }));
      }));
      highlights.push(...hl);
      console.log(`rep ${rep}: highlight compute+DOM ${work.toFixed(1)} ms`);
      await page.close();
    }
    console.log(`model view first paint after the run arrives (incl. thumbnails request, 1024 token spans): median ${median(firstPaint).toFixed(1)} ms (bar 300)`);
    console.log(`switch selected head (click -> matrix painted + frame): median ${median(switches).toFixed(1)} ms (bar 50)`);
    console.log(`token highlight on pointer move (event -> next frame): median ${median(highlights).toFixed(1)} ms (bar 16)`);
    console.log(`bytes to the webview for the initial panel: ${(median(bytes) / 1e6).toFixed(2)} MB (bar 2)`);
  } finally {
    await h.close();
  }
}

void main();
