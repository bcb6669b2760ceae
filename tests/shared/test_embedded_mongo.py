"""nx-27017's queries (shared/embedded_mongo.py) and telling nx-27017 from MongoDB."""

from typing import Any

from shared.embedded_mongo import START_TS, EmbeddedMongoQueries, serves_nx_27017
from shared.run_queries import RunQueries
from shared.store import Store, run_queries_for
from tests.utils.run_listing import AFTER, BEFORE, EVERY_FILTER


class MongoDBBuildInfo:
    """A database whose server answers buildInfo as MongoDB 7.0 does (abridged)."""

    def command(self, name: str) -> dict[str, Any]:
        assert name == "buildInfo"
        return {"version": "7.0.14", "gitVersion": "ce59cfc6a3c5e5c067dca0d30697edd68d4f5188", "ok": 1.0}


def test_date_ranges_filter_and_sort_on_the_numeric_copy():
    queries = EmbeddedMongoQueries()
    plain = RunQueries().filter(EVERY_FILTER)
    del plain["start_time"]
    assert queries.filter(EVERY_FILTER) == {**plain, START_TS: {"$gte": AFTER.timestamp(), "$lt": BEFORE.timestamp()}}
    assert (queries.sort_field("start_time"), queries.sort_field("val_accuracy")) == (START_TS, "metrics.val_accuracy")
    assert START_TS in queries.indexed_fields and "start_time" not in queries.indexed_fields


def test_conditions_on_one_field_merge_into_a_flat_filter_when_their_operators_differ():
    both = EmbeddedMongoQueries().both
    assert both({"a": 1, "t": {"$gte": 5}}, {"t": {"$ne": None}}) == {"a": 1, "t": {"$gte": 5, "$ne": None}}
    assert both({"a": 1}, {"b": 2}) == {"a": 1, "b": 2}
    # The same operator twice, or a plain value, cannot be merged: both stay, under $and.
    assert both({"t": {"$ne": 1}}, {"t": {"$ne": None}}) == {"$and": [{"t": {"$ne": 1}}, {"t": {"$ne": None}}]}
    assert both({"t": {"$gte": 5}}, {"t": None}) == {"$and": [{"t": {"$gte": 5}}, {"t": None}]}


def test_the_store_on_nx_27017_uses_its_queries(db):
    assert serves_nx_27017(db)
    assert type(Store(db).queries) is EmbeddedMongoQueries


def test_mongodb_gets_the_plain_queries():
    assert not serves_nx_27017(MongoDBBuildInfo())
    assert type(run_queries_for(MongoDBBuildInfo())) is RunQueries
