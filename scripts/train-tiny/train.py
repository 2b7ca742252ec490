"""Trains Headlight's bundled tiny GPT-2 on CPU with one thread and exports it in Hugging Face layout.

    /usr/bin/python3 scripts/train-tiny/train.py            (after prepare-corpus.ts; see README.md)

Reads work/train.bin and work/val.bin (uint16 GPT-2 token ids), writes models/headlight-tiny/{config.json,
model.safetensors} and models/headlight-tiny/training/{loss.csv,train.log,train-summary.json}.

Speed trick (training only): the softmax is taken over the token ids that occur in the training split (~19.5k of
50,257), which is exactly the full softmax for those targets minus the never-seen tokens' terms; the exported model is
a plain GPT-2 over the full vocabulary. Rows of never-seen tokens are set, before export, to the mean embedding of the
rarest seen tokens (count 1), so they get the low probability of a rare token. All reported losses use the full
50,257-way softmax.
"""
import argparse
import csv
import json
import math
import os
import sys
import time

import blas_env  # noqa: E402  (before NumPy and torch load OpenBLAS)
blas_env.setup(1)

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2 import GPT2, loss_fn  # noqa: E402
import safetensors_io  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
VOCAB = 50257
EOT = 50256


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--data', default=os.path.join(HERE, 'work'))
    p.add_argument('--out', default=os.path.join(ROOT, 'models', 'headlight-tiny'))
    p.add_argument('--seed', type=int, default=1234)
    p.add_argument('--n-layer', type=int, default=4)
    p.add_argument('--n-head', type=int, default=4)
    p.add_argument('--n-embd', type=int, default=96)
    p.add_argument('--n-positions', type=int, default=512)
    p.add_argument('--ctx', type=int, default=512, help='training window length (phase 2) and evaluation length')
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--short-ctx', type=int, default=128, help='window length of phase 1 (same tokens per step)')
    p.add_argument('--short-frac', type=float, default=0.6, help='fraction of steps in phase 1')
    p.add_argument('--wpe-init', choices=['sinusoidal', 'normal'], default='sinusoidal')
    p.add_argument('--steps', type=int, default=1300)
    p.add_argument('--max-minutes', type=float, default=33.0, help='stop early (and say so) past this wall time')
    p.add_argument('--lr', type=float, default=2e-3)
    p.add_argument('--min-lr', type=float, default=2e-4)
    p.add_argument('--warmup', type=int, default=50)
    p.add_argument('--weight-decay', type=float, default=0.1)
    p.add_argument('--log-every', type=int, default=20)
    p.add_argument('--eval-every', type=int, default=130)
    return p.parse_args()


def lr_at(step, a):
    """Linear warm-up, then cosine decay from lr to min_lr over the remaining steps."""
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    frac = (step - a.warmup) / max(1, a.steps - a.warmup)
    return a.min_lr + 0.5 * (a.lr - a.min_lr) * (1 + math.cos(math.pi * min(1.0, frac)))


def sampled_loss(model, x, y, seen_ids, keep):
    """Softmax over the seen ids, on the kept positions only (phase 2). x, y: [B, T]; keep: [B, T] bool."""
    T = x.shape[1]
    h = model.wte(x) + model.wpe(torch.arange(T))  # [B, T, E]
    for block in model.h:
        h, _ = block(h)
    h = model.ln_f(h)[keep]  # [N, E]
    logits = h @ model.wte.weight[seen_ids].t()  # [N, S]
    return F.cross_entropy(logits, y[keep])


def open_log(path):
    """A `say(msg)` that prints and appends to the log file at path."""
    log = open(path, 'w')

    def say(msg):
        print(msg, flush=True)
        log.write(msg + '\n')
        log.flush()

    return say


def load_corpus(data):
    """train.bin and val.bin (memory-mapped uint16 ids), train's id counts [VOCAB], the seen ids [S] (tensor) and
    the map id -> index among the seen ids (-1 for unseen)."""
    train = np.memmap(os.path.join(data, 'train.bin'), dtype='<u2', mode='r')
    val = np.memmap(os.path.join(data, 'val.bin'), dtype='<u2', mode='r')
    counts = np.bincount(train, minlength=VOCAB)
    seen_ids = torch.from_numpy(np.nonzero(counts)[0])  # [S]
    to_seen = np.full(VOCAB, -1, dtype=np.int64)
    to_seen[seen_ids.numpy()] = np.arange(len(seen_ids))
    return train, val, counts, seen_ids, to_seen


