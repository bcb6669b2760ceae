"""Publishing training events without ever blocking or breaking training.

`publish` only appends to an in-memory buffer; a background thread sends it to the Redis
Stream in order, and keeps (and retries) what it could not send while Redis is down.

A long outage must not grow memory without bound, nor lose events: once a send has failed
and more than `spill_threshold` events wait in memory, the sender moves them to a file in the
run's directory (spill.py). When Redis is back the file is sent first, oldest first, then the
events held in memory, so the stream gets every event in seq order; the file is removed once
sent. Should the sender itself hang (a Redis that accepts connections but never answers),
`publish` spills at `buffer_size` events on its own.

XADD carries no MAXLEN: a length cap would drop entries the recorder has not stored yet. The
recorder bounds the stream instead, trimming only what every consumer group has acknowledged
(services/recorder/trimming.py). Delivery is at-least-once: a batch whose send failed halfway
is sent again whole, and the recorder's writes are idempotent.
"""

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import redis

from services.trainer.lease import RunLease, StoodDown
from services.trainer.spill import SpillFile
from shared import names
from shared.periodic import Periodic
from shared.schemas.events import SEQ_PER_ATTEMPT, GpuReading, Heartbeat, encoded_entry

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """What a job needs to report a run: EventPublisher, or local_run.LocalPublisher without Redis."""

    run_id: str

    def publish(self, event_type: type, **fields) -> None: ...

    def close(self) -> bool: ...


