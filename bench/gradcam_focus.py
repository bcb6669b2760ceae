"""Does the model look at the disease? Grad-CAM heat inside the lesions of synthetic leaves.

    python -m bench.gradcam_focus [--per-class 300] [--image-size 96] [--epochs 20] [--keep DIR]

Draws a synthetic dataset with each image's lesion mask (`paddy data synth --masks`), trains a
custom_cnn on it through Paddy's own training code with the demo jobs' recipe (infra/demo.py),
then makes the map Paddy shows (services/trainer/gradcam.py) of every test image it classifies
correctly, for its class, and prints, per class and over all of them, the share of each map's
total heat that lies on the lesion mask (goal: at least 0.60 on average).

It also prints the share on the grid of the map's layer (for the custom CNN a cell every 2
pixels), where a cell counts as lesion when any of its pixels is: how near the heat falls when it
misses a speck a pixel or two across.

--keep DIR keeps the data and the trained run in DIR, and a later call with the same DIR and
the same settings scores that run again without training: maps can be compared on one model.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from infra.demo import demo_specs
from services.trainer.data import ImageTensors, decode_image
from services.trainer.device import pick_device
from services.trainer.engine import prepare_inputs
from services.trainer.ensemble import Member, load_member
from services.trainer.gradcam import class_heatmaps, share_inside, target_layer
from services.trainer.local_run import EVENTS_FILE, SUMMARY_FILE, train_locally
from services.trainer.settings import TrainerSettings
from shared.datasets.synth import synthesize_dataset
from shared.images import Geometry
from shared.schemas.events import TrainingSummary
from shared.schemas.jobs import JobSpec

GOAL = 0.60
RUN_ID = "focus"
SETTINGS_FILE = "bench.json"  # the settings the kept data and run were made with


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="the data's seed; the training seed is 1")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--keep", type=Path, help="keep the data and the trained run here; reuse them when already here"
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    torch.set_num_threads(args.threads)
    if args.keep is not None:
        return report(args, args.keep)
    with tempfile.TemporaryDirectory() as tmp:
        return report(args, Path(tmp))


def report(args: argparse.Namespace, root: Path) -> int:
    """Train (or reuse the run kept in root), score its maps and print the figures; 0 when met."""
    member = trained_member(args, root)
    cell = map_cell(member)
    shares = heat_shares(root, member, cell)
    print(f"{'class':<16} {'images':>6} {'on lesion pixels':>17} {f'on lesion cells ({cell} px)':>24}")
    for class_name, values in shares.items():
        pixels, cells = means(values)
        print(f"{class_name:<16} {len(values):>6} {pixels:>17.3f} {cells:>24.3f}")
    every = [value for values in shares.values() for value in values]
    if not every:
        print("no test image was classified correctly: no figure")
        return 1
    pixels, cells = means(every)
    print(f"{'all':<16} {len(every):>6} {pixels:>17.3f} {cells:>24.3f}")
    print(f"heat on lesions {pixels:.3f} (goal >= {GOAL:.2f}): {'met' if pixels >= GOAL else 'NOT met'}")
    print(f"heat on lesion cells {cells:.3f} (the map's {cell}-pixel grid)")
    return 0 if pixels >= GOAL else 1


def trained_member(args: argparse.Namespace, root: Path) -> Member:
    """The bench's trained custom_cnn: the run kept in root when its settings are these, else a new one."""
    drawn = {"per_class": args.per_class, "image_size": args.image_size, "epochs": args.epochs, "seed": args.seed}
    drawn_file = root / SETTINGS_FILE
    summary_file = root / "artifacts" / "runs" / RUN_ID / SUMMARY_FILE
    if summary_file.is_file():
        kept = json.loads(drawn_file.read_text())
        if kept != drawn:
            raise SystemExit(f"{root} keeps a run for {kept}, not {drawn}: use another directory")
        summary = TrainingSummary.model_validate_json(summary_file.read_text())
        print(
            f"custom_cnn {args.image_size} px, {summary.epochs_run} epochs (kept in {root}): "
            f"test accuracy {summary.test_accuracy:.3f}"
        )
    else:
        if root.exists() and any(root.iterdir()):
            raise SystemExit(f"{root} holds no completed bench run: remove it or use another directory")
        root.mkdir(parents=True, exist_ok=True)
        synthesize_dataset(root / "data" / "synth", args.per_class, args.image_size, args.seed, masks=root / "masks")
        drawn_file.write_text(json.dumps(drawn))
        started = time.perf_counter()
        summary = train_locally(RUN_ID, bench_spec(args), bench_settings(root))
        print(
            f"custom_cnn {args.image_size} px, {summary.epochs_run} epochs in {time.perf_counter() - started:.0f} s: "
            f"test accuracy {summary.test_accuracy:.3f}"
        )
    return load_member(RUN_ID, root / "artifacts", pick_device("cpu"))


