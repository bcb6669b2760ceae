"""At most one attempt at a run trains at a time: each attempt holds the run's lease.

The lease is a Redis key (names.LEASE_KEY) holding the attempt number, the fencing token, with
a time to live of lease_ttl_s; the attempt renews it with every heartbeat. A newer attempt
always wins: taking or renewing the lease succeeds while the key is absent or holds an attempt
no newer than ours. An attempt that finds a newer one raises StoodDown wherever it looks, and
from then on writes no checkpoint and publishes nothing (lifecycle.published_run).

How an old attempt learns it lost the lease, when its trainer was paused (SIGSTOP, a frozen
VM) or cut off from Redis past the lease's life while a newer attempt took over:
- the heartbeat thread renews every heartbeat_interval_s and finds the newer attempt;
- the training loop asks `check` after every batch: a free local test (is our last
  confirmation younger than the lease's life, by the monotonic clock, which runs on through a
  pause), and only when it is not, one Redis call; so a resumed attempt stands down before
  its next batch;
- checkpoints and epoch boundaries `confirm` the lease with Redis first. Redis away (an
  outage, not a takeover) stops nothing: training goes on, and a checkpoint is replaced only
  while the last confirmation is younger than the lease's life.

A newer attempt that takes a lease an older one still held (its job came back while the
older attempt was alive: see shared.settings.LivenessSettings for why the timings prevent
that) waits out the older lease's remaining life before it reads the checkpoint: by then the
older attempt can no longer pass a local check and replace it.
"""

import logging
import threading
import time

import redis

from shared import names

log = logging.getLogger(__name__)

# Takes the lease for ARGV[1] (an attempt number) for ARGV[2] ms unless a newer attempt holds
# it. Returns -1 when a newer one does; else the ms an older attempt's lease had left (0: none).
TAKE_SCRIPT = """
local held = tonumber(redis.call('GET', KEYS[1]) or '0')
local mine = tonumber(ARGV[1])
if held > mine then return -1 end
local left = 0
if held > 0 and held < mine then left = math.max(redis.call('PTTL', KEYS[1]), 0) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return left
"""
# Waited beyond what an older attempt's lease had left: Redis counts it in whole milliseconds.
TAKEOVER_MARGIN_S = 0.05
# Gives the lease up, only if it still holds ARGV[1].
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class StoodDown(Exception):
    """A newer attempt holds the run's lease: this one stops, writing and publishing nothing more."""

    def __init__(self, run_id: str, attempt: int):
        super().__init__(f"run {run_id}: attempt {attempt} stood down, a newer attempt holds the run")
        self.run_id = run_id
        self.attempt = attempt


class RunLease:
    """One attempt's hold on its run; thread-safe (the heartbeat thread renews it)."""

    def __init__(self, client: redis.Redis, run_id: str, attempt: int, ttl_s: float, recheck_s: float = 1.0):
        self.run_id = run_id
        self.attempt = attempt
        self._client = client
        self._key = names.LEASE_KEY.format(run_id=run_id)
        self._ttl_s = ttl_s
        # While Redis cannot be reached, `check` tries again at most this often (seconds).
        self._recheck_s = recheck_s
        self._take = client.register_script(TAKE_SCRIPT)
        self._release = client.register_script(RELEASE_SCRIPT)
        self._lock = threading.Lock()
        self._confirmed_at = float("-inf")  # monotonic time of the last successful take, before sending it
        self._tried_at = float("-inf")
        self._superseded = False

    def acquire(self) -> float:
        """Take the lease; raises StoodDown if a newer attempt holds it, RedisError if Redis is away.

        Returns the seconds waited for an older attempt's lease to run out (0: it had).
        """
        left_ms = self._take_now()
        if left_ms > 0:
            log.warning(
                "run %s: attempt %d takes over from an older attempt whose lease had %.1f s left; "
                "waiting that out before touching its checkpoint",
                self.run_id,
                self.attempt,
                left_ms / 1000,
            )
            waited_s = left_ms / 1000 + TAKEOVER_MARGIN_S
            time.sleep(waited_s)
            self._take_now()
            return waited_s
        return 0.0

    def renew(self) -> None:
        """Extend the lease (the heartbeat); StoodDown if superseded. Redis away: logged, the lease
        lives on until its time runs out."""
        try:
            self._take_now()
        except redis.RedisError as error:
            log.warning("run %s: cannot renew the lease: %s", self.run_id, error)

    def check(self) -> None:
        """Raises StoodDown once a newer attempt holds the run; cheap enough for every batch."""
        with self._lock:
            if self._superseded:
                raise StoodDown(self.run_id, self.attempt)
            now = time.monotonic()
            fresh = now - self._confirmed_at < self._ttl_s or now - self._tried_at < self._recheck_s
        if not fresh:
            self.confirm()

    def confirm(self) -> bool:
        """Ask Redis now. True while the lease is ours: confirmed, or Redis away and the last
        confirmation younger than the lease's life. StoodDown if a newer attempt holds it."""
        try:
            self._take_now()
        except redis.RedisError as error:
            log.warning("run %s: cannot confirm the lease: %s", self.run_id, error)
        return self.held()

    def held(self) -> bool:
        """Whether our last confirmation is younger than the lease's life (no Redis call)."""
        with self._lock:
            return not self._superseded and time.monotonic() - self._confirmed_at < self._ttl_s

    def release(self) -> None:
        """Give the lease up when the attempt ends, unless a newer attempt holds it."""
        try:
            self._release(keys=[self._key], args=[self.attempt])
        except redis.RedisError as error:  # it expires by itself
            log.warning("run %s: cannot release the lease: %s", self.run_id, error)

    def _take_now(self) -> int:
        with self._lock:
            if self._superseded:
                raise StoodDown(self.run_id, self.attempt)
        sent_at = time.monotonic()
        with self._lock:
            self._tried_at = sent_at
        left_ms = int(self._take(keys=[self._key], args=[self.attempt, max(1, int(self._ttl_s * 1000))]))
        with self._lock:
            if left_ms < 0:
                if not self._superseded:
                    log.warning(
                        "run %s: attempt %d stands down: a newer attempt holds the run; "
                        "no more checkpoints or events from this one",
                        self.run_id,
                        self.attempt,
                    )
                self._superseded = True
                raise StoodDown(self.run_id, self.attempt)
            self._confirmed_at = max(self._confirmed_at, sent_at)
        return left_ms


class Unleased:
    """RunLease's interface for a run no other attempt can compete for (`paddy train`)."""

    def check(self) -> None:
        pass

    def confirm(self) -> bool:
        return True
