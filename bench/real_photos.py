"""Group-aware k-fold cross-validation of training recipes and input geometries on an ImageFolder.

    python -m bench.real_photos                                   # the real tiles, every recipe
    python -m bench.real_photos --data DIR --recipes default old  # whole-leaf photos kept elsewhere
    python -m bench.real_photos --synth-strips 40                 # synthesized whole-leaf strips
    python -m bench.real_photos --recipes default --set epochs=60 --set tta=true

Each recipe is a set of JobSpec fields over Paddy's defaults for custom_cnn trained from scratch
(RECIPES below; `default` is the defaults themselves). Each runs as one fold study does: the
dataset's groups (copies and crops of one photo, shared/datasets) are split into --folds folds, and
fold i is tested on while fold i+1 validates; every image is tested once. Training goes through
Paddy's own code (train_locally), in this process, on the CPU unless --device says otherwise.

Printed per recipe: each fold's test accuracy, the mean with its 95 % t-interval over the folds
(shared/stats.py mean_interval), the pooled accuracy over every tested image, and the wall time
per fold; then one last line, `best: <recipe> mean <acc> [<lo>, <hi>]`.
"""

import argparse
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import torch

from services.trainer.device import device_name, pick_device
from services.trainer.local_run import train_locally
from services.trainer.settings import TrainerSettings
from shared.datasets.synth import synthesize_dataset
from shared.schemas.jobs import JobSpec
from shared.stats import mean_interval

REAL_TILES = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "rice-leaf-real"

# JobSpec fields over the defaults. "old": the defaults before issue 19 (but custom_cnn at 128 px).
RECIPES: dict[str, dict] = {
    "default": {},
    "old": {
        "image_size": 128,
        "resize": "squash",
        "augment": "original",
        "optimizer": "adam",
        "weight_decay": 1e-4,
        "lr_schedule": "constant",
        "patience": 10,
        "batch_size": 32,
    },
    "batch-32": {"batch_size": 32},
    "adam-constant": {"optimizer": "adam", "weight_decay": 1e-4, "lr_schedule": "constant"},
    "squash-128": {"image_size": 128, "resize": "squash"},
    "letterbox-96x320": {"image_size": [96, 320], "resize": "letterbox"},
    "crop-128": {"image_size": 128, "resize": "crop"},
    "tta": {"tta": True},
    "crops-augment": {"augment": "crops"},  # the default since it was measured
    "4-blocks": {"cnn_blocks": 4},
    "original-augment": {"augment": "original"},
}


def parse_setting(text: str) -> tuple[str, object]:
    """key=value, the value read as JSON where it can be (60, true, [96, 320]), else as text."""
    key, _, value = text.partition("=")
    if not key or not _:
        raise argparse.ArgumentTypeError(f"{text!r}: give key=value")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REAL_TILES, help="ImageFolder directory (default: the real tiles)")
    parser.add_argument(
        "--synth-strips",
        type=int,
        metavar="PER_CLASS",
        help="instead of --data: draw this many whole-leaf strips per class (paddy data synth --shape strip)",
    )
    parser.add_argument("--strip-size", type=int, default=96, help="with --synth-strips: the strips' short side")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--set", type=parse_setting, action="append", default=[], help="key=value for every recipe")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42, help="the training seed of every fold")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    return parser.parse_args()


def fold_spec(dataset: str, recipe: dict, overrides: dict, folds: int, fold: int, seed: int) -> JobSpec:
    return JobSpec(
        **{
            "model_name": "custom_cnn",
            "dataset": dataset,
            "seed": seed,
            **recipe,
            **overrides,
            "folds": folds,
            "fold": fold,
            "version": "bench",
        }
    )


def run_recipe(name: str, data: Path, args: argparse.Namespace) -> dict:
    """Train every fold of one recipe; its fold accuracies, tested images and times."""
    overrides = dict(args.set)
    accuracies, correct, tested, seconds = [], 0, 0, []
    with tempfile.TemporaryDirectory() as artifacts:
        settings = TrainerSettings(
            data_root=data.parent, artifacts_root=Path(artifacts), device=args.device, heatmaps_per_run=0
        )
        for fold in range(args.folds):
            spec = fold_spec(data.name, RECIPES[name], overrides, args.folds, fold, args.seed)
            started = time.perf_counter()
            summary = train_locally(f"bench-{uuid.uuid4().hex[:8]}", spec, settings)
            seconds.append(time.perf_counter() - started)
            images = sum(int(metrics["support"]) for metrics in (summary.per_class or {}).values())
            accuracies.append(summary.test_accuracy)
            correct += round(summary.test_accuracy * images)
            tested += images
            print(
                f"  {name} fold {fold}: test accuracy {summary.test_accuracy:.3f} on {images} images, "
                f"{summary.epochs_run} epochs (best {summary.best_epoch}), {seconds[-1]:.0f} s",
                flush=True,
            )
    mean, low, high = mean_interval(accuracies)
    return {
        "recipe": name,
        "accuracies": accuracies,
        "mean": mean,
        "low": low,
        "high": high,
        "pooled": correct / tested,
        "tested": tested,
        "seconds": statistics.fmean(seconds),
        "slowest": max(seconds),
    }


def interval(row: dict) -> str:
    if row["low"] is None:
        return "[—]"
    return f"[{max(row['low'], 0):.3f}, {min(row['high'], 1):.3f}]"


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as drawn:
        data = args.data.resolve()
        if args.synth_strips:
            data = Path(drawn) / "strips"
            synthesize_dataset(data, args.synth_strips, args.strip_size, seed=7, shape="strip")
        files = sum(1 for path in data.rglob("*") if path.is_file())
        print(
            f"data: {args.data if not args.synth_strips else f'{args.synth_strips} synthesized strips per class'} "
            f"({files} files), {args.folds} group-aware folds, seed {args.seed}, "
            f"{device_name(pick_device(args.device))}, {args.threads} threads; settings for all: {dict(args.set)}",
            flush=True,
        )
        rows = [run_recipe(name, data, args) for name in args.recipes]
    print(f"\n{'recipe':<18} {'mean':>6} {'95 % interval':>16} {'pooled':>7} {'s/fold':>7} {'slowest':>8}  folds")
    for row in rows:
        folds = " ".join(f"{accuracy:.3f}" for accuracy in row["accuracies"])
        print(
            f"{row['recipe']:<18} {row['mean']:6.3f} {interval(row):>16} {row['pooled']:7.3f} "
            f"{row['seconds']:7.0f} {row['slowest']:8.0f}  {folds}"
        )
    best = max(rows, key=lambda row: row["mean"])
    print(f"best: {best['recipe']} mean {best['mean']:.3f} {interval(best)}")


if __name__ == "__main__":
    main()
