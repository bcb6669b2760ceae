"""ImageFolder datasets without torch: find the class folders, list the images, split them.

The API uses this to refuse a job whose dataset is missing; the trainer to build its split.
"""

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
SPLIT_NAMES = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.6, 0.2, 0.2)


class DatasetError(ValueError):
    """A dataset that cannot be trained on; the message says which path and why."""


@dataclass(frozen=True)
class ImageFolderIndex:
    root: Path
    class_names: list[str]
    paths: list[Path]
    labels: list[int]

    def fingerprint(self) -> str:
        """A hash of the file list (relative paths and labels): equal lists, equal data."""
        digest = hashlib.sha256()
        for path, label in zip(self.paths, self.labels, strict=True):
            digest.update(f"{path.relative_to(self.root)}\t{label}\n".encode())
        return digest.hexdigest()[:16]


def resolve_dataset(dataset: str, data_root: Path) -> Path:
    """The dataset directory: absolute as given, relative inside data_root."""
    path = Path(dataset).expanduser()
    if not path.is_absolute():
        path = data_root / path
    if not path.is_dir():
        raise DatasetError(f"dataset {dataset!r} not found: {path} is not a directory")
    return path


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _class_root(root: Path) -> Path:
    """Step into a lone wrapper folder, as in the Kaggle download (`rice leaf diseases dataset/`)."""
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    folders = [p for p in entries if p.is_dir()]
    if len(folders) == 1 and not any(_is_image(p) for p in entries):
        inner = folders[0]
        if any(p.is_dir() for p in inner.iterdir()):
            return inner
    return root


def scan_image_folder(root: Path) -> ImageFolderIndex:
    """Classes are the sub-folders (sorted); raises DatasetError for fewer than 2 or an empty one."""
    if not root.is_dir():
        raise DatasetError(f"dataset {root} is not a directory")
    class_root = _class_root(root)
    class_dirs = sorted(p for p in class_root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise DatasetError(
            f"dataset {class_root} has {len(class_dirs)} class folder(s); need at least 2"
        )
    paths: list[Path] = []
    labels: list[int] = []
    for label, class_dir in enumerate(class_dirs):
        images = sorted(p for p in class_dir.rglob("*") if _is_image(p))
        if not images:
            raise DatasetError(f"class folder {class_dir} holds no images")
        paths.extend(images)
        labels.extend([label] * len(images))
    return ImageFolderIndex(class_root, [d.name for d in class_dirs], paths, labels)


def stratified_split(
    labels: list[int], seed: int, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
) -> dict[str, list[int]]:
    """Indices per split, each class divided in the same proportions, reproducible for a seed.

    Every class puts at least one image in each split when it has three or more.
    """
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    split: dict[str, list[int]] = {name: [] for name in SPLIT_NAMES}
    for label in sorted(by_class):
        members = by_class[label]
        rng.shuffle(members)
        n = len(members)
        n_val = max(1, round(n * fractions[1])) if n >= 3 else 0
        n_test = max(1, round(n * fractions[2])) if n >= 3 else 0
        n_train = n - n_val - n_test
        split["train"] += members[:n_train]
        split["val"] += members[n_train : n_train + n_val]
        split["test"] += members[n_train + n_val :]
    for name in SPLIT_NAMES:
        split[name].sort()
    return split


def split_fingerprint(index: ImageFolderIndex, split: dict[str, list[int]]) -> str:
    """A hash of which file went to which split: runs with equal hashes share their test set."""
    digest = hashlib.sha256()
    for name in SPLIT_NAMES:
        for position in split[name]:
            path = index.paths[position].relative_to(index.root)
            digest.update(f"{name}\t{path}\t{index.labels[position]}\n".encode())
    return digest.hexdigest()[:16]
