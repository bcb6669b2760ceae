"""One way to turn a photo into pixels, for training, evaluation, predictions and ONNX
predictions alike: a model sees an image decoded exactly as the images it was tested on.

A run's input geometry (Geometry: height, width and how a photo of another shape is fitted) is
part of its job spec (`image_size`, `resize`) and travels with everything made from the run.

numpy and Pillow only: the edge install (`paddy predict --onnx`, no torch) decodes with it too.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, get_args

import numpy as np
from PIL import Image

# Images with more pixels are refused (decompression bombs) where no setting says otherwise
# (the trainers' is PADDY_MAX_IMAGE_PIXELS, services/trainer/settings.py).
MAX_IMAGE_PIXELS = 50_000_000
# What decode_image raises for a file or stream that is not a usable image.
DECODE_ERRORS = (OSError, ValueError, Image.DecompressionBombError)

# squash: the whole photo stretched to height × width (the original study's, aspect not kept);
# letterbox: the whole photo scaled to fit, aspect kept, the rest filled with its border's median colour;
# crop: scaled to cover, aspect kept, the centre cut out (the ends of a long leaf are lost).
ResizeMode = Literal["squash", "letterbox", "crop"]
RESIZE_MODES: tuple[str, ...] = get_args(ResizeMode)


@dataclass(frozen=True, order=True)
class Geometry:
    """What a model takes: photos as height × width RGB pixels, fitted by `resize`."""

    height: int
    width: int
    resize: ResizeMode = "squash"

    @classmethod
    def of(cls, image_size: int | Sequence[int], resize: ResizeMode = "squash") -> "Geometry":
        """From a job spec's image_size (a square's side, or [height, width]) and resize."""
        if isinstance(image_size, int):
            return cls(image_size, image_size, resize)
        height, width = image_size
        return cls(height, width, resize)

    @property
    def image_size(self) -> int | list[int]:
        """As a job spec writes it: the side of a square, else [height, width]."""
        return self.height if self.height == self.width else [self.height, self.width]

    def __str__(self) -> str:
        return f"{self.height}×{self.width} {self.resize}"


def parse_image_size(text: str) -> int | list[int]:
    """A job's image_size as a person writes it: "224" → 224, "96x320" (or 96×320) → [96, 320].
    ValueError when it is neither; JobSpec checks the bounds."""
    parts = text.strip().lower().replace("×", "x").split("x")
    if len(parts) not in (1, 2) or not all(part.strip().isdigit() for part in parts):
        raise ValueError(f"{text!r} is not a number (224) or HEIGHTxWIDTH (96x320)")
    sizes = [int(part) for part in parts]
    return sizes[0] if len(sizes) == 1 else sizes


def format_image_size(image_size: int | Sequence[int]) -> str:
    """parse_image_size's inverse: 224 → "224", [96, 320] → "96x320"."""
    return str(image_size) if isinstance(image_size, int) else "x".join(str(side) for side in image_size)


def _scaled(width: int, height: int, geometry: Geometry) -> tuple[int, int]:
    """The size a width × height photo is resized to before padding (letterbox) or cutting (crop)."""
    if geometry.resize == "squash":
        return geometry.width, geometry.height
    if geometry.resize == "letterbox":
        scale = min(geometry.width / width, geometry.height / height)
        return min(geometry.width, max(1, round(width * scale))), min(geometry.height, max(1, round(height * scale)))
    scale = max(geometry.width / width, geometry.height / height)
    return max(geometry.width, math.ceil(width * scale)), max(geometry.height, math.ceil(height * scale))


def fit_to(rgb: np.ndarray, geometry: Geometry) -> np.ndarray:
    """An h × w × 3 image already resized by _scaled, padded (letterbox) or cut (crop) to the
    geometry, centred."""
    height, width = rgb.shape[:2]
    if (height, width) == (geometry.height, geometry.width):
        return rgb
    if geometry.resize == "crop":
        top, left = (height - geometry.height) // 2, (width - geometry.width) // 2
        return rgb[top : top + geometry.height, left : left + geometry.width]
    # letterbox: the border's median colour continues the photo's background (white for leaves on paper).
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    canvas = np.empty((geometry.height, geometry.width, 3), np.uint8)
    canvas[...] = np.median(border, axis=0).round().astype(np.uint8)
    top, left = (geometry.height - height) // 2, (geometry.width - width) // 2
    canvas[top : top + height, left : left + width] = rgb
    return canvas


def decode_image(source: Path | IO[bytes], geometry: Geometry, max_pixels: int) -> np.ndarray:
    """One image (a file, or its bytes as a stream) as height×width×3 uint8 RGB; raises OSError
    (or ValueError) when unusable."""
    with Image.open(source) as image:
        if image.width * image.height > max_pixels:
            raise ValueError(f"{image.width}×{image.height} px is over the limit of {max_pixels}")
        size = _scaled(image.width, image.height, geometry)
        image.draft("RGB", size)  # JPEG: decode at a reduced scale when that is enough
        rgb = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
        return np.ascontiguousarray(fit_to(np.asarray(rgb, dtype=np.uint8), geometry))
