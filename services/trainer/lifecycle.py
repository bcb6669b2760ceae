"""One attempt at a run, around the work itself (training.train, ensemble.evaluate_ensemble).

An attempt takes the run's lease (lease.py), publishes its events from a buffer (events.py)
with heartbeats that renew the lease, watches the run's cancel flag (cancel.py), refuses to
run a job whose workers kept dying, and ends the run the one way it ended: run_completed,
run_cancelled, run_pruned or run_failed. An attempt that finds a newer one holding the run stands down
(StoodDown): it publishes nothing more, and the newer attempt owns the run.

A completed run whose events all reached the stream leaves COMPLETED_FILE in its directory. A
job delivered again after that (a Redis restart makes kombu put back the messages a worker had
in hand, even one whose task then completed) finds it and does nothing.
"""

import logging
import os
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis
import torch
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.trainer import checkpoints
from services.trainer.cancel import CancelFlag, StopReason
from services.trainer.events import EventPublisher, Heartbeater, Publisher
from services.trainer.gpu_stats import gpu_reader
from services.trainer.lease import RunLease, StoodDown, Unleased
from services.trainer.settings import TrainerSettings
from services.trainer.spill import earlier_spill_files, spill_path
from shared import names
from shared.schemas.events import RunCancelled, RunCompleted, RunFailed, RunPruned, TrainingSummary

log = logging.getLogger(__name__)

# In a completed run's directory: its summary, written once every event of the run was sent.
COMPLETED_FILE = "completed.json"


def never() -> bool:
    return False


def cancelled() -> StopReason:
    return "cancelled"


@dataclass(frozen=True)
class Attempt:
    """One attempt at a run, as the work sees it: where its events go and when it must stop.

    should_stop is asked after every batch: True once the run is cancelled or pruned (stop_reason
    says which); it raises StoodDown once a newer attempt holds the run. Checkpoints are replaced only while `lease` holds
    (Unleased: no other attempt competes, as in `paddy train`).
    """

    run_id: str
    number: int
    worker: str
    publisher: Publisher
    lease: RunLease | Unleased = field(default_factory=Unleased)
    should_stop: Callable[[], bool] = never
    stop_reason: Callable[[], StopReason] = cancelled


@dataclass(frozen=True)
class StoppedRun:
    """What the work returns for a run stopped on request (cancelled, or pruned by its sweep): no summary."""

    run_id: str
    epochs_run: int
    reason: StopReason = "cancelled"


Outcome = TrainingSummary | StoppedRun


class TooManyAttempts(RuntimeError):
    """A job whose workers kept dying is not run again."""


def run_attempt(run_id: str, settings: TrainerSettings, worker: str, work: Callable[[Attempt], Outcome]) -> Outcome:
    """One attempt at run run_id, publishing to Redis: `work` runs unless the run was cancelled
    before it started (the worker got the job although it was revoked), was delivered more
    than settings.max_attempts times, or has completed already (its summary comes back, nothing
    is published). Publishes run_failed (and re-raises) on errors."""
    run_dir = checkpoints.run_dir(settings.artifacts_root, run_id)
    if (summary := completed_summary(run_dir)) is not None:
        log.warning("run %s completed already: its job, delivered again, has nothing to do", run_id)
        return summary
    with published_run(run_id, settings) as (publisher, lease), CancelFlag(settings.redis_url, run_id) as cancel:
        if cancel.is_set():
            return stopped_run(publisher, run_id, 0, "before it started", cancel.reason())
        if lease.attempt > settings.max_attempts:
            # Raised inside published_run: the run is recorded as failed with this reason.
            raise TooManyAttempts(
                f"run {run_id} was delivered {lease.attempt} times; its worker died during each of the "
                f"last {lease.attempt - 1} (limit: PADDY_MAX_ATTEMPTS={settings.max_attempts})"
            )
        attempt = lease.attempt
        outcome = work(Attempt(run_id, attempt, worker, publisher, lease, stop_check(lease, cancel), cancel.reason))
    # Every event sent (none left in a spill file): run_completed is in the stream.
    if isinstance(outcome, TrainingSummary) and not earlier_spill_files(run_dir, attempt + 1):
        mark_completed(run_dir, outcome)
    return outcome


