"""A job's dataset must lie inside the data root: no `..`, no absolute path elsewhere, no
symlink that leads out, neither at the top nor for any class folder or image below it
(shared/paths.py). Messages name the dataset as the client wrote it, never a server path."""

from pathlib import Path

from shared.datasets.imagefolder import resolve_dataset, scan_image_folder


def check_dataset(dataset: str, data_root: Path) -> Path:
    """The dataset's directory, resolved; raises DatasetError saying what is wrong."""
    path = resolve_dataset(dataset, data_root)
    scan_image_folder(path, within=data_root)
    return path
