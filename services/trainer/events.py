"""Publishing training events without ever blocking or breaking training.

`publish` only appends to an in-memory buffer; a background thread sends the buffer to the
Redis Stream in order, and keeps (and retries) what it could not send while Redis is down.

XADD carries no MAXLEN: a length cap would drop entries the recorder has not stored yet. The
recorder bounds the stream instead, trimming only what every consumer group has acknowledged
(services/recorder/trimming.py).
"""

import logging
import threading
import time
from collections import deque

import redis

from shared import names
from shared.schemas.events import SEQ_PER_ATTEMPT, Heartbeat, encode_event

log = logging.getLogger(__name__)


class EventPublisher:
    def __init__(
        self,
        client: redis.Redis,
        run_id: str,
        attempt: int,
        buffer_size: int = 10_000,
        retry_interval_s: float = 0.5,
    ):
        self._client = client
        self.run_id = run_id
        self._next_seq = attempt * SEQ_PER_ATTEMPT + 1
        self._buffer_size = buffer_size
        self._retry_interval_s = retry_interval_s
        self._pending: deque = deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closing = False
        self.dropped = 0
        self._sender = threading.Thread(target=self._send_loop, name="event-sender", daemon=True)
        self._sender.start()

    def publish(self, event_type: type, **fields) -> None:
        """Build the event with the next seq and queue it for sending; never blocks on Redis."""
        with self._lock:
            event = event_type(run_id=self.run_id, seq=self._next_seq, **fields)
            self._next_seq += 1
            if len(self._pending) >= self._buffer_size:
                self._drop_one_locked()
            self._pending.append(event)
            self._wake.notify()

    def _drop_one_locked(self) -> None:
        # A full buffer means a long outage: heartbeats are the only events worth losing.
        for i, queued in enumerate(self._pending):
            if isinstance(queued, Heartbeat):
                del self._pending[i]
                break
        else:
            self._pending.popleft()
        self.dropped += 1

    def _send_loop(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closing:
                    self._wake.wait()
                if not self._pending and self._closing:
                    return
                batch = list(self._pending)[:100]
            try:
                pipe = self._client.pipeline(transaction=False)
                for event in batch:
                    pipe.xadd(names.EVENTS_STREAM, encode_event(event))
                pipe.execute()
            except redis.RedisError as error:
                log.warning("event stream unreachable (%s); %d events kept", error, len(batch))
                time.sleep(self._retry_interval_s)
                continue
            with self._lock:
                for _ in batch:
                    self._pending.popleft()

    def close(self, timeout_s: float = 30.0) -> bool:
        """Send what is buffered (waiting up to timeout_s); True when nothing was left behind."""
        with self._lock:
            self._closing = True
            self._wake.notify()
        self._sender.join(timeout_s)
        with self._lock:
            left = len(self._pending)
        if left:
            log.error("%d events of run %s could not be sent", left, self.run_id)
        return left == 0


class Heartbeater:
    """Publishes a heartbeat every interval_s from its own thread, until stopped."""

    def __init__(self, publisher: EventPublisher, interval_s: float):
        self._publisher = publisher
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def __enter__(self) -> "Heartbeater":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._publisher.publish(Heartbeat)
