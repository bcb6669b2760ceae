"""A job's dataset must lie inside the data root: no `..`, no absolute path elsewhere, no
symlink that leads out. Messages name the dataset as the client wrote it, never a server path."""

from pathlib import Path

from shared.datasets.imagefolder import DatasetError, scan_image_folder


def check_dataset(dataset: str, data_root: Path) -> Path:
    """The dataset's directory, resolved; raises DatasetError saying what is wrong."""
    root = data_root.resolve()
    given = Path(dataset)
    if not dataset.strip():
        raise DatasetError("dataset is empty; name a folder inside the data root")
    if ".." in given.parts:
        raise DatasetError(f"dataset {dataset!r} must not contain '..'; name a folder inside the data root")
    candidate = given if given.is_absolute() else root / given
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        raise DatasetError(f"dataset {dataset!r} not found in the data root") from None
    if not resolved.is_relative_to(root):
        raise DatasetError(f"dataset {dataset!r} is outside the data root (absolute paths and links must stay inside it)")
    if not resolved.is_dir():
        raise DatasetError(f"dataset {dataset!r} is not a directory")
    try:
        scan_image_folder(resolved)
    except DatasetError as error:
        raise DatasetError(_without_root(str(error), root, data_root, dataset)) from None
    return resolved


def _without_root(message: str, *roots: Path | str) -> str:
    for root in roots[:-1]:
        message = message.replace(f"{root}/", "").replace(str(root), str(roots[-1]))
    return message
