"""Queueing a run (jobs, sweeps, retries, ensembles all go through here) and showing one."""

import logging
import uuid
from datetime import datetime
from typing import Annotated, Any

import redis
from fastapi import HTTPException, Path, status
from kombu.exceptions import OperationalError

from services.api.job_queue import JobQueue
from shared import names
from shared.schemas.events import RunQueued, encode_event, utc_now
from shared.schemas.jobs import RUN_ID_PATTERN, JobCreated, JobPublic
from shared.store import Store, new_status_document

log = logging.getLogger(__name__)

# Pages of runs: at most MAX_LIMIT a page. Deeper pages than MAX_OFFSET are refused: a skip must
# fit MongoDB's 64-bit integers, and no list is that long.
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_OFFSET = 10_000_000

# A run id in a path: letters, digits, '-' and '_' (a NUL or a kilobyte of text is a 422, never a query).
RunIdPath = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="a run id", examples=["3f9a1c0b2d4e"])]


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def public(run: dict[str, Any], summary: dict[str, Any] | None = None, now: datetime | None = None) -> JobPublic:
    heartbeat_at = run.get("heartbeat_at")
    age = None
    if isinstance(heartbeat_at, datetime):
        age = round(max(0.0, ((now or utc_now()) - heartbeat_at).total_seconds()), 3)
    return JobPublic.model_validate({**run, "summary": summary, "heartbeat_age_s": age})


def run_or_404(store: Store, run_id: str) -> dict[str, Any]:
    run = store.get_run(run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} not found")
    return run


def field_error(field: str, message: str, *loc: str | int) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors, naming the field."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"loc": ["body", *(loc or (field,))], "msg": message, "type": "value_error"}],
    )


def queue_run(
    store: Store,
    queue: JobQueue,
    events: redis.Redis,
    spec: dict[str, Any],
    *,
    ensemble: bool = False,
    sweep_id: str | None = None,
    retry_of: str | None = None,
) -> JobCreated:
    """Store the run as queued, send its Celery task, announce it on the event stream.

    The run is stored first, so that it is visible at once and a trainer's first event always
    finds it; when the broker is down it is marked failed and the client gets a 503.
    """
    run_id = new_run_id()
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


def publish_queued(events: redis.Redis, event: RunQueued) -> None:
    """Best effort: the run is stored and queued already; the stream only tells followers."""
    try:
        events.xadd(names.EVENTS_STREAM, encode_event(event))
    except redis.RedisError as error:
        log.warning("could not publish run_queued for run %s: %s", event.run_id, error)
