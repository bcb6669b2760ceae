"""A batch prediction's files and progress, shared by the API (which creates a batch and reads it)
and the predictors (which classify it a chunk at a time: services/trainer/batch_job.py).

Under the artifacts root, BATCHES_DIR/<batch_id>/ holds
  batch.json          the manifest (BatchManifest), written once before the first chunk is queued
  images/             a zip's images, as the zip names them (a folder's images stay in the data root)
  parts/NNNNNN.json   each chunk's predictions (BatchPart): a chunk delivered twice replaces its own
                      part, so no image is ever counted twice
  predictions.csv     the parts joined in file order, written by the last chunk

The progress is a Redis hash (names.BATCH_KEY): the API writes it `queued`, the predictors
`running`, `done` or `failed`. It expires names.BATCH_TTL_S seconds after its last change; the files
stay, so a batch whose CSV was written reads as done after that.
"""

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import redis

from shared import names
from shared.datasets.imagefolder import DATA_ROOT_NAME
from shared.paths import resolve_inside
from shared.schemas.batches import FINISHED_BATCH_STATES, BatchManifest, BatchPart, BatchProgress

# The images a batch takes, by name (the API checks that their bytes say the same: JPEG, PNG or
# WebP, as POST /predict takes); other files are left out.
BATCH_IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp"})
NOT_AN_IMAGE = "not a JPEG, PNG or WebP file"
MANIFEST_FILE = "batch.json"
IMAGES_DIR = "images"
PARTS_DIR = "parts"
CSV_FILE = "predictions.csv"
# Fields of the progress hash: the progress itself (JSON), and the last chunk a predictor queued.
PROGRESS_FIELD = "progress"
QUEUED_CHUNK_FIELD = "queued_chunk"


def batch_dir(artifacts_root: Path, batch_id: str) -> Path:
    return Path(artifacts_root) / names.BATCHES_DIR / batch_id


def write_atomically(path: Path, text: str) -> None:
    """Written to a temporary file, then renamed: a reader sees the old file or the new one, never
    half of one, even with two predictors writing (a chunk delivered again)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def read_manifest(folder: Path) -> BatchManifest | None:
    try:
        return BatchManifest.model_validate_json((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def write_manifest(folder: Path, manifest: BatchManifest) -> None:
    write_atomically(folder / MANIFEST_FILE, manifest.model_dump_json())


@dataclass(frozen=True)
class ImageRoot:
    """Where a batch's files are, and what no file may lead out of (links resolved)."""

    path: Path
    within: Path


def image_root(manifest: BatchManifest, folder: Path, data_root: Path) -> ImageRoot:
    """A zip's images/ in the batch's folder; a folder of the data root found again, as a
    dataset is (shared/paths.py: PathRefusedError when it is gone or now leads out)."""
    if manifest.source.kind == "zip":
        return ImageRoot(folder / IMAGES_DIR, folder / IMAGES_DIR)
    return ImageRoot(resolve_inside(manifest.source.name, data_root, "folder", DATA_ROOT_NAME), data_root)


def write_part(folder: Path, part: BatchPart) -> None:
    write_atomically(folder / PARTS_DIR / f"{part.chunk:06d}.json", part.model_dump_json())


def read_parts(folder: Path) -> list[BatchPart]:
    """The parts written so far, in chunk order (so in file order)."""
    paths = sorted((folder / PARTS_DIR).glob("*.json"))
    return [BatchPart.model_validate_json(path.read_text(encoding="utf-8")) for path in paths]


def _key(batch_id: str) -> str:
    return names.BATCH_KEY.format(batch_id=batch_id)


def read_progress(client: redis.Redis, batch_id: str) -> BatchProgress | None:
    raw = client.hget(_key(batch_id), PROGRESS_FIELD)
    return BatchProgress.model_validate_json(raw) if raw else None


def record_progress(client: redis.Redis, batch_id: str, progress: BatchProgress) -> None:
    with client.pipeline() as pipe:
        pipe.hset(_key(batch_id), PROGRESS_FIELD, progress.model_dump_json())
        pipe.expire(_key(batch_id), names.BATCH_TTL_S)
        pipe.execute()


def advance_progress(client: redis.Redis, batch_id: str, done: int, total: int) -> None:
    """`running` with `done` images, unless the batch is further already: a chunk delivered
    again after later ones ran never moves the count back, nor a finished batch to running."""
    known = read_progress(client, batch_id)
    if known is not None and (known.state in FINISHED_BATCH_STATES or known.done >= done):
        return
    record_progress(client, batch_id, BatchProgress(state="running", done=done, total=total))


def chunk_queued(client: redis.Redis, batch_id: str, chunk: int) -> bool:
    """Whether a predictor already queued this chunk (a chunk delivered again must not start a
    second chain of messages through the batch)."""
    queued = client.hget(_key(batch_id), QUEUED_CHUNK_FIELD)
    return queued is not None and int(queued) >= chunk


def mark_chunk_queued(client: redis.Redis, batch_id: str, chunk: int) -> None:
    with client.pipeline() as pipe:
        pipe.hset(_key(batch_id), QUEUED_CHUNK_FIELD, chunk)
        pipe.expire(_key(batch_id), names.BATCH_TTL_S)
        pipe.execute()
