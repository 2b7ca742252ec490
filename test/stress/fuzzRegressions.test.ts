/**
 * The bugs test/stress/fuzz.test.ts found, each pinned by the input that found it: values nested too deeply for
 * JSON.stringify / Array.prototype.join (which recurse) reached error messages and threw RangeError instead of the
 * HeadlightError that names the file and the field.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { HeadlightError } from '../../extension/common/errors';
import { openModel } from '../../extension/engine/families/registry';
import { loadTokenizer } from '../../extension/engine/tokenizer/gpt2Tokenizer';
import { llamaSpec, writeHfCheckpoint } from '../fixtures/hfCheckpoint';

const root = mkdtempSync(join(tmpdir(), 'headlight-fuzzreg-'));
after(() => rmSync(root, { recursive: true, force: true }));
const DEEP = 60_000;
/** JSON text of `doc` with the string "@@DEEP@@" replaced by an array nested DEEP levels. */
const withDeep = (doc: unknown) => JSON.stringify(doc).replace('"@@DEEP@@"', '['.repeat(DEEP) + ']'.repeat(DEEP));

async function refused(load: () => Promise<unknown>, file: RegExp, field: RegExp): Promise<void> {
  const err = await load().then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof HeadlightError, `expected a HeadlightError, got ${String(err).slice(0, 200)}`);
  assert.match(err.message, file);
  assert.match(err.message, field);
}

describe('fuzz regressions: deeply nested values', () => {
  it('config.json that is one deep array (GPT-2 parser)', async () => {
    const dir = join(root, 'gpt2');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), '['.repeat(DEEP) + ']'.repeat(DEEP));
    await refused(() => openModel(dir), /config\.json: expected a JSON object, got an array nested too deeply to show/, /JSON object/);
  });

  it('a config.json field holding a deep array (family parsers)', async () => {
    const dir = join(root, 'llama');
    const spec = llamaSpec({ modelType: 'llama', layers: 1, hidden: 8, heads: 2, intermediate: 8, vocab: 16 });
    await writeHfCheckpoint(dir, spec, { seed: 1 });
    copyFileSync(join(__dirname, '../fixtures/gpt2-tokenizer/tokenizer.json'), join(dir, 'tokenizer.json'));
    writeFileSync(join(dir, 'config.json'), withDeep({ ...spec.config, hidden_size: '@@DEEP@@' }));
    await refused(() => openModel(dir), /config\.json/, /"hidden_size" must be a positive integer, got an array nested too deeply/);
  });

  it('config.json: model_type and activation_function holding deep arrays', async () => {
    const dir = join(root, 'types');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), withDeep({ model_type: '@@DEEP@@', n_layer: 1 }));
    await refused(() => openModel(dir), /config\.json/, /model_type is an array nested too deeply to show; supported: gpt2,/);
    writeFileSync(join(dir, 'config.json'), withDeep({ model_type: 'gpt2', activation_function: '@@DEEP@@' }));
    await refused(() => openModel(dir), /config\.json/, /activation_function an array nested too deeply to show is not supported/);
  });

  it('a safetensors header whose shape is a deep array', async () => {
    const dir = join(root, 'header');
    mkdirSync(dir, { recursive: true });
    const header = Buffer.from(withDeep({ 'wte.weight': { dtype: 'F32', shape: '@@DEEP@@', data_offsets: [0, 4] } }));
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(header.length));
    writeFileSync(join(dir, 'model.safetensors'), Buffer.concat([prefix, header, Buffer.alloc(4)]));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'gpt2', n_layer: 1, n_head: 1, n_embd: 1 }));
    copyFileSync(join(__dirname, '../fixtures/gpt2-tokenizer/tokenizer.json'), join(dir, 'tokenizer.json'));
    await refused(() => openModel(dir), /model\.safetensors/, /tensor wte\.weight has shape an array nested too deeply to show/);
  });

  it('dimension bombs in a family config: num_hidden_layers or head_dim 1e12 refused before anything is sized by them', async () => {
    const dir = join(root, 'bomb');
    const spec = llamaSpec({ modelType: 'mistral', layers: 1, hidden: 8, heads: 2, intermediate: 8, vocab: 16 });
    await writeHfCheckpoint(dir, spec, { seed: 1 });
    copyFileSync(join(__dirname, '../fixtures/gpt2-tokenizer/tokenizer.json'), join(dir, 'tokenizer.json'));
    for (const key of ['num_hidden_layers', 'head_dim', 'intermediate_size']) {
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...spec.config, [key]: 1e12 }));
      await refused(() => openModel(dir), /config\.json/, new RegExp(`"${key}" is 1000000000000, larger than any model's sizes`));
    }
  });

  it('a layer count beyond the tensors the files hold is refused before the tensors are listed', async () => {
    const dir = join(root, 'layers');
    const spec = llamaSpec({ modelType: 'qwen3', layers: 1, hidden: 8, heads: 2, headDim: 4, intermediate: 8, vocab: 16 });
    await writeHfCheckpoint(dir, spec, { seed: 1 });
    copyFileSync(join(__dirname, '../fixtures/gpt2-tokenizer/tokenizer.json'), join(dir, 'tokenizer.json'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...spec.config, num_hidden_layers: 1_000_000 }));
    const t0 = performance.now();
    await refused(() => openModel(dir), /config\.json/, /"num_hidden_layers" is 1000000, but model\.safetensors holds only \d+ tensors/);
    assert.ok(performance.now() - t0 < 1000, `${performance.now() - t0} ms`);
  });

  it('tokenizer.json: a vocab id and a merge holding deep arrays', async () => {
    const dir = join(root, 'tok');
    mkdirSync(dir, { recursive: true });
    const base = JSON.parse(readFileSync(join(__dirname, '../fixtures/tokenizers/qwen2-style.json'), 'utf8'));
    const vocabKey = Object.keys(base.model.vocab)[5];
    writeFileSync(join(dir, 'tokenizer.json'), withDeep({ ...base, model: { ...base.model, vocab: { ...base.model.vocab, [vocabKey]: '@@DEEP@@' } } }));
    await refused(() => loadTokenizer(dir), /tokenizer\.json/, /model\.vocab gives .* the id an array nested too deeply to show/);
    const merges = [...base.model.merges];
    merges[3] = '@@DEEP@@';
    writeFileSync(join(dir, 'tokenizer.json'), withDeep({ ...base, model: { ...base.model, merges } }));
    await refused(() => loadTokenizer(dir), /tokenizer\.json/, /model\.merges\[3\]/);
    writeFileSync(join(dir, 'tokenizer.json'), withDeep({ ...base, model: { ...base.model, dropout: '@@DEEP@@' } }));
    await refused(() => loadTokenizer(dir), /tokenizer\.json/, /model\.dropout an array nested too deeply to show/);
  });

  it('tokenizer.json: a pre-tokenizer regex too large for V8 is refused at load, not at the first encode', async () => {
    const dir = join(root, 'regex');
    mkdirSync(dir, { recursive: true });
    const base = JSON.parse(readFileSync(join(__dirname, '../fixtures/tokenizers/qwen2-style.json'), 'utf8'));
    base.pre_tokenizer.pretokenizers[0].pattern.Regex = 'ab'.repeat(50_000);
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(base));
    await refused(() => loadTokenizer(dir), /tokenizer\.json/, /pre_tokenizer.*regular expression "abab[ab]*\.\.\. is not supported: .*Regular expression too large/);
  });

});
