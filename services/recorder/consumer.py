"""Reads training events from the stream with a consumer group and stores them in MongoDB.

An entry is acknowledged only after its writes succeeded (writer.py says how a batch is
written); while MongoDB is unreachable the same batch is retried and nothing is acknowledged.
Entries a dead recorder left pending are claimed after `claim_idle_ms`. Malformed entries go to
the dead-letter stream with the reason. Every `trim_interval_s` the stream loses the entries all
groups have acknowledged (trimming.py). After every loop, and while a write is being retried,
the recorder publishes its state to Redis (shared/recorder_state.py), which the API's /health
reads: "MongoDB unreachable" as the recorder sees it.
"""

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import redis
from pydantic import ValidationError
from pymongo.database import Database
from pymongo.errors import PyMongoError

from services.recorder.retry import MONGO_BACKOFF_MAX_S, retry_with_backoff
from services.recorder.settings import RecorderSettings
from services.recorder.trimming import trim_acknowledged
from services.recorder.webhooks import WebhookNotifier
from services.recorder.writer import BatchWriter, StatusChange, WriteCounts
from shared import names
from shared.recorder_state import publish_recorder_state
from shared.schemas.events import decode_event, utc_now

log = logging.getLogger(__name__)

Entry = tuple[bytes, dict[bytes | str, bytes | str]]  # (stream entry id, fields)
# Seconds between two publications of an unchanged recorder state (shared/recorder_state.py).
STATE_INTERVAL_S = 5.0


@dataclass
class RecorderStats:
    events_stored: int = 0
    dead_lettered: int = 0
    write_retries: int = 0
    redis_errors: int = 0
    entries_trimmed: int = 0
    by_type: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    writes: WriteCounts = field(default_factory=WriteCounts)
    last_write_at: datetime | None = None


