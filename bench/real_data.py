"""Train custom_cnn from scratch on real rice-leaf photos through Paddy's own training code.

    python -m bench.real_data [--image-size 128] [--epochs 40] [--threads 2]
    python -m bench.real_data --compare-bf16 --seeds 42 43 44 [--device cuda]

Data: ../shared/datasets/rice-leaf-real (300 photo tiles, 3 classes). Reports test accuracy,
per-class F1 and wall time. Several tiles come from one photo, so accuracy is optimistic.

--compare-bf16 trains each seed twice, in fp32 and with bf16 autocast, and prints the accuracy
difference. On a CPU without native bf16 Paddy trains in fp32 (emulated bf16 is slower), so this
mode forces bf16 there: the same bf16 rounding, only slower.
"""

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import torch

from services.trainer import engine
from services.trainer.device import device_name, pick_device
from services.trainer.local_run import train_locally
from services.trainer.settings import TrainerSettings
from shared.schemas.events import TrainingSummary
from shared.schemas.jobs import JobSpec

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "rice-leaf-real"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REAL_DATA)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--augment", default="flips", choices=["original", "flips", "none"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument(
        "--split",
        default="grouped",
        choices=["grouped", "random"],
        help="grouped (copies of a photo kept together, as jobs do by default) or random (image by image)",
    )
    parser.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="draws the split; `--split random --split-seed 42` is the split "
        "runs with seed 42 had before splits were grouped",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--device", choices=["cpu", "cuda", "auto"], default="cpu", help="where to train (auto: cuda when available)"
    )
    parser.add_argument("--no-amp", action="store_true", help="no bf16 autocast")
    parser.add_argument(
        "--compare-bf16",
        action="store_true",
        help="train every seed in fp32 and in bf16 (forced, emulated where the CPU lacks it)",
    )
    return parser.parse_args()


def train(args: argparse.Namespace, seed: int, mixed_precision: bool) -> tuple[TrainingSummary, float]:
    spec = JobSpec(
        model_name="custom_cnn",
        dataset=args.data.resolve().name,
        epochs=args.epochs,
        patience=args.patience,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        # The recipe these figures were measured with (docs/benchmarks.md), not today's defaults.
        optimizer="adam",
        weight_decay=1e-4,
        lr_schedule="constant",
        image_size=args.image_size,
        augment=args.augment,
        seed=seed,
        split=args.split,
        split_seed=args.split_seed,
        mixed_precision=mixed_precision,
        version="bench",
    )
    with tempfile.TemporaryDirectory() as artifacts:
        # The data root is the dataset's parent: a job names its dataset inside the data root.
        settings = TrainerSettings(
            data_root=args.data.resolve().parent, artifacts_root=Path(artifacts), device=args.device
        )

        def progress(event) -> None:
            if event.type == "epoch_finished":
                print(
                    f"  epoch {event.epoch:>3}  train loss {event.train_loss:.3f} acc {event.train_acc:.3f}"
                    f"  val loss {event.val_loss:.3f} acc {event.val_acc:.3f}  {event.epoch_time_sec:.1f} s",
                    flush=True,
                )

        started = time.perf_counter()
        summary = train_locally(f"bench-{uuid.uuid4().hex[:8]}", spec, settings, on_event=progress)
        return summary, time.perf_counter() - started


def report(args: argparse.Namespace, seed: int, summary: TrainingSummary, wall: float) -> None:
    print(
        f"\ndata: {args.data} ({summary.dataset_files} images), {args.image_size} px, augment={args.augment}, "
        f"{args.threads} threads, seed {seed}, precision={summary.reproducibility['mixed_precision']}"
    )
    print(f"epochs run: {summary.epochs_run} (best {summary.best_epoch}, early stopped: {summary.early_stopped})")
    if summary.split is not None:
        split = summary.split
        groups = f"{split.groups} groups from {split.group_source}" if split.method == "grouped" else "may leak"
        print(f"split: {split.method}, split seed {split.split_seed} ({groups}), hash {split.split_hash}")
    print(
        f"test accuracy: {summary.test_accuracy:.3f}   test loss: {summary.test_loss:.3f}   "
        f"macro F1: {summary.test_f1_macro:.3f}"
    )
    for name, metrics in summary.per_class.items():
        print(
            f"  {name:<16} precision {metrics['precision']:.3f}  recall {metrics['recall']:.3f}  "
            f"f1 {metrics['f1']:.3f}  support {metrics['support']}"
        )
    print(f"wall time (decode + train + test): {wall:.1f} s = {wall / 60:.2f} min\n", flush=True)


def compare_bf16(args: argparse.Namespace) -> None:
    device = pick_device(args.device)
    native = engine.bf16_supported(device)
    if not native:
        engine.bf16_supported = lambda device: True  # emulated bf16: same rounding, slower
    rows = []
    for seed in args.seeds:
        accuracies = {}
        for precision, mixed in (("fp32", False), ("bf16", True)):
            summary, wall = train(args, seed, mixed)
            report(args, seed, summary, wall)
            accuracies[precision] = (summary.test_accuracy, summary.test_f1_macro, summary.epochs_run, wall)
        rows.append((seed, accuracies))

    print(f"bf16 on {device_name(device)}: {'native' if native else 'emulated (forced for this comparison)'}")
    print(
        "| seed | fp32 test acc | bf16 test acc | bf16 − fp32 (points) | fp32 macro F1 | bf16 macro F1 "
        "| epochs fp32 / bf16 | wall s fp32 / bf16 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for seed, acc in rows:
        (fa, ff, fe, fw), (ba, bf, be, bw) = acc["fp32"], acc["bf16"]
        print(
            f"| {seed} | {fa:.3f} | {ba:.3f} | {100 * (ba - fa):+.1f} | {ff:.3f} | {bf:.3f} | {fe} / {be} "
            f"| {fw:.0f} / {bw:.0f} |"
        )
    fp32_mean = statistics.mean(acc["fp32"][0] for _, acc in rows)
    bf16_mean = statistics.mean(acc["bf16"][0] for _, acc in rows)
    print(
        f"mean test accuracy over {len(rows)} seeds: fp32 {fp32_mean:.3f}, bf16 {bf16_mean:.3f}, "
        f"difference {100 * (bf16_mean - fp32_mean):+.1f} points"
    )


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    print("command: python -m bench.real_data " + " ".join(sys.argv[1:]), flush=True)
    if args.compare_bf16:
        compare_bf16(args)
        return
    for seed in args.seeds:
        summary, wall = train(args, seed, mixed_precision=not args.no_amp)
        report(args, seed, summary, wall)


if __name__ == "__main__":
    main()
