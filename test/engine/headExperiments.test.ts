/**
 * HeadExperiments (extension/host/headExperiments.ts) over the real engine process (EngineClient, forked with tsx):
 * ablations line up with the run, a new run clears them, rankings report progress through the client's
 * `onDidRankProgress` and stop when cancelled, the attention mode round-trips through its writer.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeRandomCheckpoint } from '../fixtures/randomCheckpoint';
import { EngineClient } from '../../extension/host/engineClient';
import { HeadExperiments } from '../../extension/host/headExperiments';
import { HeadlightError } from '../../extension/common/errors';
import type { AttentionMode, EngineRequests, HeadSelector, ModelInfo } from '../../extension/common/engineProtocol';
import type { AnalysisSource, CurrentAnalysis } from '../../extension/host/analysisSource';

const SERVER = resolve(__dirname, '../../extension/engine/server.ts');
const TEXT = 'The cat sat on the mat. The cat sat on the mat again, and the dog watched.';

/** The part of the controller HeadExperiments reads: the current run of TEXT and queries to the engine. */
class RunSource {
  current: CurrentAnalysis | undefined;
  selection: HeadSelector = { layer: 0, head: 0 };
  cursorToken: number | undefined;
  private readonly runListeners = new Set<(c: CurrentAnalysis) => unknown>();
  constructor(private readonly client: EngineClient, private readonly model: ModelInfo) {}
  readonly onDidChangeRun = ((l: (c: CurrentAnalysis) => unknown, _t?: unknown, ds?: { dispose(): void }[]) => {
    this.runListeners.add(l);
    const d = { dispose: () => void this.runListeners.delete(l) };
    ds?.push(d);
    return d;
  }) as AnalysisSource['onDidChangeRun'];
  readonly onDidChangeSelection = (() => ({ dispose() {} })) as unknown as AnalysisSource['onDidChangeSelection'];
  readonly onDidChangeCursorToken = (() => ({ dispose() {} })) as unknown as AnalysisSource['onDidChangeCursorToken'];
  setSelection(): void {}
  revealToken(): void {}
  query<K extends keyof EngineRequests & string>(method: K, params: EngineRequests[K][0], signal?: AbortSignal): Promise<EngineRequests[K][1]> {
    return this.client.request(method, params, signal);
  }
  async analyze(text: string): Promise<CurrentAnalysis> {
    const run = await this.client.analyze({ text, incremental: false });
    this.current = { run, model: this.model, document: { toString: () => 'untitled:test' } as CurrentAnalysis['document'], documentVersion: run.version };
    for (const l of this.runListeners) l(this.current);
    return this.current;
  }
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof HeadlightError && err.code === code);
}

describe('HeadExperiments over the engine process', () => {
  const root = mkdtempSync(join(tmpdir(), 'headlight-experiments-'));
  let client: EngineClient;
  let source: RunSource;
  let text = TEXT;
  let experiments: HeadExperiments;
  const written: AttentionMode[] = [];

  before(async () => {
    const { dir } = await writeRandomCheckpoint(join(root, 'model'), { seed: 3, nLayer: 2, nHead: 3, nEmbd: 24, nPositions: 64 });
    client = new EngineClient({ serverPath: SERVER, execArgv: ['--import', 'tsx'] });
    const model = await client.load({ ref: 'random', dir });
    source = new RunSource(client, model);
    experiments = new HeadExperiments({
      source,
      textOf: () => text,
      onRankProgress: (l) => client.onDidRankProgress(l),
      attentionMode: 'attention',
      writeAttentionMode: (m) => written.push(m),
    });
    await source.analyze(TEXT);
  });

  after(() => {
    experiments?.dispose();
    client?.dispose();
    rmSync(root, { recursive: true, force: true });
  });

  test('an ablation lines up with the run, is announced, and a new run clears it', async () => {
    const seen: (number | undefined)[] = [];
    experiments.onDidChangeAblation((a) => seen.push(a?.version));
    const cur = source.current!;
    const a = await experiments.ablate({ version: cur.run.version, heads: [{ layer: 1, head: 2 }], mode: 'mean', at: 3 });
    assert.equal(a.version, cur.run.version);
    assert.equal(a.surprisalDelta.length, cur.run.tokens.length);
    // the engine's plain run of the same text gives the run's own surprisal
    for (let i = 1; i < cur.run.tokens.length; i++) assert.ok(Math.abs(a.surprisalBefore[i] - cur.run.surprisal[i]) < 1e-3, `token ${i}`);
    assert.equal(a.at, 3);
    assert.equal(experiments.lastAblation, a);
    await source.analyze(TEXT + ' More.');
    assert.equal(experiments.lastAblation, undefined);
    assert.deepEqual(seen, [cur.run.version, undefined]);
  });

  test('wrong heads, an old version and text that tokenizes differently are refused with clear errors', async () => {
    const v = source.current!.run.version;
    await rejectsWith(experiments.ablate({ version: v, heads: [], mode: 'zero' }), 'no-heads');
    await rejectsWith(experiments.ablate({ version: v, heads: [{ layer: 2, head: 0 }], mode: 'zero' }), 'bad-head');
    await rejectsWith(experiments.ablate({ version: v - 1, heads: [{ layer: 0, head: 0 }], mode: 'zero' }), 'stale-run');
    text = TEXT + ' More. And more text.';
    try {
      await rejectsWith(experiments.ablate({ version: v, heads: [{ layer: 0, head: 0 }], mode: 'zero' }), 'misaligned');
    } finally {
      text = TEXT + ' More.';
    }
  });

  test("a ranking reports its progress through the client's events and returns every head sorted by |loss change|", async () => {
    const progress: number[] = [];
    const sub = experiments.onDidRankProgress((p) => progress.push(p.done));
    const r = await experiments.rankHeads({ mode: 'zero' });
    sub.dispose();
    assert.deepEqual(progress, [0, 1, 2, 3, 4, 5, 6]);
    assert.equal(r.ranking.length, 6);
    assert.equal(r.deltas.length, 6);
    for (let k = 1; k < 6; k++) assert.ok(Math.abs(r.ranking[k].lossDelta) <= Math.abs(r.ranking[k - 1].lossDelta));
  });

  test('cancelling a ranking rejects it as cancelled and stops the engine between heads', async () => {
    const controller = new AbortController();
    const progress: number[] = [];
    const sub = experiments.onDidRankProgress((p) => {
      progress.push(p.done);
      if (p.done === 1) controller.abort();
    });
    await rejectsWith(experiments.rankHeads({ mode: 'mean' }, controller.signal), 'cancelled');
    await new Promise((r) => setTimeout(r, 300));
    sub.dispose();
    assert.ok(progress.length >= 2 && progress.length < 7, `progress after cancel: ${progress}`);
    // the engine still answers
    const a = await experiments.ablate({ heads: [{ layer: 0, head: 0 }], mode: 'zero' });
    assert.equal(a.surprisalDelta.length, source.current!.run.tokens.length);
  });

  test('the attention mode goes to its writer and comes back through setAttentionMode', () => {
    const modes: AttentionMode[] = [];
    experiments.onDidChangeAttentionMode((m) => modes.push(m));
    experiments.requestAttentionMode('value-weighted');
    assert.deepEqual(written, ['value-weighted']);
    assert.equal(experiments.attentionMode, 'attention', 'unchanged until the setting changes');
    experiments.setAttentionMode('value-weighted');
    experiments.setAttentionMode('value-weighted');
    assert.deepEqual(modes, ['value-weighted']);
  });
});
