"""The batch write path against a real nx-27017: insert-first, guarded replace, status cache."""

from services.recorder.writer import BatchWriter
from shared import names
from shared.schemas.events import SEQ_PER_ATTEMPT, RunCancelled, RunFailed
from tests.utils.events import predictions_event, run_events


def test_an_epoch_finished_in_a_later_batch_replaces_the_inserted_start(db):
    events = run_events("r1", epochs=1)  # run started, epoch started, epoch finished, completed
    BatchWriter(db).write(events[:2])
    assert db[names.EPOCHS].find_one({"run_id": "r1"})["train_loss"] is None
    # A new writer knows nothing: its insert hits the duplicate key and becomes a guarded replace.
    BatchWriter(db).write(events[2:])
    [epoch] = db[names.EPOCHS].find({"run_id": "r1"})
    assert epoch["train_loss"] == 1.0 and epoch["seq"] == events[2].seq
    stale = BatchWriter(db)
    stale.write(events[1:2])  # the start again: the finished epoch stays
    assert db[names.EPOCHS].find_one({"run_id": "r1"})["train_loss"] == 1.0


def test_a_status_changed_by_another_writer_is_read_again(db):
    events = run_events("r1", epochs=2)
    writer = BatchWriter(db)
    writer.write(events[:2])  # cached now
    stored = db[names.STATUS].find_one({"run_id": "r1"})
    lost = {
        **stored,
        "status": "lost",  # as the reaper writes it: same seq
        "status_history": [*stored["status_history"], {"status": "lost", "time": stored["heartbeat_at"]}],
    }
    db[names.STATUS].replace_one({"_id": stored["_id"]}, lost)
    writer.write(events[2:4])
    doc = db[names.STATUS].find_one({"run_id": "r1"})
    assert writer.counts.status_conflicts == 1
    assert doc["status"] == "in_progress" and doc["seq"] == events[3].seq
    assert [h["status"] for h in doc["status_history"]][-2:] == ["lost", "in_progress"]


def second_attempt(event, attempt: int = 2):
    """The same event as a later attempt publishes it (seq = attempt × SEQ_PER_ATTEMPT + n)."""
    update = {"seq": event.seq + (attempt - 1) * SEQ_PER_ATTEMPT}
    return event.model_copy(update=update | ({"attempt": attempt} if hasattr(event, "attempt") else {}))


def test_events_of_an_attempt_older_than_one_seen_are_ignored(db):
    first = run_events("r1", epochs=3)
    writer = BatchWriter(db)
    writer.write(first[:3])  # attempt 1 started and finished epoch 1, then froze
    resumed = [second_attempt(first[0]), second_attempt(first[3])]  # attempt 2 starts epoch 2
    writer.write(resumed)
    # Attempt 1 wakes up: its next epoch, and in one batch its events around attempt 2's.
    writer.write([first[4], first[5]])
    writer.write([first[6], second_attempt(first[4]), first[6]])
    epochs = {e["epoch"]: e for e in db[names.EPOCHS].find({"run_id": "r1"})}
    assert sorted(epochs) == [1, 2]
    assert epochs[2]["seq"] == second_attempt(first[4]).seq and epochs[2]["train_loss"] == 0.5
    status = db[names.STATUS].find_one({"run_id": "r1"})
    assert status["attempt"] == 2 and status["epochs_done"] == 2
    assert writer.counts.superseded_events == 4


def test_an_earlier_attempts_events_sent_before_the_newer_ones_still_count(db):
    # A later attempt sends what an earlier one left in its spill file first, then its own events.
    first = run_events("r1", epochs=2)
    writer = BatchWriter(db)
    writer.write(first[:2])
    writer.write([first[2], first[3], first[4], second_attempt(first[0])])
    assert db[names.EPOCHS].count_documents({"run_id": "r1", "finished_at": {"$ne": None}}) == 2
    assert writer.counts.superseded_events == 0


def test_a_cancelled_run_keeps_no_unfinished_epoch(db):
    events = run_events("r1", epochs=3)[:6]  # epochs 1 and 2 finished, epoch 3 started
    cancelled = RunCancelled(run_id="r1", seq=events[-1].seq + 1, epochs_done=2, time=events[-1].time)
    writer = BatchWriter(db)
    writer.write(events)
    writer.write([cancelled])
    epochs = list(db[names.EPOCHS].find({"run_id": "r1"}))
    assert sorted(e["epoch"] for e in epochs) == [1, 2]
    assert all(e["val_acc"] is not None for e in epochs)
    # The epoch start delivered again (a claimed entry of a dead recorder) does not bring it back.
    BatchWriter(db).write(events[5:6])
    assert db[names.EPOCHS].count_documents({"run_id": "r1"}) == 2


def test_a_failed_run_keeps_no_unfinished_epoch_even_within_one_batch(db):
    events = run_events("r1", epochs=2)[:4]  # epoch 1 finished, epoch 2 started
    failed = RunFailed(run_id="r1", seq=events[-1].seq + 1, error_type="OSError", message="disk full")
    BatchWriter(db).write([*events, failed])
    assert [e["epoch"] for e in db[names.EPOCHS].find({"run_id": "r1"})] == [1]


def test_a_finished_epoch_whose_start_was_removed_meanwhile_is_inserted(db):
    events = run_events("r1", epochs=1)
    writer = BatchWriter(db)
    writer.write(events[:2])  # the epoch's start, inserted by this writer: its finish goes straight to a replace
    db[names.EPOCHS].delete_many({"run_id": "r1"})  # as another recorder storing a cancel would
    writer.write(events[2:3])
    [epoch] = db[names.EPOCHS].find({"run_id": "r1"})
    assert epoch["train_loss"] == 1.0 and epoch["seq"] == events[2].seq
    assert writer.counts.stale_writes == 0


def test_test_predictions_are_stored_once_and_a_newer_attempt_replaces_them(db):
    events = run_events("r1", epochs=1)
    first = predictions_event("r1", events[-1].seq - 1, [True, True, False])
    BatchWriter(db).write([*events[:-1], first, events[-1]])
    BatchWriter(db).write([first])  # redelivered to another recorder: nothing changes
    [stored] = db[names.TEST_PREDICTIONS].find({})
    assert stored["_id"] == "r1" and stored["seq"] == first.seq and len(stored["predictions"]) == 3

    resumed = predictions_event("r1", first.seq + SEQ_PER_ATTEMPT, [False, True, False], split_hash="split-2")
    writer = BatchWriter(db)
    writer.write([resumed])
    writer.write([first])  # the older attempt's, late: ignored
    [stored] = db[names.TEST_PREDICTIONS].find({})
    assert stored["split_hash"] == "split-2" and stored["seq"] == resumed.seq
    assert [p["predicted_class"] == p["true_class"] for p in stored["predictions"]] == [False, True, False]
