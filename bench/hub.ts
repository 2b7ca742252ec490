/**
 * Download overhead: our Hub client (HEAD, redirect to the CDN host, write, sha256 verify, rename, link) vs a raw
 * `http.get` of the same bytes into /dev/null, from the fake Hub running in a child process on 127.0.0.1.
 * Run: node --import tsx bench/hub.ts [sizeMB=200] [runs=5]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { downloadHubFile } from '../extension/hub/hub';
import { hubEnv } from '../extension/hub/env';
import { makeModelRepo, sha256Hex, startFakeHub } from '../test/fixtures/fakeHub';

const MB = 1 << 20;
const REPO = 'bench/big';

async function serve(sizeMB: number): Promise<void> {
  const repo = makeModelRepo(REPO, { seed: 99, weightsBytes: sizeMB * MB });
  const hub = await startFakeHub([repo]);
  const data = repo.revisions.main.files.find((f) => f.path === 'model.safetensors')!.data;
  process.send!({ endpoint: hub.endpoint, cdnUrl: `${hub.cdnOrigin}/cdn/${sha256Hex(data)}` });
  process.on('disconnect', () => void hub.close().then(() => process.exit(0)));
}

/** CPU ms of this process (all threads, user + system) spent in `f`, beside its wall time. */
const cpu: { raw: number[]; rawFile: number[]; ours: number[] } = { raw: [], rawFile: [], ours: [] };
async function timed(kind: keyof typeof cpu, f: () => Promise<number>): Promise<number> {
  const c0 = process.cpuUsage();
  const wall = await f();
  const c = process.cpuUsage(c0);
  cpu[kind].push((c.user + c.system) / 1000);
  return wall;
}

/** A plain GET of the CDN URL into `target` (/dev/null: the transfer alone; a file: the transfer plus the write). */
function rawGet(url: string, target = '/dev/null'): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    http
      .get(url, { agent: false }, (res) => {
        const sink = createWriteStream(target);
        res.pipe(sink);
        sink.on('finish', () => resolve(performance.now() - t0));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

async function ours(endpoint: string): Promise<number> {
  const home = mkdtempSync(join(tmpdir(), 'headlight-benchhub-'));
  try {
    const env = hubEnv({ HF_ENDPOINT: endpoint, HF_HOME: home });
    const t0 = performance.now();
    await downloadHubFile({ env }, REPO, 'main', 'model.safetensors');
    return performance.now() - t0;
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  const sizeMB = Number(process.argv[2] ?? 200);
  const runs = Number(process.argv[3] ?? 5);
  const server: ChildProcess = fork(fileURLToPath(import.meta.url), ['--serve', String(sizeMB)], {
    execArgv: ['--import', 'tsx'],
  });
  const { endpoint, cdnUrl } = await new Promise<{ endpoint: string; cdnUrl: string }>((resolve) => server.once('message', (m) => resolve(m as never)));
  try {
    await rawGet(cdnUrl); // warm up both paths once
    await ours(endpoint);
    const raw: number[] = [];
    const rawFile: number[] = [];
    const mine: number[] = [];
    const scratch = mkdtempSync(join(tmpdir(), 'headlight-benchraw-'));
    for (let i = 0; i < runs; i++) {
      raw.push(await timed('raw', () => rawGet(cdnUrl)));
      rawFile.push(await timed('rawFile', () => rawGet(cdnUrl, join(scratch, `raw-${i}`))));
      rmSync(join(scratch, `raw-${i}`));
      mine.push(await timed('ours', () => ours(endpoint)));
    }
    rmSync(scratch, { recursive: true, force: true });
    const r = median(raw);
    const m = median(mine);
    const fmt = (ms: number): string => `${ms.toFixed(0)} ms (${((sizeMB * MB) / 1e6 / (ms / 1000)).toFixed(0)} MB/s)`;
    console.log(`file ${sizeMB} MiB, ${runs} runs each, medians`);
    console.log(`  raw http.get -> /dev/null           ${fmt(r)}   runs: ${raw.map((x) => x.toFixed(0)).join(' ')}`);
    const rf = median(rawFile);
    console.log(`  raw http.get -> file (no verify)    ${fmt(rf)}   runs: ${rawFile.map((x) => x.toFixed(0)).join(' ')}`);
    console.log(`  downloadHubFile (verify+cache)      ${fmt(m)}   runs: ${mine.map((x) => x.toFixed(0)).join(' ')}`);
    console.log(`  overhead vs /dev/null               ${(((m - r) / r) * 100).toFixed(1)}%`);
    console.log(`  overhead vs raw to file             ${(((m - rf) / rf) * 100).toFixed(1)}%`);
    console.log(
      `  client CPU (median, all threads)    raw ${median(cpu.raw).toFixed(0)} ms, raw to file ${median(cpu.rawFile).toFixed(0)} ms, ` +
        `ours ${median(cpu.ours).toFixed(0)} ms`,
    );
    console.log(`  machine: ${cpus().length} cores, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  } finally {
    server.disconnect();
  }
}

if (process.argv[2] === '--serve') void serve(Number(process.argv[3]));
else void main();
