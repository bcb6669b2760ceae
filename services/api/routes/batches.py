"""Batch predictions: a zip of images or a folder of the data root, classified by a completed run or
ensemble on the predictors a chunk of images per message (shared/batches.py); its progress, its
CSV and a gallery of its images with their thumbnails."""

import logging
import shutil
import uuid
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Path, Query, Request, Response, UploadFile, status
from fastapi.responses import FileResponse
from kombu.exceptions import OperationalError

from services.api.batches import TooManyImages, batch_gallery, batch_progress, folder_images
from services.api.datasets import UnknownDatasetError
from services.api.deps import QueueDep, RedisDep, SettingsDep, StoreDep
from services.api.errors import field_error, query_error
from services.api.presenting import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, run_or_404
from services.api.settings import ApiSettings
from services.api.thumbnails import DEFAULT_SIZE, MAX_SIZE, MIN_SIZE, thumbnail_response
from services.api.zip_upload import BatchFiles, ZipLimits, unpack_images
from shared.batches import (
    CSV_FILE,
    IMAGES_DIR,
    batch_dir,
    image_root,
    read_manifest,
    read_parts,
    record_progress,
    write_manifest,
)
from shared.datasets.imagefolder import DatasetError
from shared.paths import CONTROL_CHARACTERS, MAX_PATH_LENGTH, PathNotFoundError, PathRefusedError, is_inside, shown
from shared.schemas.batches import (
    BatchCreated,
    BatchManifest,
    BatchPredictionsPublic,
    BatchProgress,
    BatchPublic,
    BatchSource,
)
from shared.schemas.events import utc_now
from shared.schemas.jobs import MAX_LABEL_LENGTH, NO_CONTROL_CHARACTERS, RUN_ID_PATTERN, GallerySort

router = APIRouter(prefix="/batches", tags=["batches"])
log = logging.getLogger(__name__)

BatchIdPath = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="a batch id", examples=["5d1e2f3a4b6c"])]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such batch"}}
# The longest zip file name a batch keeps (it only names the batch's source).
MAX_SOURCE_NAME = 255


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BatchCreated,
    responses={
        404: {"description": "no such run, or no such folder in the data root"},
        409: {"description": "the run has not completed"},
        413: {"description": "too large: the upload, its files, an image, or what it unpacks to (a zip bomb)"},
        415: {"description": "not a zip archive"},
        422: {"description": "neither or both of file and folder; a path that leads out; no image"},
        503: {"description": "the job queue (Redis) is unreachable"},
    },
)
def create_batch(
    run_id: Annotated[
        str, Form(pattern=RUN_ID_PATTERN, description="a completed training or ensemble run", examples=["3f9a1c0b2d4e"])
    ],
    store: StoreDep,
    queue: QueueDep,
    redis_client: RedisDep,
    settings: SettingsDep,
    file: Annotated[
        UploadFile | None, File(description="a zip of JPEG, PNG or WebP images (folders inside it are kept)")
    ] = None,
    folder: Annotated[
        str | None,
        Form(
            min_length=1,
            max_length=MAX_PATH_LENGTH,
            pattern=NO_CONTROL_CHARACTERS,
            description="instead of a zip: a folder inside the data root, its images at any depth",
        ),
    ] = None,
) -> BatchCreated:
    """Classify every image of a zip or a folder with a completed run; 202 at once, then
    GET /batches/{batch_id} for its progress. Other files are left out and listed in `skipped`."""
    if (file is None) == (folder is None):
        raise field_error("file", "send a zip as `file` or name a folder of the data root as `folder`, one of them")
    run = run_or_404(store, run_id)
    if run["status"] != "completed":
        raise HTTPException(status.HTTP_409_CONFLICT, f"run {run_id} is {run['status']}; only completed runs predict")
    batch_id = uuid.uuid4().hex[:12]
    where = batch_dir(settings.artifacts_root, batch_id)
    try:
        source, found = _unpack_zip(file, where, settings) if file is not None else _list_folder(folder or "", settings)
        manifest = BatchManifest(
            batch_id=batch_id,
            run_id=run_id,
            source=source,
            files=found.files,
            chunk_images=settings.batch_chunk_images,
            skipped=found.skipped,
            skipped_count=found.skipped_count,
            created_at=utc_now(),
        )
        write_manifest(where, manifest)
        record_progress(redis_client, batch_id, BatchProgress(state="queued", done=0, total=len(found.files)))
        queue.send_batch(batch_id)
    except OperationalError as error:
        shutil.rmtree(where, ignore_errors=True)
        log.error("could not queue batch %s: %s", batch_id, error)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the job queue (Redis) is unreachable") from None
    except BaseException:
        shutil.rmtree(where, ignore_errors=True)  # a refused zip leaves nothing behind
        raise
    return BatchCreated(
        batch_id=batch_id,
        run_id=run_id,
        images=len(found.files),
        skipped=found.skipped,
        skipped_count=found.skipped_count,
    )


def _unpack_zip(upload: UploadFile, where: FilePath, settings: ApiSettings) -> tuple[BatchSource, BatchFiles]:
    upload.file.seek(0, 2)
    if upload.file.tell() > settings.max_batch_upload_bytes:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"the upload is larger than {settings.max_batch_upload_bytes} bytes (PADDY_MAX_BATCH_UPLOAD_BYTES)",
        )
    limits = ZipLimits(
        max_images=settings.max_batch_files,
        max_unpacked_bytes=settings.max_batch_unpacked_bytes,
        max_image_bytes=settings.max_upload_bytes,
        max_compression_ratio=settings.max_compression_ratio,
        max_image_pixels=settings.max_image_pixels,
    )
    unpacked = unpack_images(upload.file, where / IMAGES_DIR, limits)
    name = CONTROL_CHARACTERS.sub("", FilePath(upload.filename or "").name)[:MAX_SOURCE_NAME] or "upload.zip"
    return BatchSource(kind="zip", name=name), unpacked


