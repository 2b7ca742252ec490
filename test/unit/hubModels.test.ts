/**
 * The models Select Model offers (issues #17, #18): the repo ids asked for, gated marks, and architecture facts
 * checked against the parameter counts their model cards and papers publish (an independent source: a wrong layer
 * count, hidden size, head count or vocabulary moves the count well past the tolerance).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DTYPE_BYTES, estimateParams, KNOWN_MODELS, knownModel, repoAlias } from '../../extension/hub/modelStore';

/** Published totals: exact where the card/paper gives the integer, else its rounded figure and a relative tolerance. */
const PUBLISHED: Record<string, { total: number; tol: number; nonEmbedding?: number }> = {
  'openai-community/gpt2': { total: 124_439_808, tol: 0 },
  'openai-community/gpt2-medium': { total: 354_823_168, tol: 0 },
  'openai-community/gpt2-large': { total: 774_030_080, tol: 0 },
  'openai-community/gpt2-xl': { total: 1_557_611_200, tol: 0 },
  'HuggingFaceTB/SmolLM2-135M': { total: 135e6, tol: 0.01 },
  'HuggingFaceTB/SmolLM2-360M': { total: 362e6, tol: 0.01 },
  'EleutherAI/pythia-70m': { total: 70_426_624, tol: 0 }, // Pythia paper, table 1
  'EleutherAI/pythia-160m': { total: 162_322_944, tol: 0 },
  'Qwen/Qwen2.5-0.5B': { total: 0.49e9, tol: 0.01, nonEmbedding: 0.36e9 }, // card: 0.49B, non-embedding 0.36B
  'Qwen/Qwen3-0.6B': { total: 0.6e9, tol: 0.01, nonEmbedding: 0.44e9 }, // card: 0.6B, non-embedding 0.44B
  'TinyLlama/TinyLlama_v1.1': { total: 1.1e9, tol: 0.01 },
  'meta-llama/Llama-3.2-1B': { total: 1.24e9, tol: 0.005 },
  'google/gemma-3-270m': { total: 270e6, tol: 0.01, nonEmbedding: 100e6 }, // card: 170M embedding + 100M transformer
  'google/gemma-3-1b-pt': { total: 1e9, tol: 0.005 },
  'google/gemma-2-2b': { total: 2.61e9, tol: 0.005 },
  'EleutherAI/gpt-neo-125m': { total: 125e6, tol: 0.01 },
};

const ASKED = [
  'HuggingFaceTB/SmolLM2-135M',
  'HuggingFaceTB/SmolLM2-360M',
  'EleutherAI/pythia-70m',
  'EleutherAI/pythia-160m',
  'Qwen/Qwen2.5-0.5B',
  'Qwen/Qwen3-0.6B',
  'TinyLlama/TinyLlama_v1.1',
  'meta-llama/Llama-3.2-1B',
  'google/gemma-3-270m',
  'google/gemma-3-1b-pt',
  'google/gemma-2-2b',
  'roneneldan/TinyStories-33M',
  'EleutherAI/gpt-neo-125m',
];

describe('known models', () => {
  it('offers GPT-2 and every model issues #17 and #18 ask for, each once', () => {
    const ids = KNOWN_MODELS.map((m) => m.repoId);
    assert.deepEqual(ids.slice(0, 5), ['openai-community/gpt2', 'distilbert/distilgpt2', 'openai-community/gpt2-medium', 'openai-community/gpt2-large', 'openai-community/gpt2-xl']);
    assert.deepEqual(ids.slice(5), ASKED);
    assert.equal(new Set(ids).size, ids.length);
  });

  it('marks exactly the Llama and Gemma repos as gated', () => {
    const gated = KNOWN_MODELS.filter((m) => m.gated).map((m) => m.repoId);
    assert.deepEqual(gated, ['meta-llama/Llama-3.2-1B', 'google/gemma-3-270m', 'google/gemma-3-1b-pt', 'google/gemma-2-2b']);
  });

  it('architecture facts give the published parameter counts', () => {
    for (const [repoId, pub] of Object.entries(PUBLISHED)) {
      const m = knownModel(repoId)!;
      const params = estimateParams(m);
      const rel = Math.abs(params - pub.total) / pub.total;
      assert.ok(rel <= pub.tol, `${repoId}: ${params} params from the facts vs ${pub.total} published (${(100 * rel).toFixed(2)}%)`);
      if (pub.nonEmbedding) {
        const nonEmb = params - m.vocab * m.embd * (m.tied ? 1 : 2);
        const relN = Math.abs(nonEmb - pub.nonEmbedding) / pub.nonEmbedding;
        assert.ok(relN <= 0.01, `${repoId}: ${nonEmb} non-embedding params vs ${pub.nonEmbedding}`);
      }
    }
  });

  it("gpt2's exact file size is its parameters in F32 plus the 12 layers' 1024² F32 mask buffers and a small header", () => {
    const m = knownModel('gpt2')!;
    const header = m.weightsBytes - (estimateParams(m) * 4 + 12 * 1024 * 1024 * 4);
    assert.ok(header > 0 && header < 20_000, `header ${header} bytes`);
  });

  it('estimated sizes are parameters x bytes of the shipped dtype, shown as estimates; head layouts are consistent', () => {
    for (const m of KNOWN_MODELS.slice(5)) {
      assert.equal(m.exactSize, false, m.repoId);
      assert.equal(m.weightsBytes, estimateParams(m) * DTYPE_BYTES[m.dtype], m.repoId);
      assert.equal(m.heads % m.kvHeads, 0, `${m.repoId}: query heads are a multiple of KV heads`);
      if (!['qwen3', 'gemma2', 'gemma3_text'].includes(m.modelType)) assert.equal(m.heads * m.headDim, m.embd, m.repoId);
      assert.ok(m.family.length > 0);
    }
    assert.equal(knownModel('Qwen/Qwen2.5-0.5B')!.weightsBytes, 988_065_536);
    assert.equal(knownModel('EleutherAI/pythia-70m')!.weightsBytes, 140_853_248);
  });

  it('aliases only renamed repos', () => {
    assert.equal(repoAlias('gpt2'), 'openai-community/gpt2');
    assert.equal(repoAlias('openai-community/gpt2'), 'gpt2');
    assert.equal(repoAlias('Qwen/Qwen3-0.6B'), undefined);
    assert.equal(repoAlias('nobody/else'), undefined);
  });
});
