"""Independent check of the exported model: a NumPy-only GPT-2 forward (no torch, no gpt2.py) over
models/headlight-tiny/{config.json,model.safetensors} must reproduce the loss that train.py measured with its own
torch model (weights rounded to fp16) on the same batch. A transposed or swapped weight would change the loss; the
script shows that on purpose by transposing one square weight (attn.c_proj of layer 0) as a negative control.

    /usr/bin/python3 scripts/train-tiny/verify.py
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.environ.get('HEADLIGHT_TINY_DIR') or os.path.abspath(os.path.join(HERE, '..', '..', 'models', 'headlight-tiny'))
WORK = os.path.join(HERE, 'work')


def layer_norm(x, w, b, eps):  # [T, E] -> [T, E]
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu_new(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def forward(ids, W, cfg):  # ids [T] -> logits [T, V]
    T, E, H, eps = len(ids), cfg['n_embd'], cfg['n_head'], cfg['layer_norm_epsilon']
    d = E // H
    x = W['wte.weight'][ids] + W['wpe.weight'][:T]  # [T, E]
    mask = np.triu(np.full((T, T), -1e10, dtype=np.float64), 1)  # [T, T]
    for i in range(cfg['n_layer']):
        p = f'h.{i}.'
        a = layer_norm(x, W[p + 'ln_1.weight'], W[p + 'ln_1.bias'], eps)
        qkv = a @ W[p + 'attn.c_attn.weight'] + W[p + 'attn.c_attn.bias']  # [T, 3E]
        q, k, v = np.split(qkv, 3, axis=-1)  # 3 x [T, E]
        heads = []
        for h in range(H):
            s = slice(h * d, (h + 1) * d)
            att = softmax(q[:, s] @ k[:, s].T / np.sqrt(d) + mask)  # [T, T]
            heads.append(att @ v[:, s])  # [T, d]
        x = x + np.concatenate(heads, -1) @ W[p + 'attn.c_proj.weight'] + W[p + 'attn.c_proj.bias']
        m = layer_norm(x, W[p + 'ln_2.weight'], W[p + 'ln_2.bias'], eps)
        m = gelu_new(m @ W[p + 'mlp.c_fc.weight'] + W[p + 'mlp.c_fc.bias'])  # [T, 4E]
        x = x + m @ W[p + 'mlp.c_proj.weight'] + W[p + 'mlp.c_proj.bias']
    x = layer_norm(x, W['ln_f.weight'], W['ln_f.bias'], eps)
    return x @ W['wte.weight'].T  # tied head: [T, V]


def batch_loss(batch, W, cfg):  # batch [B, T+1] -> mean nats/token
    total, n = 0.0, 0
    for row in batch:
        logits = forward(row[:-1], W, cfg)
        logp = logits - logits.max(-1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
        total -= logp[np.arange(len(row) - 1), row[1:]].sum()
        n += len(row) - 1
    return total / n


def expected_shapes(cfg):
    E, V, P = cfg['n_embd'], cfg['vocab_size'], cfg['n_positions']
    shapes = {'wte.weight': [V, E], 'wpe.weight': [P, E], 'ln_f.weight': [E], 'ln_f.bias': [E]}
    for i in range(cfg['n_layer']):
        p = f'h.{i}.'
        shapes.update({p + 'ln_1.weight': [E], p + 'ln_1.bias': [E], p + 'ln_2.weight': [E], p + 'ln_2.bias': [E],
                       p + 'attn.c_attn.weight': [E, 3 * E], p + 'attn.c_attn.bias': [3 * E],
                       p + 'attn.c_proj.weight': [E, E], p + 'attn.c_proj.bias': [E],
                       p + 'mlp.c_fc.weight': [E, 4 * E], p + 'mlp.c_fc.bias': [4 * E],
                       p + 'mlp.c_proj.weight': [4 * E, E], p + 'mlp.c_proj.bias': [E]})
    return shapes


def main():
    cfg = json.load(open(os.path.join(MODEL, 'config.json')))
    raw, meta = safetensors_io.load(os.path.join(MODEL, 'model.safetensors'))
    want = expected_shapes(cfg)
    if set(raw) != set(want):
        sys.exit(f'model.safetensors keys differ: missing {sorted(set(want) - set(raw))}, extra {sorted(set(raw) - set(want))}')
    for k, shape in want.items():
        if list(raw[k].shape) != shape or raw[k].dtype != np.float16:
            sys.exit(f'{k}: expected F16 {shape}, got {raw[k].dtype} {list(raw[k].shape)}')
    W = {k: v.astype(np.float64) for k, v in raw.items()}
    # The exported weights come from the last training script that wrote a summary: train_heads.py --export (issue
    # #21), else phase 2 (train_continue.py --export), else phase 1 (train.py).
    names = ('train-heads-summary.json', 'train-phase2-summary.json', 'train-summary.json')
    found = [os.path.join(MODEL, 'training', n) for n in names if os.path.exists(os.path.join(MODEL, 'training', n))]
    if not found:
        sys.exit(f'{MODEL}/training holds none of {", ".join(names)}: export the model first')
    summary = json.load(open(found[0]))
    batch = np.load(os.path.join(WORK, 'verify-batch.npy'))
    loss = batch_loss(batch, W, cfg)
    ref = summary['verify_batch_loss_fp16_weights']
    print(f'numpy forward loss {loss:.6f}, torch training model (fp16-rounded weights) {ref:.6f}, diff {abs(loss - ref):.2e}')
    W_bad = dict(W)
    W_bad['h.0.attn.c_proj.weight'] = W['h.0.attn.c_proj.weight'].T
    bad = batch_loss(batch, W_bad, cfg)
    print(f'negative control, h.0.attn.c_proj.weight transposed: loss {bad:.6f} (diff {abs(bad - ref):.2e})')
    sizes = {f: os.path.getsize(os.path.join(MODEL, f)) for f in os.listdir(MODEL) if os.path.isfile(os.path.join(MODEL, f))}
    print(f'files: {sizes}; total {sum(sizes.values())} bytes (training/ not counted)')
    ok = abs(loss - ref) < 1e-3 and abs(bad - ref) > 10 * max(abs(loss - ref), 1e-5)
    print('VERIFY OK' if ok else 'VERIFY FAILED')
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
