"""A head sweep over a frozen backbone, with and without the frozen-feature cache.

    python -m bench.head_sweep                          # 24 runs × 3 seeds, mobilenet_v2 on the real tiles
    python -m bench.head_sweep --seeds 42 --epochs 4    # a quicker look

The sweep is the grid GRID (learning rate × dropout × batch size: 24 runs) of `--model` with its
backbone frozen, trained on the real tiles with the dataset's group-aware split. Every run goes
through Paddy's own code (train_locally, as a queued job trains), one after the other in this
process, as one trainer works through a sweep's runs. It is trained twice:

- `uncached`: feature_views 0 — every epoch passes every training image, freshly augmented,
  through the backbone (Paddy's loop before the cache);
- `cached`: feature_views `--views` — the first run computes that many augmented views of each
  training image once (services/trainer/feature_cache.py); the other 23 reuse them.

Each sweep starts from an empty artifacts folder and nothing in memory, so the cached sweep pays
for its backbone pass, and each sweep decodes (and audits) the dataset in its first run
(data.load_split_data keeps the decoded images for the next run).

The backbone (`--weights`): `imagenet` where torchvision's file is in the torch hub cache; by
default `synthetic`, a stand-in for it on a machine that cannot download it: the model trained
whole, from scratch, on synthesized leaves (`--pretrain-images` per class, 128 px,
`--pretrain-epochs`) before the sweeps, its head left out of the weights file. A random backbone
(`none`) is no stand-in: its features leave every head at chance.

Printed: each run's test accuracy and seconds in both modes; per seed, the two sweeps' wall
times; then the speed-up (uncached wall / cached wall, all seeds), the mean test accuracy of
each mode over every run and over each seed's best-by-validation run, and the paired difference
(cached − uncached, run by run) with its 95 % t-interval.
"""

import argparse
import itertools
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import torch

from bench.real_photos import REAL_TILES
from services.trainer import checkpoints, feature_cache
from services.trainer.data import forget_decoded
from services.trainer.device import device_name, pick_device
from services.trainer.local_run import train_locally
from services.trainer.settings import TrainerSettings
from shared.datasets.synth import synthesize_dataset
from shared.schemas.events import TrainingSummary
from shared.schemas.jobs import JobSpec
from shared.stats import mean_interval

GRID: dict[str, list] = {
    "learning_rate": [3e-4, 1e-3, 3e-3],
    "dropout": [0.2, 0.5],
    "batch_size": [8, 16, 32, 64],
}
MODES = ("uncached", "cached")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REAL_TILES, help="ImageFolder directory (default: the real tiles)")
    parser.add_argument("--model", default="mobilenet_v2", choices=["mobilenet_v2", "resnet50", "vgg16"])
    parser.add_argument("--weights", default="synthetic", help="synthetic (see above), imagenet or none")
    parser.add_argument("--pretrain-images", type=int, default=150, help="synthetic: images per class")
    parser.add_argument("--pretrain-epochs", type=int, default=12, help="synthetic: epochs")
    parser.add_argument("--image-size", type=int, default=None, help="default: the model's (224)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--views", type=int, default=4, help="the cached sweep's feature_views")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--runs", type=int, default=None, help="only the first N runs of the grid (a quicker look)")
    parser.add_argument("--heatmaps", type=int, default=0, help="Grad-CAM maps per run (the trainer's default: 48)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    return parser.parse_args()


def grid() -> list[dict]:
    names = list(GRID)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*GRID.values())]


def pretrain_backbone(args: argparse.Namespace, root: Path) -> str:
    """Train args.model whole on synthesized leaves; its backbone's weights file, relative to root."""
    synthesize_dataset(root / "data" / "leaves", args.pretrain_images, 128, seed=11)
    spec = JobSpec(
        model_name=args.model,
        dataset="leaves",
        weights="none",
        feature_extraction=False,
        image_size=128,
        epochs=args.pretrain_epochs,
        version="bench-pretrain",
    )
    settings = TrainerSettings(data_root=root / "data", artifacts_root=root, device=args.device, heatmaps_per_run=0)
    started = time.perf_counter()
    summary = train_locally("pretrain", spec, settings)
    model = checkpoints.load_checkpoint(checkpoints.run_dir(root, "pretrain") / checkpoints.BEST)["model"]
    torch.save({name: value for name, value in model.items() if not name.startswith("head.")}, root / "backbone.pt")
    print(
        f"backbone: {args.model} trained whole on {3 * args.pretrain_images} synthesized leaves in "
        f"{time.perf_counter() - started:.0f} s, {summary.epochs_run} epochs, test accuracy there "
        f"{summary.test_accuracy:.3f}",
        flush=True,
    )
    return "backbone.pt"