def _list_folder(folder: str, settings: ApiSettings) -> tuple[BatchSource, BatchFiles]:
    try:
        relative, found = folder_images(folder, settings.data_root, settings.max_batch_files)
    except UnknownDatasetError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None
    except DatasetError as error:
        raise field_error("folder", str(error)) from None
    except TooManyImages as error:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(error)) from None
    return BatchSource(kind="folder", name=relative), found


def _batch_or_404(batch_id: str, settings: ApiSettings) -> tuple[FilePath, BatchManifest]:
    where = batch_dir(settings.artifacts_root, batch_id)
    manifest = read_manifest(where)
    if manifest is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"batch {batch_id} not found")
    return where, manifest


@router.get("/{batch_id}", response_model=BatchPublic, responses=NOT_FOUND)
def get_batch(batch_id: BatchIdPath, redis_client: RedisDep, settings: SettingsDep) -> BatchPublic:
    """The batch and how far it got: `done` of `total` images; `failed_images` (unreadable ones,
    rows with an `error` in the CSV) once it is done; `error` if it failed as a whole."""
    where, manifest = _batch_or_404(batch_id, settings)
    progress = batch_progress(redis_client, manifest, where)
    return BatchPublic(**progress.model_dump(), **manifest.model_dump(exclude={"files", "chunk_images"}))


@router.get(
    "/{batch_id}/predictions.csv",
    response_class=FileResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "file, class, one probability column per class, error"},
        404: {"description": "no such batch, or its CSV is gone"},
        409: {"description": "the batch has not finished, or failed"},
    },
)
def get_batch_csv(batch_id: BatchIdPath, redis_client: RedisDep, settings: SettingsDep) -> FileResponse:
    """Every image's row in file order: `file`, `class`, the probability of each class of the run,
    and `error` for an image that could not be read (its class and probabilities empty)."""
    where, manifest = _batch_or_404(batch_id, settings)
    progress = batch_progress(redis_client, manifest, where)
    if progress.state != "done":
        why = f": {progress.error}" if progress.error else f" ({progress.done} of {progress.total} images done)"
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"batch {batch_id} is {progress.state}{why}; its CSV is written once it is done"
        )
    if not (where / CSV_FILE).is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"the CSV of batch {batch_id} is gone from the artifacts root")
    return FileResponse(where / CSV_FILE, media_type="text/csv", filename=f"batch-{batch_id}.csv")


@router.get(
    "/{batch_id}/predictions",
    response_model=BatchPredictionsPublic,
    responses={**NOT_FOUND, 422: {"description": "a class the run does not have"}},
)
def get_batch_predictions(
    batch_id: BatchIdPath,
    redis_client: RedisDep,
    settings: SettingsDep,
    predicted_class: Annotated[
        str | None,
        Query(
            max_length=MAX_LABEL_LENGTH,
            pattern=NO_CONTROL_CHARACTERS,
            description="only images predicted as this class",
        ),
    ] = None,
    sort: Annotated[
        GallerySort, Query(description="-confidence: most confident first (default); confidence; file")
    ] = "-confidence",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> BatchPredictionsPublic:
    """The images classified so far, a gallery: file (its thumbnail at
    GET /batches/{batch_id}/images/{file}), predicted class, confidence, probabilities in
    `class_names` order; images that could not be read come last, with their `error`."""
    where, manifest = _batch_or_404(batch_id, settings)
    progress = batch_progress(redis_client, manifest, where)
    parts = read_parts(where)
    class_names = parts[0].class_names if parts else []
    if predicted_class is not None and parts and predicted_class not in class_names:
        raise query_error(
            "predicted_class", f"run {manifest.run_id} has no class {predicted_class!r}; its classes: {class_names}"
        )
    images = batch_gallery(parts, predicted_class, sort)
    return BatchPredictionsPublic(
        batch_id=batch_id,
        run_id=manifest.run_id,
        state=progress.state,
        class_names=class_names,
        total=sum(len(part.rows) for part in parts),
        count=len(images),
        data=images[offset : offset + limit],
    )


@router.get(
    "/{batch_id}/images/{file:path}",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "a JPEG thumbnail"},
        304: {"description": "unchanged since the ETag sent in If-None-Match"},
        404: {"description": "no such batch, or no such image in it"},
        422: {"description": "a file that leads outside the batch's folder, or that is no readable image"},
    },
)
def get_batch_thumbnail(
    batch_id: BatchIdPath,
    file: str,
    request: Request,
    settings: SettingsDep,
    size: Annotated[int, Query(ge=MIN_SIZE, le=MAX_SIZE, description="longest side, pixels")] = DEFAULT_SIZE,
) -> Response:
    """A thumbnail of one image of the batch, `file` as the gallery names it: only the batch's own
    files are served, and only while they lie inside its zip's folder or the data root."""
    where, manifest = _batch_or_404(batch_id, settings)
    if file not in manifest.files:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"batch {batch_id} has no image {shown(file)}")
    try:
        root = image_root(manifest, where, settings.data_root)
    except PathNotFoundError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None
    except PathRefusedError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None
    image = root.path / file
    if not is_inside(image, root.within):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"image {shown(file)} leads outside the batch's folder"
        )
    if not image.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"image {shown(file)} of batch {batch_id} is gone")
    return thumbnail_response(
        image, size, request.headers.get("if-none-match"), settings.max_image_pixels, f"image {shown(file)}"
    )
