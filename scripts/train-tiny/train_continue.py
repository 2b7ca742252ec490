"""Phase 2: continues training the committed tiny model from phase 1's fp32 weights (work/final-fp32.pt).

    /usr/bin/python3 scripts/train-tiny/train_continue.py --until 15:50

Why a second phase: phase 1 (train.py) saw only 1.33 M tokens and stopped while the model was still bigram-like.
Phase 2 makes each step cheaper per useful update, with ordinary choices only (no loss term or initialisation that
favours any attention pattern):
- two threads, 4,096 tokens per step (more updates per minute); windows of 256 tokens, with every 4th step at 512 so all 512 positions keep
  training (the file keeps n_positions 512);
- the restricted softmax of train.py (ids seen in training), and the loss taken on a random `--target-frac` of the
  positions of each step (an unbiased estimate of the full loss; the output layer is ~3/4 of the cost per target);
- weight decay on matrices only, and a `--wpe-lr-mult` larger learning rate for the position table (see main);
- AdamW restarted (phase 1 kept no optimizer state) with a short warm-up and a cosine decay over wall time, so the
  run ends at `--until` with a decayed learning rate.
Every `--eval-minutes` it measures the held-out loss (full 50,257-way softmax) on 24 of evaluate.py's windows, the
add-k bigram baseline on the same targets, and every head's previous-token score; the best checkpoint (by held-out
loss) is kept in work/phase2-best.pt, so a deadline never leaves nothing. Logs training/loss-phase2.csv and
training/train-phase2.log; `--export` then writes the best checkpoint with train.py's exporter.
"""
import argparse
import csv
import datetime
import json
import math
import os
import sys
import time

import blas_env  # noqa: E402  (before NumPy and torch load OpenBLAS)
blas_env.setup(2)

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2 import GPT2  # noqa: E402
from train import VOCAB, fixed_windows, fill_unseen_rows, export, full_vocab_loss, load_corpus, open_log, sampled_loss  # noqa: E402
from evaluate import bigram_nll  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--data', default=os.path.join(HERE, 'work'))
    p.add_argument('--out', default=os.path.join(ROOT, 'models', 'headlight-tiny'))
    p.add_argument('--init', default=os.path.join(HERE, 'work', 'final-fp32.pt'))
    p.add_argument('--seed', type=int, default=4321)
    p.add_argument('--until', default='15:50', help='UTC wall-clock HH:MM at which training stops')
    p.add_argument('--ctx', type=int, default=256)
    p.add_argument('--long-ctx', type=int, default=512)
    p.add_argument('--long-every', type=int, default=4)
    p.add_argument('--tokens-per-step', type=int, default=4096)
    p.add_argument('--target-frac', type=float, default=0.25)
    p.add_argument('--lr', type=float, default=1.5e-3)
    p.add_argument('--min-lr', type=float, default=1e-4)
    p.add_argument('--warmup', type=int, default=20)
    p.add_argument('--weight-decay', type=float, default=0.1)
    p.add_argument('--wpe-lr-mult', type=float, default=5.0, help='learning-rate multiplier of the position table')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--log-every', type=int, default=10)
    p.add_argument('--eval-minutes', type=float, default=5.0)
    p.add_argument('--export', action='store_true', help='only export work/phase2-best.pt and exit')
    return p.parse_args()


def config_args(n_positions=512):
    return argparse.Namespace(n_positions=n_positions, n_embd=96, n_layer=4, n_head=4)


def lr_at(step, frac_time, a):
    """Linear warm-up over steps, then cosine from lr to min_lr over the fraction of wall time used."""
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    return a.min_lr + 0.5 * (a.lr - a.min_lr) * (1 + math.cos(math.pi * min(1.0, frac_time)))


@torch.no_grad()
def evaluate(model, counts, val_w, bigram):
    """Held-out loss (full softmax) and per-head previous-token scores (all t, and t < 128): floats, [L, H], [L, H]."""
    model.eval()
    saved = model.wte.weight[counts == 0].clone()
    fill_unseen_rows(model, counts)
    loss = full_vocab_loss(model, val_w)
    _, probs = model(val_w[:4, :-1], need_probs=True)  # L x [B, H, T, T]
    diags = [p.diagonal(offset=-1, dim1=-2, dim2=-1) for p in probs]  # L x [B, H, T-1]
    prev = np.array([d.mean(dim=(0, 2)).numpy() for d in diags])
    prev_early = np.array([d[:, :, :127].mean(dim=(0, 2)).numpy() for d in diags])
    model.wte.weight[counts == 0] = saved  # unseen rows are not trained; keep them as they were
    model.train()
    return loss, prev, prev_early