def run_spec(args: argparse.Namespace, params: dict, seed: int, views: int) -> JobSpec:
    return JobSpec(
        model_name=args.model,
        dataset=args.data.name,
        weights=args.weights,
        image_size=args.image_size,
        epochs=args.epochs,
        seed=seed,
        feature_views=views,
        version="bench",
        **params,
    )


def sweep(args: argparse.Namespace, runs: list[dict], seed: int, mode: str) -> tuple[list[TrainingSummary], float]:
    """Every run of the grid in one mode from empty artifacts; their summaries and the wall time."""
    views = args.views if mode == "cached" else 0
    feature_cache.forget_all()
    forget_decoded()
    summaries = []
    with tempfile.TemporaryDirectory() as artifacts:
        settings = TrainerSettings(
            data_root=args.data.parent,
            artifacts_root=Path(artifacts),
            weights_root=args.weights_root,
            device=args.device,
            heatmaps_per_run=args.heatmaps,
        )
        started = time.perf_counter()
        for params in runs:
            begun = time.perf_counter()
            summary = train_locally(f"bench-{uuid.uuid4().hex[:8]}", run_spec(args, params, seed, views), settings)
            summaries.append(summary)
            print(
                f"  seed {seed} {mode:<8} {shown(params)}: test {summary.test_accuracy:.3f}, "
                f"val loss {summary.best_val_loss:.3f}, {time.perf_counter() - begun:5.1f} s",
                flush=True,
            )
        wall = time.perf_counter() - started
    print(f"seed {seed} {mode}: {len(runs)} runs in {wall:.0f} s", flush=True)
    return summaries, wall


def shown(params: dict) -> str:
    return " ".join(f"{name}={value:g}" for name, value in params.items())


def best_by_validation(summaries: list[TrainingSummary]) -> TrainingSummary:
    return min(summaries, key=lambda summary: summary.best_val_loss)


def main() -> None:
    args = parse_args()
    args.data = args.data.resolve()
    torch.set_num_threads(args.threads)
    runs = grid()[: args.runs]
    with tempfile.TemporaryDirectory() as weights_root:
        args.weights_root = Path(weights_root)
        if args.weights == "synthetic":
            args.weights = pretrain_backbone(args, args.weights_root)
        compare(args, runs)


def compare(args: argparse.Namespace, runs: list[dict]) -> None:
    print(
        f"data: {args.data} ({sum(1 for path in args.data.rglob('*') if path.is_file())} files), {args.model} "
        f"frozen, weights {args.weights}, {args.epochs} epochs, {len(runs)} runs × seeds {args.seeds}, "
        f"cached views {args.views}, heatmaps per run {args.heatmaps}, "
        f"{device_name(pick_device(args.device))}, {args.threads} threads",
        flush=True,
    )
    results: dict[str, list[TrainingSummary]] = {mode: [] for mode in MODES}
    walls: dict[str, float] = dict.fromkeys(MODES, 0.0)
    best: dict[str, list[float]] = {mode: [] for mode in MODES}
    for seed in args.seeds:
        # The cached sweep first on even seeds, last on odd ones: neither always meets a warmer machine.
        order = MODES if seed % 2 == 0 else MODES[::-1]
        for mode in order:
            summaries, wall = sweep(args, runs, seed, mode)
            results[mode] += summaries
            walls[mode] += wall
            best[mode].append(best_by_validation(summaries).test_accuracy)

    print(f"\n{'mode':<9} {'wall s':>7} {'s/run':>6} {'mean test acc':>14} {'best-by-val test acc (per seed)':>32}")
    for mode in MODES:
        accuracies = [summary.test_accuracy for summary in results[mode]]
        per_seed = " ".join(f"{accuracy:.3f}" for accuracy in best[mode])
        print(
            f"{mode:<9} {walls[mode]:7.0f} {walls[mode] / len(accuracies):6.1f} "
            f"{statistics.fmean(accuracies):14.3f} {statistics.fmean(best[mode]):>8.3f} ({per_seed})"
        )
    differences = [
        cached.test_accuracy - uncached.test_accuracy
        for cached, uncached in zip(results["cached"], results["uncached"], strict=True)
    ]
    mean, low, high = mean_interval(differences)
    interval = "[—]" if low is None else f"[{low:+.3f}, {high:+.3f}]"
    print(f"speed-up: {walls['uncached'] / walls['cached']:.1f}× (goal ≥ 10×)")
    print(
        f"test accuracy, cached − uncached over {len(differences)} paired runs: {mean:+.3f} {interval} "
        f"(goal: within 1 point)"
    )


if __name__ == "__main__":
    main()
