"""The recorder's MongoDB write path: one batch of events, each document written once.

Why it is shaped this way (measured on nx-27017, the local MongoDB server; see
docs/benchmarks.md, "Recorder throughput"): an insert costs about as much as the raw
`insert_many` baseline, a replace keyed by `_id` the same, but an upsert that inserts is about
20 times slower, and a replace keyed by (run_id, epoch) scans the collection. So a batch

1. folds its events: every (run, epoch) becomes its final epoch document, every run one status
   document (handlers.fold_writes, apply_to_status), so each document is written once;
2. inserts the epoch/training documents (`insert_many(ordered=False)`) and sends again, as a
   replace keyed by `_id` and guarded by seq, only the ones that already existed (duplicate
   key, code 11000). The live case, an epoch inserted when it started and finished in a later
   batch, goes straight to the replace when this recorder inserted the start itself;
3. writes each run's status from a copy cached between batches (no read per batch), replacing
   it only if the stored copy is still the one cached (`_id`, `seq`, `status`, `archived`).
   When that guard fails, another writer (a second recorder, the API, the reaper) changed the
   run: the cache entry is dropped, the run read again and the events applied on top.

Before any of that, a batch drops the events of an attempt older than the newest one seen for
its run (a paused trainer's, after a newer attempt took the run over), and after the epoch
writes it removes the unfinished epoch of a run that was cancelled or failed, so that every
stored epoch of a finished run has its metrics.

Everything a batch writes is idempotent: the batch may be written again after a failure.
"""

import logging
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from pymongo import ReplaceOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.recorder.handlers import (
    Document,
    DocumentWrite,
    apply_to_status,
    concerns_a_run,
    document_writes,
    ended_runs,
    fold_writes,
)
from shared import names
from shared.schemas.events import EpochStarted, Event, RunQueued, attempt_of
from shared.schemas.jobs import FINISHED_STATES

log = logging.getLogger(__name__)
DUPLICATE_KEY = 11000
STATUS_WRITE_ATTEMPTS = 10
# Epochs this recorder inserted unfinished and remembers, at most; beyond that it forgets them
# all (they are only a shortcut: a forgotten one costs an insert that fails as duplicate).
OPEN_EPOCHS_REMEMBERED = 100_000


@dataclass
class WriteCounts:
    stale_writes: int = 0  # documents not written because the store held the same or newer
    status_conflicts: int = 0  # status writes retried because another writer changed the run
    superseded_events: int = 0  # events of an attempt older than one already seen, ignored


@dataclass
class StatusChange:
    """A run's status document as read (None: not stored yet) and as this batch leaves it."""

    stored: Document | None
    doc: Document

    @property
    def before(self) -> str | None:
        return self.stored["status"] if self.stored else None


