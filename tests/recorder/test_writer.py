"""The batch write path against a real nx-27017: insert-first, guarded replace, status cache."""

from services.recorder.writer import BatchWriter
from shared import names
from tests.recorder.test_consumer import run_events


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
    lost = {**stored, "status": "lost",  # as the reaper writes it: same seq
            "status_history": [*stored["status_history"], {"status": "lost", "time": stored["heartbeat_at"]}]}
    db[names.STATUS].replace_one({"_id": stored["_id"]}, lost)
    writer.write(events[2:4])
    doc = db[names.STATUS].find_one({"run_id": "r1"})
    assert writer.counts.status_conflicts == 1
    assert doc["status"] == "in_progress" and doc["seq"] == events[3].seq
    assert [h["status"] for h in doc["status_history"]][-2:] == ["lost", "in_progress"]
