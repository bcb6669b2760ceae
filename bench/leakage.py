"""Leakage: how well the dataset audit finds copies of one photo, how long it takes, and what a
random split does to the test accuracy of a dataset made of copies.

    python -m bench.leakage                                   # 125 sources × 40 copies = 5,000 images
    python -m bench.leakage --sources 30 --copies 10 --skip-training   # a quick look
    python -m bench.leakage --source real                     # copies of the real photo tiles

The generator makes `--copies` augmented copies of each source photo, the way the Kaggle
rice-leaf set most likely was made from the 120 UCI photos: flips, a rotation by any angle
(in its frame or on a larger canvas, corners filled black, white or mirrored), a crop keeping
55-100 % of the area, a rescale to 224-512 px, brightness / contrast / saturation ±30 % and
JPEG re-encoding. Files get random names: only this benchmark knows each copy's source.

Sources: `synthetic` (default) draws distinct leaves (shared.datasets.synth), so every pair the
audit joins across sources is a real false positive. `real` uses the real photo tiles of
../shared/datasets/rice-leaf-real, keeping only those the audit does not match among
themselves (several tiles were cut from one photo, see its SOURCE.md): tiles from one photo
that the audit misses still count as "distinct" sources there, so its precision is a lower
bound.

Printed: pair recall and precision of the audit's copy groups (a pair: two images of one
source), the audit's wall and CPU seconds (CPU: process_time of this process, whose threads do
the audit's work), the leak rate of a random and a grouped split (test images with a copy of
their source in training), and the test accuracy a custom_cnn reaches on each split.
"""

import argparse
import io
import math
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from services.trainer.audit import audit_dataset
from shared.datasets.audits import save_audit
from shared.datasets.imagefolder import scan_image_folder
from shared.datasets.splits import Split, file_groups, split_dataset
from shared.datasets.synth import CLASS_NAMES, draw_image
from shared.schemas.datasets import DatasetAudit
from shared.schemas.jobs import JobSpec

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "rice-leaf-real"
SYNTHETIC_SIDE = 384


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=125, help="source photos")
    parser.add_argument("--copies", type=int, default=40, help="augmented copies of each source")
    parser.add_argument("--source", choices=["synthetic", "real"], default="synthetic")
    parser.add_argument("--seed", type=int, default=0, help="draws the sources, the copies and the splits")
    parser.add_argument("--workers", type=int, default=2, help="the audit's threads")
    parser.add_argument("--skip-training", action="store_true", help="no custom_cnn on the two splits")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--keep", type=Path, help="write the copies here (default: a temporary folder)")
    return parser.parse_args()


# --- the copies ---------------------------------------------------------------------------


def make_copy(source: Image.Image, rng: random.Random) -> bytes:
    """One augmented copy of source as JPEG bytes."""
    image = source.convert("RGB")
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    if rng.random() < 0.5:
        image = ImageOps.flip(image)
    image = _rotate(image, rng.uniform(0, 360), rng)
    area = rng.uniform(0.55, 1.0)
    stretch = math.exp(rng.uniform(math.log(0.75), math.log(4 / 3)))  # the crop's shape
    width_share = min(1.0, math.sqrt(area * stretch))
    height_share = min(1.0, area / width_share)
    width, height = max(8, round(image.width * width_share)), max(8, round(image.height * height_share))
    left, top = rng.randint(0, image.width - width), rng.randint(0, image.height - height)
    image = image.crop((left, top, left + width, top + height))
    for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        image = enhance(image).enhance(rng.uniform(0.7, 1.3))
    scale = rng.randint(224, 512) / max(image.size)
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=rng.randint(60, 95))
    return buffer.getvalue()


def _rotate(image: Image.Image, angle: float, rng: random.Random) -> Image.Image:
    """Turned in its frame or on a canvas that holds it all; corners black, white or mirrored."""
    fill = rng.choice(["black", "white", "mirror"])
    if fill == "mirror":
        pixels = np.asarray(image)
        turn = cv2.getRotationMatrix2D((image.width / 2, image.height / 2), angle, 1.0)
        return Image.fromarray(cv2.warpAffine(pixels, turn, image.size, borderMode=cv2.BORDER_REFLECT))
    colour = (0, 0, 0) if fill == "black" else (255, 255, 255)
    expand = rng.random() < 0.5
    return image.rotate(angle, resample=Image.Resampling.BILINEAR, expand=expand, fillcolor=colour)


def synthetic_sources(count: int, seed: int) -> list[tuple[str, Image.Image]]:
    return [
        (CLASS_NAMES[i % 3], draw_image(np.random.default_rng([seed, i]), CLASS_NAMES[i % 3], SYNTHETIC_SIDE))
        for i in range(count)
    ]


def real_sources(count: int, seed: int, workers: int) -> list[tuple[str, Image.Image]]:
    """Real tiles, as evenly over the classes as they allow, none the audit matches to another."""
    audit = audit_dataset(REAL_DATA, "rice-leaf-real", workers=workers)
    matched = set(audit.groups())
    index = scan_image_folder(REAL_DATA)
    by_class: dict[int, list[Path]] = {}
    for path, label in zip(index.paths, index.labels, strict=True):
        if path.relative_to(index.root).as_posix() not in matched:
            by_class.setdefault(label, []).append(path)
    rng = random.Random(seed)
    for paths in by_class.values():
        rng.shuffle(paths)
    print(
        f"real tiles: {len(index.paths)}, of which {len(matched)} in {len(audit.copy_groups)} copy groups "
        f"the audit found among themselves (left out)"
    )
    picked = [
        paths[k] for k in range(max(map(len, by_class.values()))) for paths in by_class.values() if k < len(paths)
    ]
    if len(picked) < count:
        raise SystemExit(f"only {len(picked)} real tiles are left; ask for --sources {len(picked)} or fewer")
    return [
        (index.class_names[index.labels[index.paths.index(p)]], Image.open(p).convert("RGB")) for p in picked[:count]
    ]


