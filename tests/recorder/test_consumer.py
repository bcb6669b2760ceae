"""The recorder against a real redis-server and nx-27017: at-least-once delivery made exact."""

import threading
from datetime import datetime

import pytest
import redis

from services.recorder.consumer import Recorder
from services.recorder.settings import RecorderSettings
from shared import names
from shared.store import new_status_document
from tests.utils.events import SPEC, T0, drain, publish, run_events


@pytest.fixture
def recorder(settings, db, redis_client) -> Recorder:
    recorder = Recorder(redis_client, db, RecorderSettings(consumer_name="test", block_ms=100))
    recorder.ensure_group()
    return recorder


def snapshot(db) -> dict:
    return {
        c: sorted((({k: v for k, v in d.items() if k != "_id"}) for d in db[c].find()), key=repr)
        for c in (names.STATUS, names.EPOCHS, names.TRAININGS)
    }


def test_a_run_is_stored_with_the_original_field_types(recorder, db, redis_client):
    db[names.STATUS].insert_one(new_status_document("r1", SPEC, "v1", created_at=T0))
    publish(redis_client, run_events("r1"))
    drain(recorder)
    status = db[names.STATUS].find_one({"run_id": "r1"})
    assert status["status"] == "completed" and status["epochs_done"] == 3
    assert isinstance(status["start_time"], datetime) and isinstance(status["end_time"], datetime)
    epochs = list(db[names.EPOCHS].find({"run_id": "r1"}).sort("epoch", 1))
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert all(isinstance(e["val_acc"], float) and isinstance(e["finished_at"], datetime) for e in epochs)
    training = db[names.TRAININGS].find_one({"run_id": "r1"})
    assert training["test_accuracy"] == 0.7 and isinstance(training["end_time"], datetime)
    assert redis_client.xpending(names.EVENTS_STREAM, names.RECORDER_GROUP)["pending"] == 0


def test_replaying_the_whole_stream_changes_nothing(recorder, db, redis_client):
    events = run_events("r1") + run_events("r2")
    publish(redis_client, events)
    drain(recorder)
    before = snapshot(db)
    publish(redis_client, events)  # at-least-once: everything delivered again
    drain(recorder)
    assert snapshot(db) == before
    assert recorder.stats.events_stored == 2 * len(events)


def test_an_epoch_inserted_at_start_shows_before_it_ends(recorder, db, redis_client):
    events = run_events("r1")
    publish(redis_client, events[:2])  # run started, epoch 1 started
    drain(recorder)
    [epoch] = db[names.EPOCHS].find({"run_id": "r1"})
    assert epoch["epoch"] == 1 and epoch["train_loss"] is None
    assert db[names.STATUS].find_one({"run_id": "r1"})["current_epoch"] == 1


def test_an_older_event_delivered_late_does_not_overwrite(recorder, db, redis_client):
    events = run_events("r1")
    publish(redis_client, events)
    drain(recorder)
    publish(redis_client, [events[0], events[3]])  # run started and epoch 1 finished, again
    drain(recorder)
    status = db[names.STATUS].find_one({"run_id": "r1"})
    assert status["status"] == "completed" and status["epochs_done"] == 3


def test_malformed_entries_are_dead_lettered_and_later_events_stored(recorder, db, redis_client):
    redis_client.xadd(names.EVENTS_STREAM, {"event": b'{"type": "epoch_finished", "run_id": 5}'})
    redis_client.xadd(names.EVENTS_STREAM, {"something": b"else"})
    publish(redis_client, run_events("r1"))
    drain(recorder)
    dead = redis_client.xrange(names.DEAD_LETTER_STREAM)
    assert len(dead) == 2 and all(b"reason" in fields for _id, fields in dead)
    assert recorder.stats.dead_lettered == 2
    assert db[names.STATUS].find_one({"run_id": "r1"})["status"] == "completed"
    assert redis_client.xpending(names.EVENTS_STREAM, names.RECORDER_GROUP)["pending"] == 0


def test_entries_read_but_not_acknowledged_are_stored_after_a_restart(settings, db, redis_client):
    publish(redis_client, run_events("r1"))
    crashed = Recorder(redis_client, db, RecorderSettings(consumer_name="rec-1"))
    crashed.ensure_group()
    assert crashed._read(">")  # read, then "died" before writing or acknowledging
    assert db[names.STATUS].count_documents({}) == 0
    restarted = Recorder(redis_client, db, RecorderSettings(consumer_name="rec-1", block_ms=100))
    stops = iter([False, True])
    restarted.run_forever(should_stop=lambda: next(stops))
    assert db[names.STATUS].find_one({"run_id": "r1"})["status"] == "completed"
    assert db[names.EPOCHS].count_documents({"run_id": "r1"}) == 3


def test_a_redis_error_is_waited_out_and_the_batch_it_interrupted_written_again(settings, db, redis_client):
    """Redis goes away after a batch was written but before its acknowledgement (the real
    restart is tests/test_redis_restart.py): the recorder keeps running and the batch, still
    pending, is read again; its second write changes nothing."""
    publish(redis_client, run_events("r1"))
    recorder = Recorder(redis_client, db, RecorderSettings(consumer_name="rec", block_ms=100, retry_backoff_s=0.01))
    real_xack, failures = redis_client.xack, []

    def xack_fails_once(*args):
        if not failures:
            failures.append(args)
            raise redis.ConnectionError("Connection closed by server.")
        return real_xack(*args)

    redis_client.xack = xack_fails_once
    stops = iter([False, False, True])
    recorder.run_forever(should_stop=lambda: next(stops))
    assert failures and recorder.stats.redis_errors == 1
    assert recorder.stats.events_stored == len(run_events("r1"))  # counted once, after its acknowledgement
    assert db[names.STATUS].find_one({"run_id": "r1"})["status"] == "completed"
    assert db[names.EPOCHS].count_documents({"run_id": "r1"}) == 3
    assert redis_client.xpending(names.EVENTS_STREAM, names.RECORDER_GROUP)["pending"] == 0


def test_two_recorders_in_one_group_share_the_stream_and_store_each_event_once(settings, db, redis_client):
    runs = [f"r{n}" for n in range(40)]
    events = [event for run_id in runs for event in run_events(run_id, epochs=5)]
    publish(redis_client, events)
    recorders = [
        Recorder(
            redis.Redis.from_url(settings.redis_url),
            db,
            RecorderSettings(consumer_name=name, batch_size=10, block_ms=50),
        )
        for name in ("rec-a", "rec-b")
    ]
    recorders[0].ensure_group()
    last_id = redis_client.xinfo_stream(names.EVENTS_STREAM)["last-generated-id"]

    def all_acknowledged() -> bool:
        info = redis_client.xinfo_groups(names.EVENTS_STREAM)[0]
        return info["pending"] == 0 and info["last-delivered-id"] == last_id

    threads = [threading.Thread(target=r.run_forever, kwargs={"should_stop": all_acknowledged}) for r in recorders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)

    stored = [r.stats.events_stored for r in recorders]
    assert sum(stored) == len(events) and min(stored) > 0  # each event once, both did work
    assert db[names.EPOCHS].count_documents({}) == len(runs) * 5
    assert {doc["status"] for doc in db[names.STATUS].find()} == {"completed"}
    assert all(doc["epochs_done"] == 5 for doc in db[names.STATUS].find())