def completed_summary(run_dir: Path) -> TrainingSummary | None:
    """The summary of a run that completed with every event sent, else None."""
    path = run_dir / COMPLETED_FILE
    try:
        return TrainingSummary.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:  # unreadable or not a summary: the job runs as if it were not there
        log.warning("ignoring %s: %s", path, error)
        return None


def mark_completed(run_dir: Path, summary: TrainingSummary) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    partial = run_dir / f"{COMPLETED_FILE}.{os.getpid()}.partial"
    partial.write_text(summary.model_dump_json())
    os.replace(partial, run_dir / COMPLETED_FILE)


def stop_check(lease: RunLease, cancel: CancelFlag) -> Callable[[], bool]:
    """The loop's should_stop: True once cancelled or pruned; raises StoodDown once a newer attempt holds the run."""

    def should_stop() -> bool:
        lease.check()
        return cancel.is_set()

    return should_stop


@contextmanager
def published_run(run_id: str, settings: TrainerSettings) -> Iterator[tuple[EventPublisher, RunLease]]:
    """(publisher, lease) for one attempt at a job: the run's lease, events to Redis, heartbeats
    that renew the lease, run_failed on errors. StoodDown raised inside (or by the lease at the
    start) goes on to the caller, with nothing more published."""
    # A Redis that hangs holds up the event sender's thread for a timeout, never longer; one quick
    # retry (a pooled connection Redis dropped) and then the publisher's own retry loop, which
    # spills long outages to disk, instead of redis-py's backoff of several seconds.
    client = redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.event_socket_timeout_s,
        socket_connect_timeout=settings.event_socket_timeout_s,
        retry=Retry(NoBackoff(), retries=1),
    )
    attempt = int(client.incr(names.ATTEMPT_KEY.format(run_id=run_id)))
    lease = RunLease(client, run_id, attempt, settings.lease_ttl_s)
    try:
        lease.acquire()
    except BaseException:
        client.close()
        raise
    run_dir = checkpoints.run_dir(settings.artifacts_root, run_id)
    publisher = EventPublisher(
        client,
        run_id,
        attempt,
        buffer_size=settings.event_buffer_size,
        spill_path=spill_path(run_dir, attempt),
        spill_threshold=settings.event_spill_threshold,
        leftovers=earlier_spill_files(run_dir, attempt),
    )
    try:
        gpus = gpu_reader(settings.cuda_visible_devices).read if settings.device != "cpu" else lambda: None
        with reporting_failure(publisher), Heartbeater(publisher, settings.heartbeat_interval_s, lease, gpus):
            yield publisher, lease
    except StoodDown:
        publisher.stand_down()
        raise
    finally:
        publisher.close()
        lease.release()
        client.close()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # the worker process lives on: hand its GPU memory back


@contextmanager
def reporting_failure(publisher: Publisher) -> Iterator[None]:
    """Publishes run_failed for an error raised inside, then lets the error go on.

    An attempt that stood down has not failed: a newer one trains the run. Any publisher will
    do: also local_run.LocalPublisher, for jobs run without the stack.
    """
    try:
        yield
    except StoodDown:
        raise
    except Exception as error:
        log.exception("run %s failed", publisher.run_id)
        publisher.publish(
            RunFailed,
            error_type=type(error).__name__,
            message=str(error) or type(error).__name__,
            traceback_tail="".join(traceback.format_exception(error)[-3:])[-2000:],
        )
        raise


def stopped_run(
    publisher: Publisher, run_id: str, epochs_done: int, when: str, reason: StopReason = "cancelled"
) -> StoppedRun:
    """Publish run_cancelled or run_pruned for a run stopped on request (`when`: at what point, for the log)."""
    log.info("run %s %s %s", run_id, reason, when)
    publisher.publish(RunPruned if reason == "pruned" else RunCancelled, epochs_done=epochs_done)
    return StoppedRun(run_id, epochs_run=epochs_done, reason=reason)


def completed_run(attempt: Attempt, summary: TrainingSummary) -> TrainingSummary:
    """Publish run_completed with the run's summary, unless a newer attempt holds the run (StoodDown)."""
    attempt.lease.confirm()  # a newer attempt completes the run, not this one
    attempt.publisher.publish(RunCompleted, summary=summary)
    return summary
