"""Train custom_cnn from scratch on real rice-leaf photos through Paddy's own training code.

    .venv/bin/python bench/real_data.py [--image-size 128] [--epochs 30] [--threads 2]

Data: ../shared/datasets/rice-leaf-real (300 photo tiles, 3 classes). Reports test accuracy,
per-class F1 and wall time. Several tiles come from one photo, so accuracy is optimistic.
"""

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import torch

from services.trainer.local_run import train_locally
from services.trainer.settings import TrainerSettings
from shared.schemas.jobs import JobSpec

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "rice-leaf-real"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REAL_DATA)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--augment", default="flips", choices=["original", "flips", "none"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-amp", action="store_true", help="no bf16 autocast")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    spec = JobSpec(model_name="custom_cnn", dataset=str(args.data.resolve()), epochs=args.epochs,
                   patience=args.patience, batch_size=args.batch_size, learning_rate=args.learning_rate,
                   image_size=args.image_size, augment=args.augment, seed=args.seed,
                   mixed_precision=not args.no_amp, version="bench")
    with tempfile.TemporaryDirectory() as artifacts:
        settings = TrainerSettings(artifacts_root=Path(artifacts), device="cpu")

        def progress(event) -> None:
            if event.type == "epoch_finished":
                print(f"  epoch {event.epoch:>3}  train loss {event.train_loss:.3f} acc {event.train_acc:.3f}"
                      f"  val loss {event.val_loss:.3f} acc {event.val_acc:.3f}  {event.epoch_time_sec:.1f} s",
                      flush=True)

        started = time.perf_counter()
        summary = train_locally(f"bench-{uuid.uuid4().hex[:8]}", spec, settings, on_event=progress)
        wall = time.perf_counter() - started

    print(f"\ndata: {args.data} ({summary.dataset_files} images), {args.image_size} px, augment={args.augment}, "
          f"{args.threads} threads, precision={summary.reproducibility['mixed_precision']}")
    print(f"epochs run: {summary.epochs_run} (best {summary.best_epoch}, early stopped: {summary.early_stopped})")
    print(f"test accuracy: {summary.test_accuracy:.3f}   test loss: {summary.test_loss:.3f}   "
          f"macro F1: {summary.test_f1_macro:.3f}")
    for name, metrics in summary.per_class.items():
        print(f"  {name:<16} precision {metrics['precision']:.3f}  recall {metrics['recall']:.3f}  "
              f"f1 {metrics['f1']:.3f}  support {metrics['support']}")
    print(f"wall time (decode + train + test): {wall:.1f} s = {wall / 60:.2f} min")


if __name__ == "__main__":
    main()