def fixed_windows(tokens, n, ctx):
    """n evenly spaced, non-overlapping windows of ctx+1 tokens: [n, ctx+1] int64."""
    starts = np.linspace(0, len(tokens) - ctx - 2, n).astype(np.int64)
    return torch.from_numpy(np.stack([tokens[s:s + ctx + 1].astype(np.int64) for s in starts]))


@torch.no_grad()
def full_vocab_loss(model, windows, batch=4):
    """Mean nats/token over all targets of the windows, 50,257-way softmax."""
    total, count = 0.0, 0
    for i in range(0, len(windows), batch):
        w = windows[i:i + batch]
        logits, _ = model(w[:, :-1])  # [B, T, V]
        total += F.cross_entropy(logits.reshape(-1, VOCAB), w[:, 1:].reshape(-1), reduction='sum').item()
        count += w[:, 1:].numel()
    return total / count


@torch.no_grad()
def prev_token_scores(model, windows):
    """Mean attention from t to t-1 (t >= 1) per layer and head: [L, H]."""
    _, probs = model(windows[:, :-1], need_probs=True)  # L x [B, H, T, T]
    return np.array([p.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, 2)).numpy() for p in probs])


def restricted_loss(model, x, y, seen_ids):
    """Training loss with the softmax over seen token ids only; y holds indices into seen_ids."""
    T = x.shape[1]
    h = model.wte(x) + model.wpe(torch.arange(T))  # [B, T, E]
    for block in model.h:
        h, _ = block(h)
    h = model.ln_f(h)  # [B, T, E]
    logits = h @ model.wte.weight[seen_ids].t()  # [B, T, S]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def fill_unseen_rows(model, counts):
    """Sets the wte rows of ids never seen in training to the mean row of the rarest seen ids (count 1)."""
    with torch.no_grad():
        wte = model.wte.weight
        rare = torch.from_numpy(np.nonzero(counts == 1)[0])
        unseen = torch.from_numpy(np.nonzero(counts == 0)[0])
        wte[unseen] = wte[rare].mean(dim=0)
    return len(unseen)


def hf_config(a):
    """The Hugging Face GPT-2 config.json for a model of the sizes in a (n_layer, n_head, n_embd, n_positions)."""
    return {
        'architectures': ['GPT2LMHeadModel'],
        'model_type': 'gpt2',
        'vocab_size': VOCAB,
        'n_positions': a.n_positions,
        'n_ctx': a.n_positions,
        'n_embd': a.n_embd,
        'n_layer': a.n_layer,
        'n_head': a.n_head,
        'n_inner': None,
        'activation_function': 'gelu_new',
        'resid_pdrop': 0.0,
        'embd_pdrop': 0.0,
        'attn_pdrop': 0.0,
        'layer_norm_epsilon': 1e-05,
        'initializer_range': 0.02,
        'scale_attn_weights': True,
        'scale_attn_by_inverse_layer_idx': False,
        'reorder_and_upcast_attn': False,
        'use_cache': True,
        'bos_token_id': EOT,
        'eos_token_id': EOT,
        'torch_dtype': 'float16',
        'task_specific_params': {'text-generation': {'do_sample': True, 'max_length': 50}},
    }


def save_hf(model, a, out_dir):
    """Writes config.json and model.safetensors (F16, HF key names) of the model as it is."""
    state = {k: v.detach().numpy().astype(np.float16) for k, v in model.state_dict().items()}
    safetensors_io.save(os.path.join(out_dir, 'model.safetensors'), state, {'format': 'pt'})
    with open(os.path.join(out_dir, 'config.json'), 'w') as f:
        json.dump(hf_config(a), f, indent=2)
        f.write('\n')


def export(model, a, counts, out_dir):
    """Fills never-seen rows of wte, then writes config.json and model.safetensors (F16, HF key names)."""
    n_unseen = fill_unseen_rows(model, counts)
    save_hf(model, a, out_dir)
    return n_unseen


