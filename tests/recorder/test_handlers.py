"""The status document's lifecycle, event by event (pure logic, no database)."""

from datetime import UTC, datetime, timedelta

from services.recorder.handlers import apply_to_status, document_writes, fold_writes
from shared import names
from shared.schemas.events import (
    CheckpointSaved,
    EpochFinished,
    EpochProgress,
    EpochStarted,
    EvaluationFinished,
    Heartbeat,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunPruned,
    RunQueued,
    RunStarted,
)
from shared.schemas.splits import SplitRecord
from shared.store import new_status_document
from tests.utils.events import h200_reading, predictions_event, training_summary

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = {"model_name": "custom_cnn", "dataset": "d", "epochs": 2, "version": "v4"}


def queued() -> dict:
    return new_status_document("r1", SPEC, "v4", created_at=T0)


def started(seq: int = 10) -> RunStarted:
    return RunStarted(
        run_id="r1",
        seq=seq,
        time=T0,
        spec=SPEC,
        attempt=1,
        worker="w",
        device="cpu",
        epochs_planned=2,
        class_names=["a", "b"],
        split_sizes={"train": 6, "val": 2, "test": 2},
    )


def finished_epoch(epoch: int, seq: int) -> EpochFinished:
    return EpochFinished(
        run_id="r1",
        seq=seq,
        time=T0 + timedelta(seconds=epoch),
        epoch=epoch,
        train_loss=1 / epoch,
        train_acc=0.5,
        val_loss=1 / epoch,
        val_acc=0.5,
        epoch_time_sec=1.0,
    )


def test_lifecycle_queued_to_completed():
    doc = apply_to_status(queued(), started())
    assert (doc["status"], doc["start_time"], doc["attempt"], doc["seq"]) == ("in_progress", T0, 1, 10)
    doc = apply_to_status(doc, EpochStarted(run_id="r1", seq=11, epoch=1))
    assert doc["current_epoch"] == 1 and doc["epochs_done"] == 0
    doc = apply_to_status(doc, finished_epoch(1, 12))
    assert doc["epochs_done"] == 1 and doc["latest"]["train_loss"] == 1.0
    doc = apply_to_status(doc, failed(13))
    assert doc["status"] == "failed" and doc["error"] == "DatasetError: gone"
    assert doc["created_at"] == T0 and doc["spec"] == SPEC  # kept from the queued document


def failed(seq: int) -> RunFailed:
    return RunFailed(run_id="r1", seq=seq, error_type="DatasetError", message="gone")


def test_an_older_event_never_overwrites_newer_state():
    doc = apply_to_status(apply_to_status(queued(), started(10)), failed(20))
    assert apply_to_status(doc, finished_epoch(1, 15)) is None
    assert apply_to_status(doc, failed(20)) is None  # a replay of the same event


def test_heartbeat_only_moves_the_heartbeat():
    doc = apply_to_status(queued(), started(10))
    later = T0 + timedelta(seconds=30)
    after = apply_to_status(doc, Heartbeat(run_id="r1", seq=11, time=later))
    assert after["heartbeat_at"] == later
    assert {k: v for k, v in after.items() if k not in ("heartbeat_at", "seq")} == {
        k: v for k, v in doc.items() if k not in ("heartbeat_at", "seq")
    }


def test_a_heartbeat_with_gpu_figures_keeps_them_and_one_without_leaves_them():
    doc = apply_to_status(queued(), started(10))
    assert doc["gpu"] is None
    reading = h200_reading(utilization_pct=87.0, memory_used_mib=30_000.0, memory_total_mib=143_771.0)
    doc = apply_to_status(doc, Heartbeat(run_id="r1", seq=11, gpu=[reading]))
    assert doc["gpu"] == [reading.model_dump()]
    doc = apply_to_status(doc, Heartbeat(run_id="r1", seq=12))
    assert doc["gpu"] == [reading.model_dump()] and doc["seq"] == 12


def test_a_run_unknown_to_the_store_is_created_whole_from_run_started():
    doc = apply_to_status(None, started())
    assert set(doc) == set(queued())
    assert (doc["model_name"], doc["version"], doc["status"]) == ("custom_cnn", "v4", "in_progress")


