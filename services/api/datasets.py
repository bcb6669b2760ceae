"""A job's dataset must lie inside the data root: no `..`, no absolute path elsewhere, no
symlink that leads out, neither at the top nor for any class folder or image below it
(shared/paths.py). Messages name the dataset as the client wrote it, never a server path.

The datasets the API lists (GET /datasets) are the folders directly under the data root that
scan as an ImageFolder under the same rules; an image it serves lies inside one of them."""

import os
from pathlib import Path

from shared.datasets.imagefolder import (
    DATA_ROOT_NAME,
    IMAGE_EXTENSIONS,
    DatasetError,
    ImageFolderIndex,
    class_root,
    resolve_dataset,
    scan_image_folder,
)
from shared.paths import CONTROL_CHARACTERS, PathNotFoundError, PathRefusedError, resolve_inside, shown


class UnknownDatasetError(DatasetError):
    """No folder of that name under the data root (or no image of that name in the dataset)."""


def check_dataset(dataset: str, data_root: Path) -> Path:
    """The dataset's directory, resolved; raises DatasetError saying what is wrong."""
    path = resolve_dataset(dataset, data_root)
    scan_image_folder(path, within=data_root)
    return path


def datasets_under(data_root: Path) -> list[tuple[str, ImageFolderIndex]]:
    """(name, scan) of every folder directly under the data root that is a dataset, by name.

    Folders that are none (fewer than two classes, a link that leads out) are left out. Only
    file names are read: listing decodes no image.
    """
    try:
        entries = sorted(os.scandir(data_root), key=lambda entry: entry.name)
    except OSError:
        return []
    found = []
    for entry in entries:
        if entry.name.startswith(".") or "\\" in entry.name or CONTROL_CHARACTERS.search(entry.name):
            continue  # hidden, or a name GET /datasets/{name} refuses
        try:
            found.append((entry.name, scan_image_folder(data_root / entry.name, within=data_root)))
        except (DatasetError, OSError):
            continue
    return found


def dataset_folder(name: str, data_root: Path) -> Path:
    """The folder `name` names directly under the data root, resolved (not scanned).

    Raises UnknownDatasetError when there is none, DatasetError when the name is not one
    folder's name or the folder leads outside the data root.
    """
    if "/" in name or "\\" in name or name.strip(".") == "":
        raise DatasetError(f"dataset {shown(name)} must name one folder directly under {DATA_ROOT_NAME}")
    folder = _inside(name, data_root, "dataset", DATA_ROOT_NAME)
    if not folder.is_dir():
        raise UnknownDatasetError(f"dataset {shown(name)} is not a folder in {DATA_ROOT_NAME}")
    return folder


def find_dataset(name: str, data_root: Path) -> tuple[Path, ImageFolderIndex]:
    """The dataset `name` names and its scan; DatasetError saying why it is none."""
    folder = dataset_folder(name, data_root)
    return folder, scan_image_folder(folder, within=data_root)


def dataset_image(name: str, path: str, data_root: Path) -> Path:
    """The image file `path` names inside the dataset `name`, links resolved. `path` is relative
    to the folder holding the class folders, as a scan's paths and an audit's files are.

    Raises UnknownDatasetError when there is no such dataset or image, DatasetError when the
    path is malformed or leads outside the dataset.
    """
    folder = dataset_folder(name, data_root)
    try:
        root = class_root(folder, data_root)
    except OSError:
        raise DatasetError(f"dataset {shown(name)} cannot be read") from None
    where = f"dataset {shown(name)}"
    image = _inside(path, root, "image path", where)
    if not image.is_file() or image.suffix.lower() not in IMAGE_EXTENSIONS:
        raise UnknownDatasetError(f"image path {shown(path)} is no image file in {where}")
    return image


def _inside(given: str, root: Path, what: str, root_name: str) -> Path:
    """resolve_inside, its refusals as DatasetError: UnknownDatasetError for a path that names nothing."""
    try:
        return resolve_inside(given, root, what, root_name)
    except PathNotFoundError as error:
        raise UnknownDatasetError(str(error)) from None
    except PathRefusedError as error:
        raise DatasetError(str(error)) from None
