"""Draws models/headlight-tiny/training/loss.png from loss.csv (train loss every 20 steps, held-out loss at evals).

    /usr/bin/python3 scripts/train-tiny/plot_loss.py
"""
import csv
import os

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINING = os.path.abspath(os.path.join(HERE, '..', '..', 'models', 'headlight-tiny', 'training'))


def main():
    rows = list(csv.DictReader(open(os.path.join(TRAINING, 'loss.csv'))))
    steps = [int(r['step']) for r in rows]
    train = [float(r['train_loss']) for r in rows]
    evals = [(int(r['step']), float(r['val_loss']), float(r['max_prev_token_score'])) for r in rows if r['val_loss']]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, train, label='train (softmax over ids seen in training)')
    ax.plot([e[0] for e in evals], [e[1] for e in evals], 'o-', label='held-out (full 50,257-way softmax)')
    ax.set_xlabel('step (1,024 tokens each)')
    ax.set_ylabel('loss, nats/token')
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()
    ax2.plot([e[0] for e in evals], [e[2] for e in evals], 's--', color='grey', label='max previous-token score')
    ax2.set_ylabel('max previous-token score')
    ax2.set_ylim(0, 1)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc='upper right', fontsize=8)
    ax.set_title('headlight-tiny training')
    fig.tight_layout()
    fig.savefig(os.path.join(TRAINING, 'loss.png'), dpi=100)


if __name__ == '__main__':
    main()
