#!/usr/bin/env node
// The reliability suite: every test/stress/*.test.ts file, then one table of what was tried.
//
//   node scripts/stress.mjs          the short version (`npm test` runs it: counts cut to fit CI)
//   node scripts/stress.mjs --full   the full counts (`npm run test:stress`); sets HEADLIGHT_STRESS=full
//
// Each stress test prints rows `STRESS|<row>|<faults injected>|<inputs tried>|<clear errors>|<data lost>`; this
// script collects them from the test runner's output and prints them as a Markdown table (the README's Reliability
// section is this table from a full run). It fails if any test fails, if a row reports data lost, or if no row came.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const full = process.argv.includes('--full');
const files = readdirSync(join(root, 'test/stress'))
  .filter((f) => f.endsWith('.test.ts'))
  .sort()
  .map((f) => join('test/stress', f));
if (files.length === 0) {
  console.error('stress: no test/stress/*.test.ts files');
  process.exit(1);
}

const env = { ...process.env, HEADLIGHT_STRESS: full ? 'full' : 'short' };
const args = ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=1', ...files];
const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
const rows = [];
let pending = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  pending += chunk.toString('utf8');
  const lines = pending.split('\n');
  pending = lines.pop() ?? '';
  for (const line of lines) collect(line);
});

function collect(line) {
  const at = line.indexOf('STRESS|');
  if (at < 0) return;
  const [, row, faults, inputs, clear, lost] = line.slice(at).trim().split('|');
  rows.push({ row, faults: Number(faults), inputs: Number(inputs), clear: Number(clear), lost: Number(lost) });
}

child.on('close', (code) => {
  collect(pending);
  const fmt = (n) => (Number.isFinite(n) ? n.toLocaleString('en-US') : '?');
  console.log(`\nReliability (${full ? 'full' : 'short'} counts)\n`);
  console.log('| what | faults injected | inputs tried | rejections that were clear errors | data lost |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.row} | ${fmt(r.faults)} | ${fmt(r.inputs)} | ${fmt(r.clear)} | ${fmt(r.lost)} |`);
  const lost = rows.filter((r) => r.lost !== 0);
  if (code !== 0) console.error(`stress: the tests failed (exit ${code})`);
  if (lost.length) console.error(`stress: data lost in ${lost.map((r) => r.row).join(', ')}`);
  if (rows.length === 0) console.error('stress: no STRESS rows were printed');
  process.exit(code !== 0 || lost.length || rows.length === 0 ? 1 : 0);
});
