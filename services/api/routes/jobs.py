"""Queue training jobs; read, cancel, retry and archive runs; download a run's best checkpoint."""

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Query, Response, status
from fastapi.responses import FileResponse
from pydantic import ValidationError

from services.api.deps import QueueDep, RedisDep, SettingsDep, StoreDep
from services.api.errors import field_error, query_error
from services.api.gallery import gallery
from services.api.heatmaps import heatmap_file, kept_heatmaps
from services.api.presenting import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, RunIdPath, job_public, run_or_404
from services.api.queueing import cancel_run, queue_run, queue_study, spec_to_queue
from shared.models import ENSEMBLE
from shared.run_queries import RunListing
from shared.schemas.events import utc_now
from shared.schemas.jobs import (
    FINISHED_STATES,
    MAX_LABEL_LENGTH,
    NO_CONTROL_CHARACTERS,
    RETRYABLE_STATES,
    RUN_ID_PATTERN,
    RUN_SORT_FIELDS,
    EpochPublic,
    EpochsPublic,
    GallerySort,
    JobCreated,
    JobPublic,
    JobSpec,
    JobsPublic,
    RunState,
    StudyCreated,
    TestPredictionsPublic,
)

router = APIRouter(prefix="/jobs", tags=["jobs"])
log = logging.getLogger(__name__)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {
        "description": "no such run",
        "content": {"application/json": {"example": {"detail": "run 3f9a1c0b2d4e not found"}}},
    }
}
if TYPE_CHECKING:
    SortParam = str
else:  # every sort field, ascending or descending (`-`): FastAPI checks it and lists it in the schema
    SortParam = Literal[tuple(f"{sign}{field}" for field in RUN_SORT_FIELDS for sign in ("", "-"))]

JOB_EXAMPLES = {
    "small": {
        "summary": "a small custom CNN",
        "value": {"model_name": "custom_cnn", "dataset": "rice-leaf-real", "epochs": 20, "image_size": 96},
    },
    "folds": {
        "summary": "5-fold cross-validation over groups: one run per fold",
        "value": {"model_name": "custom_cnn", "dataset": "rice-leaf-real", "epochs": 20, "image_size": 96, "folds": 5},
    },
    "transfer": {
        "summary": "ResNet50, frozen backbone",
        "value": {
            "model_name": "resnet50",
            "dataset": "rice-leaf-real",
            "epochs": 30,
            "learning_rate": 0.0003,
            "batch_size": 64,
            "feature_extraction": True,
        },
    },
}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobCreated | StudyCreated,
    responses={
        202: {
            "description": "JobCreated for one job; StudyCreated (sweep_id, kind, run_ids, count) for a job "
            "with folds or repeats: one run per fold or seed"
        },
        401: {"description": "missing or wrong X-API-Key"},
        503: {"description": "the job queue (Redis) is unreachable"},
    },
)
def create_job(
    spec: Annotated[JobSpec, Body(openapi_examples=JOB_EXAMPLES)],
    store: StoreDep,
    queue: QueueDep,
    events: RedisDep,
    settings: SettingsDep,
) -> JobCreated | StudyCreated:
    """Queue one training job. The run is visible (status `queued`) as soon as this returns.

    With `folds` (k-fold cross-validation over groups) or `repeats` (several training seeds) it
    queues a study instead: one run per fold or seed under one parent (GET /sweeps/{sweep_id}).
    """
    checked = spec_to_queue(spec, settings)
    if spec.is_study:
        return queue_study(store, queue, events, checked)
    return queue_run(store, queue, events, checked)