class EventPublisher:
    """Numbers a run's events (seq) and sends them to the events stream from its own thread.

    Sent, in order: the batch in flight (`_head`), then the spill file, then `_pending`. Lock
    order: `_spill_lock` before `_lock`; `publish` takes only `_lock` (and, at buffer_size,
    the spill).
    """

    def __init__(
        self,
        client: redis.Redis,
        run_id: str,
        attempt: int,
        buffer_size: int = 10_000,
        retry_interval_s: float = 0.5,
        spill_path: Path | None = None,
        spill_threshold: int = 1_000,
        batch_size: int = 100,
        leftovers: Sequence[Path] = (),
    ):
        self._client = client
        self.run_id = run_id
        self._next_seq = attempt * SEQ_PER_ATTEMPT + 1
        self._buffer_size = buffer_size
        self._retry_interval_s = retry_interval_s
        self._spill = SpillFile(spill_path) if spill_path is not None else None
        # Spill files of earlier attempts at this run (spill.earlier_spill_files): sent first.
        self._leftovers = [SpillFile.reopen(path) for path in leftovers]
        self._spill_threshold = min(spill_threshold, buffer_size)
        self._batch_size = batch_size
        self._pending: deque = deque()  # events (objects), oldest first
        # Encoded events being sent, and whether they came from the spill file; changed by the
        # sender thread only, under _spill_lock (close reads them under it).
        self._head: list[str] = []
        self._head_source: SpillFile | None = None  # the file the batch in flight came from
        self._lock = threading.Lock()
        self._spill_lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closing = False
        # close gave up waiting, or the attempt stood down: the sender must leave everything alone
        self._abandoned = False
        self._unreachable = False
        self.dropped = 0  # events lost: spilling off, the disk refused them, or the attempt stood down
        self.spilled = 0  # events that went through the spill file
        self.sender_cpu_s = 0.0  # CPU time the sender thread has used (bench/publish_overhead.py)
        self._sender = threading.Thread(target=self._send_loop, name="event-sender", daemon=True)
        self._sender.start()

    @property
    def in_memory(self) -> int:
        """Events held in memory and not sent yet (the batch in flight included)."""
        with self._lock:
            return len(self._pending) + len(self._head)

    @property
    def on_disk(self) -> int:
        """Events in the spill file not taken for sending yet."""
        return sum(map(len, self._leftovers)) + (len(self._spill) if self._spill is not None else 0)

    def publish(self, event_type: type, **fields) -> None:
        """Build the event with the next seq and queue it for sending; never waits on Redis."""
        with self._lock:
            if self._abandoned:
                return
            event = event_type(run_id=self.run_id, seq=self._next_seq, **fields)
            self._next_seq += 1
            self._pending.append(event)
            full = len(self._pending) >= self._buffer_size
            self._wake.notify()
        if full and not self._spill_pending():
            with self._lock:
                while len(self._pending) >= self._buffer_size:
                    self._drop_one_locked()

    def stand_down(self) -> None:
        """A newer attempt holds the run: what is not sent yet is dropped, nothing more is published.

        A spill file stays where it is; whoever sends it later, the recorder ignores the events
        of an attempt older than one it has seen.
        """
        with self._spill_lock, self._lock:
            self._abandoned = True
            self.dropped += len(self._pending)
            self._pending.clear()
            self._wake.notify()

    def _drop_one_locked(self) -> None:
        # Only without a usable spill file: heartbeats are the events worth losing first.
        for i, queued in enumerate(self._pending):
            if isinstance(queued, Heartbeat):
                del self._pending[i]
                break
        else:
            self._pending.popleft()
        self.dropped += 1

    def _spill_pending(self) -> bool:
        """Move every event held in memory to the end of the spill file; False if impossible."""
        if self._spill is None:
            return False
        with self._spill_lock:
            if self._abandoned:
                return False
            with self._lock:
                events = list(self._pending)
                self._pending.clear()
            if not events:
                return True
            try:
                self._spill.append([event.model_dump_json() for event in events])
            except OSError as error:
                log.error(
                    "cannot spill %d events of run %s to %s: %s", len(events), self.run_id, self._spill.path, error
                )
                with self._lock:
                    self._pending.extendleft(reversed(events))
                return False
            self.spilled += len(events)
        log.warning("run %s: %d events waiting for Redis moved to %s", self.run_id, len(events), self._spill.path)
        return True

    def _fill_head(self) -> None:
        """Take the next batch to send, oldest first: from the spill file while it has any."""
        with self._spill_lock:
            if self._abandoned:
                return
            for source in [*self._leftovers, self._spill]:
                if source is not None and len(source):
                    self._head, self._head_source = source.take(self._batch_size), source
                    return
            with self._lock:
                count = min(self._batch_size, len(self._pending))
                events = [self._pending.popleft() for _ in range(count)]
            self._head, self._head_source = [event.model_dump_json() for event in events], None

    def _send_loop(self) -> None:
        while True:
            self.sender_cpu_s = time.thread_time()
            with self._lock:
                while not (self._head or self._pending or self.on_disk or self._closing):
                    self._wake.wait()
                if self._abandoned or not (self._head or self._pending or self.on_disk):
                    return  # closing with nothing left, or given up
            if not self._head:
                try:
                    self._fill_head()
                except OSError as error:  # the spill file cannot be read back: say so, go on without it
                    log.error("run %s: spill file unreadable, its events are lost: %s", self.run_id, error)
                    with self._spill_lock:
                        unreadable = next((f for f in self._leftovers if len(f)), None)
                        if unreadable is not None:
                            self._leftovers.remove(unreadable)
                        else:
                            unreadable, self._spill = self._spill, None
                        self.dropped += len(unreadable) if unreadable is not None else 0
                    continue
                if not self._head:
                    continue
            try:
                pipe = self._client.pipeline(transaction=False)
                for payload in self._head:
                    pipe.xadd(names.EVENTS_STREAM, encoded_entry(payload))
                pipe.execute()
            except redis.RedisError as error:
                self._send_failed(error)
                continue
            with self._spill_lock:
                if not self._abandoned:
                    if self._head_source is not None:
                        self._remove_drained(self._head_source)
                    self._head = []
            if self._unreachable:
                self._unreachable = False
                log.warning("run %s: event stream reachable again; sending what waited", self.run_id)

    def _remove_drained(self, source: SpillFile) -> None:
        try:
            if source.remove_if_drained() and source in self._leftovers:
                self._leftovers.remove(source)
                log.info("run %s: sent the events an earlier attempt left in %s", self.run_id, source.path)
        except OSError as error:  # a stale file is harmless: only this publisher reads it
            log.warning("run %s: cannot remove %s: %s", self.run_id, source.path, error)

    def _send_failed(self, error: redis.RedisError) -> None:
        if not self._unreachable:  # said once per outage
            log.warning("run %s: event stream unreachable (%s); keeping events until it is back", self.run_id, error)
            self._unreachable = True
        with self._lock:
            over = len(self._pending) >= self._spill_threshold
        if over:
            self._spill_pending()
        time.sleep(self._retry_interval_s)

    def close(self, timeout_s: float = 30.0) -> bool:
        """Send what is left, waiting up to timeout_s; True when everything was sent.

        What Redis did not take by then stays in the spill file (when there is one), in order.
        """
        with self._lock:
            self._closing = True
            self._wake.notify()
        self._sender.join(timeout_s)
        if not self._sender.is_alive():
            return True
        with self._spill_lock, self._lock:
            self._abandoned = True
            # A batch taken from an earlier attempt's file is still in that file, which stays.
            left = list(self._head) if self._head_source is None or self._head_source is self._spill else []
            try:
                left += self._spill.rest() if self._spill is not None else []
            except OSError as error:
                log.error("run %s: spill file unreadable, its events are lost: %s", self.run_id, error)
            left += [event.model_dump_json() for event in self._pending]
            self._pending.clear()
        where = "lost"
        if self._spill is not None:
            try:
                self._spill.replace_with(left)
                where = f"kept in {self._spill.path}"
            except OSError as error:
                where = f"lost ({error})"
        log.error("%d events of run %s could not be sent: %s", len(left), self.run_id, where)
        return False


class Heartbeater(Periodic):
    """Renews the run's lease and publishes a heartbeat every interval_s from its own thread,
    until stopped, or until a newer attempt holds the lease: then the publisher stands down.

    Each heartbeat carries what `gpus` reads then (services/trainer/gpu_stats.py), or no GPU
    figures when it answers None."""

    def __init__(
        self,
        publisher: EventPublisher,
        interval_s: float,
        lease: RunLease | None = None,
        gpus: Callable[[], list[GpuReading] | None] = lambda: None,
    ):
        super().__init__(self._beat, interval_s, name="heartbeat")
        self._publisher = publisher
        self._lease = lease
        self._gpus = gpus

    def _beat(self) -> None:
        if self._lease is not None:
            try:
                self._lease.renew()
            except StoodDown:
                self._publisher.stand_down()
                self.stop()
                return
        self._publisher.publish(Heartbeat, gpu=self._gpus())
