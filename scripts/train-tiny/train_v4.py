"""Recipe v4: trains Headlight's bundled tiny GPT-2 from scratch, on one CPU thread, in at most --max-minutes.

    /usr/bin/python3 scripts/train-tiny/train_v4.py              (after prepare-corpus.ts; see README.md)

v4 = v3 plus a data choice: in a fraction --copy-frac of the training windows, a span of the window's own real text
(length uniform in [--copy-min, ctx/2], at a uniform offset) is immediately repeated, overwriting the tokens after it.
The repeated copy is predictable only by looking back one span length and reading the token after the earlier
occurrence of the current token (an induction circuit, which needs a previous-token head in an earlier layer); with a
50,257-token vocabulary and n_embd 96 nearly all the loss reduction on plain text comes from bigram statistics, so
without this mix attention got almost no gradient. Every token is still a real corpus token (--copy-shuffled draws
the span from random corpus positions instead of running text); --copy-all-targets adds every repeated-copy target
to the random 25 % of targets that carry the loss. No loss term or attention initialisation is added.
Pilot results (the bar was not reached): "Pilots" in README.md. The in-training eval also logs every head's induction score (evaluate.py's).
Pilots: --no-export --log-dir DIR keeps the committed training/ logs untouched.

The v3 notes follow.

Same architecture and export as train.py (4 layers, 4 heads, n_embd 96, n_positions 512, tied head, gelu_new; F16
safetensors in Hugging Face layout). What differs, and why (the previous recipe ended with near-uniform attention
because its learned position rows were ~18x smaller than the token rows, so after LayerNorm position was almost
invisible to the query/key maps):
- Positions: `wpe` is a sin/cos table (Vaswani et al. 2017) with row norm --wpe-norm, kept fixed during training
  (--wpe-train to learn it instead). It is still stored as the ordinary learned `wpe.weight` tensor, so the exported
  file is a plain GPT-2. A sin/cos table makes "the position one before" the same linear map at every position, and a
  healthy norm keeps it visible after LayerNorm.
- `wte` starts at N(0, --wte-std).
- Many cheap updates: windows of --ctx tokens, with every --long-every-th step made of 512-token windows so every
  position is trained; the loss is taken on a random --target-frac of the positions (an unbiased estimate of the
  full loss: the output layer is most of the cost per target), with the softmax over the ids seen in training.
- AdamW, weight decay on the layer matrices only, warm-up then cosine over --steps; --max-minutes caps wall time
  (the run stops early and says so if the machine is slower than planned).
No loss term, mask or initialisation of the attention weights favours any attention pattern.
Every --eval-every steps it logs held-out loss (full 50,257-way softmax, 8 windows of 512) and every head's
previous-token score (evaluate.py's definition: mean attention t -> t-1, t >= 1, on 4 held-out windows of 512).
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2 import GPT2  # noqa: E402
from train import VOCAB, fixed_windows, fill_unseen_rows, export, full_vocab_loss, load_corpus, lr_at, open_log, sampled_loss  # noqa: E402
from evaluate import bigram_nll, induction_scores  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
N_POSITIONS, N_EMBD, N_LAYER, N_HEAD = 512, 96, 4, 4


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--data', default=os.path.join(HERE, 'work'))
    p.add_argument('--out', default=os.path.join(ROOT, 'models', 'headlight-tiny'))
    p.add_argument('--seed', type=int, default=1234)
    p.add_argument('--steps', type=int, default=8000)
    p.add_argument('--max-minutes', type=float, default=58.0, help='hard wall-time cap for the training loop')
    p.add_argument('--ctx', type=int, default=64)
    p.add_argument('--long-ctx', type=int, default=512)
    p.add_argument('--early-ctx', type=int, default=32, help='window length of the first --early-steps steps')
    p.add_argument('--early-steps', type=int, default=0)
    p.add_argument('--long-every', type=int, default=8)
    p.add_argument('--tokens-per-step', type=int, default=1024)
    p.add_argument('--target-frac', type=float, default=0.25)
    p.add_argument('--lr', type=float, default=3e-3)
    p.add_argument('--min-lr', type=float, default=1e-4)
    p.add_argument('--warmup', type=int, default=100)
    p.add_argument('--weight-decay', type=float, default=0.1)
    p.add_argument('--wte-std', type=float, default=0.02)
    p.add_argument('--wpe-norm', type=float, default=1.0, help='row norm of the sin/cos position table')
    p.add_argument('--wpe-train', action='store_true', help='learn the position table (default: kept fixed)')
    p.add_argument('--threads', type=int, default=1, help='torch threads (1 keeps the run bit-repeatable)')
    p.add_argument('--wte-lr-mult', type=float, default=1.0, help='learning rate of wte relative to --lr')
    p.add_argument('--wte-decay', type=float, default=0.0, help='weight decay on the seen wte rows')
    p.add_argument('--qk-std', type=float, default=None, help='init std of the query/key columns of c_attn (default: GPT-2 0.02)')
    p.add_argument('--log-every', type=int, default=50)
    p.add_argument('--eval-every', type=int, default=250)
    p.add_argument('--no-export', action='store_true', help='pilot runs: train and log only')
    p.add_argument('--log-dir', default=None, help='where train.log/loss.csv go (default: <out>/training)')
    p.add_argument('--copy-frac', type=float, default=0.5, help='share of windows with a repeated span')
    p.add_argument('--copy-min', type=int, default=8, help='shortest repeated span')
    p.add_argument('--copy-shuffled', type=float, default=0.0,
                   help='share of repeated spans made of tokens from random corpus positions instead of running text')
    p.add_argument('--copy-all-targets', action='store_true', help='take the loss on every target of a repeated copy')
    return p.parse_args()


def sincos_table(P, E, row_norm):
    """[P, E] sin/cos at geometric frequencies 1 .. 1/10000, every row of norm row_norm."""
    pos = torch.arange(P, dtype=torch.float32)[:, None]  # [P, 1]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, E, 2, dtype=torch.float32) / E)  # [E/2]
    table = torch.zeros(P, E)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)  # each (sin, cos) pair has norm 1, so a row has norm sqrt(E/2)
    return table * (row_norm / math.sqrt(E / 2))


@torch.no_grad()
def head_scores(model, windows):
    """Previous-token score of every head, evaluate.py's definition, without computing logits: [L, H]."""
    ids = windows[:, :-1]
    T = ids.shape[1]
    h = model.wte(ids) + model.wpe(torch.arange(T))  # [B, T, E]
    prev, early = [], []
    for block in model.h:
        h, probs = block(h, need_probs=True)  # probs [B, H, T, T]
        diag = probs.diagonal(offset=-1, dim1=-2, dim2=-1)  # [B, H, T-1]: t -> t-1 for t = 1..T-1
        prev.append(diag.mean(dim=(0, 2)).numpy())
        early.append(diag[:, :, :31].mean(dim=(0, 2)).numpy())  # t = 1..31 only
    return np.array(prev), np.array(early)


