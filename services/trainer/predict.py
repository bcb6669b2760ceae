"""Predictions of a completed run — a training run or an ensemble — for a few images."""

import base64
import functools
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from services.trainer import checkpoints
from services.trainer.data import ImageTensors
from services.trainer.device import pick_device
from services.trainer.engine import predict_logits
from services.trainer.ensemble import ENSEMBLE_FILE, Member, combine_logits, load_member, read_manifest
from services.trainer.gradcam import Explained, explain, overlay_jpeg
from services.trainer.settings import TrainerSettings
from shared.images import Geometry, decode_image

# Loaded runs kept per process: a worker answering many predictions loads each run once.
MODEL_CACHE_SIZE = 4

ImageSource = Path | str | bytes  # a file, or the bytes of one


class PredictionError(ValueError):
    """A run that cannot predict, or an image it cannot read; the message says which."""


@dataclass(frozen=True)
class Prediction:
    class_name: str
    probabilities: dict[str, float]  # every class of the run, summing to 1
    heatmap: bytes | None = None  # JPEG: the photo at the model's size, its Grad-CAM map over it

    def as_dict(self) -> dict:
        answer: dict = {"class": self.class_name, "probabilities": self.probabilities}
        if self.heatmap is not None:
            answer["heatmap"] = base64.b64encode(self.heatmap).decode()
        return answer


@dataclass(frozen=True)
class Predictor:
    """A run ready to predict: one member for a training run, several for an ensemble."""

    class_names: list[str]
    members: list[Member]
    voting: str


def predict_images(
    run_id: str, images: Sequence[ImageSource], settings: TrainerSettings, heatmaps: bool = False
) -> list[Prediction]:
    """The class and the probability of every class for each image, in order; with heatmaps,
    also where the run looked for that class (Grad-CAM, services/trainer/gradcam.py)."""
    predictor = load_predictor(run_id, settings)
    if not images:
        return []
    decoded = {
        geometry: decode_images(images, geometry, settings.max_image_pixels)
        for geometry in sorted({member.spec.geometry for member in predictor.members})
    }
    logits = [
        predict_logits(member.model, decoded[member.spec.geometry], member.setup, member.spec.batch_size)
        for member in predictor.members
    ]
    probabilities = combine_logits(logits, predictor.voting).double().softmax(1)
    names = predictor.class_names
    classes = [int(row.argmax()) for row in probabilities]
    overlays: list[bytes | None] = [None] * len(classes)
    if heatmaps:
        photos, maps = explain([Explained.of(member) for member in predictor.members], decoded, classes)
        overlays = [overlay_jpeg(photo, heat) for photo, heat in zip(photos, maps, strict=True)]
    return [
        Prediction(names[c], dict(zip(names, row.tolist(), strict=True)), heatmap)
        for c, row, heatmap in zip(classes, probabilities, overlays, strict=True)
    ]


def decode_images(images: Sequence[ImageSource], geometry: Geometry, max_pixels: int) -> ImageTensors:
    arrays = []
    for position, image in enumerate(images):
        source = io.BytesIO(image) if isinstance(image, bytes) else Path(image)
        try:
            arrays.append(decode_image(source, geometry, max_pixels))
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            raise PredictionError(f"cannot read {describe(image, position)}: {error}") from None
    pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return ImageTensors(pixels, torch.zeros(len(arrays), dtype=torch.int64))


def describe(image: ImageSource, position: int) -> str:
    return f"image {position + 1} ({len(image)} bytes)" if isinstance(image, bytes) else f"image {image}"


def load_predictor(run_id: str, settings: TrainerSettings) -> Predictor:
    run_dir = checkpoints.run_dir(settings.artifacts_root, run_id)
    ensemble_file, checkpoint = run_dir / ENSEMBLE_FILE, run_dir / checkpoints.BEST
    found = ensemble_file if ensemble_file.is_file() else checkpoint
    if not found.is_file():
        raise PredictionError(f"run {run_id} has no checkpoint in {run_dir}: is it completed?")
    # The file's mtime is part of the key: a run trained again (resumed) is loaded again.
    return _cached_predictor(run_id, Path(settings.artifacts_root).resolve(), settings.device, found.stat().st_mtime_ns)


@functools.lru_cache(maxsize=MODEL_CACHE_SIZE)
def _cached_predictor(run_id: str, artifacts_root: Path, device_setting: str, _mtime_ns: int) -> Predictor:
    device = pick_device(device_setting)
    manifest = read_manifest(checkpoints.run_dir(artifacts_root, run_id))
    if manifest is None:
        member = load_member(run_id, artifacts_root, device)
        return Predictor(member.class_names, [member], "logits")
    members = [load_member(member, artifacts_root, device) for member in manifest["members"]]
    return Predictor(manifest["class_names"], members, manifest["voting"])
