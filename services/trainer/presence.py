"""Keeps this trainer's presence key fresh (shared/worker_presence.py), so /health counts it.

A thread in the worker's main process refreshes the key every `worker_presence_refresh_s`
seconds with an expiry of `worker_presence_ttl_s`; it starts on `worker_ready` and stops on
`worker_shutdown` (after the pool has finished its task), which deletes the key. A worker that
dies drops out when the key expires.

The main process, not the pool child: the child runs the training, keeps the CPU busy, holds
the GIL between tensor operations and is replaced every `worker_max_tasks_per_child` tasks,
while the main process mostly waits on the broker, so its thread wakes on time when the CPU
is saturated, and the scheduler favours a thread that has slept. And it may be late: one SET
every few seconds with an expiry a few refreshes long still counts a worker slowed down by
training, which a check that must be answered within a deadline (a Celery control ping) does not.
"""

import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
from celery import Celery
from celery.signals import worker_ready, worker_shutdown, worker_shutting_down
from celery.worker import state as worker_state

from services.trainer.settings import get_settings
from shared import names
from shared.periodic import Periodic
from shared.worker_presence import publish_worker, remove_worker

log = logging.getLogger(__name__)
# Tasks whose id is a run id (the API sends them with task_id=run_id).
RUN_TASKS = frozenset({names.TRAIN_TASK, names.ENSEMBLE_TASK})


def running_task() -> tuple[str, str] | None:
    """(task name, task id) of the task this worker runs, from its main process's bookkeeping.

    With `worker_prefetch_multiplier = 1`, late acks and one pool process, a worker holds one
    task at a time: the one its pool runs.
    """
    requests = list(worker_state.requests.values())  # one C-level copy: safe beside the event loop
    return (requests[0].name, requests[0].id) if requests else None


class WorkerPresence(Periodic):
    """Refreshes one worker's presence key from a thread, at once and then every refresh_s
    seconds; stop() deletes it."""

    def __init__(
        self,
        client: redis.Redis,
        hostname: str,
        queues: list[str],
        refresh_s: float,
        ttl_s: float,
        running: Callable[[], tuple[str, str] | None] = running_task,
    ):
        super().__init__(self._refresh, refresh_s, name="worker-presence", at_once=True)
        self._client = client
        self.hostname = hostname
        self._fixed = {"hostname": hostname, "pid": os.getpid(), "queues": queues, "started_at": _now()}
        self._ttl_s = ttl_s
        self._running = running
        # Set from a signal handler during a warm shutdown: the worker finishes its task, takes no other.
        self.stopping = False
        self._failing = False

    def state(self) -> dict[str, Any]:
        task = self._running()
        name, task_id = task if task else (None, None)
        return {
            **self._fixed,
            "seen_at": _now(),
            "task": name,
            "run_id": task_id if name in RUN_TASKS else None,
            "stopping": self.stopping,
        }

    def stop(self) -> None:
        """Stop refreshing and delete the key: the worker is leaving."""
        super().stop()
        try:
            remove_worker(self._client, self.hostname)
        except redis.RedisError as error:
            log.warning(
                "could not remove %s's presence (it expires within %g s): %s", self.hostname, self._ttl_s, error
            )
        self._client.close()

    def _refresh(self) -> None:
        try:
            publish_worker(self._client, self.state(), self._ttl_s)
            if self._failing:
                log.info("presence of %s refreshed again", self.hostname)
            self._failing = False
        except redis.RedisError as error:
            if not self._failing:  # once per outage: the worker keeps working meanwhile
                log.warning("could not refresh %s's presence: %s", self.hostname, error)
            self._failing = True


def track_workers(app: Celery) -> None:
    """Keep a presence key for each worker of app (the signals fire in its main process)."""
    presences: dict[str, WorkerPresence] = {}

    def on_ready(sender, **_kwargs) -> None:  # sender: the worker's consumer
        # A consumer restarted after a broker outage is ready again: its presence already runs.
        if sender.app is not app or sender.hostname in presences:
            return
        settings = get_settings()
        client = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.worker_presence_refresh_s,
            socket_connect_timeout=settings.worker_presence_refresh_s,
        )
        presence = WorkerPresence(
            client,
            sender.hostname,
            sorted(app.amqp.queues.consume_from),
            settings.worker_presence_refresh_s,
            settings.worker_presence_ttl_s,
        )
        presences[sender.hostname] = presence
        presence.start()

    def on_shutting_down(sender, **_kwargs) -> None:  # sender: the hostname; runs in a signal handler
        if presence := presences.get(sender):
            presence.stopping = True

    def on_shutdown(sender, **_kwargs) -> None:  # sender: the worker, its pool stopped
        if presence := presences.pop(getattr(sender, "hostname", ""), None):
            presence.stop()

    worker_ready.connect(on_ready, weak=False)
    worker_shutting_down.connect(on_shutting_down, weak=False)
    worker_shutdown.connect(on_shutdown, weak=False)


def _now() -> str:
    return datetime.now(UTC).isoformat()
