"""Queue training jobs and read, cancel, retry and archive runs."""

import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import redis
from fastapi import APIRouter, Body, HTTPException, Query, status
from kombu.exceptions import OperationalError
from pydantic import ValidationError

from services.api.datasets import check_dataset
from services.api.deps import QueueDep, RedisDep, SettingsDep, StoreDep
from services.api.runs import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_OFFSET,
    RunIdPath,
    field_error,
    public,
    queue_run,
    run_or_404,
)
from services.api.weights import check_weights
from shared import names
from shared.datasets.imagefolder import DatasetError
from shared.paths import PathRefusedError
from shared.schemas.events import utc_now
from shared.schemas.jobs import (
    FINISHED_STATES,
    MAX_LABEL_LENGTH,
    NO_CONTROL_CHARACTERS,
    RETRYABLE_STATES,
    RUN_ID_PATTERN,
    RUN_SORT_FIELDS,
    SUMMARY_METRICS,
    EpochPublic,
    EpochsPublic,
    JobCreated,
    JobPublic,
    JobSpec,
    JobsPublic,
    RunState,
)
from shared.store import START_TS

router = APIRouter(prefix="/jobs", tags=["jobs"])
log = logging.getLogger(__name__)

NOT_FOUND = {
    404: {
        "description": "no such run",
        "content": {"application/json": {"example": {"detail": "run 3f9a1c0b2d4e not found"}}},
    }
}
SortParam = Literal[tuple(f"{sign}{field}" for field in RUN_SORT_FIELDS for sign in ("", "-"))]  # type: ignore[valid-type]

JOB_EXAMPLES = {
    "small": {
        "summary": "a small custom CNN",
        "value": {"model_name": "custom_cnn", "dataset": "rice-leaf-real", "epochs": 20, "image_size": 96},
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


def checked_spec(spec: JobSpec, settings) -> dict[str, Any]:
    """The spec to store, once its dataset and weights file are found inside their roots."""
    try:
        check_dataset(spec.dataset, settings.data_root)
    except DatasetError as error:
        raise field_error("dataset", str(error)) from None
    try:
        check_weights(spec.weights, settings.weights_root)
    except PathRefusedError as error:
        raise field_error("weights", str(error)) from None
    return spec.model_dump()


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobCreated,
    responses={
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
) -> JobCreated:
    """Queue one training job. The run is visible (status `queued`) as soon as this returns."""
    return queue_run(store, queue, events, checked_spec(spec, settings))


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
    query: dict[str, Any] = {"archived": archived}
    if statuses:
        unique = sorted(set(statuses))
        query["status"] = unique[0] if len(unique) == 1 else {"$in": unique}
    for field, value in (("model_name", model_name), ("version", version), ("sweep_id", sweep_id)):
        if value is not None:
            query[field] = value
    started = {
        op: _timestamp(name, value)
        for op, name, value in (("$gte", "started_after", started_after), ("$lt", "started_before", started_before))
        if value
    }
    if started:
        query[START_TS] = started
    for metric, minimum in (("val_accuracy", min_val_accuracy), ("test_accuracy", min_test_accuracy)):
        if minimum is not None:
            query[f"metrics.{metric}"] = {"$gte": minimum}
    field = sort.removeprefix("-")
    stored_field = f"metrics.{field}" if field in SUMMARY_METRICS else START_TS if field == "start_time" else field
    runs, count = store.list_runs(query, stored_field, descending=sort.startswith("-"), limit=limit, skip=offset)
    now = utc_now()
    return JobsPublic(data=[public(run, now=now) for run in runs], count=count)


def _timestamp(name: str, moment: datetime) -> float:
    """Seconds since the epoch of a moment (UTC when it has no offset); 422 past year 1 or 9999."""
    try:
        return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)).timestamp()
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
    """A run's status, progress, heartbeat age and, once completed, its training summary."""
    run = run_or_404(store, run_id)
    summary = store.get_training(run_id) if run["status"] == "completed" else None
    return public(run, summary)


@router.get("/{run_id}/epochs", response_model=EpochsPublic, responses=NOT_FOUND)
def get_job_epochs(run_id: RunIdPath, store: StoreDep) -> EpochsPublic:
    """The run's epochs in order; an epoch that has started but not finished has null metrics."""
    epochs = store.get_epochs(run_id)
    if not epochs:
        run_or_404(store, run_id)
    return EpochsPublic(data=[EpochPublic.model_validate(e) for e in epochs], count=len(epochs))


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
    try:
        # Set first, whatever the status: a worker that takes the job anyway, or has just
        # started it, sees the flag and stops.
        flags.set(names.CANCEL_KEY.format(run_id=run_id), 1, ex=names.CANCEL_FLAG_TTL_S)
    except redis.RedisError as error:
        log.error("could not set the cancel flag of run %s: %s", run_id, error)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the job queue (Redis) is unreachable") from None
    if run["status"] == "queued" and store.mark_cancelled(run_id, utc_now()):
        try:
            queue.revoke(run_id)
        except (OperationalError, OSError) as error:
            log.warning("could not revoke run %s (its cancel flag is set): %s", run_id, error)
    return public(store.get_run(run_id))


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
    ensemble = spec.get("model_name") == "ensemble"
    if not ensemble:
        try:
            job = JobSpec.model_validate(spec)
        except ValidationError as error:  # a spec stored before today's limits
            first = error.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else "spec"
            raise field_error(
                field, f"the run's stored spec is no longer valid: {first['msg']}", "spec", field
            ) from None
        spec = checked_spec(job, settings) | {"version": None}
    return queue_run(store, queue, events, spec, ensemble=ensemble, sweep_id=run.get("sweep_id"), retry_of=run_id)


@router.delete("/{run_id}", response_model=JobPublic, responses=NOT_FOUND)
def archive_job(run_id: RunIdPath, store: StoreDep) -> JobPublic:
    """Archive a run: hidden from GET /jobs (unless `archived=true`), its data kept."""
    if (archived := store.archive(run_id)) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} not found")
    return public(archived)