@router.get("", response_model=JobsPublic)
def list_jobs(
    store: StoreDep,
    statuses: Annotated[
        list[RunState] | None, Query(alias="status", description="repeatable: runs in any of these states")
    ] = None,
    model_name: Annotated[
        str | None, Query(max_length=MAX_LABEL_LENGTH, pattern=NO_CONTROL_CHARACTERS, examples=["custom_cnn"])
    ] = None,
    version: Annotated[
        str | None, Query(max_length=MAX_LABEL_LENGTH, pattern=NO_CONTROL_CHARACTERS, examples=["v3"])
    ] = None,
    sweep_id: Annotated[str | None, Query(pattern=RUN_ID_PATTERN)] = None,
    started_after: Annotated[datetime | None, Query(description="ISO 8601; start_time at or after")] = None,
    started_before: Annotated[datetime | None, Query(description="ISO 8601; start_time before")] = None,
    min_val_accuracy: Annotated[
        float | None, Query(ge=0, le=1, allow_inf_nan=False, description="completed runs' val_accuracy at least")
    ] = None,
    min_test_accuracy: Annotated[
        float | None, Query(ge=0, le=1, allow_inf_nan=False, description="completed runs' test_accuracy at least")
    ] = None,
    archived: Annotated[bool, Query(description="false: hide archived runs; true: show only them")] = False,
    sort: Annotated[
        SortParam, Query(description="field to sort on, `-` in front for descending; runs without it come last")
    ] = "-created_at",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> JobsPublic:
    """Runs matching every filter given, one page at a time; `count` is every matching run."""
    listing = RunListing(
        archived=archived,
        statuses=statuses or (),
        model_name=model_name,
        version=version,
        sweep_id=sweep_id,
        started_after=_in_utc("started_after", started_after),
        started_before=_in_utc("started_before", started_before),
        min_metrics={
            metric: minimum
            for metric, minimum in (("val_accuracy", min_val_accuracy), ("test_accuracy", min_test_accuracy))
            if minimum is not None
        },
        sort=sort.removeprefix("-"),
        descending=sort.startswith("-"),
        limit=limit,
        skip=offset,
    )
    runs, count = store.list_runs(listing)
    now = utc_now()
    return JobsPublic(data=[job_public(run, now=now) for run in runs], count=count)


def _in_utc(name: str, moment: datetime | None) -> datetime | None:
    """The moment in UTC (taken as UTC when it has no offset); 422 past year 1 or 9999."""
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [
                {
                    "loc": ["query", name],
                    "type": "value_error",
                    "msg": "the moment is out of range (allowed: ISO 8601 datetimes from year 1 to 9999 in UTC)",
                }
            ],
        ) from None


@router.get("/{run_id}", response_model=JobPublic, responses=NOT_FOUND)
def get_job(run_id: RunIdPath, store: StoreDep) -> JobPublic:
    """A run's status, progress, heartbeat age and, once completed, its training summary and the
    registry aliases it holds."""
    run = run_or_404(store, run_id)
    summary = store.get_training(run_id) if run["status"] == "completed" else None
    aliases = store.aliases_of(run_id) if run["status"] == "completed" else []
    return job_public(run, summary).model_copy(update={"aliases": aliases})


@router.get("/{run_id}/epochs", response_model=EpochsPublic, responses=NOT_FOUND)
def get_job_epochs(run_id: RunIdPath, store: StoreDep) -> EpochsPublic:
    """The run's epochs in order; an epoch that has started but not finished has null metrics."""
    epochs = store.get_epochs(run_id)
    if not epochs:
        run_or_404(store, run_id)
    return EpochsPublic(data=[EpochPublic.model_validate(e) for e in epochs], count=len(epochs))


@router.get(
    "/{run_id}/predictions",
    response_model=TestPredictionsPublic,
    responses={
        404: {"description": "no such run, or it kept no per-image test predictions"},
        422: {"description": "a class the run does not have"},
    },
)
def get_job_predictions(
    run_id: RunIdPath,
    store: StoreDep,
    settings: SettingsDep,
    true_class: Annotated[
        str | None,
        Query(max_length=MAX_LABEL_LENGTH, pattern=NO_CONTROL_CHARACTERS, description="only images of this class"),
    ] = None,
    predicted_class: Annotated[
        str | None,
        Query(
            max_length=MAX_LABEL_LENGTH,
            pattern=NO_CONTROL_CHARACTERS,
            description="only images predicted as this class",
        ),
    ] = None,
    correct: Annotated[bool | None, Query(description="only right (true) or wrong (false) predictions")] = None,
    sort: Annotated[
        GallerySort, Query(description="-confidence: most confident first (default); confidence; file")
    ] = "-confidence",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> TestPredictionsPublic:
    """The run's predictions for its test images, a gallery: file (relative to the dataset
    folder, its thumbnail at GET /datasets/{dataset}/images/{file}), group, true and predicted
    class, confidence, probabilities in `class_names` order. Filter by true and predicted class
    (a cell of the confusion matrix) or by right and wrong; kept once the run has been evaluated
    on its test split, and a 404 says when the run exists but has none (yet)."""
    run = run_or_404(store, run_id)
    kept = store.get_test_predictions(run_id)
    if kept is None:
        why = (
            "it ran before Paddy kept them"
            if run["status"] == "completed"
            else f"it is {run['status']}; they are kept once it has been evaluated on its test split"
        )
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} has no per-image test predictions: {why}")
    for name, value in (("true_class", true_class), ("predicted_class", predicted_class)):
        if value is not None and value not in kept["class_names"]:
            raise query_error(name, f"run {run_id} has no class {value!r}; its classes: {kept['class_names']}")
    images = gallery(kept, true_class=true_class, predicted_class=predicted_class, correct=correct, sort=sort)
    page = images[offset : offset + limit]
    overlays = kept_heatmaps(settings.artifacts_root, run_id)
    return TestPredictionsPublic(
        run_id=run_id,
        dataset=(run.get("spec") or {}).get("dataset"),
        split_hash=kept["split_hash"],
        class_names=kept["class_names"],
        total=len(kept["predictions"]),
        count=len(images),
        data=[image.model_copy(update={"heatmap": image.file in overlays}) for image in page],
    )


