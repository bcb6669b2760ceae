"""Images decoded once per job and kept as uint8 tensors; batches are cut from those tensors.

Decoding and resizing every image once (instead of every epoch, as a PIL DataLoader does)
keeps the loop from waiting on JPEG decoding.
"""

import hashlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from shared.datasets.imagefolder import DatasetError, ImageFolderIndex
from shared.images import Geometry, decode_image

log = logging.getLogger(__name__)

# The most bytes of decoded images (uint8) kept for the next job after one ends (load_split_data).
KEPT_DECODED_BYTES = 512 * 2**20


@dataclass
class ImageTensors:
    images: torch.Tensor  # N×3×H×W uint8
    labels: torch.Tensor  # N int64
    # Each image's position in its ImageFolderIndex: unreadable files are skipped, so the n-th
    # image is not always the split's n-th file (per-image test predictions name the file).
    positions: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class SplitData:
    class_names: list[str]
    train: ImageTensors
    val: ImageTensors
    test: ImageTensors
    fingerprint: str
    skipped_files: int

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


_kept_decoded: dict[str, SplitData] = {}


def decode_positions(
    index: ImageFolderIndex, positions: list[int], geometry: Geometry, max_pixels: int
) -> tuple[ImageTensors, int]:
    """The images at positions of index, decoded; unreadable ones skipped (logged) and counted."""
    arrays, labels, kept, skipped = [], [], [], 0
    for position in positions:
        path = index.paths[position]
        try:
            arrays.append(decode_image(path, geometry, max_pixels))
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            log.warning("skipping %s: %s", path, error)
            skipped += 1
            continue
        labels.append(index.labels[position])
        kept.append(position)
    if not arrays:
        return ImageTensors(
            torch.empty(0, 3, geometry.height, geometry.width, dtype=torch.uint8), torch.empty(0, dtype=torch.int64)
        ), skipped
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return ImageTensors(images, torch.tensor(labels, dtype=torch.int64), kept), skipped


def load_split_data(
    index: ImageFolderIndex, split: dict[str, list[int]], geometry: Geometry, max_pixels: int
) -> SplitData:
    """Every image decoded once into train / val / test tensors (split: from stratified_split).

    The last split decoded in this process is kept (when under KEPT_DECODED_BYTES) and handed to
    the next job that asks for the very same files, split and geometry — a sweep's or a study's
    runs on one worker decode their dataset once. Its tensors are shared: never change them.
    """
    key = decoded_key(index, split, geometry, max_pixels)
    if (kept := _kept_decoded.get(key)) is not None:
        return kept
    data = _decode_split(index, split, geometry, max_pixels)
    _kept_decoded.clear()
    if sum(part.images.numel() for part in (data.train, data.val, data.test)) <= KEPT_DECODED_BYTES:
        _kept_decoded[key] = data
    return data


def decoded_key(index: ImageFolderIndex, split: dict[str, list[int]], geometry: Geometry, max_pixels: int) -> str:
    """A hash of the split's files as they are now (path, size, modification time), the
    split's positions, the geometry and the pixel limit."""
    digest = hashlib.sha256(repr((sorted(split.items()), geometry, max_pixels)).encode())
    for path in index.paths:
        try:
            stat = path.stat()
        except OSError:  # gone or unreadable: decoding will say so; never reuse around it
            return uuid.uuid4().hex
        digest.update(f"{path}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def forget_decoded() -> None:
    _kept_decoded.clear()


def _decode_split(
    index: ImageFolderIndex, split: dict[str, list[int]], geometry: Geometry, max_pixels: int
) -> SplitData:
    decoded, skipped = {}, 0
    for name, positions in split.items():
        decoded[name], skipped_here = decode_positions(index, positions, geometry, max_pixels)
        skipped += skipped_here
    for name, tensors in decoded.items():
        if len(tensors) == 0:
            raise DatasetError(f"dataset {index.root}: no readable images in the {name} split")
    return SplitData(index.class_names, decoded["train"], decoded["val"], decoded["test"], index.fingerprint(), skipped)


def iterate_batches(
    data: ImageTensors, batch_size: int, generator: torch.Generator | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """uint8 image batches and labels; shuffled when a (CPU) generator is given."""
    n = len(data)
    if generator is None:
        for start in range(0, n, batch_size):
            yield data.images[start : start + batch_size], data.labels[start : start + batch_size]
        return
    order = torch.randperm(n, generator=generator).to(data.images.device)
    for start in range(0, n, batch_size):
        chosen = order[start : start + batch_size]
        yield data.images[chosen], data.labels[chosen]


def place(data: ImageTensors, device: torch.device, free_fraction: float = 0.5, pin: bool = True) -> ImageTensors:
    """Where the decoded images live during training.

    On CUDA: on the GPU when they take less than free_fraction of its free memory (no copies
    per batch at all), else in pinned host memory (when pin) so batch copies are asynchronous.
    On the CPU they stay where they are.
    """
    if device.type != "cuda":
        return data
    free_bytes, _total = torch.cuda.mem_get_info(device)
    if data.images.numel() < free_fraction * free_bytes:
        return ImageTensors(data.images.to(device), data.labels.to(device), data.positions)
    if not pin:
        return data
    return ImageTensors(data.images.pin_memory(), data.labels.pin_memory(), data.positions)
