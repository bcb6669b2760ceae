"""What nx-27017, the MongoDB server of the local stack and the tests, needs to answer quickly.

nx-27017 (DESIGN.md, "This machine") translates a query to SQL where it can and evaluates the
rest in Python after reading every document. `EmbeddedMongoQueries` asks for the same runs as
`RunQueries` in the shapes it runs in SQL, with its indexes (timings for 10,000 runs):

- date ranges filter and sort on START_TS, a numeric copy of `start_time`: dates it compares
  in Python (2–3 s) and counts wrongly in SQL; numbers it compares in SQL, with the index;
- two conditions become one flat filter where they can: it evaluates an `$and` in Python
  (550 ms, against 15 ms flat), where `{field: None}` does not match a null field;
- counts are a `$match` + `$group`, which runs in SQL; count_documents scans (about 2 s);
- `archived: False` is found as `archived: {$ne: True}`, which walks the sort index.
"""

from datetime import datetime
from typing import Any

from pymongo.collection import Collection
from pymongo.cursor import Cursor
from pymongo.database import Database

from shared.run_queries import RunQueries

# `start_time` as seconds since the epoch (a float), written with it in every status document
# (shared/store.py, start_fields) whichever server stores it.
START_TS = "start_ts"


def serves_nx_27017(db: Database) -> bool:
    """Whether nx-27017 serves db: its buildInfo names its process, MongoDB's has no such field."""
    return db.command("buildInfo").get("process") == "nx_27017"


def start_ts(start_time: datetime | None) -> float | None:
    return start_time.timestamp() if start_time else None


class EmbeddedMongoQueries(RunQueries):
    """RunQueries as nx-27017 runs them in SQL."""

    indexed_fields = tuple(START_TS if name == "start_time" else name for name in RunQueries.indexed_fields)

    def started_between(self, after: datetime | None, before: datetime | None) -> dict[str, Any]:
        bounds = {operator: start_ts(moment) for operator, moment in (("$gte", after), ("$lt", before)) if moment}
        return {START_TS: bounds} if bounds else {}

    def sort_field(self, name: str) -> str:
        return START_TS if name == "start_time" else super().sort_field(name)

    def both(self, query: dict[str, Any], condition: dict[str, Any]) -> dict[str, Any]:
        """One flat filter where no field takes the same operator twice, else an `$and`."""
        merged = dict(query)
        for name, wanted in condition.items():
            if name not in merged:
                merged[name] = wanted
            elif _operators(merged[name]) and _operators(wanted) and not set(merged[name]) & set(wanted):
                merged[name] = {**merged[name], **wanted}  # {"$gte": x} and {"$ne": None}: one field, both
            else:
                return super().both(query, condition)
        return merged

    def find(self, status: Collection, query: dict[str, Any]) -> Cursor:
        """`archived: False` as `archived: {$ne: True}` (the same runs: every status document has
        the field). Equality makes the server pick the archived index, which matches nearly every
        run, and sort them all (150–250 ms) instead of walking the sort index (about 25 ms)."""
        if query.get("archived") is False:
            query = {**query, "archived": {"$ne": True}}
        return super().find(status, query)

    def count(self, status: Collection, query: dict[str, Any]) -> int:
        """Counted by aggregation: count_documents scans every document (about 2 s) where a
        $match + $group runs in SQL (a few ms), except for date comparisons, which that path gets
        wrong. A `$in` over statuses is counted one status at a time: each is an indexed equality,
        together several times faster than the `$in`.
        """
        if _compares_dates(query):
            return super().count(status, query)
        statuses = query.get("status")
        if isinstance(statuses, dict) and set(statuses) == {"$in"}:
            return sum(self.count(status, {**query, "status": state}) for state in statuses["$in"])
        rest = {name: value for name, value in query.items() if name != "archived"}
        if query.get("archived") is False and len(rest) <= 1:
            # All minus the archived few: a count on one indexed condition takes about 2 ms, one
            # that adds `archived: False` (true for nearly every run) 40–70 ms. With two or more
            # conditions both ways cost the same (about 20 ms).
            return _aggregate_count(status, rest) - _aggregate_count(status, {**rest, "archived": True})
        return _aggregate_count(status, query)


def _aggregate_count(status: Collection, query: dict[str, Any]) -> int:
    result = list(status.aggregate([{"$match": query}, {"$group": {"_id": None, "n": {"$sum": 1}}}]))
    return int(result[0]["n"]) if result else 0


def _operators(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(key.startswith("$") for key in value)


def _compares_dates(query: Any) -> bool:
    if isinstance(query, dict):
        return any(isinstance(value, datetime) or _compares_dates(value) for value in query.values())
    if isinstance(query, list):
        return any(_compares_dates(value) for value in query)
    return False
