/**
 * The layer boundaries (ARCHITECTURE.md, "Folders and what each may import") hold, proved two independent ways:
 *
 * 1. The compiler: each layer's real tsconfig compiles an in-memory probe file placed in that layer's folder.
 *    Every forbidden line (an import of a layer it may not use, `vscode`, `onnxruntime-node`, `node:`, the DOM,
 *    Node globals) must get its own specific error on that line; every allowed line must compile clean.
 * 2. The bundler: esbuild bundles the real entries (as scripts/build.mjs does, nothing written) and its metafile
 *    lists every file and module each bundle loads at run time: the engine process never loads Hub or host code
 *    or `vscode`, the extension host never loads engine code or onnxruntime, the webviews never load Node.
 *
 * Also: every .ts file under extension/ and webview/ belongs to exactly one layer, and the layers keep their libs.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { describe, it } from 'node:test';
import * as esbuild from 'esbuild';
import ts from 'typescript';

const root = join(import.meta.dirname, '..', '..');
const rel = (file: string) => relative(root, file).split(sep).join('/');

type Layer = 'common' | 'engine' | 'hub' | 'host' | 'cli' | 'webview';
const LAYER_CONFIGS: Record<Layer, string[]> = {
  common: ['extension/common/tsconfig.json'],
  engine: ['extension/engine/tsconfig.json'],
  hub: ['extension/hub/tsconfig.json'],
  host: ['extension/host/tsconfig.json'],
  cli: ['extension/cli/tsconfig.json'],
  webview: ['webview/tsconfig.json'],
};
const LAYERS = Object.keys(LAYER_CONFIGS) as Layer[];

function parseConfig(configPath: string): ts.ParsedCommandLine {
  const file = join(root, configPath);
  const parsed = ts.getParsedCommandLineOfConfigFile(file, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(`${configPath}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`),
  });
  assert.ok(parsed, `${configPath} could not be read`);
  assert.deepEqual(parsed.errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')), [], `${configPath} has errors`);
  return parsed;
}

const configs = new Map<string, ts.ParsedCommandLine>();
function config(configPath: string): ts.ParsedCommandLine {
  if (!configs.has(configPath)) configs.set(configPath, parseConfig(configPath));
  return configs.get(configPath)!;
}

/** The layer's own source files (what its tsconfig compiles), repo-relative, sorted. */
function layerFiles(layer: Layer): string[] {
  return LAYER_CONFIGS[layer]
    .flatMap((c) => config(c).fileNames)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map(rel)
    .sort();
}

