"""How the store asks MongoDB for runs: a listing request and the queries that answer it.

`RunQueries` is written for MongoDB as it is documented. A server that needs other queries for
the same answers subclasses it: shared/embedded_mongo.py does so for nx-27017, and
shared/store.py picks one of the two when it connects.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo.collection import Collection
from pymongo.cursor import Cursor

from shared.schemas.jobs import SUMMARY_METRICS

# "Has a value": matches any value but null and missing.
HAS_VALUE: dict[str, Any] = {"$exists": True, "$ne": None}


@dataclass(frozen=True)
class RunListing:
    """Which runs to list (every condition given must hold), in which order, which page."""

    archived: bool = False  # False: runs not archived; True: only archived ones
    statuses: Sequence[str] = ()  # runs in any of these states; empty: any state
    model_name: str | None = None
    version: str | None = None
    sweep_id: str | None = None
    started_after: datetime | None = None  # start_time at or after, timezone-aware
    started_before: datetime | None = None  # start_time before, timezone-aware
    min_metrics: Mapping[str, float] = field(default_factory=dict)  # SUMMARY_METRICS name → at least
    sort: str = "created_at"  # a field of RUN_SORT_FIELDS
    descending: bool = True
    limit: int = 50
    skip: int = 0


class RunQueries:
    """Filters, sort keys and counts of `status` documents for MongoDB."""

    # The `status` fields a listing filters or sorts on, each with a single-field index. Each
    # index also costs the recorder's status writes.
    indexed_fields: tuple[str, ...] = (
        "created_at",
        "status",
        "archived",
        "model_name",
        "version",
        "sweep_id",
        "start_time",
        "end_time",
        *(f"metrics.{name}" for name in SUMMARY_METRICS),
    )

    def filter(self, listing: RunListing) -> dict[str, Any]:
        query: dict[str, Any] = {"archived": listing.archived}
        statuses = sorted(set(listing.statuses))
        if statuses:
            query["status"] = statuses[0] if len(statuses) == 1 else {"$in": statuses}
        for name in ("model_name", "version", "sweep_id"):
            if (value := getattr(listing, name)) is not None:
                query[name] = value
        query.update(self.started_between(listing.started_after, listing.started_before))
        for metric, minimum in listing.min_metrics.items():
            query[f"metrics.{metric}"] = {"$gte": minimum}
        return query

    def started_between(self, after: datetime | None, before: datetime | None) -> dict[str, Any]:
        """The condition on start_time (none when neither bound is given)."""
        bounds = {operator: moment for operator, moment in (("$gte", after), ("$lt", before)) if moment}
        return {"start_time": bounds} if bounds else {}

    def sort_field(self, name: str) -> str:
        """The stored field a RUN_SORT_FIELDS name sorts on (metrics are dotted)."""
        return f"metrics.{name}" if name in SUMMARY_METRICS else name

    def both(self, query: dict[str, Any], condition: dict[str, Any]) -> dict[str, Any]:
        return {"$and": [query, condition]}

    def find(self, status: Collection, query: dict[str, Any]) -> Cursor:
        return status.find(query, {"_id": 0})

    def count(self, status: Collection, query: dict[str, Any]) -> int:
        return status.count_documents(query)
