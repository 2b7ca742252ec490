"""Measures the exported tiny model: held-out loss vs unigram/bigram baselines, and per-head attention scores.

    /usr/bin/python3 scripts/train-tiny/evaluate.py

Writes models/headlight-tiny/training/eval.json. All losses are nats/token with the full 50,257-way softmax, on the
same targets (evenly spaced windows of the validation split, which holds whole files never seen in training).
Head scores:
- previous-token: mean attention weight from position t to t-1 (t >= 1) over held-out windows;
- first-token (sink): mean attention weight from position t to position 0 (t >= 1) over the same windows;
- induction: a random token sequence of length L repeated twice, mean attention from each position i of
  the second copy to position i-L+1 (the token after the earlier occurrence of the current token).
"""
import json
import os
import sys

import blas_env  # noqa: E402  (before NumPy and torch load OpenBLAS)
blas_env.setup(1)

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2 import GPT2  # noqa: E402
import safetensors_io  # noqa: E402
from train import fixed_windows  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.environ.get('HEADLIGHT_TINY_DIR') or os.path.abspath(os.path.join(HERE, '..', '..', 'models', 'headlight-tiny'))
WORK = os.path.join(HERE, 'work')
V = 50257
SEED = 1234
BIGRAM_KS = [1.0, 0.1, 0.01, 0.001]


def load_model():
    cfg = json.load(open(os.path.join(MODEL, 'config.json')))
    raw, _ = safetensors_io.load(os.path.join(MODEL, 'model.safetensors'))
    model = GPT2(cfg['vocab_size'], cfg['n_positions'], cfg['n_embd'], cfg['n_layer'], cfg['n_head'], cfg['layer_norm_epsilon'])
    model.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in raw.items()})
    return model.eval(), cfg


@torch.no_grad()
def model_nll(model, windows, batch=4):  # windows [N, T+1] -> per-target nats [N, T]
    out = []
    for i in range(0, len(windows), batch):
        w = windows[i:i + batch]
        logits, _ = model(w[:, :-1])  # [B, T, V]
        out.append(F.cross_entropy(logits.transpose(1, 2), w[:, 1:], reduction='none'))  # [B, T]
    return torch.cat(out).numpy()


@torch.no_grad()
def unseen_mass(model, windows, never_seen, batch=4):
    """Mean probability the model gives, per position, to token ids that never occur in the train split."""
    masses = []
    for i in range(0, len(windows), batch):
        logits, _ = model(windows[i:i + batch, :-1])  # [B, T, V]
        masses.append(F.softmax(logits, dim=-1)[..., never_seen].sum(-1).mean().item())
    return float(np.mean(masses))


def bigram_nll(train, windows, k):
    """Add-k smoothed bigram P(next | prev) = (c(prev,next) + k) / (c(prev) + k V), counts from the train split."""
    t = train.astype(np.int64)
    keys, counts = np.unique(t[:-1] * V + t[1:], return_counts=True)
    row = np.bincount(t[:-1], minlength=V)
    prev, nxt = windows[:, :-1].reshape(-1), windows[:, 1:].reshape(-1)
    q = prev * V + nxt
    pos = np.clip(np.searchsorted(keys, q), 0, len(keys) - 1)
    c = np.where(keys[pos] == q, counts[pos], 0)
    return -np.log((c + k) / (row[prev] + k * V))


def unigram_nll(train, windows, k=1.0):
    c = np.bincount(train, minlength=V)
    return -np.log((c[windows[:, 1:].reshape(-1)] + k) / (c.sum() + k * V))


@torch.no_grad()
def head_scores(model, windows):
    """previous-token and first-token scores per layer and head: two [L, H] arrays."""
    prev, prev_early, first = [], [], []
    _, probs = model(windows[:, :-1], need_probs=True)  # L x [B, H, T, T]
    for p in probs:
        diag = p.diagonal(offset=-1, dim1=-2, dim2=-1)  # [B, H, T-1]: attention t -> t-1 for t = 1..T-1
        prev.append(diag.mean(dim=(0, 2)).numpy())
        prev_early.append(diag[:, :, :127].mean(dim=(0, 2)).numpy())  # t = 1..127 only
        first.append(p[:, :, 1:, 0].mean(dim=(0, 2)).numpy())  # t -> 0, t >= 1
    return np.array(prev), np.array(prev_early), np.array(first)


