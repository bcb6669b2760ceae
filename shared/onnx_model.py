"""Predictions from a run's ONNX export, without torch: onnxruntime, Pillow and numpy.

The model file carries its card (shared/schemas/exports.py) in its metadata_props, one JSON value
per field under METADATA_PREFIX: the classes, each input's image size, how an ensemble votes. A
photo is decoded exactly as training decoded it (shared/images.py), once per input size, and fed
as uint8 pixels: the normalisation is inside the graph.

onnxruntime is imported inside the functions that need it, so importing shared/ never needs it.
"""

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from shared.images import DECODE_ERRORS, MAX_IMAGE_PIXELS, Geometry, decode_image
from shared.schemas.exports import EXPORT_FORMAT, ModelCard

METADATA_PREFIX = "paddy."
# Photos per onnxruntime call: bounds the memory a long list of photos takes.
BATCH_SIZE = 32

ImageSource = Path | str | bytes  # a file, or the bytes of one


class OnnxPredictionError(ValueError):
    """A file that is not a Paddy export, or an image it cannot read; the message says which."""


def card_metadata(card: ModelCard) -> dict[str, str]:
    """The card as metadata_props: `paddy.<field>` → the field's value as JSON."""
    return {f"{METADATA_PREFIX}{name}": json.dumps(value) for name, value in card.model_dump(mode="json").items()}


def read_card(metadata: Mapping[str, str], source: str) -> ModelCard:
    """The card in a model's metadata_props; OnnxPredictionError when there is none or it is not
    one this Paddy reads (source names the file in the message)."""
    fields = {key[len(METADATA_PREFIX) :]: value for key, value in metadata.items() if key.startswith(METADATA_PREFIX)}
    if "format" not in fields:
        raise OnnxPredictionError(f"{source} is not a Paddy export: its metadata has no {METADATA_PREFIX}format")
    try:
        values = {name: json.loads(value) for name, value in fields.items()}
    except json.JSONDecodeError as error:
        raise OnnxPredictionError(f"{source}: unreadable Paddy metadata ({error})") from None
    if values["format"] != EXPORT_FORMAT:
        raise OnnxPredictionError(
            f"{source} is a Paddy export of format {values['format']!r}; this Paddy reads format {EXPORT_FORMAT}"
        )
    try:
        return ModelCard.model_validate(values)
    except ValidationError as error:
        raise OnnxPredictionError(f"{source}: invalid Paddy metadata: {error}") from None


def describe(image: ImageSource, position: int) -> str:
    return f"image {position + 1} ({len(image)} bytes)" if isinstance(image, bytes) else f"image {image}"


@dataclass
class OnnxClassifier:
    """A Paddy export loaded in onnxruntime: `predict` answers as services/trainer/predict.py does."""

    path: Path
    card: ModelCard
    session: Any  # onnxruntime.InferenceSession
    max_pixels: int = MAX_IMAGE_PIXELS

    @classmethod
    def load(cls, path: Path | str, threads: int | None = None, max_pixels: int = MAX_IMAGE_PIXELS) -> "OnnxClassifier":
        """threads: onnxruntime's intra-op threads (None: its default, one per core)."""
        import onnxruntime

        path = Path(path)
        if not path.is_file():
            raise OnnxPredictionError(f"no model file at {path}")
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime's own error types (InvalidProtobuf, Fail, ...)
            raise OnnxPredictionError(f"{path} is not an ONNX model onnxruntime can load: {error}") from None
        card = read_card(session.get_modelmeta().custom_metadata_map, str(path))
        expected = {item.name for item in card.preprocessing.inputs}
        found = {item.name: item.type for item in session.get_inputs()}
        if set(found) != expected or any(kind != "tensor(uint8)" for kind in found.values()):
            raise OnnxPredictionError(f"{path}: its inputs {found} are not those its Paddy metadata names {expected}")
        return cls(path, card, session, max_pixels)

    @property
    def run_id(self) -> str:
        return self.card.run_id

    @property
    def class_names(self) -> list[str]:
        return list(self.card.class_names)

    @property
    def geometries(self) -> list[Geometry]:
        return [item.geometry for item in self.card.preprocessing.inputs]

    def predict(self, images: Sequence[ImageSource]) -> list[tuple[str, dict[str, float]]]:
        """The class and the probability of every class for each image, in order."""
        if not images:
            return []
        pixels = {
            geometry: np.stack([self.decode(image, position, geometry) for position, image in enumerate(images)])
            for geometry in self.geometries
        }
        names = self.class_names
        return [
            (names[int(row.argmax())], dict(zip(names, row.tolist(), strict=True)))
            for row in self.probabilities(pixels)
        ]

    def decode(self, image: ImageSource, position: int, geometry: Geometry) -> np.ndarray:
        """One image as the model takes it: 3×H×W uint8 (OnnxPredictionError when unreadable)."""
        source = io.BytesIO(image) if isinstance(image, bytes) else Path(image)
        try:
            rgb = decode_image(source, geometry, self.max_pixels)
        except DECODE_ERRORS as error:
            raise OnnxPredictionError(f"cannot read {describe(image, position)}: {error}") from None
        return rgb.transpose(2, 0, 1)

    def probabilities(self, pixels: Mapping[Geometry, np.ndarray]) -> np.ndarray:
        """float32 N × classes from N×3×H×W uint8 pixels for each input geometry of the model."""
        counts = {len(batch) for batch in pixels.values()}
        if set(pixels) != set(self.geometries) or len(counts) != 1:
            raise ValueError(
                f"need one equally long batch for each input geometry {[str(g) for g in self.geometries]}, "
                f"got {[str(g) for g in sorted(pixels)]}"
            )
        total = counts.pop()
        inputs = self.card.preprocessing.inputs
        outputs = [
            self.session.run(
                None,
                {item.name: np.ascontiguousarray(pixels[item.geometry][start : start + BATCH_SIZE]) for item in inputs},
            )[0]
            for start in range(0, total, BATCH_SIZE)
        ]
        return np.concatenate(outputs) if outputs else np.empty((0, len(self.card.class_names)), np.float32)
