"""Does the model look at the disease? Grad-CAM heat inside the lesions of synthetic leaves.

    python -m bench.gradcam_focus [--per-class 200] [--image-size 96] [--epochs 30]

Draws a synthetic dataset with each image's lesion mask (`paddy data synth --masks`), trains a
custom_cnn on it through Paddy's own training code, then makes the Grad-CAM map of every test
image it classifies correctly (for its class) and prints, per class and over all of them, the
share of each map's total heat that lies on the lesion mask. Goal: at least 0.60 on average.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from services.trainer.data import ImageTensors, decode_image
from services.trainer.device import pick_device
from services.trainer.ensemble import load_member
from services.trainer.gradcam import class_heatmaps, share_inside
from services.trainer.local_run import train_locally
from services.trainer.settings import TrainerSettings
from shared.datasets.synth import synthesize_dataset
from shared.schemas.jobs import JobSpec

GOAL = 0.60


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0, help="the data's seed; the training seed is 1")
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synthesize_dataset(root / "data" / "synth", args.per_class, args.image_size, args.seed, masks=root / "masks")
        settings = TrainerSettings(data_root=root / "data", artifacts_root=root / "artifacts", device="cpu")
        spec = JobSpec(
            model_name="custom_cnn",
            dataset="synth",
            epochs=args.epochs,
            image_size=args.image_size,
            batch_size=32,
            seed=1,
            version="bench",
        )
        started = time.perf_counter()
        summary = train_locally("focus", spec, settings)
        trained_s = time.perf_counter() - started
        print(
            f"custom_cnn {args.image_size} px, {summary.epochs_run} epochs in {trained_s:.0f} s: "
            f"test accuracy {summary.test_accuracy:.3f}"
        )
        shares = heat_shares(root, settings, summary)
    print(f"{'class':<16} {'images':>6} {'heat on lesions':>16}")
    for class_name, values in shares.items():
        print(f"{class_name:<16} {len(values):>6} {statistics.mean(values) if values else float('nan'):>16.3f}")
    every = [value for values in shares.values() for value in values]
    if not every:
        print("no test image was classified correctly: no figure")
        return 1
    mean = statistics.mean(every)
    print(f"{'all':<16} {len(every):>6} {mean:>16.3f}")
    print(f"heat on lesions {mean:.3f} (goal >= {GOAL:.2f}): {'met' if mean >= GOAL else 'NOT met'}")
    return 0 if mean >= GOAL else 1


def heat_shares(root: Path, settings: TrainerSettings, summary) -> dict[str, list[float]]:
    """Per class: the share of heat on the lesion mask, for each correctly classified test image."""
    member = load_member("focus", settings.artifacts_root, pick_device("cpu"))
    kept = summary_predictions(root)
    shares: dict[str, list[float]] = {name: [] for name in member.class_names}
    correct = [entry for entry in kept if entry["true_class"] == entry["predicted_class"]]
    size = member.spec.image_size
    pixels = np.stack([decode_image(root / "data" / "synth" / entry["file"], size, 10**8) for entry in correct])
    images = ImageTensors(torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous(), torch.zeros(len(correct)))
    classes = [member.class_names.index(entry["true_class"]) for entry in correct]
    maps = class_heatmaps(member.model, member.spec.model_name, member.setup, images, classes)
    for entry, heat in zip(correct, maps, strict=True):
        mask = np.asarray(Image.open(root / "masks" / entry["file"]).resize((size, size))) > 127
        shares[entry["true_class"]].append(share_inside(heat, mask))
    return shares


def summary_predictions(root: Path) -> list[dict]:
    """The run's test predictions, read back from its local event log."""
    import json

    from services.trainer.local_run import EVENTS_FILE

    for line in (root / "artifacts" / "runs" / "focus" / EVENTS_FILE).read_text().splitlines():
        event = json.loads(line)
        if event.get("type") == "test_predictions":
            return event["predictions"]
    raise RuntimeError("the run published no test predictions")


if __name__ == "__main__":
    sys.exit(main())
