"""Queue training jobs and read runs back."""

import logging
import uuid
from typing import Annotated, Any

import redis
from fastapi import APIRouter, HTTPException, Query, status
from kombu.exceptions import OperationalError

from services.api.deps import QueueDep, RedisDep, SettingsDep, StoreDep
from shared import names
from shared.datasets.imagefolder import DatasetError, resolve_dataset, scan_image_folder
from shared.schemas.events import utc_now
from shared.schemas.jobs import (
    FINISHED_STATES,
    EpochPublic,
    EpochsPublic,
    JobCreated,
    JobPublic,
    JobSpec,
    JobsPublic,
)
from shared.store import new_status_document

router = APIRouter(prefix="/jobs", tags=["jobs"])
log = logging.getLogger(__name__)


def _field_error(field: str, message: str, code: int = 422) -> HTTPException:
    """An error shaped like FastAPI's own validation errors, naming the field."""
    return HTTPException(code, [{"loc": ["body", field], "msg": message, "type": "value_error"}])


def _public(run: dict[str, Any], summary: dict[str, Any] | None = None) -> JobPublic:
    return JobPublic.model_validate({**run, "summary": summary})


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=JobCreated)
def create_job(spec: JobSpec, store: StoreDep, queue: QueueDep, settings: SettingsDep) -> JobCreated:
    """Queue one training job. The run is visible (status `queued`) as soon as this returns."""
    try:
        scan_image_folder(resolve_dataset(spec.dataset, settings.data_root))
    except DatasetError as error:
        raise _field_error("dataset", str(error)) from None

    run_id = uuid.uuid4().hex[:12]
    version = spec.version or store.next_version(spec.model_name)
    job = spec.model_copy(update={"version": version}).model_dump()
    store.insert_queued_run(new_status_document(run_id, job, version, created_at=utc_now()))
    try:
        queue.send_training(run_id, job)
    except (OperationalError, OSError) as error:
        log.error("could not queue run %s: %s", run_id, error)
        store.mark_failed(run_id, "could not queue the job: the broker is unreachable", utc_now())
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the job queue (Redis) is unreachable") from None
    return JobCreated(run_id=run_id, status="queued", version=version)


@router.get("", response_model=JobsPublic)
def list_jobs(
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JobsPublic:
    """Runs, newest first."""
    runs, count = store.list_runs(limit=limit, skip=offset)
    return JobsPublic(data=[_public(run) for run in runs], count=count)


@router.get("/{run_id}", response_model=JobPublic)
def get_job(run_id: str, store: StoreDep) -> JobPublic:
    """A run's status, progress and, once completed, its training summary."""
    run = store.get_run(run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} not found")
    summary = store.get_training(run_id) if run["status"] == "completed" else None
    return _public(run, summary)


@router.get("/{run_id}/epochs", response_model=EpochsPublic)
def get_job_epochs(run_id: str, store: StoreDep) -> EpochsPublic:
    """The run's epochs in order; an epoch that has started but not finished has null metrics."""
    epochs = store.get_epochs(run_id)
    if not epochs and store.get_run(run_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} not found")
    return EpochsPublic(data=[EpochPublic.model_validate(e) for e in epochs], count=len(epochs))


@router.post("/{run_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=JobPublic)
def cancel_job(run_id: str, store: StoreDep, queue: QueueDep, flags: RedisDep) -> JobPublic:
    """Cancel a queued or running run; returns the run as stored now.

    A queued run is `cancelled` at once and its task revoked. A running (or lost) run stops
    within one batch once its trainer sees the cancel flag, keeping its best checkpoint; its
    status becomes `cancelled` when the trainer's run_cancelled event is stored.
    """
    run = store.get_run(run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} not found")
    if run["status"] in FINISHED_STATES:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"run {run_id} is already {run['status']}; only queued or running runs can be cancelled")
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
    return _public(store.get_run(run_id))