function walkTs(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory()) return walkTs(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

describe('layers: every source file is in exactly one layer', () => {
  it('extension/ and webview/ have no file outside a layer and none in two', () => {
    const owners = new Map<string, Layer[]>();
    for (const layer of LAYERS) for (const f of layerFiles(layer)) owners.set(f, [...(owners.get(f) ?? []), layer]);
    const all = [...walkTs('extension'), ...walkTs('webview')];
    assert.ok(all.length > 50, `only ${all.length} source files found under extension/ and webview/`);
    const homeless = all.filter((f) => !owners.has(f));
    assert.deepEqual(homeless, [], 'files no layer tsconfig compiles: add their folder to a layer (extension/<layer>/ or webview/)');
    const twice = [...owners].filter(([, ls]) => ls.length > 1).map(([f, ls]) => `${f}: ${ls.join(', ')}`);
    assert.deepEqual(twice, [], 'files compiled by two layers');
  });

  it('only the webview has the DOM; common/ and the webview have no Node types; only the host has vscode', () => {
    for (const layer of LAYERS) {
      const { options } = config(LAYER_CONFIGS[layer][0]);
      const libs = (options.lib ?? []).map((l) => l.toLowerCase());
      const dom = libs.some((l) => l.includes('dom'));
      assert.equal(dom, layer === 'webview', `${layer}: lib ${libs.join(', ')}`);
      // No `types` at all would load every package of node_modules/@types, @types/node and @types/vscode included.
      const types = options.types ?? ['node', 'vscode'];
      assert.equal(types.includes('node'), layer !== 'common' && layer !== 'webview', `${layer}: types ${types.join(', ')}`);
      assert.equal(types.includes('vscode'), layer === 'host', `${layer}: types ${types.join(', ')}`);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 1. The compiler rejects each forbidden line in each layer, and accepts the allowed ones.

/** Diagnostic codes that mean "this line crossed a boundary" (not: an unused name, a typo in the probe). */
const NOT_LISTED = 6307; // the file is in a layer this project does not reference (or a marker for vscode/onnxruntime)
const NO_MODULE = 2307; // cannot find module (node: without Node types)
const NO_NAME = [2304, 2584, 2580, 2591]; // cannot find name (document without the DOM, process/Buffer without Node)

interface ProbeLine { code: string; errors: number[] }
const forbidden = (code: string, ...errors: number[]): ProbeLine => ({ code, errors });

/** A relative import specifier from a probe in `fromDir` to one real file of `layer`. */
function specifierOf(fromDir: string, layer: Layer): string {
  const target = layerFiles(layer)[0];
  assert.ok(target, `layer ${layer} has no files`);
  const s = relative(fromDir, join(root, target)).split(sep).join('/').replace(/\.ts$/, '');
  return s.startsWith('.') ? s : `./${s}`;
}

function probeLines(layer: Layer, dir: string): { bad: ProbeLine[]; good: string[] } {
  const imp = (l: Layer, n: number) => `import * as ${l}${n} from '${specifierOf(dir, l)}'; export { ${l}${n} };`;
  const others = (allowed: Layer[]) =>
    LAYERS.filter((l) => l !== layer && !allowed.includes(l)).map((l, i) => forbidden(imp(l, i), NOT_LISTED));
  const vscode = forbidden(`import * as vs from 'vscode'; export { vs };`, NOT_LISTED);
  const ort = forbidden(`import * as ortx from 'onnxruntime-node'; export { ortx };`, NOT_LISTED);
  const nodeImport = forbidden(`import * as fsx from 'node:fs'; export { fsx };`, NO_MODULE);
  const dom = forbidden(`export const title = document.title;`, ...NO_NAME);
  const processGlobal = forbidden(`export const pid = process.pid;`, ...NO_NAME);
  const bufferGlobal = forbidden(`export const buf = Buffer.from('x');`, ...NO_NAME);
  const nodeOk = [`import * as fsOk from 'node:fs'; export { fsOk };`, `export const pidOk = process.pid;`];
  const allowed = (ls: Layer[]) => ls.map((l, i) => `import * as ok${i} from '${specifierOf(dir, l)}'; export { ok${i} };`);
  switch (layer) {
    case 'common':
      return {
        bad: [...others([]), vscode, ort, nodeImport, dom, processGlobal, bufferGlobal],
        good: ['export const signal = new AbortController().signal;', 'export const m = new Map<string, number>();'],
      };
    case 'engine':
      return {
        bad: [...others(['common']), vscode, dom],
        good: [...allowed(['common']), ...nodeOk, `import * as ortOk from 'onnxruntime-node'; export { ortOk };`],
      };
    case 'hub':
      return { bad: [...others(['common']), vscode, ort, dom], good: [...allowed(['common']), ...nodeOk] };
    case 'host':
      return {
        bad: [...others(['common', 'hub']), ort, dom],
        good: [...allowed(['common', 'hub']), ...nodeOk, `import * as vsOk from 'vscode'; export const v = vsOk.version;`],
      };
    case 'cli':
      return {
        bad: [...others(['common', 'engine', 'hub']), vscode, dom],
        good: [...allowed(['common', 'engine', 'hub']), ...nodeOk, `import * as ortOk from 'onnxruntime-node'; export { ortOk };`],
      };
    case 'webview':
      return {
        bad: [...others(['common']), vscode, ort, nodeImport, processGlobal, bufferGlobal],
        good: [...allowed(['common']), 'export const titleOk = document.title;', 'export const widthOk = window.innerWidth;'],
      };
  }
}

/** Lib and @types files parse once for all probes. */
const sourceCache = new Map<string, ts.SourceFile | undefined>();

/**
 * Compiles in-memory probe files with the layer's real options and references; the codes of each probe's own
 * diagnostics, by line. The compiler reports a file that is not in the project (TS6307) once, at its first
 * importer, so every forbidden line gets a program of its own: another line cannot have reached its file first.
 */
function compileProbe(layer: Layer, text: string): Map<number, number[]> {
  const parsed = config(LAYER_CONFIGS[layer][0]);
  const probe = join(dirname(join(root, LAYER_CONFIGS[layer][0])), '__layerProbe.ts');
  const host = ts.createCompilerHost(parsed.options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.fileExists = ((fileExists) => (f: string) => f === probe || fileExists(f))(host.fileExists.bind(host));
  host.readFile = ((readFile) => (f: string) => (f === probe ? text : readFile(f)))(host.readFile.bind(host));
  host.getSourceFile = (f, languageVersion, onError) => {
    if (f === probe) return ts.createSourceFile(f, text, languageVersion, true);
    const key = `${f}\0${JSON.stringify(languageVersion)}`;
    if (!sourceCache.has(key)) sourceCache.set(key, getSourceFile(f, languageVersion, onError));
    return sourceCache.get(key);
  };
  // The layer's own .d.ts files (common's web globals) come along; its .ts files do not (importing one would be
  // TS6307 here too), but the probes import only from other layers.
  const program = ts.createProgram({
    rootNames: [probe, ...parsed.fileNames.filter((f) => f.endsWith('.d.ts'))],
    options: parsed.options,
    projectReferences: parsed.projectReferences,
    host,
  });
  const source = program.getSourceFile(probe);
  assert.ok(source, `${probe} is not in the probe program`);
  const lines = new Map<number, number[]>();
  // Only the probe's own diagnostics: the files it pulls in from other layers are not checked here.
  const diagnostics = [...program.getOptionsDiagnostics(), ...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)];
  for (const d of diagnostics) {
    if (d.file !== source || d.start === undefined) continue;
    const line = source.getLineAndCharacterOfPosition(d.start).line;
    lines.set(line, [...(lines.get(line) ?? []), d.code]);
  }
  return lines;
}

describe('layers: each tsconfig rejects what its layer may not use', () => {
  for (const layer of LAYERS) {
    it(`${layer}: every forbidden line fails with its own error, the allowed lines compile`, () => {
      const dir = dirname(join(root, LAYER_CONFIGS[layer][0]));
      const { bad, good } = probeLines(layer, dir);
      const missed = bad.flatMap((l) => {
        const got = compileProbe(layer, l.code).get(0) ?? [];
        if (got.some((code) => l.errors.includes(code))) return [];
        return [`${l.code}  (expected TS${l.errors.join('/TS')}, got ${got.map((c) => `TS${c}`).join(', ') || 'nothing'})`];
      });
      assert.deepEqual(missed, [], `${layer}: these lines compiled although the layer may not use them`);
      // TS6305: an allowed layer's declarations are not built yet (`npm run typecheck` builds them); not a boundary.
      const wrong = [...compileProbe(layer, good.join('\n'))]
        .map(([line, codes]) => [line, codes.filter((c) => c !== 6305)] as const)
        .filter(([, codes]) => codes.length > 0)
        .map(([line, codes]) => `${good[line]}  (TS${codes.join(', TS')})`);
      assert.deepEqual(wrong, [], `${layer}: these allowed lines failed to compile`);
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// 2. What each bundle loads at run time, from esbuild's own resolution of the real entries.

interface Bundle { entry: string; platform: 'node' | 'browser'; external: string[] }
const ORT = 'onnxruntime-node';
const BUNDLES: Record<string, Bundle> = {
  extensionHost: { entry: 'extension/extension.ts', platform: 'node', external: ['vscode', ORT] },
  engineProcess: { entry: 'extension/engine/server.ts', platform: 'node', external: [ORT] },
  cli: { entry: 'extension/cli.ts', platform: 'node', external: [ORT] },
  panel: { entry: 'webview/panel.ts', platform: 'browser', external: [] },
  sidebar: { entry: 'webview/sidebar.ts', platform: 'browser', external: [] },
};

/** The repo files a bundle contains and the modules it leaves to `require` at run time. */
async function loads(bundle: Bundle): Promise<{ files: string[]; modules: string[] }> {
  assert.ok(existsSync(join(root, bundle.entry)), `${bundle.entry} does not exist`);
  let result: esbuild.BuildResult<{ metafile: true; write: false }>;
  try {
    result = await esbuild.build({
      entryPoints: [join(root, bundle.entry)], bundle: true, write: false, metafile: true, logLevel: 'silent',
      platform: bundle.platform, format: bundle.platform === 'node' ? 'cjs' : 'iife', external: bundle.external,
      outfile: join(root, 'out', 'layers-test', 'bundle.js'), absWorkingDir: root,
    });
  } catch (err) {
    const errors = (err as esbuild.BuildFailure).errors ?? [];
    assert.fail(`${bundle.entry} does not bundle: ${errors.map((e) => `${e.location?.file}:${e.location?.line} ${e.text}`).join('; ') || err}`);
  }
  const inputs = result.metafile.inputs;
  const files = Object.keys(inputs).filter((f) => !f.startsWith('node_modules/'));
  const modules = [...new Set(Object.values(inputs).flatMap((i) => i.imports.filter((x) => x.external).map((x) => x.path)))];
  return { files, modules };
}

const under = (prefixes: string[]) => (f: string) => prefixes.some((p) => f.startsWith(p));

describe('layers: what each process loads (esbuild metafile of the real entries)', () => {
  it('the engine process never loads Hub, host or webview code, nor vscode', async () => {
    const { files, modules } = await loads(BUNDLES.engineProcess);
    assert.ok(files.some(under(['extension/engine/'])) && modules.includes(ORT), 'the walk sees the engine and onnxruntime');
    assert.deepEqual(files.filter(under(['extension/hub/', 'extension/host/', 'extension/extension.ts', 'webview/'])), []);
    assert.deepEqual(modules.filter((m) => m === 'vscode'), []);
  });

  it('the extension host never loads engine code nor onnxruntime', async () => {
    const { files, modules } = await loads(BUNDLES.extensionHost);
    assert.ok(files.some(under(['extension/hub/'])) && modules.includes('vscode'), 'the walk sees the Hub client and vscode');
    assert.deepEqual(files.filter(under(['extension/engine/', 'extension/cli', 'webview/'])), []);
    assert.deepEqual(modules.filter((m) => m === ORT), []);
  });

  it('the CLI never loads host or webview code, nor vscode', async () => {
    const { files, modules } = await loads(BUNDLES.cli);
    assert.ok(files.some(under(['extension/engine/'])) && files.some(under(['extension/hub/'])), 'the walk sees engine and Hub');
    assert.deepEqual(files.filter(under(['extension/host/', 'extension/extension.ts', 'webview/'])), []);
    assert.deepEqual(modules.filter((m) => m === 'vscode'), []);
  });

  for (const name of ['panel', 'sidebar'] as const) {
    it(`the ${name} webview loads only webview/ and common/ code, and no Node module`, async () => {
      const { files, modules } = await loads(BUNDLES[name]);
      assert.ok(files.some(under(['extension/common/'])), 'the walk sees common/');
      assert.deepEqual(files.filter((f) => f.startsWith('extension/') && !f.startsWith('extension/common/')), []);
      assert.deepEqual(modules, [], 'a webview bundle must be self-contained: no require at run time');
    });
  }
});
