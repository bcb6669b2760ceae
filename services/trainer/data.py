"""Images decoded once per job and kept as uint8 tensors; batches are cut from those tensors.

Decoding and resizing every image once (instead of every epoch, as a PIL DataLoader does)
keeps the loop from waiting on JPEG decoding.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from shared.datasets.imagefolder import DatasetError, ImageFolderIndex
from shared.images import Geometry, decode_image

log = logging.getLogger(__name__)


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
    """Decode every image once into train / val / test tensors (split: from stratified_split)."""
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