def main():
    a = parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    train_dir = os.path.join(a.out, 'training')
    os.makedirs(train_dir, exist_ok=True)
    say = open_log(os.path.join(train_dir, 'train.log'))
    train, val, counts, seen_ids, to_seen = load_corpus(a.data)
    say(f'train {len(train)} tokens, val {len(val)} tokens, {len(seen_ids)} distinct ids in train; args {vars(a)}')

    model = GPT2(VOCAB, a.n_positions, a.n_embd, a.n_layer, a.n_head)
    if a.wpe_init == 'sinusoidal':
        model.init_wpe_sinusoidal()
    short_steps = int(a.steps * a.short_frac)
    tokens_per_step = a.batch * a.ctx
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': a.weight_decay}, {'params': no_decay, 'weight_decay': 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    eval_windows = fixed_windows(val, 8, a.ctx)  # [8, ctx+1], quick in-training check only
    n_params = sum(p.numel() for p in model.parameters())
    say(f'parameters {n_params} ({n_params - VOCAB * a.n_embd - a.n_positions * a.n_embd} outside embeddings)')

    csv_file = open(os.path.join(train_dir, 'loss.csv'), 'w', newline='')
    writer = csv.writer(csv_file)
    writer.writerow(['step', 'tokens', 'elapsed_s', 'lr', 'train_loss', 'val_loss', 'max_prev_token_score'])
    start = time.time()
    running, n_running, step = 0.0, 0, 0
    stopped_early = False
    for step in range(a.steps):
        lr = lr_at(step, a)
        for g in opt.param_groups:
            g['lr'] = lr
        ctx = a.short_ctx if step < short_steps else a.ctx
        starts = rng.integers(0, len(train) - ctx - 1, size=tokens_per_step // ctx)
        chunk = np.stack([train[s:s + ctx + 1].astype(np.int64) for s in starts])  # [B, ctx+1]
        x = torch.from_numpy(chunk[:, :-1])  # [B, ctx]
        y = torch.from_numpy(to_seen[chunk[:, 1:]])  # [B, ctx], indices into seen_ids
        loss = restricted_loss(model, x, y, seen_ids)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running += loss.item()
        n_running += 1
        done = step + 1
        is_eval = done % a.eval_every == 0 or done == a.steps
        if done % a.log_every == 0 or is_eval:
            elapsed = time.time() - start
            val_loss, prev = '', ''
            if is_eval:
                model.eval()
                fill_unseen_rows(model, counts)
                val_loss = f'{full_vocab_loss(model, eval_windows):.4f}'
                prev = f'{prev_token_scores(model, eval_windows[:2]).max():.3f}'
                model.train()
            writer.writerow([done, done * tokens_per_step, f'{elapsed:.1f}', f'{lr:.6f}', f'{running / n_running:.4f}', val_loss, prev])
            csv_file.flush()
            say(f'step {done} ctx {ctx} tokens {done * tokens_per_step} {elapsed:.0f}s lr {lr:.2e} train {running / n_running:.4f}'
                + (f' val {val_loss} max-prev {prev}' if is_eval else ''))
            running, n_running = 0.0, 0
            if elapsed > a.max_minutes * 60 and done < a.steps:
                say(f'STOPPED EARLY at step {done}: wall time {elapsed:.0f}s over --max-minutes {a.max_minutes}')
                stopped_early = True
                break
    train_s = time.time() - start
    steps_done = step + 1
    model.eval()
    torch.save(model.state_dict(), os.path.join(a.data, 'final-fp32.pt'))
    n_unseen = export(model, a, counts, a.out)

    # Reference for verify.py: loss of the fp32 model and of the same model with weights rounded to fp16.
    verify_batch = fixed_windows(val, 2, 128)  # [2, 129]
    np.save(os.path.join(a.data, 'verify-batch.npy'), verify_batch.numpy())
    loss32 = full_vocab_loss(model, verify_batch)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    loss16 = full_vocab_loss(model, verify_batch)
    summary = {
        'steps': steps_done, 'stopped_early': stopped_early, 'train_seconds': round(train_s, 1),
        'tokens_seen': steps_done * tokens_per_step, 'phase1_steps': short_steps,
        'distinct_train_ids': len(seen_ids), 'unseen_rows_filled': n_unseen, 'parameters': n_params,
        'verify_batch_loss_fp32': loss32, 'verify_batch_loss_fp16_weights': loss16, 'args': vars(a),
        'torch': torch.__version__, 'threads': torch.get_num_threads(),
    }
    with open(os.path.join(train_dir, 'train-summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
        f.write('\n')
    say(f'done: {steps_done} steps in {train_s:.0f}s; verify batch loss fp32 {loss32:.5f}, fp16 weights {loss16:.5f}')


if __name__ == '__main__':
    main()
