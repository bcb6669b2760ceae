"""Grad-CAM overlays kept with a run when it completes: its misclassified test images first,
then a sample of the correct ones, so the run's page can show what it looked at in each.

The overlays are small JPEGs in the run's directory (names.HEATMAPS_DIR), listed by an index
written last and atomically: a reader sees every overlay the index names. Making them is a
bonus to a completed run, never a reason for it to fail.
"""

import hashlib
import itertools
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from services.trainer.data import ImageTensors
from services.trainer.gradcam import Explained, explain, overlay_jpeg
from shared import names
from shared.datasets.imagefolder import ImageFolderIndex
from shared.images import decode_image

log = logging.getLogger(__name__)


def choose_images(labels: Sequence[int], predicted: Sequence[int], limit: int) -> list[int]:
    """Rows to explain: every misclassified one (up to limit), then correct ones taken in turn from
    each true class, spread evenly over each class's rows, until limit."""
    wrong = [row for row, (label, guess) in enumerate(zip(labels, predicted, strict=True)) if label != guess]
    chosen = wrong[:limit]
    by_class: dict[int, list[int]] = {}
    for row, (label, guess) in enumerate(zip(labels, predicted, strict=True)):
        if label == guess:
            by_class.setdefault(label, []).append(row)
    room = limit - len(chosen)
    if room <= 0 or not by_class:
        return chosen
    per_class = -(-room // len(by_class))  # ceil: small classes leave their share to the others
    spread = [rows[:: max(1, len(rows) // per_class)][:per_class] for _, rows in sorted(by_class.items())]
    in_turn = [row for turn in itertools.zip_longest(*spread) for row in turn if row is not None]
    return chosen + in_turn[:room]


def overlay_name(file: str) -> str:
    """A test image's overlay file name: its dataset-relative path hashed (paths hold '/')."""
    return hashlib.sha256(file.encode()).hexdigest()[:20] + ".jpg"


def save_test_heatmaps(
    run_dir: Path,
    models: Sequence[Explained],
    index: ImageFolderIndex,
    positions: Sequence[int],
    labels: Sequence[int],
    predicted: Sequence[int],
    limit: int,
    max_pixels: int,
) -> int:
    """Write the overlays of up to limit test rows (each for its predicted class) and their index;
    returns how many were written. Logs, and writes nothing, when it fails."""
    if limit <= 0 or not len(labels):
        return 0
    try:
        return _save(run_dir, models, index, positions, labels, predicted, limit, max_pixels)
    except (OSError, ValueError, RuntimeError) as error:
        log.warning("run %s: no Grad-CAM overlays kept: %s", run_dir.name, error)
        return 0


def _save(run_dir, models, index, positions, labels, predicted, limit, max_pixels) -> int:
    rows = choose_images(list(labels), list(predicted), limit)
    paths = [index.paths[positions[row]] for row in rows]
    decoded = {}
    for geometry in sorted({model.geometry for model in models}):
        pixels = np.stack([decode_image(path, geometry, max_pixels) for path in paths])
        decoded[geometry] = ImageTensors(
            torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous(), torch.zeros(len(rows))
        )
    photos, maps = explain(models, decoded, [predicted[row] for row in rows])
    out = run_dir / names.HEATMAPS_DIR
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for path, photo, heat in zip(paths, photos, maps, strict=True):
        file = path.relative_to(index.root).as_posix()
        files[file] = overlay_name(file)
        (out / files[file]).write_bytes(overlay_jpeg(photo, heat))
    partial = out / f".{names.HEATMAPS_INDEX}.{os.getpid()}"
    partial.write_text(json.dumps({"files": files}, indent=1))
    partial.replace(out / names.HEATMAPS_INDEX)
    return len(files)
