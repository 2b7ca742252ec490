"""Checks that Hugging Face's GPT2LMHeadModel loads the exported folder unchanged and computes what gpt2.py computes:
logits and every layer's attention on 200 held-out tokens, plus the loss HF gives on them.

    /work/venv-train/bin/python scripts/train-tiny/hf_check.py [DIR]     (default models/headlight-tiny)

Needs `transformers` (training-side only; the product never runs Python). Transformers 5 builds GPT-2 with SDPA
attention, which returns no attention maps, so the eager implementation is selected first.
"""
import json
import os
import sys

import numpy as np
import torch
from transformers import GPT2LMHeadModel

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_io  # noqa: E402
from gpt2 import GPT2  # noqa: E402


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, '..', '..', 'models', 'headlight-tiny')
    hf = GPT2LMHeadModel.from_pretrained(d, torch_dtype=torch.float32)
    hf.set_attn_implementation('eager')
    hf.eval()
    raw, _ = safetensors_io.load(os.path.join(d, 'model.safetensors'))
    cfg = json.load(open(os.path.join(d, 'config.json')))
    ours = GPT2(cfg['vocab_size'], cfg['n_positions'], cfg['n_embd'], cfg['n_layer'], cfg['n_head'])
    ours.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in raw.items()})
    ours.eval()
    val = np.memmap(os.path.join(HERE, 'work', 'val.bin'), dtype='<u2', mode='r')
    ids = torch.from_numpy(val[1000:1200].astype(np.int64))[None]  # [1, 200]
    with torch.no_grad():
        out = hf(ids, output_attentions=True)
        logits, probs = ours(ids, need_probs=True)
    dl = (out.logits - logits).abs().max().item()
    da = max((a - p).abs().max().item() for a, p in zip(out.attentions, probs))
    loss = torch.nn.functional.cross_entropy(out.logits[0, :-1], ids[0, 1:]).item()
    print(f'{type(hf).__name__} loaded {d}: max |logit diff| {dl:.2e}, max |attention diff| {da:.2e}; '
          f'HF loss on 200 held-out tokens {loss:.4f}')
    ok = dl < 1e-3 and da < 1e-4
    print('HF CHECK OK' if ok else 'HF CHECK FAILED')
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
