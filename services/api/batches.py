"""Batches as the API makes and shows them: a folder of the data root listed under the rules
datasets follow (services/api/datasets.py), a batch's progress however old it is, its gallery."""

import os
from dataclasses import dataclass, field
from pathlib import Path

import redis

from services.api.datasets import UnknownDatasetError
from shared.batches import BATCH_IMAGE_EXTENSIONS, CSV_FILE, NOT_AN_IMAGE, read_parts, read_progress
from shared.datasets.imagefolder import DATA_ROOT_NAME, DatasetError
from shared.paths import PathNotFoundError, PathRefusedError, is_inside, resolve_inside, shown
from shared.schemas.batches import MAX_SKIPPED_LISTED, BatchImage, BatchManifest, BatchPart, BatchProgress
from shared.schemas.jobs import GallerySort


@dataclass
class BatchFiles:
    """The images a batch classifies (relative posix paths, sorted) and the files it leaves out → why."""

    files: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    skipped_count: int = 0

    def skip(self, name: str, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_SKIPPED_LISTED:
            self.skipped[name] = reason


class TooManyImages(ValueError):
    """A folder with more images than one batch may hold."""


def folder_images(folder: str, data_root: Path, max_files: int) -> tuple[str, BatchFiles]:
    """The folder (relative to the data root, as the predictors find it again) and its JPEG, PNG
    and WebP images at any depth, relative to it and sorted; other files are left out, hidden
    ones silently. Links to folders are not followed; a link to a file that leads outside the data
    root is refused, as in a dataset.

    Raises UnknownDatasetError (no such folder), DatasetError (a path that leads out),
    TooManyImages (more than max_files).
    """
    try:
        root = resolve_inside(folder, data_root, "folder", DATA_ROOT_NAME)
    except PathNotFoundError as error:
        raise UnknownDatasetError(str(error)) from None
    except PathRefusedError as error:
        raise DatasetError(str(error)) from None
    if not root.is_dir():
        raise UnknownDatasetError(f"folder {shown(folder)} is not a folder in {DATA_ROOT_NAME}")
    found = BatchFiles()
    pending = [root]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                path = Path(entry.path)
                relative = path.relative_to(root).as_posix()
                if entry.is_dir(follow_symlinks=False):
                    pending.append(path)
                elif entry.is_symlink() and not is_inside(path, data_root):
                    raise DatasetError(
                        f"{shown(relative)} in folder {shown(folder)} is a link that leads outside {DATA_ROOT_NAME}"
                    )
                elif path.suffix.lower() not in BATCH_IMAGE_EXTENSIONS:
                    found.skip(relative, NOT_AN_IMAGE)
                else:
                    found.files.append(relative)
                    if len(found.files) > max_files:
                        raise TooManyImages(
                            f"too many files: folder {shown(folder)} holds more than {max_files} images "
                            "(PADDY_MAX_BATCH_FILES)"
                        )
    if not found.files:
        raise DatasetError(f"folder {shown(folder)} holds no JPEG, PNG or WebP image")
    found.files.sort()
    return root.relative_to(data_root.resolve()).as_posix(), found


def batch_progress(client: redis.Redis, manifest: BatchManifest, folder: Path) -> BatchProgress:
    """The progress Redis keeps; once it has expired, what the files say."""
    progress = read_progress(client, manifest.batch_id)
    if progress is not None:
        return progress
    total = len(manifest.files)
    if (folder / CSV_FILE).is_file():
        failed = sum(row.error is not None for part in read_parts(folder) for row in part.rows)
        return BatchProgress(state="done", done=total, total=total, failed_images=failed)
    return BatchProgress(state="expired", done=0, total=total, error="its progress expired before it finished")


def batch_gallery(parts: list[BatchPart], predicted_class: str | None, sort: GallerySort) -> list[BatchImage]:
    """The rows classified so far that match, in the order asked (ties by file); images that
    could not be read (no class, no confidence) last whatever the order."""
    rows = sorted(
        (
            row
            for part in parts
            for row in part.rows
            if predicted_class is None or row.predicted_class == predicted_class
        ),
        key=lambda row: row.file,
    )
    readable = [row for row in rows if row.confidence is not None]
    if sort != "file":
        readable.sort(key=lambda row: row.confidence or 0.0, reverse=sort == "-confidence")
    return readable + [row for row in rows if row.confidence is None]