def test_epoch_writes_insert_at_start_and_replace_only_when_newer():
    [insert] = document_writes(EpochStarted(run_id="r1", seq=11, epoch=1, time=T0))
    assert (insert.collection, insert.replace_if_newer, insert.doc["run_id"], insert.doc["epoch"]) == (
        names.EPOCHS,
        False,
        "r1",
        1,
    )
    assert insert.doc["train_loss"] is None and insert.doc["started_at"] == T0
    [replace] = document_writes(finished_epoch(1, 12))
    assert replace.replace_if_newer and replace.seq == 12
    assert replace.doc["_id"] == insert.doc["_id"]  # one document per run and epoch, found by _id
    assert replace.doc["started_at"] == T0 and replace.doc["val_loss"] == 1.0


def test_a_batch_writes_each_epoch_document_once_as_it_would_end_up():
    started = document_writes(EpochStarted(run_id="r1", seq=11, epoch=1, time=T0))
    finished = document_writes(finished_epoch(1, 12))
    replayed_start = document_writes(EpochStarted(run_id="r1", seq=13, epoch=1, time=T0))
    next_start = document_writes(EpochStarted(run_id="r1", seq=14, epoch=2, time=T0))
    folded = fold_writes(replayed_start + finished + started + next_start)
    assert [(w.doc["epoch"], w.seq) for w in folded] == [(1, 12), (2, 14)]
    older_finish = document_writes(finished_epoch(1, 10))
    assert [w.seq for w in fold_writes(finished + older_finish)] == [12]  # the newest replace wins
    assert [w.seq for w in fold_writes(replayed_start + started)] == [11]  # the first insert wins


def test_completion_writes_the_trainings_document():
    summary = training_summary(
        "r1", version="v4", dropout=None, epochs_run=2, duration_minutes=1.5, end_time=T0 + timedelta(minutes=1.5)
    )
    event = RunCompleted(run_id="r1", seq=30, summary=summary)
    [replace] = document_writes(event)
    assert (replace.collection, replace.doc["_id"], replace.replace_if_newer) == (names.TRAININGS, "r1", True)
    assert replace.doc["test_accuracy"] == 0.7 and replace.doc["seq"] == 30
    doc = apply_to_status(apply_to_status(queued(), started()), event)
    assert (doc["status"], doc["end_time"], doc["epochs_done"]) == ("completed", summary.end_time, 2)
    assert doc["metrics"] == {
        "train_accuracy": 0.9,
        "val_accuracy": 0.8,
        "test_accuracy": 0.7,
        "test_loss": 0.4,
        "test_f1_macro": None,
        "best_val_loss": 0.3,
        "duration_minutes": 1.5,
        "epochs_run": 2,
    }


def test_status_changes_are_kept_in_the_history():
    doc = apply_to_status(queued(), started())
    doc = apply_to_status(doc, EpochStarted(run_id="r1", seq=11, epoch=1))
    doc = apply_to_status(doc, failed(12))
    assert [h["status"] for h in doc["status_history"]] == ["queued", "in_progress", "failed"]
    assert doc["status_history"][1]["time"] == T0


def lost(doc: dict, when: datetime) -> dict:
    """The document as the reaper leaves it (recorder/reaper.py): status lost, seq unchanged."""
    return {
        **doc,
        "status": "lost",
        "lost_at": when,
        "status_history": [*doc["status_history"], {"status": "lost", "time": when}],
    }


def test_a_lost_run_whose_heartbeats_resume_is_in_progress_again():
    doc = lost(apply_to_status(queued(), started(10)), T0 + timedelta(minutes=3))
    back = T0 + timedelta(minutes=4)
    doc = apply_to_status(doc, Heartbeat(run_id="r1", seq=11, time=back))
    assert (doc["status"], doc["lost_at"], doc["heartbeat_at"]) == ("in_progress", None, back)
    assert [(h["status"], h["time"]) for h in doc["status_history"][1:]] == [
        ("in_progress", T0),
        ("lost", T0 + timedelta(minutes=3)),
        ("in_progress", back),
    ]


def test_a_lost_run_can_still_end_and_a_stale_event_does_not_revive_it():
    doc = lost(apply_to_status(queued(), started(10)), T0 + timedelta(minutes=3))
    assert apply_to_status(doc, finished_epoch(1, 10)) is None  # not newer than what made it lost
    doc = apply_to_status(doc, failed(11))
    assert [h["status"] for h in doc["status_history"]] == ["queued", "in_progress", "lost", "failed"]


def test_a_cancelled_run_ends_at_the_event_time():
    doc = apply_to_status(queued(), started(10))
    stopped = T0 + timedelta(minutes=2)
    doc = apply_to_status(doc, RunCancelled(run_id="r1", seq=11, time=stopped, epochs_done=1))
    assert (doc["status"], doc["end_time"]) == ("cancelled", stopped)
    assert [h["status"] for h in doc["status_history"]] == ["queued", "in_progress", "cancelled"]


