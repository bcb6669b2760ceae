"""How each event changes the stored runs: one handler per event type.

Delivery is at-least-once, so every write may be applied twice or out of order, and every
write is built to be harmless then:
- a run's `status` document is changed in memory by `apply_to_status` (events older than
  the stored `seq` are skipped) and written back whole by the consumer, guarded by the seq
  it read (optimistic concurrency between recorders);
- `epochs` and `trainings` documents are written whole (`document_writes`): inserted if absent
  (epoch started) or replaced only when the event is newer than the stored copy (epoch
  finished, run completed). A stale write changes nothing.

Epoch and training documents get a deterministic `_id` (`"{run_id}:{epoch}"`, the run id):
on nx-27017 a replace keyed by `_id` costs the same however large the collection grows,
while one keyed by (run_id, epoch) scans it. The unique indexes stay the guarantee.

Whole-document writes also keep dates as BSON dates: nx-27017 stores a datetime given to
`$set` as a string (seen with 0.8.1), but keeps it in inserted and replaced documents.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared import names
from shared.schemas.datasets import AuditSummary
from shared.schemas.events import (
    CheckpointSaved,
    DatasetAudited,
    EpochFinished,
    EpochProgress,
    EpochStarted,
    EvaluationFinished,
    Event,
    Heartbeat,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunPruned,
    RunQueued,
    RunStarted,
    TestPredictions,
)
from shared.schemas.jobs import SUMMARY_METRICS
from shared.store import new_status_document, start_fields

Document = dict[str, Any]
EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "epoch_time_sec")
# What a `test_predictions` document keeps of its event.
PREDICTION_FIELDS = {"run_id", "time", "split_hash", "class_names", "predictions"}


# --- status: (document, event) → the document changed in place --------------------------


def on_run_started(doc: Document, event: RunStarted) -> None:
    doc.update(
        start_fields(event.time),
        status="in_progress",
        end_time=None,
        attempt=event.attempt,
        resumed_from_epoch=event.resumed_from_epoch,
        worker=event.worker,
        device=event.device,
        epochs_planned=event.epochs_planned,
        class_names=event.class_names,
        split_sizes=event.split_sizes,
        split=event.split.model_dump() if event.split else None,
        error=None,
        traceback_tail=None,
    )


def on_heartbeat(doc: Document, event: Heartbeat) -> None:
    # heartbeat_at is set for every event; a heartbeat without GPU figures leaves the last ones.
    if event.gpu is not None:
        doc["gpu"] = [reading.model_dump() for reading in event.gpu]


def on_epoch_started(doc: Document, event: EpochStarted) -> None:
    doc.update(current_epoch=event.epoch, progress=None)


def on_epoch_progress(doc: Document, event: EpochProgress) -> None:
    doc.update(
        current_epoch=event.epoch,
        images_per_sec=event.images_per_sec,
        progress={
            "epoch": event.epoch,
            "batch": event.batch,
            "batches": event.batches,
            "running_loss": event.running_loss,
            "running_acc": event.running_acc,
        },
    )


def on_checkpoint_saved(doc: Document, event: CheckpointSaved) -> None:
    doc["checkpoints"] = {**(doc.get("checkpoints") or {}), event.kind: {"epoch": event.epoch, "path": event.path}}


def on_evaluation_finished(doc: Document, event: EvaluationFinished) -> None:
    doc["evaluation"] = {
        "split": event.split,
        "accuracy": event.accuracy,
        "loss": event.loss,
        "f1_macro": event.f1_macro,
        "images": event.images,
    }


def on_test_predictions(doc: Document, event: TestPredictions) -> None:
    pass  # stored whole in `test_predictions` (document_writes); `status` stays small


def on_epoch_finished(doc: Document, event: EpochFinished) -> None:
    doc.update(
        current_epoch=event.epoch,
        epochs_done=event.epoch,
        latest={name: getattr(event, name) for name in EPOCH_METRICS},
    )


def on_run_completed(doc: Document, event: RunCompleted) -> None:
    summary = event.summary
    # The summary's metrics ride along in `status`, so lists filter and sort on one collection.
    doc.update(
        status="completed",
        end_time=summary.end_time,
        epochs_done=summary.epochs_run,
        error=None,
        progress=None,
        metrics={name: getattr(summary, name) for name in SUMMARY_METRICS},
    )


def on_run_failed(doc: Document, event: RunFailed) -> None:
    doc.update(
        status="failed",
        end_time=event.time,
        error=f"{event.error_type}: {event.message}",
        traceback_tail=event.traceback_tail,
    )


def on_run_cancelled(doc: Document, event: RunCancelled) -> None:
    doc.update(status="cancelled", end_time=event.time)


def on_run_pruned(doc: Document, event: RunPruned) -> None:
    doc.update(status="pruned", end_time=event.time, epochs_done=event.epochs_done, progress=None)


STATUS_HANDLERS: dict[type, Callable[[Document, Any], None]] = {
    RunStarted: on_run_started,
    Heartbeat: on_heartbeat,
    EpochStarted: on_epoch_started,
    EpochProgress: on_epoch_progress,
    EpochFinished: on_epoch_finished,
    CheckpointSaved: on_checkpoint_saved,
    EvaluationFinished: on_evaluation_finished,
    TestPredictions: on_test_predictions,
    RunCompleted: on_run_completed,
    RunFailed: on_run_failed,
    RunCancelled: on_run_cancelled,
    RunPruned: on_run_pruned,
}


def concerns_a_run(event: Event) -> bool:
    """False for an event about something else (a dataset's audit): it has no status document."""
    return not isinstance(event, DatasetAudited)


def apply_to_status(doc: Document | None, event: Event) -> Document | None:
    """The status document after event, or None when the event is not newer than doc (or,
    like run_queued, which the API wrote itself, never changes it; or it concerns no run)."""
    if isinstance(event, RunQueued) or not concerns_a_run(event) or (doc is not None and event.seq <= doc["seq"]):
        return None
    if doc is None:
        spec = event.spec if isinstance(event, RunStarted) else {}
        doc = new_status_document(event.run_id, spec, spec.get("version") or "v0", created_at=event.time)
    doc = dict(doc)
    status_before = doc["status"]
    if status_before == "lost":
        # The reaper gave the run up, but any event proves its trainer is alive again.
        doc.update(status="in_progress", lost_at=None)
    STATUS_HANDLERS[type(event)](doc, event)
    if doc["status"] != status_before:
        doc["status_history"] = [*doc["status_history"], {"status": doc["status"], "time": event.time}]
    doc["seq"] = event.seq
    # The newest event time: a resumed attempt restates its checkpoint's epochs with their old times.
    doc["heartbeat_at"] = max(event.time, doc.get("heartbeat_at") or event.time)
    return doc


# --- epochs and trainings: whole-document writes ---------------------------------------


@dataclass(frozen=True)
class DocumentWrite:
    """One whole `epochs`, `trainings`, `test_predictions` or `audits` document and how it may land.

    replace_if_newer False: inserted if absent, an existing document is kept (epoch started).
    replace_if_newer True: inserted if absent, else replaces a stored copy with a lower seq.
    """

    collection: str
    doc: Document  # carries its deterministic _id and its seq
    replace_if_newer: bool

    @property
    def seq(self) -> int:
        return self.doc["seq"]


def epoch_document_id(run_id: str, epoch: int) -> str:
    return f"{run_id}:{epoch}"


def document_writes(event: Event) -> list[DocumentWrite]:
    """The `epochs`, `trainings`, `test_predictions` and `audits` writes of one event (most events have none)."""
    if isinstance(event, EpochStarted):
        # Inserted when the epoch starts so the dashboard shows it at once; a replay changes nothing.
        doc = epoch_document(event, started_at=event.time, finished_at=None, metrics=dict.fromkeys(EPOCH_METRICS))
        return [DocumentWrite(names.EPOCHS, doc, replace_if_newer=False)]
    if isinstance(event, EpochFinished):
        started_at = event.time - timedelta(seconds=event.epoch_time_sec)
        metrics = {name: getattr(event, name) for name in EPOCH_METRICS}
        doc = epoch_document(event, started_at=started_at, finished_at=event.time, metrics=metrics)
        return [DocumentWrite(names.EPOCHS, doc, replace_if_newer=True)]
    if isinstance(event, RunCompleted):
        doc = {"_id": event.run_id, **event.summary.model_dump(), "seq": event.seq}
        return [DocumentWrite(names.TRAININGS, doc, replace_if_newer=True)]
    if isinstance(event, TestPredictions):
        # A resumed attempt evaluates again: its newer predictions replace the older ones.
        doc = {"_id": event.run_id, **event.model_dump(include=PREDICTION_FIELDS), "seq": event.seq}
        return [DocumentWrite(names.TEST_PREDICTIONS, doc, replace_if_newer=True)]
    if isinstance(event, DatasetAudited):
        return [DocumentWrite(names.AUDITS, audit_document(event), replace_if_newer=True)]
    return []


def audit_document(event: DatasetAudited) -> Document:
    """A dataset's `audits` document: its latest audit whole, and the summary lists read alone.

    Keyed by the dataset's name; its `seq` is the audit's time in milliseconds, so the guarded
    replace keeps the newest audit whatever order audits arrive in (a redelivery changes nothing).
    """
    audit = event.audit
    return {
        "_id": audit.dataset,
        **audit.model_dump(),
        "summary": AuditSummary.of(audit).model_dump(),
        "published_by": event.run_id,
        "seq": int(audit.audited_at.timestamp() * 1000),
    }


def epoch_document(
    event: EpochStarted | EpochFinished, started_at: datetime, finished_at: datetime | None, metrics: Document
) -> Document:
    """An `epochs` document whole, the original's fields (metrics null until the epoch ends) and ours."""
    return {
        "_id": epoch_document_id(event.run_id, event.epoch),
        "run_id": event.run_id,
        "epoch": event.epoch,
        "seq": event.seq,
        "started_at": started_at,
        "finished_at": finished_at,
        **metrics,
    }


def ended_runs(events: list[Event]) -> list[str]:
    """Runs that a cancel, a prune or a failure ended in these events: their unfinished epoch is removed."""
    return sorted({event.run_id for event in events if isinstance(event, RunCancelled | RunPruned | RunFailed)})


def fold_writes(writes: list[DocumentWrite]) -> list[DocumentWrite]:
    """One write per document: what applying all of them one by one would leave stored.

    A replace-if-newer write beats an insert-only one (the finished epoch beats its start),
    the newest replace beats older ones, and of insert-only writes the oldest is kept (the
    first insert wins, later ones find the document there).
    """
    winners: dict[tuple[str, Any], DocumentWrite] = {}
    for write in writes:
        key = (write.collection, write.doc["_id"])
        current = winners.get(key)
        if current is None or _beats(write, current):
            winners[key] = write
    return list(winners.values())


def _beats(write: DocumentWrite, current: DocumentWrite) -> bool:
    if write.replace_if_newer != current.replace_if_newer:
        return write.replace_if_newer
    return write.seq > current.seq if write.replace_if_newer else write.seq < current.seq