@torch.no_grad()
def induction_scores(model, vocab_pool, L=64, B=16):
    """Random sequences of L tokens repeated twice; attention from i (second copy) to i-L+1: [L_layers, H]."""
    g = np.random.default_rng(SEED)
    seq = g.choice(vocab_pool, size=(B, L))
    ids = torch.from_numpy(np.concatenate([seq, seq], axis=1))  # [B, 2L]
    logits, probs = model(ids, need_probs=True)
    i = torch.arange(L, 2 * L)
    scores = np.array([p[:, :, i, i - L + 1].mean(dim=(0, 2)).numpy() for p in probs])
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction='none')  # [B, 2L-1]
    return scores, float(nll[:, :L - 1].mean()), float(nll[:, L:].mean())


def main():
    torch.set_num_threads(1)
    model, cfg = load_model()
    train = np.memmap(os.path.join(WORK, 'train.bin'), dtype='<u2', mode='r')
    val = np.memmap(os.path.join(WORK, 'val.bin'), dtype='<u2', mode='r')
    ctx = cfg['n_positions']
    val_w = fixed_windows(val, 96, ctx)  # [96, ctx+1]
    train_w = fixed_windows(train, 32, ctx)
    val_nll = model_nll(model, val_w)
    train_nll = model_nll(model, train_w)
    vw = val_w.numpy()
    bigram = {str(k): float(bigram_nll(train, vw, k).mean()) for k in BIGRAM_KS}
    best_k = min(bigram, key=bigram.get)
    result = {
        'val_windows': int(len(val_w)), 'val_targets': int(val_nll.size), 'ctx': ctx,
        'val_loss': float(val_nll.mean()), 'train_loss_full_softmax': float(train_nll.mean()),
        'val_loss_first_64_positions': float(val_nll[:, :64].mean()), 'val_loss_last_64_positions': float(val_nll[:, -64:].mean()),
        'unigram_add1_val_loss': float(unigram_nll(train, vw).mean()),
        'bigram_val_loss_by_k': bigram, 'bigram_best_k': float(best_k), 'bigram_best_val_loss': bigram[best_k],
    }
    result['margin_vs_best_bigram'] = result['bigram_best_val_loss'] - result['val_loss']
    # The validation file is the sources in corpus.json order: split the windows by the source they start in.
    corpus = json.load(open(os.path.join(WORK, 'corpus.json')))
    starts = np.linspace(0, len(val) - ctx - 2, len(val_w)).astype(np.int64)  # as fixed_windows
    best_bigram = bigram_nll(train, vw, float(best_k)).reshape(val_nll.shape)
    per_source, begin = [], 0
    for src in corpus['sources']:
        end = begin + src['valTokens']
        rows = (starts >= begin) & (starts < end)
        if rows.any():
            per_source.append({'source': src['name'], 'windows': int(rows.sum()),
                               'model': float(val_nll[rows].mean()), 'bigram': float(best_bigram[rows].mean())})
        begin = end
    result['val_by_source'] = per_source
    counts = np.bincount(train, minlength=V)
    result['val_prob_mass_on_never_seen_ids'] = unseen_mass(model, val_w[:16], torch.from_numpy(np.nonzero(counts == 0)[0]))
    result['val_share_of_targets_never_seen'] = float((counts[vw[:, 1:]] == 0).mean())
    prev, prev_early, first = head_scores(model, val_w[:16])
    pool = np.argsort(-counts)[:5000]
    pool = pool[pool != 50256]
    ind, nll_first_copy, nll_second_copy = induction_scores(model, pool)
    heads = []
    for layer in range(cfg['n_layer']):
        for h in range(cfg['n_head']):
            heads.append({'layer': layer, 'head': h, 'prev_token': round(float(prev[layer, h]), 4),
                          'prev_token_t_below_128': round(float(prev_early[layer, h]), 4),
                          'first_token': round(float(first[layer, h]), 4), 'induction': round(float(ind[layer, h]), 4)})
    result['heads'] = heads
    result['max_prev_token'] = float(prev.max())
    result['max_induction'] = float(ind.max())
    result['repeated_random_nll_first_copy'] = nll_first_copy
    result['repeated_random_nll_second_copy'] = nll_second_copy
    with open(os.path.join(MODEL, 'training', 'eval.json'), 'w') as f:
        json.dump(result, f, indent=2)
        f.write('\n')
    print(json.dumps({k: v for k, v in result.items() if k != 'heads'}, indent=2))
    print('layer head prev_token prev_t<128 first_token induction')
    for r in heads:
        print(f"{r['layer']:5d} {r['head']:4d} {r['prev_token']:10.3f} {r['prev_token_t_below_128']:10.3f} "
              f"{r['first_token']:11.3f} {r['induction']:9.3f}")


if __name__ == '__main__':
    main()