class Recorder:
    def __init__(
        self, client: redis.Redis, db: Database, settings: RecorderSettings, notifier: WebhookNotifier | None = None
    ):
        self.client = client
        self.db = db
        self.settings = settings
        self.notifier = notifier
        self.writer = BatchWriter(db, settings.status_cache_runs, on_status_stored=self._notify_status_change)
        self.stats = RecorderStats(writes=self.writer.counts)
        self._last_claim = 0.0
        self._last_trim = 0.0
        self._last_state: tuple[bool, str | None] | None = None
        self._last_state_at = 0.0

    def ensure_group(self) -> None:
        """Create the consumer group (and the stream) unless it exists; starts from the beginning."""
        try:
            self.client.xgroup_create(names.EVENTS_STREAM, names.RECORDER_GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def run_forever(self, should_stop=lambda: False) -> None:
        """Record until should_stop(); a Redis outage is waited out, never a reason to exit.

        After an outage the recorder starts over: its own pending entries first (a batch
        written but not yet acknowledged when Redis went away is written again, which the
        seq guard makes harmless), then new ones.
        """

        def redis_down(error: Exception, delay: float) -> None:
            self.stats.redis_errors += 1
            log.warning("Redis unreachable (%s); retrying in %.1f s", error, delay)

        retry_with_backoff(
            lambda: self._record(should_stop),
            redis.RedisError,
            redis_down,
            self.settings.retry_backoff_s,
            self.settings.redis_backoff_max_s,
            should_stop,
        )

    def _record(self, should_stop) -> None:
        self.ensure_group()
        self.publish_state(mongodb_ok=True)
        while entries := self._read("0"):  # our own entries left pending by a previous run
            self.process(entries)
            self.publish_state(mongodb_ok=True)
        while not should_stop():
            self.process(self._claim_idle() + self._read(">"))
            self._trim()
            self.publish_state(mongodb_ok=True)

    def publish_state(self, mongodb_ok: bool, error: str | None = None) -> None:
        """What /health shows about this recorder; a Redis hiccup here must not stop recording.

        Sent when MongoDB's state changes, else at most every STATE_INTERVAL_S (the state
        expires after 30 s): not a Redis round trip per batch."""
        state = (mongodb_ok, error)
        if state == self._last_state and time.monotonic() - self._last_state_at < STATE_INTERVAL_S:
            return
        self._last_state, self._last_state_at = state, time.monotonic()
        try:
            publish_recorder_state(
                self.client,
                self.settings.consumer_name,
                mongodb_ok=mongodb_ok,
                events_stored=self.stats.events_stored,
                dead_lettered=self.stats.dead_lettered,
                last_write_at=self.stats.last_write_at,
                error=error,
            )
        except redis.RedisError as redis_error:
            log.warning("could not publish the recorder state: %s", redis_error)

    def _trim(self) -> None:
        if time.monotonic() - self._last_trim < self.settings.trim_interval_s:
            return
        self._last_trim = time.monotonic()
        self.stats.entries_trimmed += trim_acknowledged(self.client, names.EVENTS_STREAM)

    def _read(self, start_id: str) -> list[Entry]:
        response = self.client.xreadgroup(
            names.RECORDER_GROUP,
            self.settings.consumer_name,
            {names.EVENTS_STREAM: start_id},
            count=self.settings.batch_size,
            block=None if start_id == "0" else self.settings.block_ms,
        )
        entries = [entry for _stream, stream_entries in response or [] for entry in stream_entries]
        return self._without_trimmed(entries)

    def _without_trimmed(self, entries: list[Entry]) -> list[Entry]:
        """Pending ids whose entry the stream no longer holds come back empty: ack and skip them."""
        gone = [entry_id for entry_id, fields in entries if not fields]
        if gone:
            self.client.xack(names.EVENTS_STREAM, names.RECORDER_GROUP, *gone)
        return [entry for entry in entries if entry[1]]

    def _claim_idle(self) -> list[Entry]:
        if time.monotonic() - self._last_claim < self.settings.claim_interval_s:
            return []
        self._last_claim = time.monotonic()
        claimed: list[Entry] = []
        cursor = "0-0"
        while True:
            cursor, entries, *_ = self.client.xautoclaim(
                names.EVENTS_STREAM,
                names.RECORDER_GROUP,
                self.settings.consumer_name,
                min_idle_time=self.settings.claim_idle_ms,
                start_id=cursor,
                count=self.settings.batch_size,
            )
            claimed += self._without_trimmed(entries)
            if cursor in (b"0-0", "0-0") or len(claimed) >= self.settings.batch_size:
                break
        if claimed:
            log.info("claimed %d entries left pending by another recorder", len(claimed))
        return claimed

    def process(self, entries: list[Entry]) -> None:
        """Store the entries' events, retrying until MongoDB takes them, then acknowledge."""
        if not entries:
            return
        events = []
        for entry_id, fields in entries:
            try:
                events.append(decode_event(fields))
            except (ValidationError, ValueError) as error:
                self._dead_letter(entry_id, fields, str(error))

        def mongodb_down(error: Exception, delay: float) -> None:
            self.stats.write_retries += 1
            log.warning("MongoDB write failed (%s); retrying in %.1f s", error, delay)
            self.publish_state(mongodb_ok=False, error=type(error).__name__)

        retry_with_backoff(
            lambda: self.writer.write(events),
            PyMongoError,
            mongodb_down,
            self.settings.retry_backoff_s,
            MONGO_BACKOFF_MAX_S,
        )
        self.client.xack(names.EVENTS_STREAM, names.RECORDER_GROUP, *[entry_id for entry_id, _ in entries])
        self.stats.events_stored += len(events)
        self.stats.last_write_at = utc_now()
        for event in events:
            self.stats.by_type[event.type] += 1

    def _notify_status_change(self, change: StatusChange) -> None:
        if self.notifier is not None:
            self.notifier.notify_on_transition(change.before, change.doc)

    def _dead_letter(self, entry_id: bytes, fields: dict, reason: str) -> None:
        log.error("dead-lettering entry %s: %s", entry_id, reason[:200])
        payload = {
            b"original_id": entry_id,
            b"reason": reason[:2000].encode(),
            **{b"field:" + (k if isinstance(k, bytes) else k.encode()): v for k, v in fields.items()},
        }
        self.client.xadd(names.DEAD_LETTER_STREAM, payload, maxlen=self.settings.dead_letter_maxlen, approximate=True)
        self.stats.dead_lettered += 1
