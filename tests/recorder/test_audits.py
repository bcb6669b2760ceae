"""Dataset audits through the recorder (real redis-server and nx-27017): one `audits` document per
dataset holding its newest audit, whatever order or how often the events arrive, and never a
`status` document."""

from datetime import timedelta

import pytest

from services.recorder.consumer import Recorder
from services.recorder.settings import RecorderSettings
from services.recorder.writer import BatchWriter
from shared import names
from shared.datasets.synth import synthesize_dataset
from shared.schemas.datasets import DatasetAudit
from tests.utils.audits import T0, audit_of, audited
from tests.utils.events import drain, publish, run_events


@pytest.fixture
def leaves(tmp_path):
    synthesize_dataset(tmp_path / "leaves", per_class=2, size=16, seed=0)
    return tmp_path / "leaves"


def stored(db, dataset: str = "leaves") -> DatasetAudit:
    [document] = db[names.AUDITS].find({"_id": dataset})
    return DatasetAudit.model_validate(document)


def test_an_audit_is_stored_by_dataset_with_its_summary_and_no_status(db, leaves):
    audit = audit_of(leaves, "leaves")
    BatchWriter(db).write([audited(audit)])
    assert stored(db) == audit
    document = db[names.AUDITS].find_one({"_id": "leaves"})
    assert document["summary"] == {
        "audited_at": T0,
        "fingerprint": audit.fingerprint,
        "images": 6,
        "unreadable": 0,
        "copy_groups": 2,
        "label_conflicts": 1,
        "shortcuts": 1,
    }
    assert db[names.STATUS].count_documents({}) == 0


def test_the_newest_audit_stays_whatever_the_order(db, leaves):
    old, new = audit_of(leaves, "leaves", T0), audit_of(leaves, "leaves", T0 + timedelta(hours=1), copy_groups=[])
    writer = BatchWriter(db)
    writer.write([audited(new)])
    writer.write([audited(old)])  # late: changes nothing
    assert stored(db) == new and writer.counts.stale_writes == 1
    BatchWriter(db).write([audited(new), audited(old), audited(new)])  # redelivered, one batch
    assert stored(db) == new
    db[names.AUDITS].delete_many({})
    BatchWriter(db).write([audited(old)])
    BatchWriter(db).write([audited(new)])  # a new writer: insert fails as duplicate, replace lands
    assert stored(db) == new and db[names.AUDITS].count_documents({}) == 1


def test_audits_of_two_datasets_keep_apart(db, leaves):
    BatchWriter(db).write([audited(audit_of(leaves, "leaves")), audited(audit_of(leaves, "copy-of-leaves"))])
    assert {document["_id"] for document in db[names.AUDITS].find()} == {"leaves", "copy-of-leaves"}


def test_an_audit_a_training_run_publishes_leaves_the_runs_status_alone(db, leaves):
    events = run_events("r1", epochs=2)
    # The run found its copy groups before training: its publisher numbers the audit like its other events.
    audit = audited(audit_of(leaves, "leaves"), run_id="r1", seq=events[0].seq + 1)
    later = [event.model_copy(update={"seq": event.seq + 1}) for event in events[1:]]
    BatchWriter(db).write([events[0], audit, *later])
    status = db[names.STATUS].find_one({"run_id": "r1"})
    assert status["status"] == "completed" and status["seq"] == later[-1].seq
    assert stored(db) == audit.audit
    BatchWriter(db).write([audit])  # alone, after the run ended: still no status change
    assert db[names.STATUS].find_one({"run_id": "r1"})["seq"] == later[-1].seq
    assert db[names.STATUS].count_documents({}) == 1


def test_the_recorder_stores_an_audit_from_the_stream_and_acknowledges_it(settings, db, redis_client, leaves):
    recorder = Recorder(redis_client, db, RecorderSettings(consumer_name="test", block_ms=100))
    recorder.ensure_group()
    audit = audit_of(leaves, "leaves")
    publish(redis_client, [audited(audit), audited(audit)])  # delivered twice
    drain(recorder)
    assert stored(db) == audit
    assert recorder.stats.by_type["dataset_audited"] == 2 and recorder.stats.dead_lettered == 0
    assert redis_client.xpending(names.EVENTS_STREAM, names.RECORDER_GROUP)["pending"] == 0
    assert db[names.STATUS].count_documents({}) == 0
