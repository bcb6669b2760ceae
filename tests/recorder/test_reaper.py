"""The reaper against a real nx-27017: silent runs become lost, fresh ones and newer writes are left alone."""

import time
from datetime import timedelta

from services.recorder.handlers import apply_to_status
from services.recorder.reaper import Reaper, reap_lost_runs
from shared import names
from shared.schemas.events import Heartbeat, utc_now
from shared.settings import LivenessSettings
from shared.store import new_status_document
from tests.utils.documents import store_running

SPEC = {"model_name": "custom_cnn", "dataset": "d", "epochs": 2, "version": "v1"}


def test_only_runs_silent_past_the_timeout_are_marked_lost(db):
    store_running(db, "silent", heartbeat_age_s=300)
    store_running(db, "alive", heartbeat_age_s=5)
    db[names.STATUS].insert_one(new_status_document("waiting", SPEC, "v1", created_at=utc_now() - timedelta(hours=1)))
    now = utc_now()
    assert reap_lost_runs(db, timeout_s=120, now=now) == ["silent"]

    silent = db[names.STATUS].find_one({"run_id": "silent"})
    assert (silent["status"], silent["lost_at"], silent["seq"]) == ("lost", now, 1_000_000_001)
    assert silent["status_history"][-1] == {"status": "lost", "time": now}
    assert db[names.STATUS].find_one({"run_id": "alive"})["status"] == "in_progress"
    assert db[names.STATUS].find_one({"run_id": "waiting"})["status"] == "queued"
    assert reap_lost_runs(db, timeout_s=120) == []  # already lost: not marked twice


def test_a_heartbeat_after_the_reaper_revives_the_run(db):
    store_running(db, "r1", heartbeat_age_s=300)
    reap_lost_runs(db, timeout_s=120)
    stored = db[names.STATUS].find_one({"run_id": "r1"})
    revived = apply_to_status(stored, Heartbeat(run_id="r1", seq=1_000_000_002))
    assert revived is not None and revived["status"] == "in_progress"


def test_a_run_written_meanwhile_is_left_alone(db, monkeypatch):
    doc = store_running(db, "r1", heartbeat_age_s=300)
    newer = apply_to_status(doc, Heartbeat(run_id="r1", seq=1_000_000_002))
    collection = db[names.STATUS]
    real_replace = type(collection).replace_one

    def consumer_writes_first(self, guard, replacement, *args, **kwargs):
        real_replace(self, {"run_id": "r1"}, newer)  # the consumer stored a heartbeat in between
        return real_replace(self, guard, replacement, *args, **kwargs)

    monkeypatch.setattr(type(collection), "replace_one", consumer_writes_first)
    assert reap_lost_runs(db, timeout_s=120) == []
    monkeypatch.undo()
    assert collection.find_one({"run_id": "r1"})["status"] == "in_progress"


def test_the_reaper_thread_reaps_every_interval(db, monkeypatch):
    monkeypatch.setenv("PADDY_HEARTBEAT_TIMEOUT_S", "40")
    monkeypatch.setenv("PADDY_REAP_INTERVAL_S", "0.05")
    settings = LivenessSettings()
    assert (settings.heartbeat_timeout_s, settings.reap_interval_s) == (40, 0.05)
    store_running(db, "r1", heartbeat_age_s=300)
    reaper = Reaper(db, settings).start()
    try:
        for _ in range(100):
            if db[names.STATUS].find_one({"run_id": "r1"})["status"] == "lost":
                break
            time.sleep(0.05)
    finally:
        reaper.stop()
    assert db[names.STATUS].find_one({"run_id": "r1"})["status"] == "lost"