def main():
    a = parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    train, val, counts, seen_ids, to_seen = load_corpus(a.data)
    model = GPT2(VOCAB, 512, 96, 4, 4)
    if a.export:
        ck = torch.load(os.path.join(a.data, 'phase2-best.pt'))
        model.load_state_dict(ck['model'])
        model.eval()
        torch.save(model.state_dict(), os.path.join(a.data, 'final-fp32.pt'))
        n = export(model, config_args(), counts, a.out)
        # Reference for verify.py, as train.py does: the fp32 model and the model with weights rounded to fp16.
        batch = torch.from_numpy(np.load(os.path.join(a.data, 'verify-batch.npy')))  # [2, 129]
        loss32 = full_vocab_loss(model, batch)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.half().float())
        loss16 = full_vocab_loss(model, batch)
        summary = {'phase2_best_step': ck['step'], 'phase2_best_tokens': ck['tokens'], 'phase2_best_elapsed_s': ck['elapsed_s'],
                   'phase2_best_val_loss_24_windows': ck['val_loss'], 'unseen_rows_filled': n,
                   'verify_batch_loss_fp32': loss32, 'verify_batch_loss_fp16_weights': loss16,
                   'torch': torch.__version__, 'threads': torch.get_num_threads()}
        with open(os.path.join(a.out, 'training', 'train-phase2-summary.json'), 'w') as f:
            json.dump(summary, f, indent=2)
            f.write('\n')
        print(f'exported phase-2 best (step {ck["step"]}, val {ck["val_loss"]:.4f}); {n} unseen rows filled; '
              f'verify batch fp32 {loss32:.5f}, fp16 {loss16:.5f}')
        return
    model.load_state_dict(torch.load(a.init))
    # Weight decay on matrices only, not on the embeddings (minGPT's grouping); the position table gets a larger
    # learning rate: its rows (norm ~0.18 after phase 1) are ~18x smaller than the token rows (~3.2), which the tied
    # output layer has grown, so with one learning rate position information is a small share of every LayerNorm input.
    named = dict(model.named_parameters())
    decay = [p for n, p in named.items() if p.dim() >= 2 and n not in ('wte.weight', 'wpe.weight')]
    no_decay = [p for n, p in named.items() if p.dim() < 2] + [named['wte.weight']]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': a.weight_decay, 'mult': 1.0},
                             {'params': no_decay, 'weight_decay': 0.0, 'mult': 1.0},
                             {'params': [named['wpe.weight']], 'weight_decay': 0.0, 'mult': a.wpe_lr_mult}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    val_w = fixed_windows(val, 96, 512)[::4]  # [24, 513]: every 4th of evaluate.py's windows
    bigram = float(bigram_nll(train, val_w.numpy(), 0.001).mean())

    train_dir = os.path.join(a.out, 'training')
    say = open_log(os.path.join(train_dir, 'train-phase2.log'))

    now = datetime.datetime.utcnow()
    hh, mm = map(int, a.until.split(':'))
    end = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
    budget = (end - now).total_seconds()
    say(f'phase 2 from {a.init}; budget {budget:.0f}s; args {vars(a)}; bigram(k=0.001) on eval targets {bigram:.4f}')
    csv_file = open(os.path.join(train_dir, 'loss-phase2.csv'), 'w', newline='')
    writer = csv.writer(csv_file)
    writer.writerow(['step', 'tokens', 'elapsed_s', 'lr', 'train_loss', 'val_loss', 'bigram_val_loss', 'max_prev_token_score'])

    def do_eval(step, tokens, elapsed, lr, best):
        loss, prev, prev_early = evaluate(model, counts, val_w, bigram)
        writer.writerow([step, tokens, f'{elapsed:.1f}', f'{lr:.6f}', '', f'{loss:.4f}', f'{bigram:.4f}', f'{prev.max():.3f}'])
        csv_file.flush()
        say(f'EVAL step {step} tokens {tokens} {elapsed:.0f}s val {loss:.4f} (bigram {bigram:.4f}, margin {bigram - loss:+.4f}) '
            f'prev-token per head {np.round(prev, 3).tolist()} (t<128: max {prev_early.max():.3f})')
        if loss < best:
            torch.save({'model': model.state_dict(), 'opt': opt.state_dict(), 'step': step, 'tokens': tokens,
                        'val_loss': loss, 'prev': prev.tolist(), 'elapsed_s': elapsed}, os.path.join(a.data, 'phase2-best.pt'))
            say(f'  saved best (val {loss:.4f})')
            return loss
        return best

    start = time.time()
    best = do_eval(0, 0, 0.0, 0.0, float('inf'))
    start = time.time()
    last_eval, running, n_running, step, tokens, lr = start, 0.0, 0, 0, 0, 0.0
    while True:
        elapsed = time.time() - start
        if elapsed > budget:
            break
        lr = lr_at(step, elapsed / budget, a)
        for g in opt.param_groups:
            g['lr'] = lr * g['mult']
        ctx = a.long_ctx if (step + 1) % a.long_every == 0 else a.ctx
        starts = rng.integers(0, len(train) - ctx - 1, size=a.tokens_per_step // ctx)
        chunk = np.stack([train[s:s + ctx + 1].astype(np.int64) for s in starts])  # [B, ctx+1]
        x = torch.from_numpy(chunk[:, :-1])  # [B, ctx]
        y = torch.from_numpy(to_seen[chunk[:, 1:]])  # [B, ctx]
        keep = torch.from_numpy(rng.random(x.shape) < a.target_frac)  # [B, ctx]
        loss = sampled_loss(model, x, y, seen_ids, keep)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += x.numel()
        running += loss.item()
        n_running += 1
        if step % a.log_every == 0:
            el = time.time() - start
            writer.writerow([step, tokens, f'{el:.1f}', f'{lr:.6f}', f'{running / n_running:.4f}', '', '', ''])
            csv_file.flush()
            say(f'step {step} tokens {tokens} {el:.0f}s {tokens / el:.0f} tok/s lr {lr:.2e} train {running / n_running:.4f}')
            running, n_running = 0.0, 0
        if time.time() - last_eval > a.eval_minutes * 60:
            best = do_eval(step, tokens, time.time() - start, lr, best)
            last_eval = time.time()
    best = do_eval(step, tokens, time.time() - start, lr, best)
    say(f'done: {step} steps, {tokens} tokens in {time.time() - start:.0f}s; best val {best:.4f}')
    torch.save({'model': model.state_dict(), 'opt': opt.state_dict(), 'step': step}, os.path.join(a.data, 'phase2-last.pt'))


if __name__ == '__main__':
    main()
