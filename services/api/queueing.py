"""Queueing a run (jobs, studies, sweeps, retries and ensembles all go through here), and
cancelling one."""

import logging
import uuid
from typing import Any

import redis
from fastapi import HTTPException, status
from kombu.exceptions import OperationalError

from services.api.datasets import check_dataset
from services.api.errors import field_error
from services.api.job_queue import JobQueue
from services.api.settings import ApiSettings
from services.api.weights import check_weights
from shared import names
from shared.datasets.imagefolder import DatasetError
from shared.paths import PathRefusedError
from shared.schemas.events import RunQueued, encode_event, utc_now
from shared.schemas.jobs import JobCreated, JobSpec, StudyCreated, StudyKind
from shared.store import Store, new_status_document

log = logging.getLogger(__name__)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def spec_to_queue(spec: JobSpec, settings: ApiSettings) -> dict[str, Any]:
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


def queue_run(
    store: Store,
    queue: JobQueue,
    events: redis.Redis,
    spec: dict[str, Any],
    *,
    ensemble: bool = False,
    sweep_id: str | None = None,
    retry_of: str | None = None,
    run_id: str | None = None,
) -> JobCreated:
    """Store the run as queued, send its Celery task, announce it on the event stream.

    The run is stored first, so that it is visible at once and a trainer's first event always
    finds it; when the broker is down it is marked failed and the client gets a 503. A sweep's
    driver names its trials' runs itself (`run_id`); any other run gets a new id.
    """
    run_id = run_id or new_run_id()
    version = spec.get("version") or store.next_version(spec["model_name"])
    spec = {**spec, "version": version}
    document = new_status_document(run_id, spec, version, created_at=utc_now())
    document.update(sweep_id=sweep_id, retry_of=retry_of)
    store.insert_queued_run(document)
    try:
        (queue.send_ensemble if ensemble else queue.send_training)(run_id, spec)
    except (OperationalError, OSError) as error:
        log.error("could not queue run %s: %s", run_id, error)
        store.mark_failed(run_id, "could not queue the job: the broker is unreachable", utc_now())
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the job queue (Redis) is unreachable") from None
    publish_queued(
        events, RunQueued(run_id=run_id, seq=0, model_name=spec["model_name"], version=version, sweep_id=sweep_id)
    )
    return JobCreated(run_id=run_id, status="queued", version=version)


def cancel_run(run_id: str, status_now: str, store: Store, queue: JobQueue, flags: redis.Redis) -> None:
    """Cancel a queued or running run: a queued one is `cancelled` at once and its task revoked;
    a running (or lost) one stops within one batch once its trainer sees the cancel flag."""
    try:
        # Set first, whatever the status: a worker that takes the job anyway, or has just
        # started it, sees the flag and stops.
        flags.set(names.CANCEL_KEY.format(run_id=run_id), 1, ex=names.CANCEL_FLAG_TTL_S)
    except redis.RedisError as error:
        log.error("could not set the cancel flag of run %s: %s", run_id, error)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the job queue (Redis) is unreachable") from None
    if status_now == "queued" and store.mark_cancelled(run_id, utc_now()):
        try:
            queue.revoke(run_id)
        except (OperationalError, OSError) as error:
            log.warning("could not revoke run %s (its cancel flag is set): %s", run_id, error)


def publish_queued(events: redis.Redis, event: RunQueued) -> None:
    """Best effort: the run is stored and queued already; the stream only tells followers."""
    try:
        events.xadd(names.EVENTS_STREAM, encode_event(event))
    except redis.RedisError as error:
        log.warning("could not publish run_queued for run %s: %s", event.run_id, error)


def study_runs(spec: dict[str, Any]) -> tuple[StudyKind, list[dict[str, Any]]]:
    """A study's kind and its runs' specs: one per fold (folds=k, fold=i), or one per seed
    (seed, seed+1, …, repeats unset); each an ordinary job."""
    if spec.get("folds") is not None:
        return "folds", [{**spec, "fold": fold} for fold in range(spec["folds"])]
    return "repeats", [{**spec, "seed": spec["seed"] + number, "repeats": None} for number in range(spec["repeats"])]


def queue_study(store: Store, queue: JobQueue, events: redis.Redis, spec: dict[str, Any]) -> StudyCreated:
    """Queue every run of a study under one parent, a sweep document with the study's kind:
    GET /sweeps/{sweep_id} gives each test metric's mean and interval over its runs."""
    kind, specs = study_runs(spec)
    sweep_id = new_run_id()
    store.insert_sweep({"sweep_id": sweep_id, "created_at": utc_now(), "kind": kind, "base": spec, "grid": None})
    run_ids = [queue_run(store, queue, events, run_spec, sweep_id=sweep_id).run_id for run_spec in specs]
    return StudyCreated(sweep_id=sweep_id, kind=kind, run_ids=run_ids, count=len(run_ids))
