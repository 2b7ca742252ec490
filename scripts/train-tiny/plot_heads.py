"""Draws the loss curves and head scores of a train_heads.py run (issue #21) on one axis of training tokens.

    /usr/bin/python3 scripts/train-tiny/plot_heads.py OUT.png SUMMARY.json LOG[:MAX_STEP] [LOG[:MAX_STEP] ...]

SUMMARY.json is the `training/train-heads-summary.json` that `train_heads.py --export` writes: its `history` holds
every evaluation of the exported lineage (full-softmax held-out loss, add-k bigram, best previous-token and induction
scores). The logs give the training loss per window kind (sampled softmax). A run that was stopped and continued
from an earlier checkpoint logs some steps twice; the later line of a step wins, which is the lineage that was kept.
A log given as LOG:MAX_STEP contributes only its steps up to MAX_STEP (a run forked from that checkpoint).
"""
import json
import re
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

STEP = re.compile(r'^step (\d+) ctx (\d+) tokens (\d+) .* train\(sampled\) [\d.]+ \[([^\]]*)\]')


def read_logs(specs):
    """{step: (tokens, {kind: loss})}, later lines winning."""
    rows = {}
    for spec in specs:
        path, _, cap = spec.partition(':')
        cap = int(cap) if cap else None
        for line in open(path):
            m = STEP.match(line)
            if not m:
                continue
            step, tokens = int(m.group(1)), int(m.group(3))
            if cap is not None and step > cap:
                continue
            parts = m.group(4).split()
            rows[step] = (tokens, {parts[i]: float(parts[i + 1]) for i in range(0, len(parts) - 1, 2)})
    return rows


def main():
    out, summary_path, logs = sys.argv[1], sys.argv[2], sys.argv[3:]
    hist = json.load(open(summary_path))['history']
    rows = read_logs(logs)
    steps = sorted(rows)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 7.5), sharex=True)
    colours = {'natural': 'tab:blue', 'copy': 'tab:orange', 'skip': 'tab:green'}
    for kind, colour in colours.items():
        # A stage without this kind of window leaves a gap (NaN breaks the line).
        pts = [(rows[s][0] / 1e6, rows[s][1].get(kind, float('nan'))) for s in steps]
        if any(kind in rows[s][1] for s in steps):
            ax1.plot(*zip(*pts), color=colour, lw=0.8, alpha=0.7, label=f'train, {kind} windows (sampled softmax)')
    ax1.plot([h['tokens'] / 1e6 for h in hist], [h['val'] for h in hist], 'k.-', lw=1.5,
             label='held-out, full softmax (8 x 256 targets)')
    ax1.axhline(hist[-1]['bigram'], color='grey', ls='--', lw=1, label=f'add-k bigram, same targets ({hist[-1]["bigram"]:.3f})')
    ax1.set_ylabel('nats / token')
    ax1.set_ylim(0, 12)
    ax1.legend(fontsize=8, loc='upper right')
    ax1.set_title('headlight-tiny (issue #21): loss')
    x = [h['tokens'] / 1e6 for h in hist]
    ax2.plot(x, [h['max_prev'] for h in hist], 'o-', ms=3, label='best previous-token score (held-out, 512-token windows)')
    ax2.plot(x, [h['max_ind50'] for h in hist], 's-', ms=3, label='best induction score (50 random ids repeated once)')
    ax2.axhline(0.8, color='tab:blue', ls=':', lw=1)
    ax2.axhline(0.5, color='tab:orange', ls=':', lw=1)
    ax2.set_ylim(0, 1)
    ax2.set_xlabel('training tokens (millions, all window kinds)')
    ax2.set_ylabel('score')
    ax2.legend(fontsize=8, loc='center right')
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f'wrote {out}: {len(steps)} logged steps, {len(hist)} evaluations')


if __name__ == '__main__':
    main()
