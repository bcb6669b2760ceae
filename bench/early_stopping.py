"""Early-stopping rules on the validation curves of small validation sets (simulated, no training).

    python -m bench.early_stopping                  # 200 curves per noise level
    python -m bench.early_stopping --curves 1000

A validation loss that falls (0.4 + 0.8·e^(-epoch/15)), then rises slowly after epoch 50
(overfitting), over 100 epochs, plus uniform noise of ±0.08 or ±0.15: about what one image more or
less right does to the loss of 24 validation images. Each rule (services/trainer/engine.py
EarlyStopping: patience, smoothing) is run on the same curves; printed per rule: the mean epoch it
stopped at, and the true (noise-free) loss of the epoch whose weights it keeps, mean and worst;
lower is better. The rule that keeps the lowest true loss is the one worth its epochs.
"""

import argparse
import math

import torch

from services.trainer.engine import EarlyStopping

EPOCHS = 100
NOISE_LEVELS = (0.08, 0.15)
# (label, patience, smoothing): the old default, the default (JobSpec: epochs / 4, raw loss) and smoothed variants.
RULES = [
    ("patience 10, raw loss (the old default)", 10, 0.0),
    ("patience 25, raw loss (the default at 100 epochs)", 25, 0.0),
    ("patience 25, smoothing 0.3", 25, 0.3),
    ("patience 25, smoothing 0.6", 25, 0.6),
    ("patience 10, smoothing 0.6", 10, 0.6),
]


def validation_curve(seed: int, noise: float, epochs: int = EPOCHS) -> tuple[list[float], list[float]]:
    """(true loss, observed loss) per epoch."""
    rng = torch.Generator().manual_seed(seed)
    trend = [0.4 + 0.8 * math.exp(-epoch / 15) + 0.003 * max(0, epoch - 50) for epoch in range(1, epochs + 1)]
    return trend, [value + noise * (2 * torch.rand((), generator=rng).item() - 1) for value in trend]


def run_rule(stopping: EarlyStopping, losses: list[float]) -> int:
    """Feed losses to stopping until it stops; the epoch it stopped at (or the last one)."""
    model = torch.nn.Linear(1, 1)  # what best_state copies; its weights do not matter here
    for epoch, loss in enumerate(losses, start=1):
        stopping.update(epoch, loss, model)
        if stopping.should_stop:
            return epoch
    return len(losses)


def evaluate_rule(patience: int, smoothing: float, noise: float, curves: int) -> tuple[float, float, float]:
    """Mean stop epoch, mean and worst true loss at the kept epoch, over curves seeded 0 … curves-1."""
    stops, kept = [], []
    for seed in range(curves):
        trend, observed = validation_curve(seed, noise)
        stopping = EarlyStopping(patience, smoothing)
        stops.append(run_rule(stopping, observed))
        kept.append(trend[stopping.best_epoch - 1])
    return sum(stops) / curves, sum(kept) / curves, max(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--curves", type=int, default=200)
    args = parser.parse_args()
    floor = min(validation_curve(0, 0.0)[0])
    print(f"{args.curves} curves per noise level; the lowest true loss of the curve is {floor:.4f}")
    for noise in NOISE_LEVELS:
        print(f"\nnoise ±{noise}")
        print(f"  {'rule':<52} {'stops at':>9} {'kept loss':>10} {'worst':>7}")
        for label, patience, smoothing in RULES:
            stop, mean, worst = evaluate_rule(patience, smoothing, noise, args.curves)
            print(f"  {label:<52} {stop:9.1f} {mean:10.4f} {worst:7.4f}")


if __name__ == "__main__":
    main()