def write_copies(out: Path, sources: list[tuple[str, Image.Image]], copies: int, seed: int) -> dict[str, int]:
    """The copies under out/<class>/<random name>.jpg; returns file (relative to out) → source."""
    rng = random.Random(seed)
    jobs = []
    for number, (class_name, image) in enumerate(sources):
        (out / class_name).mkdir(parents=True, exist_ok=True)
        for _ in range(copies):
            name = f"{class_name}/{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}.jpg"
            jobs.append((name, number, image, random.Random(rng.getrandbits(64))))
    with ThreadPoolExecutor(2) as pool:
        for name, data in pool.map(lambda job: (job[0], make_copy(job[2], job[3])), jobs):
            (out / name).write_bytes(data)
    return {name: number for name, number, _, _ in jobs}


# --- what is measured -----------------------------------------------------------------------


def pair_scores(audit: DatasetAudit, source_of: dict[str, int]) -> tuple[float, float]:
    """(recall, precision) over pairs of images: a true pair shares a source, a found pair a copy group."""
    found = audit.groups()
    files = sorted(source_of)
    group = [found.get(f, f) for f in files]
    source = [source_of[f] for f in files]

    def pairs(counts: Counter) -> int:
        return sum(n * (n - 1) // 2 for n in counts.values())

    both = pairs(Counter(zip(group, source)))
    return both / max(1, pairs(Counter(source))), both / max(1, pairs(Counter(group)))


def leak_rate(split: Split, sources: list[int]) -> float:
    """Share of test images with a copy of their source (another image of it) in the training split."""
    trained_on = {sources[i] for i in split["train"]}
    return sum(sources[i] in trained_on for i in split["test"]) / max(1, len(split["test"]))


def job(split: str, args: argparse.Namespace, folder: Path) -> JobSpec:
    """The same custom_cnn job on either split; only `split` differs."""
    return JobSpec(
        model_name="custom_cnn",
        dataset=str(folder),
        epochs=args.epochs,
        patience=args.epochs,
        image_size=args.image_size,
        augment="flips",
        seed=args.seed,
        split=split,
        split_seed=args.seed,
        weights="none",
        version=f"bench-{split}",
    )


def trained_accuracy(spec: JobSpec, folder: Path, artifacts: Path) -> float:
    """The test accuracy Paddy reports for spec, trained here as `paddy train` would."""
    from services.trainer.local_run import train_locally
    from services.trainer.settings import TrainerSettings

    settings = TrainerSettings(data_root=folder, artifacts_root=artifacts, device="cpu")

    def epoch_line(event) -> None:
        if event.type == "epoch_finished":
            print(
                f"    epoch {event.epoch:>2}  train acc {event.train_acc:.3f}  val acc {event.val_acc:.3f}", flush=True
            )

    return train_locally(
        f"leakage-{spec.split}-{uuid.uuid4().hex[:6]}", spec, settings, on_event=epoch_line
    ).test_accuracy


def main() -> None:
    args = parse_args()
    print("command: python -m bench.leakage " + " ".join(sys.argv[1:]), flush=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {_load()}")
    started = time.perf_counter()
    if args.source == "synthetic":
        sources = synthetic_sources(args.sources, args.seed)
    else:
        sources = real_sources(args.sources, args.seed, args.workers)
    with tempfile.TemporaryDirectory() as scratch:
        folder = (args.keep or Path(scratch) / "copies").resolve()
        source_of = write_copies(folder, sources, args.copies, args.seed)
        print(
            f"generated {len(source_of)} copies of {len(sources)} {args.source} sources in {time.perf_counter() - started:.0f} s"
        )

        wall, cpu = time.perf_counter(), time.process_time()
        audit = audit_dataset(folder, "bench-leakage", workers=args.workers)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        recall, precision = pair_scores(audit, source_of)
        print(
            f"audit of {audit.images} images: {wall:.1f} s wall, {cpu:.1f} s CPU "
            f"({args.workers} worker threads; load average after {_load()})"
        )
        print(f"copy groups: {len(audit.copy_groups)}, label conflicts: {len(audit.label_conflicts)}")
        print(f"near-duplicate pairs: recall {recall:.4f}, precision {precision:.4f}")
        for warning in audit.shortcuts:
            print(f"shortcut warning: {warning.message}")

        # The splits the trainer makes for these jobs: the grouped one over the audit's groups.
        artifacts = Path(scratch) / "artifacts"
        save_audit(artifacts, audit)
        index = scan_image_folder(folder)
        groups = file_groups(index, audit=audit)
        sources_by_position = [source_of[p.relative_to(index.root).as_posix()] for p in index.paths]
        jobs = {name: job(name, args, folder) for name in ("random", "grouped")}
        for name, spec in jobs.items():
            split = split_dataset(spec, index, groups).positions
            sizes = ", ".join(f"{part} {len(positions)}" for part, positions in split.items())
            print(f"{name:>8} split ({sizes}): leak rate {leak_rate(split, sources_by_position):.1%} of test images")
        if args.skip_training:
            return
        import torch

        torch.set_num_threads(args.threads)
        for name, spec in jobs.items():
            print(f"custom_cnn on the {name} split ({args.image_size} px, {args.epochs} epochs):", flush=True)
            began = time.perf_counter()
            accuracy = trained_accuracy(spec, folder, artifacts)
            print(f"{name:>8} split: test accuracy {accuracy:.3f} ({time.perf_counter() - began:.0f} s)", flush=True)


def _load() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


if __name__ == "__main__":
    main()
