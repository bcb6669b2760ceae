"""The queries shared/run_queries.py builds for MongoDB (pure logic, no database)."""

from shared.run_queries import HAS_VALUE, RunListing, RunQueries
from tests.utils.run_listing import AFTER, BEFORE, EVERY_FILTER


def test_every_filter_becomes_one_condition_and_dates_stay_dates():
    assert RunQueries().filter(EVERY_FILTER) == {
        "archived": False,
        "status": {"$in": ["completed", "failed"]},
        "model_name": "resnet50",
        "version": "v2",
        "sweep_id": "s1",
        "start_time": {"$gte": AFTER, "$lt": BEFORE},
        "metrics.val_accuracy": {"$gte": 0.8},
    }


def test_the_fewest_conditions_that_say_the_same():
    queries = RunQueries()
    assert queries.filter(RunListing()) == {"archived": False}
    assert queries.filter(RunListing(archived=True, statuses=["queued"])) == {"archived": True, "status": "queued"}
    assert queries.filter(RunListing(started_before=BEFORE)) == {"archived": False, "start_time": {"$lt": BEFORE}}


def test_sort_fields_are_the_stored_ones():
    queries = RunQueries()
    assert [queries.sort_field(name) for name in ("created_at", "start_time", "end_time", "val_accuracy")] == [
        "created_at",
        "start_time",
        "end_time",
        "metrics.val_accuracy",
    ]


def test_two_conditions_are_an_and_and_start_time_is_indexed():
    query = {"archived": False, "metrics.val_accuracy": {"$gte": 0.8}}
    condition = {"metrics.val_accuracy": HAS_VALUE}
    assert RunQueries().both(query, condition) == {"$and": [query, condition]}
    assert "start_time" in RunQueries.indexed_fields and "start_ts" not in RunQueries.indexed_fields
