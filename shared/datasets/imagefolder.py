"""ImageFolder datasets without torch: find the class folders, list the images.

The API uses this to refuse a job whose dataset is missing; the trainer to find the images it
splits (shared/datasets/splits.py).
Every folder and image a scan lists resolves inside the data root (shared/paths.py): a link
that leads out, at any depth, is a DatasetError, never a file read from elsewhere.
"""

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from shared.paths import PathRefusedError, is_inside, resolve_inside, shown

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


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


DATA_ROOT_NAME = "the data root (PADDY_DATA_ROOT)"


def resolve_dataset(dataset: str, data_root: Path) -> Path:
    """The dataset directory, resolved: relative to data_root, or absolute inside it."""
    try:
        path = resolve_inside(dataset, data_root, "dataset", DATA_ROOT_NAME)
    except PathRefusedError as error:
        raise DatasetError(str(error)) from None
    if not path.is_dir():
        raise DatasetError(f"dataset {shown(dataset)} is not a directory")
    return path


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


class _Boundary:
    """Where a scan may read (resolved), and how its messages name paths: relative to it."""

    def __init__(self, root: Path, within: Path | None):
        self.path = (within or root).resolve()
        self.name = DATA_ROOT_NAME if within is not None else "the dataset"
        self._shown_from = (within, self.path) if within is not None else (root.parent, root.resolve().parent)

    def shown(self, path: Path) -> str:
        for base in self._shown_from:
            try:
                return str(path.relative_to(base))
            except ValueError:
                continue
        return path.name

    def check(self, path: Path, what: str) -> None:
        if not is_inside(path, self.path):
            raise DatasetError(f"{what} {self.shown(path)!r} is a link that leads outside {self.name}")


def _class_root(root: Path, boundary: _Boundary) -> Path:
    """Step into a lone wrapper folder, as in the Kaggle download (`rice leaf diseases dataset/`)."""
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    folders = [p for p in entries if p.is_dir()]
    if len(folders) == 1 and not any(_is_image(p) for p in entries):
        inner = folders[0]
        boundary.check(inner, "folder")
        if any(p.is_dir() for p in inner.iterdir()):
            return inner
    return root


def class_root(folder: Path, within: Path) -> Path:
    """The folder that holds the dataset's class folders (folder, or the lone wrapper folder in
    it): what a scan's paths, and so an audit's files, are relative to. DatasetError when the
    wrapper is a link that leads outside `within`."""
    return _class_root(folder, _Boundary(folder, within))


def _images_in(class_dir: Path, boundary: _Boundary) -> list[Path]:
    """The images under class_dir at any depth, sorted. Links to folders below it are not
    followed (as pathlib's rglob does not); a link that leads out of the boundary is refused."""
    images: list[Path] = []
    pending = [class_dir]
    while pending:
        folder = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                path = folder / entry.name
                is_link = entry.is_symlink()
                if entry.is_dir():
                    if is_link:
                        boundary.check(path, "folder")
                    else:
                        pending.append(path)
                elif _is_image(path):
                    if is_link:
                        boundary.check(path, "image")
                    images.append(path)
    return sorted(images)


def scan_image_folder(root: Path, within: Path | None = None) -> ImageFolderIndex:
    """Classes are the sub-folders (sorted); raises DatasetError for fewer than 2, an empty one,
    or a folder or image that leads outside `within` (the data root; default: root itself)."""
    boundary = _Boundary(root, within)
    if not root.is_dir():
        raise DatasetError(f"dataset {boundary.shown(root)!r} is not a directory")
    boundary.check(root, "dataset")
    try:
        return _scan(root, boundary)
    except OSError as error:  # an unreadable folder; strerror names no path
        raise DatasetError(f"dataset {boundary.shown(root)!r} cannot be read: {error.strerror}") from None


def _scan(root: Path, boundary: _Boundary) -> ImageFolderIndex:
    class_root = _class_root(root, boundary)
    class_dirs = sorted(p for p in class_root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise DatasetError(
            f"dataset {boundary.shown(class_root)!r} has {len(class_dirs)} class folder(s); need at least 2"
        )
    paths: list[Path] = []
    labels: list[int] = []
    for label, class_dir in enumerate(class_dirs):
        boundary.check(class_dir, "class folder")
        images = _images_in(class_dir, boundary)
        if not images:
            raise DatasetError(f"class folder {boundary.shown(class_dir)!r} holds no images")
        paths.extend(images)
        labels.extend([label] * len(images))
    return ImageFolderIndex(class_root, [d.name for d in class_dirs], paths, labels)
