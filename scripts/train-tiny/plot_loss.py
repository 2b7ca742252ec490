"""Draws models/headlight-tiny/training/loss.png from loss.csv (phase 1, train.py) and, when present,
loss-phase2.csv (phase 2, train_continue.py), on one axis of training tokens.

    /usr/bin/python3 scripts/train-tiny/plot_loss.py
"""
import csv
import os

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINING = os.path.abspath(os.path.join(HERE, '..', '..', 'models', 'headlight-tiny', 'training'))


def read(name, token_offset):
    """(train points, eval points) of one phase's csv, tokens shifted by token_offset; None if the file is absent."""
    path = os.path.join(TRAINING, name)
    if not os.path.exists(path):
        return None
    rows = list(csv.DictReader(open(path)))
    train = [(int(r['tokens']) + token_offset, float(r['train_loss'])) for r in rows if r['train_loss']]
    evals = [(int(r['tokens']) + token_offset, float(r['val_loss']), float(r['max_prev_token_score']))
             for r in rows if r['val_loss']]
    return train, evals


def main():
    phase1 = read('loss.csv', 0)
    end1 = phase1[0][-1][0]
    phase2 = read('loss-phase2.csv', end1)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax2 = ax.twinx()
    for label, phase, colour in (('phase 1', phase1, 'C0'), ('phase 2', phase2, 'C1')):
        if phase is None:
            continue
        train, evals = phase
        ax.plot([t / 1e6 for t, _ in train], [v for _, v in train], color=colour, alpha=0.6,
                label=f'{label} train (softmax over seen ids)')
        ax.plot([e[0] / 1e6 for e in evals], [e[1] for e in evals], 'o-', color=colour,
                label=f'{label} held-out (full softmax)')
        ax2.plot([e[0] / 1e6 for e in evals], [e[2] for e in evals], 's--', color='grey', alpha=0.8,
                 label='max previous-token score' if label == 'phase 1' else None)
    if phase2 is not None and phase2[1] and len(phase2[1][0]) > 1:
        ax.axvline(end1 / 1e6, color='black', lw=0.8, ls=':')
    ax.set_xlabel('training tokens (millions)')
    ax.set_ylabel('loss, nats/token')
    ax.set_ylim(bottom=0)
    ax2.set_ylabel('max previous-token score')
    ax2.set_ylim(0, 1)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc='lower left', fontsize=7)
    ax.set_title('headlight-tiny training (held-out: phase 1 on 8 windows, phase 2 on 24)')
    fig.tight_layout()
    fig.savefig(os.path.join(TRAINING, 'loss.png'), dpi=100)


if __name__ == '__main__':
    main()