@router.get(
    "/{run_id}/heatmaps/{file:path}",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "the test image with the run's Grad-CAM map over it"},
        404: {"description": "no such run, or no overlay kept for this image"},
    },
)
def get_job_heatmap(
    run_id: RunIdPath,
    file: str,
    store: StoreDep,
    settings: SettingsDep,
) -> Response:
    """Where the run looked in one of its test images (`file`: relative to the dataset folder) (Grad-CAM, for the class it predicted), as
    a JPEG: kept for its misclassified test images and a sample of the correct ones when it
    completed; the gallery marks them (`heatmap`). For any other photo: POST /predict with heatmap."""
    run_or_404(store, run_id)
    path = heatmap_file(settings.artifacts_root, run_id, file)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} kept no Grad-CAM overlay of {file!r}")
    return Response(path.read_bytes(), media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@router.post(
    "/{run_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobPublic,
    responses={**NOT_FOUND, 409: {"description": "the run has already finished"}},
)
def cancel_job(run_id: RunIdPath, store: StoreDep, queue: QueueDep, flags: RedisDep) -> JobPublic:
    """Cancel a queued or running run; returns the run as stored now.

    A queued run is `cancelled` at once and its task revoked. A running (or lost) run stops
    within one batch once its trainer sees the cancel flag, keeping its best checkpoint; its
    status becomes `cancelled` when the trainer's run_cancelled event is stored.
    """
    run = run_or_404(store, run_id)
    if run["status"] in FINISHED_STATES:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"run {run_id} is already {run['status']}; only queued or running runs can be cancelled",
        )
    cancel_run(run_id, run["status"], store, queue, flags)
    return job_public(run_or_404(store, run_id))


@router.post(
    "/{run_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobCreated,
    responses={**NOT_FOUND, 409: {"description": "the run is still queued or running"}},
)
def retry_job(
    run_id: RunIdPath, store: StoreDep, queue: QueueDep, events: RedisDep, settings: SettingsDep
) -> JobCreated:
    """Queue a new run with the old run's spec (and a new version); the old run is unchanged.

    The new run's `retry_of` is the old run id; it stays in the old run's sweep.
    """
    run = run_or_404(store, run_id)
    if run["status"] not in RETRYABLE_STATES:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"run {run_id} is {run['status']}; only finished or lost runs can be retried"
        )
    spec = {**run["spec"], "version": None}
    ensemble = spec.get("model_name") == ENSEMBLE
    if not ensemble:
        try:
            job = JobSpec.model_validate(spec)
        except ValidationError as error:  # a spec stored before today's limits
            first = error.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else "spec"
            raise field_error(
                field, f"the run's stored spec is no longer valid: {first['msg']}", "spec", field
            ) from None
        spec = spec_to_queue(job, settings) | {"version": None}
    return queue_run(store, queue, events, spec, ensemble=ensemble, sweep_id=run.get("sweep_id"), retry_of=run_id)


@router.delete("/{run_id}", response_model=JobPublic, responses=NOT_FOUND)
def archive_job(run_id: RunIdPath, store: StoreDep) -> JobPublic:
    """Archive a run: hidden from GET /jobs (unless `archived=true`), its data kept."""
    if (archived := store.archive(run_id)) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} not found")
    return job_public(archived)


@router.get(
    "/{run_id}/checkpoint",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the run's best checkpoint (torch.save)"},
        404: {"description": "no such run, or it has no checkpoint"},
    },
)
def get_job_checkpoint(run_id: RunIdPath, store: StoreDep, settings: SettingsDep) -> FileResponse:
    """The run's best checkpoint file, `{run_id}-best.pt`, served from the artifacts root and nowhere else."""
    path = best_checkpoint(run_or_404(store, run_id), settings.artifacts_root)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} has no checkpoint")
    return FileResponse(path, media_type="application/octet-stream", filename=f"{run_id}-best.pt")


def best_checkpoint(run: dict[str, Any], artifacts_root: Path) -> Path | None:
    """The best checkpoint the run's trainer recorded, if that file is inside the artifacts root."""
    recorded = ((run.get("checkpoints") or {}).get("best") or {}).get("path")
    if not isinstance(recorded, str) or not recorded:
        return None
    root = artifacts_root.resolve()
    path = (root / recorded).resolve()
    # A recorded path is data: it must not lead outside the artifacts root (.., absolute, links).
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path
