"""shared/store.py against a real nx-27017: MongoDB's queries and nx-27017's list the same runs."""

from datetime import timedelta

import pytest

from shared.embedded_mongo import EmbeddedMongoQueries
from shared.run_queries import RunListing, RunQueries
from shared.store import Store
from tests.utils.documents import T0, stored_run

MINUTE = timedelta(minutes=1)
MONGODB, NX_27017 = RunQueries(), EmbeddedMongoQueries()
PAGES = [
    (RunListing(), ["d", "c", "b", "a"], 4),
    (RunListing(archived=True), ["e"], 1),
    (RunListing(statuses=["completed", "failed"], limit=2), ["c", "b"], 3),
    (RunListing(model_name="resnet50", statuses=["completed"]), ["b"], 1),
    (RunListing(started_after=T0 + 10 * MINUTE, started_before=T0 + 30 * MINUTE), ["c", "b"], 2),
    (RunListing(started_after=T0 + 11 * MINUTE, sort="start_time", descending=False), ["b", "c"], 2),
    (RunListing(sort="val_accuracy", min_metrics={"val_accuracy": 0.75}), ["a"], 1),
    (RunListing(sort="end_time", skip=5), [], 4),
    (RunListing(sort="val_accuracy", descending=False, limit=2, skip=1), ["a", "d"], 4),
]
# Pages that reach runs whose sort field is null, found with {field: None}: inside an `$and`,
# which MongoDB's queries send, nx-27017 matches a missing field but not a null one.
PAGES_INTO_NULL_VALUES = [(RunListing(sort="start_time", limit=2, skip=2), ["a", "d"], 4)]
NX_27017_MISSES_NULL_IN_AND = pytest.mark.xfail(strict=True, reason="nx-27017: {field: None} inside $and")


@pytest.fixture
def store_with_runs(db):
    """Five runs created ten minutes apart (a first), each started a minute after creation."""
    stored_run(db, "a", created_minute=0, start_minute=1, metrics={"val_accuracy": 0.9})
    stored_run(db, "b", created_minute=10, start_minute=11, metrics={"val_accuracy": 0.7}, model_name="resnet50")
    stored_run(db, "c", created_minute=20, start_minute=21, status="failed")
    stored_run(db, "d", created_minute=30, status="queued")
    stored_run(db, "e", created_minute=40, start_minute=41, metrics={"val_accuracy": 0.8}, archived=True)
    return db


@pytest.mark.parametrize(
    ("queries", "listing", "page", "count"),
    [pytest.param(NX_27017, *case, id=f"nx-27017-{i}") for i, case in enumerate(PAGES + PAGES_INTO_NULL_VALUES)]
    + [pytest.param(MONGODB, *case, id=f"mongodb-{i}") for i, case in enumerate(PAGES)]
    + [
        pytest.param(MONGODB, *case, id=f"mongodb-{i}", marks=NX_27017_MISSES_NULL_IN_AND)
        for i, case in enumerate(PAGES_INTO_NULL_VALUES, start=len(PAGES))
    ],
)
def test_both_kinds_of_queries_list_the_same_runs(store_with_runs, queries, listing, page, count):
    runs, total = Store(store_with_runs, queries).list_runs(listing)
    assert ([run["run_id"] for run in runs], total) == (page, count)