class BatchWriter:
    """Writes batches of events; keeps the status documents it wrote for the next batch."""

    def __init__(
        self, db: Database, cache_size: int = 10_000, on_status_stored: Callable[[StatusChange], None] | None = None
    ):
        self.db = db
        self.counts = WriteCounts()
        self._cache_size = cache_size
        self._status_cache: OrderedDict[str, Document] = OrderedDict()
        self._on_status_stored = on_status_stored
        # _ids of documents this writer inserted with replace_if_newer False (started epochs).
        self._inserted_open: set[Any] = set()

    def write(self, events: list[Event]) -> None:
        """Store one batch, given in stream order; safe to call again with the same batch after a failure.

        Events that concern no run (a dataset's audit) are only written to their own documents:
        they never touch, nor are judged by, a run's status.
        """
        others = [event for event in events if not concerns_a_run(event)]
        events = [event for event in events if concerns_a_run(event)]
        events = sorted(self._worth_writing(events), key=lambda e: (e.run_id, e.seq))
        by_collection: dict[str, list[DocumentWrite]] = defaultdict(list)
        for write in fold_writes([w for event in [*events, *others] for w in document_writes(event)]):
            by_collection[write.collection].append(write)
        for collection, writes in by_collection.items():
            self._write_documents(collection, writes)
        self._remove_unfinished_epochs(ended_runs(events))
        by_run: dict[str, list[Event]] = defaultdict(list)
        for event in events:
            by_run[event.run_id].append(event)
        self._write_statuses(by_run)

    def forget(self, run_id: str) -> None:
        self._status_cache.pop(run_id, None)

    def _worth_writing(self, events: list[Event]) -> list[Event]:
        """The events still worth writing, in stream order.

        Ignored: every event of an attempt older than the newest one seen for its run (in the
        stored status, or earlier in the stream): a trainer paused or cut off while a newer
        attempt took the run over (trainer/lease.py). And an epoch start older than the stored
        end of its run (a redelivered entry): it would bring back an epoch that never finished.
        """
        newest: dict[str, int] = {}  # run → its newest attempt seen
        ended_at: dict[str, int] = {}  # run → the seq of its stored end, for finished runs
        current = []
        for event in events:
            run_id = event.run_id
            if run_id not in newest:
                stored = self._cached_or_read(run_id)
                newest[run_id] = attempt_of(stored["seq"]) if stored else 0
                if stored and stored["status"] in FINISHED_STATES:
                    ended_at[run_id] = stored["seq"]
            attempt = attempt_of(event.seq)
            if attempt < newest[run_id] and not isinstance(event, RunQueued):
                self.counts.superseded_events += 1
                continue
            newest[run_id] = attempt
            if isinstance(event, EpochStarted) and event.seq < ended_at.get(run_id, -1):
                self.counts.stale_writes += 1
                continue
            current.append(event)
        if len(current) < len(events):
            log.info("ignored %d event(s) of superseded attempts or ended runs", len(events) - len(current))
        return current

    def _remove_unfinished_epochs(self, run_ids: list[str]) -> None:
        """A cancelled or failed run's epoch that never finished goes: its metrics would stay null."""
        for run_id in run_ids:
            self.db[names.EPOCHS].delete_many({"run_id": run_id, "finished_at": None})

    # --- epochs and trainings ----------------------------------------------------------------

    def _write_documents(self, collection: str, writes: list[DocumentWrite]) -> None:
        known = [w for w in writes if w.replace_if_newer and w.doc["_id"] in self._inserted_open]
        new = [w for w in writes if not (w.replace_if_newer and w.doc["_id"] in self._inserted_open)]
        existing = self._insert_new(collection, new)
        self._replace_if_newer(collection, known + [w for w in existing if w.replace_if_newer])
        self.counts.stale_writes += sum(not w.replace_if_newer for w in existing)

    def _insert_new(self, collection: str, writes: list[DocumentWrite]) -> list[DocumentWrite]:
        """Insert every document; returns the writes whose document was already there."""
        if not writes:
            return []
        failed_at = self._insert_ignoring_duplicates(collection, [w.doc for w in writes])
        self._remember_open([w for i, w in enumerate(writes) if not w.replace_if_newer and i not in failed_at])
        return [writes[i] for i in sorted(failed_at)]

    def _insert_ignoring_duplicates(self, collection: str, docs: list[Document]) -> set[int]:
        """insert_many(ordered=False); the indexes of the documents already stored (their
        unique key taken). Any other write error is raised."""
        try:
            self.db[collection].insert_many([dict(doc) for doc in docs], ordered=False)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            return {e["index"] for e in errors}
        return set()

    def _remember_open(self, inserted: list[DocumentWrite]) -> None:
        if len(self._inserted_open) + len(inserted) > OPEN_EPOCHS_REMEMBERED:
            self._inserted_open.clear()
        self._inserted_open.update(w.doc["_id"] for w in inserted)

    def _replace_if_newer(self, collection: str, writes: list[DocumentWrite]) -> None:
        if not writes:
            return
        operations = [ReplaceOne(_older_copy(w), w.doc) for w in writes]
        matched = self.db[collection].bulk_write(operations, ordered=False).matched_count
        if matched < len(writes):
            self._settle_unmatched(collection, writes)
        self._inserted_open.difference_update(w.doc["_id"] for w in writes)

    def _settle_unmatched(self, collection: str, writes: list[DocumentWrite]) -> None:
        """Some guarded replaces matched nothing: usually the stored copy is as new (a replay).

        A document no longer stored (a cancel or a failure removed the unfinished epoch it
        replaces) is inserted; one that another recorder inserted meanwhile is replaced if older.
        """
        store = self.db[collection]
        for write in writes:
            stored = store.find_one({"_id": write.doc["_id"]}, {"seq": 1})
            if stored is not None:
                if stored["seq"] != write.seq:  # equal: our replace was one that matched
                    self.counts.stale_writes += 1
                continue
            try:
                store.insert_one(dict(write.doc))
            except DuplicateKeyError:
                if not store.replace_one(_older_copy(write), write.doc).matched_count:
                    self.counts.stale_writes += 1

    # --- status ------------------------------------------------------------------------------

    def _write_statuses(self, events_by_run: dict[str, list[Event]]) -> None:
        pending = events_by_run
        for _ in range(STATUS_WRITE_ATTEMPTS):
            changes = []
            for run_id, events in pending.items():
                stored = self._cached_or_read(run_id)
                doc = stored
                for event in events:
                    doc = apply_to_status(doc, event) or doc
                if doc is None or doc is stored:
                    self.counts.stale_writes += len(events)
                else:
                    changes.append(StatusChange(stored, doc))
            conflicts = self._insert_statuses(changes) + self._replace_statuses(changes)
            if not conflicts:
                return
            self.counts.status_conflicts += len(conflicts)
            log.info("status of run(s) %s changed while writing; reading again", ", ".join(conflicts))
            for run_id in conflicts:
                self.forget(run_id)
            pending = {run_id: events_by_run[run_id] for run_id in conflicts}
        raise RuntimeError(
            f"status of runs {sorted(pending)} kept changing; gave up after {STATUS_WRITE_ATTEMPTS} tries"
        )

    def _cached_or_read(self, run_id: str) -> Document | None:
        doc = self._status_cache.get(run_id)
        if doc is None:
            doc = self.db[names.STATUS].find_one({"run_id": run_id})
            if doc is not None:
                self._remember(doc)
        else:
            self._status_cache.move_to_end(run_id)
        return doc

    def _remember(self, doc: Document) -> None:
        self._status_cache[doc["run_id"]] = doc
        self._status_cache.move_to_end(doc["run_id"])
        while len(self._status_cache) > self._cache_size:
            self._status_cache.popitem(last=False)

    def _insert_statuses(self, changes: list[StatusChange]) -> list[str]:
        """Insert the runs no one had stored; returns those someone stored meanwhile."""
        new = [change for change in changes if change.stored is None]
        if not new:
            return []
        for change in new:
            change.doc["_id"] = ObjectId()
        failed = self._insert_ignoring_duplicates(names.STATUS, [change.doc for change in new])
        for index, change in enumerate(new):
            if index not in failed:
                self._status_written(change)
        return [new[index].doc["run_id"] for index in sorted(failed)]

    def _replace_statuses(self, changes: list[StatusChange]) -> list[str]:
        """Replace the runs whose stored copy is still the one read; returns the others."""
        updates, operations = [], []
        for change in changes:
            if change.stored is not None:
                updates.append(change)
                operations.append(ReplaceOne(_status_guard(change.stored), change.doc))
        if not updates:
            return []
        if self.db[names.STATUS].bulk_write(operations, ordered=False).matched_count == len(updates):
            for change in updates:
                self._status_written(change)
            return []
        # The bulk result does not say which guards failed: look at what is stored now.
        conflicts = []
        for change in updates:
            stored = self.db[names.STATUS].find_one({"_id": change.doc["_id"]})
            if stored is None or stored["seq"] < change.doc["seq"]:
                conflicts.append(change.doc["run_id"])
                continue
            if stored["seq"] == change.doc["seq"]:
                self._status_written(change)  # our replace matched (the reaper may have written after it)
            else:
                self.counts.stale_writes += 1  # another recorder stored newer events meanwhile
            self._remember(stored)
        return conflicts

    def _status_written(self, change: StatusChange) -> None:
        self._remember(change.doc)
        if self._on_status_stored is not None:
            self._on_status_stored(change)


def _older_copy(write: DocumentWrite) -> dict[str, Any]:
    """Matches the write's document only while the stored copy is older than the write."""
    return {"_id": write.doc["_id"], "seq": {"$lt": write.seq}}


def _status_guard(stored: Document) -> dict[str, Any]:
    """Matches the stored status only while it is still the copy that was read.

    Other writers change what they change visibly: the API's own writes bump `seq`, the
    reaper sets `status` to lost (keeping `seq`), archiving sets `archived`.
    """
    guard = {"_id": stored["_id"], "seq": stored["seq"], "status": stored["status"]}
    if "archived" in stored:
        guard["archived"] = stored["archived"]
    return guard
