"""A GPT-2 in PyTorch whose parameters are exactly Hugging Face's GPT2LMHeadModel tensors, under HF's key names
(without the `transformer.` prefix): Conv1D weights are stored [in, out] and used as `x @ W + b`, the LM head is tied
to `wte`. Exporting is therefore a plain dump of `state_dict()`, with no renaming and no transposes.

Attention is computed explicitly (softmax(q k^T / sqrt(d) + mask) v) so the probabilities can be returned.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def gelu_new(x):
    """The tanh approximation of GELU that GPT-2 uses (HF `gelu_new`)."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class Conv1D(nn.Module):
    """HF's Conv1D: y = x @ weight + bias, weight [in, out]."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):  # [..., in] -> [..., out]
        return x @ self.weight + self.bias


class Attention(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.n_head = n_head
        self.c_attn = Conv1D(n_embd, 3 * n_embd)
        self.c_proj = Conv1D(n_embd, n_embd)

    def forward(self, x, need_probs=False):  # x: [B, T, E]
        B, T, E = x.shape
        d = E // self.n_head
        q, k, v = self.c_attn(x).split(E, dim=2)  # 3 x [B, T, E]
        q = q.view(B, T, self.n_head, d).transpose(1, 2)  # [B, H, T, d]
        k = k.view(B, T, self.n_head, d).transpose(1, 2)  # [B, H, T, d]
        v = v.view(B, T, self.n_head, d).transpose(1, 2)  # [B, H, T, d]
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(d)  # [B, H, T, T]
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)
        probs = F.softmax(scores, dim=-1)  # [B, H, T, T]
        y = (probs @ v).transpose(1, 2).reshape(B, T, E)  # [B, T, E]
        return self.c_proj(y), (probs if need_probs else None)


class MLP(nn.Module):
    def __init__(self, n_embd, n_inner):
        super().__init__()
        self.c_fc = Conv1D(n_embd, n_inner)
        self.c_proj = Conv1D(n_inner, n_embd)

    def forward(self, x):  # [B, T, E] -> [B, T, E]
        return self.c_proj(gelu_new(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, n_embd, n_head, eps):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, eps=eps)
        self.attn = Attention(n_embd, n_head)
        self.ln_2 = nn.LayerNorm(n_embd, eps=eps)
        self.mlp = MLP(n_embd, 4 * n_embd)

    def forward(self, x, need_probs=False):  # pre-LN residual block, [B, T, E]
        a, probs = self.attn(self.ln_1(x), need_probs)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, probs


class GPT2(nn.Module):
    def __init__(self, vocab_size, n_positions, n_embd, n_layer, n_head, eps=1e-5):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(n_positions, n_embd)
        self.h = nn.ModuleList([Block(n_embd, n_head, eps) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd, eps=eps)
        self._init(n_layer)

    def _init(self, n_layer):
        """GPT-2's initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 n_layer)."""
        for name, p in self.named_parameters():
            if name.endswith('ln_1.weight') or name.endswith('ln_2.weight') or name == 'ln_f.weight':
                nn.init.ones_(p)
            elif name.endswith('.bias'):
                nn.init.zeros_(p)
            elif name.endswith('c_proj.weight'):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * n_layer))
            else:
                nn.init.normal_(p, 0.0, 0.02)

    def init_wpe_sinusoidal(self, std=0.02):
        """Optional start for the learned positions: sin/cos at geometric frequencies (Vaswani et al.), scaled to the
        given per-element std. Relative offsets are then a fixed linear map at every position, so heads that attend
        to the previous token appear after far fewer steps than from N(0, std); the rows stay fully trainable."""
        P, E = self.wpe.weight.shape
        pos = torch.arange(P, dtype=torch.float32)[:, None]  # [P, 1]
        freq = torch.exp(-math.log(10000.0) * torch.arange(0, E, 2, dtype=torch.float32) / E)  # [E/2]
        table = torch.zeros(P, E)
        table[:, 0::2] = torch.sin(pos * freq)  # [P, E/2]
        table[:, 1::2] = torch.cos(pos * freq)
        with torch.no_grad():
            self.wpe.weight.copy_(table * (std * math.sqrt(2.0)))

    def forward(self, ids, need_probs=False):  # ids: [B, T] -> logits [B, T, V], probs per layer [B, H, T, T]
        T = ids.shape[1]
        pos = torch.arange(T, device=ids.device)
        x = self.wte(ids) + self.wpe(pos)  # [B, T, E]
        all_probs = []
        for block in self.h:
            x, probs = block(x, need_probs)
            all_probs.append(probs)
        x = self.ln_f(x)  # [B, T, E]
        logits = x @ self.wte.weight.t()  # tied head: [B, T, V]
        return logits, all_probs


def loss_fn(logits, targets):  # [B, T, V], [B, T] -> mean nats/token
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
