"""shared/store.py against a real nx-27017: the start_ts copy date ranges filter on."""

from datetime import UTC, datetime

from shared import names
from shared.store import START_TS, _and, backfill_start_ts, new_status_document, start_fields

STARTED = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def test_status_documents_stored_before_start_ts_get_it_once(db):
    old = new_status_document("old", {"model_name": "custom_cnn"}, "v1", created_at=STARTED)
    del old[START_TS]
    old["start_time"] = STARTED
    queued = new_status_document("queued", {"model_name": "custom_cnn"}, "v1", created_at=STARTED)
    current = new_status_document("current", {"model_name": "custom_cnn"}, "v1", created_at=STARTED)
    current.update(start_fields(STARTED))
    db[names.STATUS].insert_many([old, queued, current])

    assert backfill_start_ts(db) == 1
    assert backfill_start_ts(db) == 0
    stored = {doc["run_id"]: doc[START_TS] for doc in db[names.STATUS].find()}
    assert stored == {"old": STARTED.timestamp(), "queued": None, "current": STARTED.timestamp()}
    assert db[names.STATUS].count_documents({START_TS: {"$gte": STARTED.timestamp()}}) == 2


def test_conditions_on_one_field_merge_into_a_flat_filter_when_their_operators_differ():
    assert _and({"a": 1, "t": {"$gte": 5}}, {"t": {"$ne": None}}) == {"a": 1, "t": {"$gte": 5, "$ne": None}}
    assert _and({"a": 1}, {"b": 2}) == {"a": 1, "b": 2}
    # The same operator twice, or a plain value, cannot be merged: both stay, under $and.
    assert _and({"t": {"$ne": 1}}, {"t": {"$ne": None}}) == {"$and": [{"t": {"$ne": 1}}, {"t": {"$ne": None}}]}
    assert _and({"t": {"$gte": 5}}, {"t": None}) == {"$and": [{"t": {"$gte": 5}}, {"t": None}]}
