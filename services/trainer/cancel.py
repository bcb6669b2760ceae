"""Whether someone asked to stop a run: the API sets names.CANCEL_KEY (a person's cancel, or
names.PRUNE_FLAG_VALUE when a sweep's pruner stops it), the trainer looks."""

import logging
import threading
from typing import Literal, Self

import redis

from shared import names
from shared.periodic import Periodic

log = logging.getLogger(__name__)

StopReason = Literal["cancelled", "pruned"]


class CancelFlag(Periodic):
    """Whether the API asked to cancel the run, without a Redis call per batch.

    Looked at once on entering; then a thread looks every poll_s seconds, until it sees the
    flag, and sets an Event that `is_set` (the loop's should_stop, called after every batch)
    only reads.
    """

    def __init__(self, redis_url: str, run_id: str, poll_s: float = 0.5):
        super().__init__(self._look, poll_s, name="cancel-flag")
        self._client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self._key = names.CANCEL_KEY.format(run_id=run_id)
        self._cancelled = threading.Event()
        self._reason: StopReason = "cancelled"
        self._unreachable = False

    def __enter__(self) -> Self:
        self._look()
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self._client.close()

    def is_set(self) -> bool:
        return self._cancelled.is_set()

    def reason(self) -> StopReason:
        """Why the run must stop, once is_set: a person cancelled it, or its sweep pruned it."""
        return self._reason

    def _look(self) -> None:
        try:
            value = self._client.get(self._key)
            if value is not None:
                self._reason = "pruned" if value.decode(errors="replace") == names.PRUNE_FLAG_VALUE else "cancelled"
                self._cancelled.set()
                self.stop()  # a cancelled run stays cancelled: nothing more to look for
            self._unreachable = False
        except redis.RedisError as error:
            # Redis away: training goes on, a later look may see the flag. Said once per outage.
            if not self._unreachable:
                log.warning("cannot read the cancel flag %s: %s", self._key, error)
            self._unreachable = True
