"""Reads training events from the stream with a consumer group and stores them in MongoDB.

An entry is acknowledged only after its writes succeeded; while MongoDB is unreachable the
same batch is retried and nothing is acknowledged. Entries a dead recorder left pending are
claimed after `claim_idle_ms`. Malformed entries go to the dead-letter stream with the reason.
Every `trim_interval_s` the stream loses the entries all groups have acknowledged (trimming.py).
"""

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

import redis
from pydantic import ValidationError
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from services.recorder.handlers import apply_to_status, other_writes
from services.recorder.settings import RecorderSettings
from services.recorder.trimming import trim_acknowledged
from shared import names
from shared.schemas.events import Event, decode_event

log = logging.getLogger(__name__)
DUPLICATE_KEY = 11000
STATUS_WRITE_ATTEMPTS = 10

Entry = tuple[bytes, dict[bytes, bytes]]  # (stream entry id, fields)


@dataclass
class RecorderStats:
    events_stored: int = 0
    stale_writes: int = 0
    dead_lettered: int = 0
    write_retries: int = 0
    entries_trimmed: int = 0
    by_type: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Recorder:
    def __init__(self, client: redis.Redis, db: Database, settings: RecorderSettings):
        self.client = client
        self.db = db
        self.settings = settings
        self.stats = RecorderStats()
        self._last_claim = 0.0
        self._last_trim = 0.0

    def ensure_group(self) -> None:
        """Create the consumer group (and the stream) unless it exists; starts from the beginning."""
        try:
            self.client.xgroup_create(names.EVENTS_STREAM, names.RECORDER_GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def run_forever(self, should_stop=lambda: False) -> None:
        self.ensure_group()
        while entries := self._read("0"):  # our own entries left pending by a previous run
            self.process(entries)
        while not should_stop():
            self.process(self._claim_idle() + self._read(">"))
            self._trim()

    def _trim(self) -> None:
        if time.monotonic() - self._last_trim < self.settings.trim_interval_s:
            return
        self._last_trim = time.monotonic()
        self.stats.entries_trimmed += trim_acknowledged(self.client, names.EVENTS_STREAM)

    def _read(self, start_id: str) -> list[Entry]:
        response = self.client.xreadgroup(
            names.RECORDER_GROUP, self.settings.consumer_name, {names.EVENTS_STREAM: start_id},
            count=self.settings.batch_size, block=None if start_id == "0" else self.settings.block_ms,
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
                names.EVENTS_STREAM, names.RECORDER_GROUP, self.settings.consumer_name,
                min_idle_time=self.settings.claim_idle_ms, start_id=cursor, count=self.settings.batch_size,
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
        backoff = self.settings.retry_backoff_s
        while True:
            try:
                self._store(events)
                break
            except PyMongoError as error:
                self.stats.write_retries += 1
                log.warning("MongoDB write failed (%s); retrying in %.1f s", error, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
        self.client.xack(names.EVENTS_STREAM, names.RECORDER_GROUP, *[entry_id for entry_id, _ in entries])
        self.stats.events_stored += len(events)
        for event in events:
            self.stats.by_type[event.type] += 1

    def _store(self, events: list[Event]) -> None:
        """Apply a batch; safe to call again with the same batch after a failure."""
        by_collection: dict[str, list] = defaultdict(list)
        for event in events:
            for collection, operation in other_writes(event):
                by_collection[collection].append(operation)
        for collection, operations in by_collection.items():
            # Unordered is safe: each write is idempotent and guarded by seq.
            try:
                self.db[collection].bulk_write(operations, ordered=False)
            except BulkWriteError as error:
                failed = error.details.get("writeErrors", [])
                if any(e.get("code") != DUPLICATE_KEY for e in failed):
                    raise
                self.stats.stale_writes += len(failed)  # the store already holds this or newer
        by_run: dict[str, list[Event]] = defaultdict(list)
        for event in events:
            by_run[event.run_id].append(event)
        for run_id, run_events in by_run.items():
            self._update_status(run_id, sorted(run_events, key=lambda e: e.seq))

    def _update_status(self, run_id: str, events: list[Event]) -> None:
        """Read the run's status, apply the events, write it back unless it changed meanwhile."""
        status = self.db[names.STATUS]
        for _ in range(STATUS_WRITE_ATTEMPTS):
            stored = status.find_one({"run_id": run_id})
            doc = stored
            for event in events:
                doc = apply_to_status(doc, event) or doc
            if doc is stored:
                self.stats.stale_writes += len(events)
                return
            try:
                if stored is None:
                    status.insert_one(doc)
                    return
                if status.replace_one({"run_id": run_id, "seq": stored["seq"]}, doc).matched_count:
                    return
            except DuplicateKeyError:
                pass
            log.info("status of run %s changed while writing; reading it again", run_id)
        raise RuntimeError(f"status of run {run_id} kept changing; gave up after {STATUS_WRITE_ATTEMPTS} tries")

    def _dead_letter(self, entry_id: bytes, fields: dict, reason: str) -> None:
        log.error("dead-lettering entry %s: %s", entry_id, reason[:200])
        payload = {b"original_id": entry_id, b"reason": reason[:2000].encode(), **{
            b"field:" + (k if isinstance(k, bytes) else k.encode()): v for k, v in fields.items()}}
        self.client.xadd(names.DEAD_LETTER_STREAM, payload, maxlen=self.settings.events_stream_maxlen,
                         approximate=True)
        self.stats.dead_lettered += 1
