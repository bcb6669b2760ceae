"""Keeps a long job's broker message from being delivered again while the job is alive.

With the Redis broker, kombu redelivers an unacknowledged message once it has been
unacknowledged for `visibility_timeout` seconds: it records the delivery time in the
`unacked_index` sorted set and, every `unacked_restore_interval` seconds, any worker puts
older messages back on their queue. A training job lasts hours, so a plain timeout is either
too short (a live job runs twice) or too long (a job whose worker was killed waits an hour).

Instead the timeout is short (celeryconfig: a minute) and the running job refreshes its
message's entry in `unacked_index` every `refresh_s` seconds. While the job lives its message
never looks old; when the worker dies (SIGKILL, OOM, machine gone) the refreshes stop and a
surviving worker delivers the job again within about a minute, and the task resumes from the
run's last checkpoint. A worker frozen for longer than the timeout (SIGSTOP) loses its job to
another worker, whose attempt takes the run's lease; the frozen one finds that when it wakes
and stands down before its next batch (lease.py). The timeout, the lease and the `lost` timeout
are chosen together: shared.settings.LivenessSettings.
"""

import json
import logging
import time

import redis

from shared import names
from shared.periodic import Periodic

log = logging.getLogger(__name__)
# kombu's Redis transport defaults (transport options unacked_key / unacked_index_key); a test
# pins this layout against the real transport (tests/trainer/test_visibility.py).
UNACKED = "unacked"
UNACKED_INDEX = "unacked_index"


def find_delivery_tag(client: redis.Redis, task_id: str) -> str | None:
    """The delivery tag of the unacknowledged message that carries task_id."""
    for tag, payload in client.hscan_iter(UNACKED):
        if task_id.encode() not in payload:
            continue
        message = json.loads(payload)[0]
        if message.get("headers", {}).get("id") == task_id:
            return tag.decode()
    return None


class VisibilityKeeper(Periodic):
    """Refreshes the job's `unacked_index` entry from a thread while the `with` block runs: at
    once, then every refresh_s seconds.

    A refresh that finds no message to refresh means the job will be delivered again while it
    runs: kombu's layout changed, or the message was restored to its queue already. That is
    logged as an error and counted (names.VISIBILITY_MISSES_KEY, the API's /metrics), from the
    second refresh on, so that the job's first instants can never raise a false alarm.
    """

    def __init__(self, redis_url: str, task_id: str, refresh_s: float):
        super().__init__(self._keep_visible, refresh_s, name="visibility", at_once=True)
        self._client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self._task_id = task_id
        self._tag: str | None = None
        self._refreshes = 0

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self._client.close()

    def refresh(self) -> bool:
        """Mark the message as delivered just now; False when it cannot be found."""
        if self._tag is None:
            self._tag = find_delivery_tag(self._client, self._task_id)
            if self._tag is None:
                return False
        # XX: only update; never re-add an entry kombu has removed on ack.
        return bool(self._client.zadd(UNACKED_INDEX, {self._tag: time.time()}, xx=True, ch=True))

    def _keep_visible(self) -> None:
        self._refreshes += 1
        try:
            if self.refresh() or self._refreshes == 1:
                return
            log.error(
                "job %s: no unacknowledged message to refresh in %r / %r; the broker will deliver it "
                "again while it runs (has kombu's Redis layout changed?)",
                self._task_id,
                UNACKED,
                UNACKED_INDEX,
            )
            self._client.incr(names.VISIBILITY_MISSES_KEY)
        except redis.RedisError as error:
            log.warning("could not refresh job %s's visibility: %s", self._task_id, error)