def add_copies(chunk, rng, frac, min_len, shuffled=0.0, train=None):
    """In place: in a share `frac` of the rows of chunk [B, T+1], the span [p, p+n) is copied to [p+n, p+2n).
    Returns [B, T] bool: the targets that an induction circuit can predict (chunk[j+1] for j+1 in (p+n, p+2n))."""
    B, T1 = chunk.shape
    copied = np.zeros((B, T1 - 1), dtype=bool)
    for b in np.nonzero(rng.random(B) < frac)[0]:
        n = int(rng.integers(min_len, T1 // 2 + 1))
        p = int(rng.integers(0, T1 - 2 * n + 1))
        if rng.random() < shuffled:  # the span is n tokens from random corpus positions (unigram-distributed)
            chunk[b, p:p + n] = train[rng.integers(0, len(train), size=n)]
        chunk[b, p + n:p + 2 * n] = chunk[b, p:p + n]
        copied[b, p + n:p + 2 * n - 1] = True
    return copied


def main():
    a = parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    train_dir = a.log_dir or os.path.join(a.out, 'training')
    os.makedirs(train_dir, exist_ok=True)
    say = open_log(os.path.join(train_dir, 'train.log'))
    train, val, counts, seen_ids, to_seen = load_corpus(a.data)

    model = GPT2(VOCAB, N_POSITIONS, N_EMBD, N_LAYER, N_HEAD)
    with torch.no_grad():
        model.wte.weight.normal_(0.0, a.wte_std)
        model.wpe.weight.copy_(sincos_table(N_POSITIONS, N_EMBD, a.wpe_norm))
        if a.qk_std is not None:
            for block in model.h:
                block.attn.c_attn.weight[:, :2 * N_EMBD].normal_(0.0, a.qk_std)
    model.wpe.weight.requires_grad_(a.wpe_train)
    named = {n: p for n, p in model.named_parameters() if p.requires_grad}
    decay = [p for n, p in named.items() if p.dim() >= 2 and n not in ('wte.weight', 'wpe.weight')]
    no_decay = [p for n, p in named.items() if not (p.dim() >= 2 or n == 'wpe.weight')]
    groups = [{'params': decay, 'weight_decay': a.weight_decay, 'lr_mult': 1.0},
              {'params': no_decay, 'weight_decay': 0.0, 'lr_mult': 1.0},
              {'params': [model.wte.weight], 'weight_decay': a.wte_decay, 'lr_mult': a.wte_lr_mult}]
    if a.wpe_train:
        groups.append({'params': [model.wpe.weight], 'weight_decay': 0.0, 'lr_mult': 1.0})
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.95), eps=1e-8)

    val_w = fixed_windows(val, 96, 512)[::12]  # [8, 513]: every 12th of evaluate.py's windows
    head_w = fixed_windows(val, 96, 512)[:4]  # [4, 513]: the first of evaluate.py's head-score windows
    bigram = float(bigram_nll(train, val_w.numpy(), 0.001).mean())
    n_params = sum(p.numel() for p in model.parameters())
    say(f'train {len(train)} tokens, val {len(val)}, {len(seen_ids)} distinct ids in train; {n_params} parameters; '
        f'bigram (k=0.001) on the in-training eval targets {bigram:.4f}; args {vars(a)}')

    csv_file = open(os.path.join(train_dir, 'loss.csv'), 'w', newline='')
    writer = csv.writer(csv_file)
    writer.writerow(['step', 'tokens', 'elapsed_s', 'lr', 'train_loss', 'val_loss', 'bigram_val_loss', 'max_prev_token_score', 'max_induction_score'])
    pool = np.argsort(-counts)[:5000]
    pool = pool[pool != 50256]

    def do_eval(step, tokens, elapsed, lr):
        model.eval()
        saved = model.wte.weight[counts == 0].clone()
        fill_unseen_rows(model, counts)
        loss = full_vocab_loss(model, val_w, batch=1)
        prev, early = head_scores(model, head_w)
        ind, _, nll2 = induction_scores(model, pool)
        with torch.no_grad():
            model.wte.weight[counts == 0] = saved  # unseen rows get no gradient; keep them as they were
        model.train()
        writer.writerow([step, tokens, f'{elapsed:.1f}', f'{lr:.6f}', '', f'{loss:.4f}', f'{bigram:.4f}', f'{prev.max():.3f}', f'{ind.max():.3f}'])
        csv_file.flush()
        say(f'EVAL step {step} {elapsed:.0f}s val {loss:.4f} (bigram {bigram:.4f}, margin {bigram - loss:+.4f}) '
            f'max prev {prev.max():.3f} (t<32: {early.max():.3f}) at {np.unravel_index(prev.argmax(), prev.shape)} per head {np.round(prev, 2).tolist()} '
            f'| max induction {ind.max():.3f} at {np.unravel_index(ind.argmax(), ind.shape)} (2nd-copy nll {nll2:.2f}) per head {np.round(ind, 2).tolist()}')
        return loss, prev

    start = time.time()
    eval_s = 0.0  # time spent evaluating is not training time but counts towards the cap
    running, n_running, tokens, step, stopped_early, lr = 0.0, 0, 0, 0, False, 0.0
    for step in range(a.steps):
        lr = lr_at(step, a)
        for g in opt.param_groups:
            g['lr'] = lr * g['lr_mult']
        short = a.early_ctx if step < a.early_steps else a.ctx
        ctx = a.long_ctx if (step + 1) % a.long_every == 0 else short
        starts = rng.integers(0, len(train) - ctx - 1, size=max(1, a.tokens_per_step // ctx))
        chunk = np.stack([train[s:s + ctx + 1].astype(np.int64) for s in starts])  # [B, ctx+1]
        copied = add_copies(chunk, rng, a.copy_frac, a.copy_min, a.copy_shuffled, train)
        x = torch.from_numpy(chunk[:, :-1])  # [B, ctx]
        y = torch.from_numpy(to_seen[chunk[:, 1:]])  # [B, ctx], indices into seen_ids
        keep = rng.random(x.shape) < a.target_frac  # [B, ctx]
        if a.copy_all_targets:
            keep |= copied  # every induction-predictable target counts (biases the loss towards the copies)
        keep = torch.from_numpy(keep)
        loss = sampled_loss(model, x, y, seen_ids, keep)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(named.values(), 1.0)
        opt.step()
        tokens += x.numel()
        running += loss.item()
        n_running += 1
        done = step + 1
        elapsed = time.time() - start
        if done % a.log_every == 0:
            writer.writerow([done, tokens, f'{elapsed:.1f}', f'{lr:.6f}', f'{running / n_running:.4f}', '', '', '', ''])
            csv_file.flush()
            say(f'step {done} tokens {tokens} {elapsed:.0f}s lr {lr:.2e} train {running / n_running:.4f} '
                f'wte row norm {model.wte.weight[seen_ids].norm(dim=1).mean():.2f}')
            running, n_running = 0.0, 0
        if done % a.eval_every == 0 and done < a.steps:
            t0 = time.time()
            do_eval(done, tokens, elapsed, lr)
            eval_s += time.time() - t0
        if time.time() - start > a.max_minutes * 60 and done < a.steps:
            say(f'STOPPED EARLY at step {done}: wall time {time.time() - start:.0f}s over --max-minutes {a.max_minutes}')
            stopped_early = True
            break
    steps_done = step + 1
    train_s = time.time() - start
    final_loss, final_prev = do_eval(steps_done, tokens, train_s, lr)
    say(f'done: {steps_done} steps, {tokens} tokens in {train_s:.0f}s (evaluation {eval_s:.0f}s of it)')
    if a.no_export:
        return
    model.eval()
    torch.save(model.state_dict(), os.path.join(a.data, 'final-fp32.pt'))
    n_unseen = export(model, argparse.Namespace(n_positions=N_POSITIONS, n_embd=N_EMBD, n_layer=N_LAYER, n_head=N_HEAD),
                      counts, a.out)
    # Reference for verify.py: the fp32 model and the same model with weights rounded to fp16, on a fixed batch.
    verify_batch = fixed_windows(val, 2, 128)  # [2, 129]
    np.save(os.path.join(a.data, 'verify-batch.npy'), verify_batch.numpy())
    loss32 = full_vocab_loss(model, verify_batch)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    loss16 = full_vocab_loss(model, verify_batch)
    summary = {
        'recipe': 'v4 (train_v4.py)', 'steps': steps_done, 'stopped_early': stopped_early, 'train_seconds': round(train_s, 1),
        'eval_seconds_inside': round(eval_s, 1), 'tokens_seen': tokens, 'final_val_loss_8_windows': final_loss,
        'final_max_prev_token_4_windows': float(final_prev.max()), 'copy_frac': a.copy_frac, 'distinct_train_ids': len(seen_ids),
        'unseen_rows_filled': n_unseen, 'parameters': n_params, 'verify_batch_loss_fp32': loss32,
        'verify_batch_loss_fp16_weights': loss16, 'args': vars(a), 'torch': torch.__version__,
        'threads': torch.get_num_threads(),
    }
    with open(os.path.join(train_dir, 'train-summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
        f.write('\n')
    say(f'exported; verify batch loss fp32 {loss32:.5f}, fp16 weights {loss16:.5f}')


if __name__ == '__main__':
    main()
