/**
 * The memory plan (extension/engine/model/memoryPlan.ts): its breakdown against sizes computed here by hand, the
 * window it fits under a budget, refusals that give the estimate, the budget and what would fit, the budget setting,
 * and the free-memory reading with cgroup v1/v2 limits.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HeadlightError } from '../../extension/common/errors';
import { availableMemory, checkPlan, fitWindow, memoryBudget, planMemory, type PlanInput, type PlannedTensor } from '../../extension/engine/model/memoryPlan';

const MB = 2 ** 20;
const GB = 2 ** 30;

/** A Llama-shaped tensor list (tied head): what a family's `tensors` names, with header shapes. */
function llamaTensors(o: { L: number; E: number; H: number; KVH: number; I: number; V: number; tie?: boolean }): PlannedTensor[] {
  const D = o.E / o.H;
  const t: PlannedTensor[] = [{ name: 'model.embed_tokens.weight', shape: [o.V, o.E], dtype: 'BF16' }];
  for (let l = 0; l < o.L; l++) {
    const p = `model.layers.${l}.`;
    t.push(
      { name: `${p}input_layernorm.weight`, shape: [o.E], dtype: 'BF16' },
      { name: `${p}self_attn.q_proj.weight`, shape: [o.H * D, o.E], dtype: 'BF16' },
      { name: `${p}self_attn.k_proj.weight`, shape: [o.KVH * D, o.E], dtype: 'BF16' },
      { name: `${p}self_attn.v_proj.weight`, shape: [o.KVH * D, o.E], dtype: 'BF16' },
      { name: `${p}self_attn.o_proj.weight`, shape: [o.E, o.H * D], dtype: 'BF16' },
      { name: `${p}post_attention_layernorm.weight`, shape: [o.E], dtype: 'BF16' },
      { name: `${p}mlp.gate_proj.weight`, shape: [o.I, o.E], dtype: 'BF16' },
      { name: `${p}mlp.up_proj.weight`, shape: [o.I, o.E], dtype: 'BF16' },
      { name: `${p}mlp.down_proj.weight`, shape: [o.E, o.I], dtype: 'BF16' },
    );
  }
  t.push({ name: 'model.norm.weight', shape: [o.E], dtype: 'BF16' });
  if (o.tie === false) t.push({ name: 'lm_head.weight', shape: [o.V, o.E], dtype: 'BF16' });
  return t;
}

// SmolLM2-135M's shape.
const SMOL = { L: 30, E: 576, H: 9, KVH: 3, I: 1536, V: 49152 };
const smol: Omit<PlanInput, 'window'> = {
  dims: { nLayer: 30, nHead: 9, nKvHead: 3, headDim: 64, nEmbd: 576, vocabSize: 49152 },
  tensors: llamaTensors(SMOL),
};
const budget = (bytes: number) => ({ bytes, source: 'test budget' });

describe('planMemory', () => {
  it('breaks the estimate down by holder, each part from the sizes, and sums them', () => {
    const T = 1024;
    const plan = planMemory({ ...smol, window: T });
    const params = 49152 * 576 + 30 * (2 * 576 + 576 * 576 * 2 + 2 * 192 * 576 + 3 * 1536 * 576) + 576;
    assert.equal(plan.weights, params * 4, 'fp32 bytes of every tensor, whatever the file dtype');
    assert.equal(plan.kvCache, 2 * 30 * 3 * T * 64 * 4, 'keys and values [L, KVH, T, D] fp32');
    assert.equal(plan.attention, 30 * 9 * ((T * (T + 1)) / 2) * 2, 'causal half in fp16');
    assert.equal(planMemory({ ...smol, window: T, precision: 'fp32' }).attention, 2 * plan.attention);
    // The LM head [V, E] once more (onnxruntime's packed copies of it); the layers' matrices only once, in weights.
    assert.equal(plan.packed, 49152 * 576 * 4, 'one LM head');
    assert.equal(planMemory({ ...smol, window: 64 }).packed, plan.packed, 'whatever the window');
    const parts = plan.runtime + plan.weights + plan.packed + plan.kvCache + plan.attention + plan.answers + plan.scratch;
    assert.equal(plan.total, parts);
  });

  it('an untied embedding is only gathered: its window rows resident; the separate head counted twice like a tied one', () => {
    const tied = planMemory({ ...smol, window: 64 });
    const untied = planMemory({ ...smol, tensors: llamaTensors({ ...SMOL, tie: false }), window: 64 });
    assert.equal(untied.weights - tied.weights, 64 * 576 * 4, 'head [V, E] added, embedding down to 64 rows');
    assert.equal(untied.packed, tied.packed, 'the LM head [V, E] held again either way');
  });

  it('grows with the window: attention by T², the cache by T', () => {
    const a = planMemory({ ...smol, window: 2048 });
    const b = planMemory({ ...smol, window: 4096 });
    assert.ok(Math.abs(b.attention / a.attention - 4) < 0.01);
    assert.equal(b.kvCache, 2 * a.kvCache);
    assert.equal(b.weights, a.weights);
    assert.ok(b.total > a.total);
  });
});