def bench_settings(root: Path) -> TrainerSettings:
    return TrainerSettings(data_root=root / "data", artifacts_root=root / "artifacts", device="cpu", heatmaps_per_run=0)


def bench_spec(args: argparse.Namespace) -> JobSpec:
    """The first demo job's recipe at the bench's size and epochs, never stopping early."""
    return JobSpec.model_validate(
        {
            **demo_specs("synth", args.epochs)[0],
            "image_size": args.image_size,
            "patience": args.epochs,
            "version": "bench",
        }
    )


def means(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    """The mean of each figure of the pairs; nan for none."""
    if not pairs:
        return float("nan"), float("nan")
    on_pixels, on_cells = zip(*pairs, strict=True)
    return statistics.mean(on_pixels), statistics.mean(on_cells)


def map_cell(member: Member) -> int:
    """Input pixels per cell of the map: the input size over the target layer's output size."""
    seen = []
    layer = target_layer(member.model, member.spec.model_name)
    hook = layer.register_forward_hook(lambda _module, _inputs, output: seen.append(output.shape[-1]))
    size = member.spec.image_size
    with torch.inference_mode():
        member.model(prepare_inputs(torch.zeros(1, 3, size, size, dtype=torch.uint8), member.setup))
    hook.remove()
    return size // seen[0]


def heat_shares(root: Path, member: Member, cell: int) -> dict[str, list[tuple[float, float]]]:
    """Per class, for each correctly classified test image: the share of its map's heat on the
    lesion mask's pixels, and on the map's cells that hold a lesion pixel."""
    correct = [entry for entry in test_predictions(root) if entry["true_class"] == entry["predicted_class"]]
    size = member.spec.image_size
    pixels = np.stack(
        [decode_image(root / "data" / "synth" / entry["file"], Geometry(size, size), 10**8) for entry in correct]
    )
    images = ImageTensors(torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous(), torch.zeros(len(correct)))
    classes = [member.class_names.index(entry["true_class"]) for entry in correct]
    maps = class_heatmaps(member.model, member.spec.model_name, member.setup, images, classes)
    shares: dict[str, list[tuple[float, float]]] = {name: [] for name in member.class_names}
    for entry, heat in zip(correct, maps, strict=True):
        mask = np.asarray(Image.open(root / "masks" / entry["file"]).resize((size, size))) > 127
        shares[entry["true_class"]].append((share_inside(heat, mask), share_inside(*on_grid(heat, mask, cell))))
    return shares


def on_grid(heat: np.ndarray, mask: np.ndarray, cell: int) -> tuple[np.ndarray, np.ndarray]:
    """The map's heat per cell, and which cells hold any lesion pixel."""
    rows, columns = heat.shape[0] // cell, heat.shape[1] // cell
    heat = heat[: rows * cell, : columns * cell].reshape(rows, cell, columns, cell).sum(axis=(1, 3))
    mask = mask[: rows * cell, : columns * cell].reshape(rows, cell, columns, cell).any(axis=(1, 3))
    return heat, mask


def test_predictions(root: Path) -> list[dict]:
    """The run's test predictions, read back from its local event log."""
    for line in (root / "artifacts" / "runs" / RUN_ID / EVENTS_FILE).read_text().splitlines():
        event = json.loads(line)
        if event.get("type") == "test_predictions":
            return event["predictions"]
    raise RuntimeError("the run published no test predictions")


if __name__ == "__main__":
    sys.exit(main())
