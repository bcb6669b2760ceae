"""Marks runs whose trainer went silent as `lost`; the recorder runs it in a thread.

A running trainer publishes a heartbeat every few seconds and every event moves the run's
`heartbeat_at`. An `in_progress` run whose `heartbeat_at` is older than `heartbeat_timeout_s`
becomes `lost`, with `lost_at` (when the reaper noticed) and an entry in `status_history`.
Should its events resume, `apply_to_status` puts it back to `in_progress`.

The write is a whole-document replace guarded by the `seq` that was read, as the consumer
writes: an event stored in between changes `seq`, the guard fails and the run is left alone
(it is evidently not dead). The reaper does NOT bump `seq`: `seq` is the newest trainer event
applied, and any later trainer event, however soon, must still be newer than the `lost`
document so that it applies and revives the run. A consumer that read the run before the
reaper wrote may overwrite `lost` with its own document; that is right too, since it applies
events newer than the silence. Times are compared with the trainer's clocks (heartbeat_at is
the event's time): keep the timeout well above any clock skew between machines.

A run marked lost is handed to `on_lost` (the recorder's webhook notifier), once: a run already
lost is not in_progress, so the next round skips it.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from pymongo.database import Database
from pymongo.errors import PyMongoError

from shared import names
from shared.periodic import Periodic
from shared.schemas.events import utc_now
from shared.settings import LivenessSettings

log = logging.getLogger(__name__)


def reap_lost_runs(
    db: Database, timeout_s: float, now: datetime | None = None, on_lost: Callable[[dict], None] | None = None
) -> list[str]:
    """Mark every in_progress run silent for longer than timeout_s as lost; returns their run ids.

    on_lost gets each run's document as stored, after the write.
    """
    now = now or utc_now()
    status = db[names.STATUS]
    silent = status.find({"status": "in_progress", "heartbeat_at": {"$lt": now - timedelta(seconds=timeout_s)}})
    lost = []
    for run in silent:
        run.update(status="lost", lost_at=now, status_history=[*run["status_history"], {"status": "lost", "time": now}])
        guard = {"run_id": run["run_id"], "seq": run["seq"], "status": "in_progress"}
        if status.replace_one(guard, run).matched_count:
            log.warning("run %s is lost: no event since %s", run["run_id"], run["heartbeat_at"])
            lost.append(run["run_id"])
            if on_lost is not None:
                on_lost(run)
    return lost


class Reaper(Periodic):
    """Calls reap_lost_runs every reap_interval_s from a daemon thread until stopped."""

    def __init__(self, db: Database, settings: LivenessSettings, on_lost: Callable[[dict], None] | None = None):
        super().__init__(self._reap, settings.reap_interval_s, name="reaper")
        self._db = db
        self._timeout_s = settings.heartbeat_timeout_s
        self._on_lost = on_lost

    def _reap(self) -> None:
        try:
            reap_lost_runs(self._db, self._timeout_s, on_lost=self._on_lost)
        except PyMongoError as error:
            # The consumer reports and retries MongoDB outages; the next round tries again.
            log.warning("reaper could not read or write runs: %s", error)