def test_a_pruned_run_ends_pruned_with_the_epochs_it_trained():
    doc = apply_to_status(queued(), started(10))
    stopped = T0 + timedelta(minutes=1)
    doc = apply_to_status(doc, RunPruned(run_id="r1", seq=11, time=stopped, epochs_done=3))
    assert (doc["status"], doc["end_time"], doc["epochs_done"]) == ("pruned", stopped, 3)
    assert [h["status"] for h in doc["status_history"]] == ["queued", "in_progress", "pruned"]


def test_a_run_cancelled_while_queued_stays_cancelled_when_a_worker_reports_it():
    doc = {
        **queued(),
        "status": "cancelled",
        "seq": 1,
        "status_history": [{"status": "queued", "time": T0}, {"status": "cancelled", "time": T0}],
    }
    doc = apply_to_status(doc, RunCancelled(run_id="r1", seq=10, time=T0 + timedelta(seconds=5)))
    assert doc["status"] == "cancelled" and len(doc["status_history"]) == 2


def test_progress_checkpoints_and_evaluation_land_in_status():
    doc = apply_to_status(apply_to_status(queued(), started(10)), EpochStarted(run_id="r1", seq=11, epoch=1))
    doc = apply_to_status(
        doc,
        EpochProgress(
            run_id="r1", seq=12, epoch=1, batch=3, batches=10, running_loss=0.9, running_acc=0.4, images_per_sec=52.0
        ),
    )
    assert doc["progress"] == {"epoch": 1, "batch": 3, "batches": 10, "running_loss": 0.9, "running_acc": 0.4}
    assert doc["images_per_sec"] == 52.0 and doc["epochs_done"] == 0
    doc = apply_to_status(doc, CheckpointSaved(run_id="r1", seq=13, epoch=1, kind="best", path="r1/best.pt"))
    doc = apply_to_status(doc, CheckpointSaved(run_id="r1", seq=14, epoch=1, kind="last", path="r1/last.pt"))
    assert doc["checkpoints"] == {
        "best": {"epoch": 1, "path": "r1/best.pt"},
        "last": {"epoch": 1, "path": "r1/last.pt"},
    }
    doc = apply_to_status(doc, EpochStarted(run_id="r1", seq=15, epoch=2))
    assert doc["progress"] is None and doc["images_per_sec"] == 52.0  # the speed stays shown
    doc = apply_to_status(doc, EvaluationFinished(run_id="r1", seq=16, accuracy=0.75, loss=0.6, f1_macro=0.7, images=8))
    assert doc["evaluation"] == {"split": "test", "accuracy": 0.75, "loss": 0.6, "f1_macro": 0.7, "images": 8}
    assert doc["status"] == "in_progress"


def test_run_queued_never_changes_a_status():
    event = RunQueued(run_id="r1", seq=0, model_name="custom_cnn", version="v4")
    assert apply_to_status(queued(), event) is None
    assert apply_to_status(None, event) is None
    assert document_writes(event) == []


def test_test_predictions_are_one_document_per_run_and_leave_the_status_small():
    event = predictions_event("r1", 20, [True, False, True])
    [write] = document_writes(event)
    assert (write.collection, write.doc["_id"], write.replace_if_newer, write.seq) == (
        names.TEST_PREDICTIONS,
        "r1",
        True,
        20,
    )
    assert write.doc["split_hash"] == "split-1" and write.doc["class_names"] == ["a", "b"]
    assert [entry["predicted_class"] == entry["true_class"] for entry in write.doc["predictions"]] == [
        True,
        False,
        True,
    ]
    assert write.doc["predictions"][0] == {
        "file": "a/img-000.png",
        "group": "photo-0",
        "true_class": "a",
        "predicted_class": "a",
        "probabilities": [0.9, 0.1],
    }
    doc = apply_to_status(apply_to_status(queued(), started()), event)
    assert doc["seq"] == 20 and "predictions" not in doc and doc["status"] == "in_progress"


def test_the_split_a_run_started_with_is_kept_in_its_status():
    split = SplitRecord(method="grouped", split_seed=3, group_source="audit", groups=7, split_hash="ab12")
    doc = apply_to_status(queued(), started().model_copy(update={"split": split}))
    assert doc["split"] == split.model_dump() and doc["split"]["group_source"] == "audit"
    assert apply_to_status(queued(), started())["split"] is None  # a trainer from before splits kept groups
