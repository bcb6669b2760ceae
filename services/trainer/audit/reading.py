"""Every image file read once: its bytes hashed, its header's facts, its border colour, and the
features the near-copy search needs (features.py)."""

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from services.trainer.audit.features import ImageFeatures, describe, work_size
from services.trainer.audit.work import Progress, Workers
from shared.datasets.imagefolder import ImageFolderIndex

EXIF_ORIENTATION = 0x0112
BORDER_FRACTION = 0.03  # of the shorter side: the frame whose mean colour is the border colour


@dataclass(frozen=True)
class ImageRecord:
    file: str  # relative to the dataset's class root, with forward slashes
    label: int
    file_bytes: int
    sha256: str
    readable: bool
    width: int = 0
    height: int = 0
    format: str = ""
    exif_orientation: int = 1
    border_colour: tuple[float, float, float] = (0.0, 0.0, 0.0)
    features: ImageFeatures | None = None

    @property
    def aspect_ratio(self) -> float:
        return self.width / self.height if self.height else 0.0


def read_image(path: Path, file: str, label: int) -> ImageRecord:
    """One file: never raises for a broken image (it comes back with readable=False)."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height, image_format = image.width, image.height, image.format or "unknown"
            orientation = image.getexif().get(EXIF_ORIENTATION, 1)
            size = work_size(width, height)
            image.draft("RGB", size)  # JPEG: decode at a reduced scale, still at least `size`
            rgb = np.asarray(image.convert("RGB"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return ImageRecord(file, label, len(data), digest, readable=False)
    shrinking = rgb.shape[1] * rgb.shape[0] > size[0] * size[1]
    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return ImageRecord(
        file,
        label,
        len(data),
        digest,
        readable=True,
        width=width,
        height=height,
        format=image_format,
        exif_orientation=int(orientation) if isinstance(orientation, int) else 1,
        border_colour=_border_colour(rgb),
        features=describe(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)),
    )


def _border_colour(rgb: np.ndarray) -> tuple[float, float, float]:
    """Mean RGB of the image's outer frame: a white table, a black scanner lid, a studio sheet."""
    height, width = rgb.shape[:2]
    band = max(1, round(min(height, width) * BORDER_FRACTION))
    frame = np.ones((height, width), bool)
    frame[band : height - band, band : width - band] = False
    red, green, blue = rgb[frame].mean(axis=0)
    return float(red), float(green), float(blue)


def read_dataset(index: ImageFolderIndex, workers: Workers, progress: Progress) -> list[ImageRecord]:
    """Every image of the index, in its order (phase "reading")."""
    jobs = [
        (path, path.relative_to(index.root).as_posix(), label)
        for path, label in zip(index.paths, index.labels, strict=True)
    ]
    records = []
    progress("reading", 0, len(jobs))
    for record in workers.map(lambda job: read_image(*job), jobs):
        records.append(record)
        if len(records) % 50 == 0 or len(records) == len(jobs):
            progress("reading", len(records), len(jobs))
    return records