describe('fitWindow and checkPlan', () => {
  it('fits the longest whole-block window under the budget', () => {
    const bytes = planMemory({ ...smol, window: 3000 }).total;
    const w = fitWindow(smol, bytes, 8192)!;
    assert.equal(w % 64, 0);
    assert.ok(planMemory({ ...smol, window: w }).total <= bytes);
    assert.ok(planMemory({ ...smol, window: w + 64 }).total > bytes, `${w + 64} would fit too`);
    assert.equal(fitWindow(smol, 100 * GB, 8192), 8192, 'capped at the maximum');
    assert.equal(fitWindow(smol, 10 * MB, 8192), undefined, 'not even the weights fit');
  });

  it('shortens the window of a model that fits only a shorter one', () => {
    const b = budget(planMemory({ ...smol, window: 2048 }).total + MB);
    const { window, plan } = checkPlan(smol, { maxWindow: 8192, budget: b, model: 'smol' });
    assert.ok(window >= 1984 && window <= 2048, `window ${window}`);
    assert.ok(plan.total <= b.bytes);
    assert.equal(checkPlan(smol, { maxWindow: 1024, budget: b, model: 'smol' }).window, 1024);
  });

  it('refuses a huge config with the estimate, the budget and what would fit', () => {
    // hidden_size 1e5 with the rest sane: ~40 GB of fp32 embedding alone.
    const huge: Omit<PlanInput, 'window'> = {
      dims: { nLayer: 2, nHead: 8, nKvHead: 8, headDim: 12500, nEmbd: 100_000, vocabSize: 100_000 },
      tensors: llamaTensors({ L: 2, E: 100_000, H: 8, KVH: 8, I: 64, V: 100_000 }),
    };
    const err = (() => {
      try {
        checkPlan(huge, { maxWindow: 4096, budget: budget(8 * GB), model: 'huge-model' });
      } catch (e) {
        return e;
      }
    })();
    assert.ok(err instanceof HeadlightError, 'a HeadlightError');
    assert.equal(err.code, 'model-too-big');
    const estimate = planMemory({ ...huge, window: 4096 }).total;
    assert.match(err.message, /^huge-model: needs about /);
    assert.ok(err.message.includes(`${(estimate / GB).toFixed(1)} GB`), err.message);
    assert.match(err.message, /over the budget of 8,192 MB \(test budget\)/);
    assert.match(err.message, /not even a window of 64 tokens fits/);
    assert.match(err.hint!, /smaller model \(about \d+(\.\d)? [MB] parameters or fewer fit\)/);
    assert.match(err.hint!, /headlight\.memoryBudgetMB/);
  });

  it('names the window that would fit when the window is fixed (GPT-2 runs n_positions)', () => {
    const b = budget(planMemory({ ...smol, window: 512 }).total);
    assert.throws(
      () => checkPlan(smol, { maxWindow: 8192, budget: b, model: 'gpt2-like', fixedWindow: true }),
      (e: unknown) => e instanceof HeadlightError && /a window of 512 tokens would fit, but this model's window is fixed at 8192/.test(e.message),
    );
  });
});

describe('memoryBudget and availableMemory', () => {
  const available = { bytes: 8 * GB, source: 'free memory' };

  it('takes headlight.memoryBudgetMB when set, never more than is available; 80% of it otherwise', () => {
    assert.deepEqual(memoryBudget(512, available), { bytes: 512 * MB, source: 'headlight.memoryBudgetMB (512)' });
    assert.equal(memoryBudget(undefined, available).bytes, Math.floor(0.8 * 8 * GB));
    assert.equal(memoryBudget(0, available).bytes, Math.floor(0.8 * 8 * GB), '0 means automatic');
    const over = memoryBudget(64_000, available);
    assert.equal(over.bytes, 8 * GB);
    assert.match(over.source, /under headlight\.memoryBudgetMB \(64000\)/);
  });

  it('a budget that is set decides the window', () => {
    const small = checkPlan(smol, { maxWindow: 8192, budget: memoryBudget(1600, available), model: 'smol' });
    const large = checkPlan(smol, { maxWindow: 8192, budget: memoryBudget(4000, available), model: 'smol' });
    assert.ok(small.plan.total <= 1600 * MB && large.plan.total <= 4000 * MB);
    assert.ok(small.window < large.window, `${small.window} < ${large.window}`);
  });

  it('reads cgroup v2 and v1 limits, ignoring "max" and v1 "no limit"', () => {
    const files = (m: Record<string, string>) => (p: string) => m[p];
    const free = availableMemory(files({})).bytes;
    assert.ok(free > 0);
    const v2 = availableMemory(files({ '/sys/fs/cgroup/memory.max': `${1 * GB}\n`, '/sys/fs/cgroup/memory.current': `${200 * MB}\n` }));
    assert.equal(v2.bytes, Math.min(free, 1 * GB - 200 * MB));
    if (v2.bytes < free) assert.match(v2.source, /cgroup memory\.max/);
    assert.equal(availableMemory(files({ '/sys/fs/cgroup/memory.max': 'max\n', '/sys/fs/cgroup/memory.current': '1' })).source.startsWith('free memory'), true);
    const v1 = files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712', '/sys/fs/cgroup/memory/memory.usage_in_bytes': '5' });
    assert.match(availableMemory(v1).source, /^free memory/);
    const full = availableMemory(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': `${GB}`, '/sys/fs/cgroup/memory/memory.usage_in_bytes': `${2 * GB}` }));
    assert.equal(full.bytes, 0, 'a cgroup over its limit leaves nothing');
  });

  it('reads this machine', () => {
    const a = availableMemory();
    assert.ok(a.bytes > 0 && Number.isFinite(a.bytes), `${a.bytes} from ${a.source}`);
  });
});
