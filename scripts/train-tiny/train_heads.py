"""Trains the tiny GPT-2 so that its heads learn something a user can recognise (issue #21): a previous-token head and
an induction head, with the held-out loss below the add-k bigram. No weight is set by hand and no loss term looks at
attention: the heads have to pay for themselves on the next-token loss.

    /usr/bin/python3 scripts/train-tiny/train_heads.py --run NAME --minutes M [options]   # new run, or
    /usr/bin/python3 scripts/train-tiny/train_heads.py --run NAME --minutes M --resume     # continue it
    /usr/bin/python3 scripts/train-tiny/train_heads.py --bench 12                          # tokens/s of the softmaxes
    /usr/bin/python3 scripts/train-tiny/train_heads.py --run NAME --export DIR             # HF folder from the checkpoint

What differs from train.py (whose corpus, windows, config and writer it imports):
- Sampled softmax: the logits of a step are taken over the step's own targets plus K negatives drawn uniformly from
  the rest of the 50,257 ids, each negative's logit raised by log((V - |targets|) / K) so that its term stands for
  the ids it was drawn from (an importance-sampled partition function). Held-out losses use the full softmax.
- Data mix, three kinds of window in one step: natural text (loss on every target); "copy" windows of random ids,
  each segment of n ids followed by one or two more copies of itself, loss only where a copy makes the next id
  predictable (copying needs a previous-token head feeding an induction head, so those heads pay on the loss); "skip"
  windows of m random ids followed by the id before last ("a b a"), loss only on that repeat, which only the token
  exactly one position back predicts (a sharp previous-token head pays, a head spread over t-1..t-3 does not). The
  random ids come from the N commonest training ids (--syn-pool) or uniformly from a range (--syn-range 1000:30000,
  the range the head finder's induction probe draws from).
- Position signal: sin/cos start for wpe (train.py's), its own learning-rate factor and no decay; weight decay on wte
  so the tied token rows do not drown the positions; a context curriculum (short windows first); windows placed at
  random offsets in the 512 positions, per step or per window (--pos-offset-per-window), so a pattern learnt on short
  windows is learnt at every position and has to be relative.
- Resumable: fp32 weights, AdamW state, RNG states and the log history go to work/heads-NAME.pt every few minutes
  and at the end; the log prints the command that continues the run.
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import blas_env  # noqa: E402  (before NumPy and torch load OpenBLAS)
blas_env.setup(1)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from gpt2 import GPT2  # noqa: E402
from train import EOT, VOCAB, fixed_windows, full_vocab_loss, load_corpus, restricted_loss, save_hf  # noqa: E402
from evaluate import bigram_nll, head_scores, induction_scores  # noqa: E402
import safetensors_io  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
WORK = os.path.join(HERE, 'work')
BUNDLED = os.path.join(ROOT, 'models', 'headlight-tiny')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--run', default='main', help='run name: checkpoint work/heads-NAME.pt, log LOG_DIR/NAME.log')
    p.add_argument('--log-dir', default=os.path.join(HERE, 'pilots-heads'))
    p.add_argument('--resume', action='store_true', help='continue work/heads-NAME.pt (its args win unless given again)')
    p.add_argument('--minutes', type=float, default=5.0, help='wall time of this invocation (then checkpoint and stop)')
    p.add_argument('--stop-step', type=int, default=0,
                   help='also stop (checkpoint and exit) once the run reaches this step: stages of a fixed length, '
                        'so a lineage replays step for step whatever the machine speed')
    p.add_argument('--seed', type=int, default=1234)
    p.add_argument('--init', choices=['scratch', 'bundled'], default='scratch',
                   help='scratch: GPT-2 init with sin/cos wpe; bundled: the F16 weights of models/headlight-tiny')
    p.add_argument('--n-layer', type=int, default=4)
    p.add_argument('--n-head', type=int, default=4)
    p.add_argument('--n-embd', type=int, default=96)
    p.add_argument('--n-positions', type=int, default=512)
    p.add_argument('--tokens', type=int, default=8192, help='tokens per step (windows = tokens / ctx)')
    p.add_argument('--ctx', default='128:800,256:1600,512',
                   help='context curriculum "CTX:UNTIL_STEP,...,CTX": window length by step')
    p.add_argument('--negatives', type=int, default=2048,
                   help='K sampled negatives; 0 = full 50,257-way softmax; -1 = softmax over the ids the corpus uses')
    p.add_argument('--syn-frac', type=float, default=0.3, help='share of windows that are repeated random tokens')
    p.add_argument('--syn-len', default='8:48', help='random segment length range MIN:MAX')
    p.add_argument('--syn-third', type=float, default=0.3, help='probability that a segment gets a second copy')
    p.add_argument('--syn-short', type=float, default=0.0,
                   help='probability that a segment is short (2-6 ids) and repeated to ~24 tokens: "a b a b a b" is '
                        'predictable from the token before last, which rewards a head on a fixed offset')
    p.add_argument('--syn-pool', type=int, default=0,
                   help='draw the random ids from the N commonest ids of the training split (0: every id but EOT)')
    p.add_argument('--syn-range', default='',
                   help='LO:HI: draw the random ids uniformly from [LO, HI) (the head finder probe draws from 1000:30000); '
                        'overrides --syn-pool')
    p.add_argument('--skip-frac', type=float, default=0.0,
                   help='share of windows made of skip segments: m random ids then the id before last again '
                        '("a b a", "a b c b"): the repeat is predictable only from exactly one position back, which '
                        'rewards a sharp previous-token head (no other offset carries the answer)')
    p.add_argument('--skip-len', default='2:4', help='m, the random ids of a skip segment before its repeat, MIN:MAX')
    p.add_argument('--pos-offset', type=float, default=0.0,
                   help='share of steps whose windows sit at a random position offset (all n_positions rows train)')
    p.add_argument('--pos-offset-per-window', action='store_true',
                   help='draw the offset per window (not per step), so every step trains rows all over wpe')
    p.add_argument('--lr', type=float, default=2e-3)
    p.add_argument('--warmup', type=int, default=60)
    p.add_argument('--wpe-lr', type=float, default=3.0, help='learning-rate factor of wpe')
    p.add_argument('--wte-lr', type=float, default=1.0, help='learning-rate factor of wte')
    p.add_argument('--attn-lr', type=float, default=1.0, help='learning-rate factor of the attention c_attn matrices')
    p.add_argument('--wte-decay', type=float, default=0.1, help='AdamW weight decay of wte (tied output rows)')
    p.add_argument('--decay', type=float, default=0.1, help='AdamW weight decay of the layer matrices')
    p.add_argument('--log-every', type=int, default=25)
    p.add_argument('--eval-every-s', type=float, default=150.0)
    p.add_argument('--ckpt-every-s', type=float, default=180.0)
    p.add_argument('--bench', type=int, default=0, help='time N steps of each softmax (interleaved) and exit')
    p.add_argument('--export', default='', help='write the checkpoint as a Hugging Face folder DIR and exit')
    return p.parse_args(argv)


# ---- data -------------------------------------------------------------------------------------------------------

def ctx_at(step, spec):
    """Window length at a step from "128:800,256:1600,512"."""
    for part in spec.split(','):
        if ':' not in part:
            return int(part)
        ctx, until = (int(v) for v in part.split(':'))
        if step < until:
            return ctx
    return int(spec.split(',')[-1].split(':')[0])


def synthetic_window(rng, length, lo, hi, p_third, p_short, pool):
    """Random segments each followed by copies of itself: ids [length] and, per position, whether a copy makes that
    token predictable from what came before (copy positions after the copy's first token)."""
    ids = np.empty(length, dtype=np.int64)
    known = np.zeros(length, dtype=bool)
    i = 0
    while i < length:
        short = rng.random() < p_short
        n = int(rng.integers(2, 7)) if short else int(rng.integers(lo, hi + 1))
        seg = pool[rng.integers(0, len(pool), size=n)]  # [n] uniform over the pool
        copies = -(-24 // n) if short else (3 if rng.random() < p_third else 2)
        for c in range(copies):
            take = min(n, length - i)
            ids[i:i + take] = seg[:take]
            if c > 0:
                known[i + 1:i + take] = True
            i += take
            if i >= length:
                break
    return ids, known


def skip_window(rng, length, m_lo, m_hi, pool):
    """Skip segments: m random ids, then the id before last again ("a b a", "a b c b"). -> ids [length] and, per
    position, whether it is such a repeat (predictable from the token one position before the query, and from no
    other position)."""
    ids = np.empty(length, dtype=np.int64)
    known = np.zeros(length, dtype=bool)
    i = 0
    while i < length:
        m = int(rng.integers(m_lo, m_hi + 1))
        seg = pool[rng.integers(0, len(pool), size=m)]
        take = min(m, length - i)
        ids[i:i + take] = seg[:take]
        i += take
        if i < length:
            ids[i] = seg[-2]
            known[i] = seg[-2] != seg[-1]
            i += 1
    return ids, known


KINDS = ('natural', 'copy', 'skip')


def make_batch(rng, train, ctx, n_windows, a, pool):
    """x, y: [B, ctx] ids; keep: [B, ctx] bool (targets that count); kind: [B] index into KINDS."""
    lo, hi = (int(v) for v in a.syn_len.split(':'))
    m_lo, m_hi = (int(v) for v in a.skip_len.split(':'))
    n_syn = int(round(n_windows * a.syn_frac))
    n_skip = int(round(n_windows * getattr(a, 'skip_frac', 0.0)))
    rows, keeps, kinds = [], [], []
    for b in range(n_windows):
        if b < n_skip:
            ids, known = skip_window(rng, ctx + 1, m_lo, m_hi, pool)
            rows.append(ids)
            keeps.append(known[1:])
            kinds.append(2)
        elif b < n_skip + n_syn:
            kinds.append(1)
            ids, known = synthetic_window(rng, ctx + 1, lo, hi, a.syn_third, a.syn_short, pool)
            rows.append(ids)
            keeps.append(known[1:])
        else:
            s = int(rng.integers(0, len(train) - ctx - 1))
            rows.append(train[s:s + ctx + 1].astype(np.int64))
            keeps.append(np.ones(ctx, dtype=bool))
            kinds.append(0)
    chunk = torch.from_numpy(np.stack(rows))  # [B, ctx+1]
    return chunk[:, :-1], chunk[:, 1:], torch.from_numpy(np.stack(keeps)), torch.tensor(kinds)


def synthetic_pool(a, counts):
    """The ids random segments are drawn from: every id but <|endoftext|>, the --syn-range, or the --syn-pool commonest
    training ids."""
    if getattr(a, 'syn_range', ''):
        lo, hi = (int(v) for v in a.syn_range.split(':'))
        return np.arange(lo, hi, dtype=np.int64)
    if a.syn_pool <= 0:
        return np.arange(EOT, dtype=np.int64)
    order = np.argsort(-counts, kind='stable')
    return order[order != EOT][:a.syn_pool].astype(np.int64)


# ---- losses -----------------------------------------------------------------------------------------------------

def hidden(model, x, offset=0):
    """Final hidden states: [B, T] ids at positions offset..offset+T-1 -> [B, T, E] (after ln_f, before the tied
    output layer)."""
    T = x.shape[1]
    if torch.is_tensor(offset):  # one offset per window: [B]
        h = model.wte(x) + model.wpe(offset[:, None] + torch.arange(T))  # [B, T, E]
    else:
        h = model.wte(x) + model.wpe(torch.arange(offset, offset + T))  # [B, T, E]
    for block in model.h:
        h, _ = block(h)
    return model.ln_f(h)


def sampled_softmax_loss(model, x, y, keep, k, gen, offset=0, per_target=False):
    """Cross-entropy over the step's distinct targets plus k uniform negatives from the other ids, each negative's logit
    corrected by log(rest / k) so the negatives estimate the rest of the partition function. -> (loss, columns); with
    per_target the loss is [N], one per kept target."""
    h = hidden(model, x, offset)[keep]  # [N, E]
    targets = y[keep]  # [N]
    uniq, inv = torch.unique(targets, return_inverse=True)  # [U], [N]
    mask = torch.ones(VOCAB, dtype=torch.bool)
    mask[uniq] = False
    rest = mask.nonzero().squeeze(1)  # [V-U]
    neg = rest[torch.randperm(len(rest), generator=gen)[:k]]  # [k]
    cand = torch.cat([uniq, neg])  # [U+k]
    corr = torch.zeros(len(cand))
    corr[len(uniq):] = math.log(len(rest) / max(1, len(neg)))
    logits = h @ model.wte.weight[cand].t() + corr  # [N, U+k]
    return F.cross_entropy(logits, inv, reduction='none' if per_target else 'mean'), len(cand)


def full_loss(model, x, y, keep):
    logits = hidden(model, x)[keep] @ model.wte.weight.t()  # [N, V]
    return F.cross_entropy(logits, y[keep])


def step_loss(model, x, y, keep, a, gen, seen_ids, to_seen, offset=0, kind=None):
    """Mean loss of the kept targets; with kind ([B] window kinds, sampled softmax only) also the mean per kind."""
    if a.negatives > 0 and kind is not None:
        per = sampled_softmax_loss(model, x, y, keep, a.negatives, gen, offset, per_target=True)[0]  # [N]
        kk = kind[:, None].expand_as(keep)[keep]  # [N]
        return per.mean(), {KINDS[i]: (per[kk == i].sum().item(), int((kk == i).sum())) for i in range(len(KINDS))}
    if a.negatives > 0:
        return sampled_softmax_loss(model, x, y, keep, a.negatives, gen, offset)[0]
    if a.negatives == 0:
        return full_loss(model, x, y, keep)
    # Corpus-restricted softmax (train.py's); synthetic windows would need every id, so natural windows only.
    ys = torch.from_numpy(to_seen[y.numpy()])
    return restricted_loss(model, x, ys, seen_ids)


# ---- evaluation -------------------------------------------------------------------------------------------------

def mulberry_sequence(n, vocab, seed=1234):
    """The head finder's induction probe (extension/engine/analyses/headFinder.ts inductionSequence): n ids drawn by
    mulberry32 from [1000, 30000), then the same n again."""
    s = seed & 0xFFFFFFFF
    M = 0xFFFFFFFF

    def imul(p, q):
        return (p * q) & M

    def nxt():
        nonlocal s
        s = (s + 0x6D2B79F5) & M
        x = s
        x = imul(x ^ (x >> 15), x | 1)
        x ^= (x + imul(x ^ (x >> 7), x | 61)) & M
        return ((x ^ (x >> 14)) & M) / 4294967296

    lo, hi = min(1000, vocab - 1), min(vocab - 1, 30000)
    first = [lo + int(math.floor(nxt() * max(1, hi - lo))) for _ in range(n)]
    return first + first


@torch.no_grad()
def probe_induction(model, n, seeds):
    """Head finder's induction score (mean attention from n+i to i+1, i < n-1) over the probes of the seeds: [L, H]."""
    ids = torch.tensor([mulberry_sequence(n, VOCAB, s) for s in seeds])  # [S, 2n]
    _, probs = model(ids, need_probs=True)  # L x [S, H, 2n, 2n]
    i = torch.arange(n - 1)
    return np.array([p[:, :, n + i, i + 1].mean(dim=(0, 2)).numpy() for p in probs])


class Evaluator:
    """Held-out full-softmax loss vs the add-k bigram on the same targets, and the head scores the bars name."""

    def __init__(self, train, val, counts):
        self.loss_w = fixed_windows(val, 8, 256)  # [8, 257]
        self.head_w = fixed_windows(val, 4, 512)  # [4, 513]
        lw = self.loss_w.numpy()
        self.bigram = min(float(bigram_nll(train, lw, k).mean()) for k in (0.1, 0.01, 0.001))
        pool = np.argsort(-counts)[:5000]
        self.pool = pool[pool != EOT]

    @torch.no_grad()
    def __call__(self, model):
        model.eval()
        total = 0.0
        for i in range(0, len(self.loss_w), 4):
            w = self.loss_w[i:i + 4]
            logits, _ = model(w[:, :-1])  # [B, T, V]
            total += F.cross_entropy(logits.reshape(-1, VOCAB), w[:, 1:].reshape(-1), reduction='sum').item()
        val = total / self.loss_w[:, 1:].numel()
        prev, prev_early, _ = head_scores(model, self.head_w)  # [L, H] each
        ind40 = probe_induction(model, 40, [1234])  # exactly `headlight heads`
        ind50 = probe_induction(model, 50, [1234, 1, 2, 3])  # the bar's wording: 50 tokens repeated once
        ind64, nll1, nll2 = induction_scores(model, self.pool)  # evaluate.py's
        model.train()
        return {'val': val, 'bigram': self.bigram, 'prev': prev, 'prev_early': prev_early, 'ind40': ind40,
                'ind50': ind50, 'ind64': ind64, 'copy_nll': (nll1, nll2)}


def best(arr):
    l, h = np.unravel_index(int(np.argmax(arr)), arr.shape)
    return f'{arr.max():.3f}@{l}.{h}'


# ---- model, optimizer, checkpoints -------------------------------------------------------------------------------

def build(a):
    model = GPT2(VOCAB, a.n_positions, a.n_embd, a.n_layer, a.n_head)
    if a.init == 'scratch':
        model.init_wpe_sinusoidal()
    else:
        raw, _ = safetensors_io.load(os.path.join(BUNDLED, 'model.safetensors'))
        model.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in raw.items()})
    groups = {'wte': [], 'wpe': [], 'decay': [], 'no_decay': [], 'attn': []}
    for name, p in model.named_parameters():
        key = name.split('.')[0] if name in ('wte.weight', 'wpe.weight') else ('decay' if p.dim() >= 2 else 'no_decay')
        if name.endswith('attn.c_attn.weight'):
            key = 'attn'
        groups[key].append(p)
    opt = torch.optim.AdamW([
        {'params': groups['wte'], 'weight_decay': a.wte_decay, 'lr_mult': a.wte_lr},
        {'params': groups['wpe'], 'weight_decay': 0.0, 'lr_mult': a.wpe_lr},
        {'params': groups['decay'], 'weight_decay': a.decay, 'lr_mult': 1.0},
        {'params': groups['no_decay'], 'weight_decay': 0.0, 'lr_mult': 1.0},
        {'params': groups['attn'], 'weight_decay': a.decay, 'lr_mult': getattr(a, 'attn_lr', 1.0)},
    ], lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    return model, opt


def ckpt_path(run):
    return os.path.join(WORK, f'heads-{run}.pt')


def save_ckpt(path, model, opt, state, rng, gen, a):
    tmp = path + '.tmp'
    torch.save({'model': model.state_dict(), 'opt': opt.state_dict(), 'state': state, 'args': vars(a),
                'np_rng': rng.bit_generator.state, 'torch_rng': torch.get_rng_state(), 'gen': gen.get_state()}, tmp)
    os.replace(tmp, path)


def given_flags(argv):
    return {s[2:].split('=')[0].replace('-', '_') for s in argv if s.startswith('--')}


# ---- commands ---------------------------------------------------------------------------------------------------

def bench(a, train, counts, seen_ids, to_seen):
    """tokens/s of one training step (forward, backward, AdamW) with each softmax, same batches, interleaved rounds."""
    rng = np.random.default_rng(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    ctx = ctx_at(0, a.ctx)
    kinds = [('full 50,257', 0), ('corpus-restricted', -1), (f'sampled K={a.negatives}', a.negatives)]
    times = {name: [] for name, _ in kinds}
    model, opt = build(a)
    for r in range(a.bench + 1):
        for name, k in kinds:
            a2 = argparse.Namespace(**{**vars(a), 'negatives': k, 'syn_frac': a.syn_frac if k != -1 else 0.0})
            x, y, keep, _ = make_batch(rng, train, ctx, a.tokens // ctx, a2, synthetic_pool(a2, counts))
            t0, c0 = time.perf_counter(), time.process_time()
            loss = step_loss(model, x, y, keep, a2, gen, seen_ids, to_seen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if r > 0:  # round 0 warms up
                times[name].append((time.perf_counter() - t0, time.process_time() - c0))
    out = {}
    for name, ts in times.items():
        med = float(np.median([w for w, _ in ts]))
        cpu = float(np.median([c for _, c in ts]))
        out[name] = {'median_step_s': round(med, 4), 'tokens_per_s': round(a.tokens / med), 'cpu_s': round(cpu, 4)}
        print(f'{name:22s} median step {med * 1000:7.1f} ms wall, {cpu * 1000:7.1f} ms CPU; {a.tokens / med:8.0f} tokens/s '
              f'wall, {a.tokens / cpu:8.0f} per CPU second  ({len(ts)} steps of {a.tokens} tokens, ctx {ctx})')
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    a = parse_args(argv)
    torch.set_num_threads(1)
    train, val, counts, seen_ids, to_seen = load_corpus(WORK)
    if a.bench:
        bench(a, train, counts, seen_ids, to_seen)
        return
    path = ckpt_path(a.run)
    ck = None
    if a.resume or a.export:
        if not os.path.exists(path):
            sys.exit(f'{path}: no checkpoint of run "{a.run}". Start it without --resume (or pick the run with --run).')
        ck = torch.load(path)
        given = given_flags(argv)
        a = argparse.Namespace(**{**vars(a), **ck['args'],
                                   **{k: v for k, v in vars(a).items() if k in given or k in ('resume', 'export', 'minutes', 'stop_step')}})
    torch.manual_seed(a.seed)
    model, opt = build(a)
    rng = np.random.default_rng(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    state = {'step': 0, 'tokens': 0, 'elapsed': 0.0, 'history': []}
    if ck:
        model.load_state_dict(ck['model'])
        opt.load_state_dict(ck['opt'])
        for g, m in zip(opt.param_groups, (a.wte_lr, a.wpe_lr, 1.0, 1.0, a.attn_lr)):
            g['lr_mult'] = m
        opt.param_groups[0]['weight_decay'] = a.wte_decay
        opt.param_groups[2]['weight_decay'] = a.decay
        opt.param_groups[4]['weight_decay'] = a.decay
        state = ck['state']
        rng.bit_generator.state = ck['np_rng']
        torch.set_rng_state(ck['torch_rng'])
        gen.set_state(ck['gen'])
    if a.export:
        os.makedirs(a.export, exist_ok=True)
        model.eval()
        save_hf(model, a, a.export)
        # Reference for verify.py (as train.py writes it): the loss of a fixed validation batch with the fp32 weights
        # and with the weights rounded to fp16, which is what the NumPy forward over the export must reproduce.
        batch = fixed_windows(val, 2, 128)  # [2, 129]
        np.save(os.path.join(WORK, 'verify-batch.npy'), batch.numpy())
        loss32 = full_vocab_loss(model, batch)
        with torch.no_grad():
            for p_ in model.parameters():
                p_.copy_(p_.half().float())
        loss16 = full_vocab_loss(model, batch)
        summary = {'run': a.run, 'step': state['step'], 'tokens': state['tokens'], 'elapsed_s': round(state['elapsed'], 1),
                   'verify_batch_loss_fp32': loss32, 'verify_batch_loss_fp16_weights': loss16,
                   'torch': torch.__version__, 'threads': 1, 'args': vars(a), 'history': state['history']}
        os.makedirs(os.path.join(a.export, 'training'), exist_ok=True)
        with open(os.path.join(a.export, 'training', 'train-heads-summary.json'), 'w') as f:
            json.dump(summary, f, indent=1)
            f.write('\n')
        print(f'wrote {a.export}/config.json, model.safetensors and training/train-heads-summary.json from {path} '
              f'(step {state["step"]}, {state["tokens"]} tokens); verify batch loss fp32 {loss32:.5f}, fp16 {loss16:.5f}')
        return

    os.makedirs(a.log_dir, exist_ok=True)
    log = open(os.path.join(a.log_dir, f'{a.run}.log'), 'a')

    def say(msg):
        print(msg, flush=True)
        log.write(msg + '\n')
        log.flush()

    say(f'=== {"resume" if ck else "start"} run {a.run} at step {state["step"]} ({state["tokens"]} tokens, '
        f'{state["elapsed"]:.0f}s trained); this invocation {a.minutes} min; torch {torch.__version__}, '
        f'{torch.get_num_threads()} thread; args {json.dumps(vars(a))}')
    evaluator = Evaluator(train, val, counts)
    pool = synthetic_pool(a, counts)
    say(f'eval set: 8 x 256 held-out targets, best add-k bigram {evaluator.bigram:.4f}; heads on 4 x 512 held-out windows')
    continue_cmd = f'/usr/bin/python3 scripts/train-tiny/train_heads.py --run {a.run} --resume --minutes M'

    def evaluate_now():
        r = evaluator(model)
        wn = model.wte.weight.norm(dim=1).mean().item()
        pn = model.wpe.weight.norm(dim=1).mean().item()
        rec = {'step': state['step'], 'tokens': state['tokens'], 'elapsed': round(state['elapsed'], 1),
               'val': round(r['val'], 4), 'bigram': round(r['bigram'], 4), 'max_prev': round(float(r['prev'].max()), 4),
               'max_prev_t128': round(float(r['prev_early'].max()), 4), 'max_ind40': round(float(r['ind40'].max()), 4),
               'max_ind50': round(float(r['ind50'].max()), 4), 'max_ind64': round(float(r['ind64'].max()), 4),
               'wte_norm': round(wn, 3), 'wpe_norm': round(pn, 3)}
        state['history'].append(rec)
        say(f'EVAL step {state["step"]} tokens {state["tokens"]} {state["elapsed"]:.0f}s: held-out {r["val"]:.4f} '
            f'(bigram {r["bigram"]:.4f}); prev {best(r["prev"])} (t<128 {best(r["prev_early"])}); induction '
            f'heads40 {best(r["ind40"])} n50 {best(r["ind50"])} eval64 {best(r["ind64"])}; copy nll '
            f'{r["copy_nll"][0]:.2f}->{r["copy_nll"][1]:.2f}; |wte| {wn:.3f} |wpe| {pn:.3f}')
        say('      prev per head ' + ' '.join(f'{v:.2f}' for v in r['prev'].ravel()))
        say('      ind50 per head ' + ' '.join(f'{v:.2f}' for v in r['ind50'].ravel()))
        return rec

    if not ck:
        evaluate_now()
    t_start = time.time()
    elapsed0 = state['elapsed']
    last_eval = last_ckpt = time.time()
    run_loss, run_n, run_tokens, t_log = 0.0, 0, 0, time.time()
    kind_sum, kind_n = {}, {}
    while True:
        step = state['step']
        lr = a.lr * min(1.0, (step + 1) / a.warmup)
        for g in opt.param_groups:
            g['lr'] = lr * g['lr_mult']
        ctx = ctx_at(step, a.ctx)
        x, y, keep, kind = make_batch(rng, train, ctx, a.tokens // ctx, a, pool)
        if getattr(a, 'pos_offset_per_window', False):
            nw = x.shape[0]
            offset = torch.from_numpy(rng.integers(0, a.n_positions - ctx + 1, size=nw) * (rng.random(nw) < a.pos_offset))
        else:
            offset = int(rng.integers(0, a.n_positions - ctx + 1)) if rng.random() < a.pos_offset else 0
        loss = step_loss(model, x, y, keep, a, gen, seen_ids, to_seen, offset, kind if a.negatives > 0 else None)
        if isinstance(loss, tuple):
            loss, parts = loss
            for name, (sm, n) in parts.items():
                kind_sum[name] = kind_sum.get(name, 0.0) + sm
                kind_n[name] = kind_n.get(name, 0) + n
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        state['step'] += 1
        state['tokens'] += x.numel()
        run_loss += loss.item()
        run_n += 1
        run_tokens += x.numel()
        now = time.time()
        state['elapsed'] = elapsed0 + (now - t_start)
        if state['step'] % a.log_every == 0:
            per_kind = ' '.join(f'{k} {kind_sum[k] / kind_n[k]:.3f}' for k in KINDS if kind_n.get(k))
            say(f'step {state["step"]} ctx {ctx} tokens {state["tokens"]} {state["elapsed"]:.0f}s lr {lr:.2e} '
                f'train(sampled) {run_loss / run_n:.4f} [{per_kind}] {run_tokens / (now - t_log):.0f} tok/s')
            run_loss, run_n, run_tokens, t_log = 0.0, 0, 0, time.time()
            kind_sum.clear()
            kind_n.clear()
        done = now - t_start > a.minutes * 60 or (a.stop_step > 0 and state['step'] >= a.stop_step)
        if done or now - last_eval > a.eval_every_s:
            evaluate_now()
            last_eval = time.time()
        if done or time.time() - last_ckpt > a.ckpt_every_s:
            save_ckpt(path, model, opt, state, rng, gen, a)
            last_ckpt = time.time()
            say(f'checkpoint {os.path.relpath(path, ROOT)} at step {state["step"]}; continue: {continue_cmd}')
        if done:
            break
    log.close()


if __name__ == '__main__':
    main()
