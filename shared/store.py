"""MongoDB access for every service: connection, indexes, and the reads and writes of runs.

Collections and field names are the original system's (see DESIGN.md): `status` holds one
document per run from the moment it is queued, `epochs` one per run and epoch, `trainings`
one per completed run.
"""

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.database import Database

from shared import names
from shared.schemas.jobs import SUMMARY_METRICS
from shared.settings import PaddySettings

# The API's own collection: one document per sweep (POST /sweeps), its runs carry `sweep_id`.
SWEEPS = "sweeps"
# The `status` fields GET /jobs filters or sorts on, each with a single-field index (nx-27017
# uses single-field indexes only, see DESIGN.md). Each also costs the recorder's status writes.
STATUS_INDEXED_FIELDS: tuple[str, ...] = (
    "created_at",
    "status",
    "archived",
    "model_name",
    "version",
    "sweep_id",
    "start_ts",
    "end_time",
    *(f"metrics.{name}" for name in SUMMARY_METRICS),
)
# `start_time` as seconds since the epoch (a float), written with it by the recorder. Date
# ranges filter on this copy: nx-27017 compares dates in Python after reading every document
# (2–3 s for 10,000 runs) and counts them wrongly in SQL; numbers it compares in SQL, with the
# index. Real MongoDB would not need it; it costs nothing there.
START_TS = "start_ts"


def start_fields(start_time: datetime | None) -> dict[str, Any]:
    """`start_time` and its START_TS copy, as a status document holds them."""
    return {"start_time": start_time, START_TS: start_time.timestamp() if start_time else None}


# "Has a value": matches any value but null and missing.
HAS_VALUE: dict[str, Any] = {"$exists": True, "$ne": None}


def connect(settings: PaddySettings, timeout_ms: int = 5000) -> Database:
    client: MongoClient = MongoClient(
        settings.mongodb_uri,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        tz_aware=True,
    )
    return client[settings.mongodb_database]


def ensure_indexes(db: Database) -> None:
    """Unique keys make at-least-once delivery safe; the single run_id index serves reads.

    nx-27017 does not use a compound index for a query on its first field, hence the
    separate single-field index on epochs.run_id (DESIGN.md, "This machine").
    """
    db[names.STATUS].create_index([("run_id", ASCENDING)], unique=True)
    for field in STATUS_INDEXED_FIELDS:
        db[names.STATUS].create_index([(field, DESCENDING if field == "created_at" else ASCENDING)])
    db[SWEEPS].create_index([("sweep_id", ASCENDING)], unique=True)
    db[names.EPOCHS].create_index([("run_id", ASCENDING), ("epoch", ASCENDING)], unique=True)
    db[names.EPOCHS].create_index([("run_id", ASCENDING)])
    db[names.TRAININGS].create_index([("run_id", ASCENDING)], unique=True)
    db[names.COUNTERS].create_index([("name", ASCENDING)], unique=True)


def backfill_start_ts(db: Database) -> int:
    """Give START_TS to status documents stored before it existed; how many were changed.

    Run by the recorder at start, before it writes (its writes replace whole documents)."""
    changed = 0
    for doc in db[names.STATUS].find({START_TS: None, "start_time": {"$ne": None}}, {"start_time": 1}):
        db[names.STATUS].update_one({"_id": doc["_id"]}, {"$set": start_fields(doc["start_time"])})
        changed += 1
    return changed


def new_status_document(run_id: str, spec: dict[str, Any], version: str, created_at: datetime) -> dict[str, Any]:
    """A run's `status` document, whole, as it looks when queued."""
    return {
        "run_id": run_id,
        "status": "queued",
        # Every status the run has had, with when: [{"status", "time"}].
        "status_history": [{"status": "queued", "time": created_at}],
        **start_fields(None),
        "end_time": None,
        "created_at": created_at,
        "model_name": spec.get("model_name", "unknown"),
        "version": version,
        "spec": spec,
        "epochs_planned": spec.get("epochs", 0),
        "epochs_done": 0,
        "current_epoch": None,
        "latest": {},
        "best_val_loss": None,
        "class_names": None,
        "split_sizes": None,
        "error": None,
        "traceback_tail": None,
        "attempt": 0,
        # The last checkpointed epoch the latest attempt resumed after (0: started afresh).
        "resumed_from_epoch": 0,
        "worker": None,
        "device": None,
        # The time of the newest event; a run silent for too long becomes `lost` (recorder/reaper.py).
        "heartbeat_at": None,
        # When the reaper last marked the run `lost`; None again once its events resume.
        "lost_at": None,
        # Live progress within the current epoch and the training speed (epoch_progress events).
        "progress": None,
        "images_per_sec": None,
        # "best" / "last" → {"epoch", "path"} (checkpoint_saved events).
        "checkpoints": {},
        "evaluation": None,
        # Completed runs: the summary's SUMMARY_METRICS, for filtering and sorting lists.
        "metrics": {},
        "sweep_id": None,
        "retry_of": None,
        # Archived runs (DELETE /jobs/{run_id}) are hidden from lists; their data is kept.
        "archived": False,
        # The seq of the newest event applied; older events never overwrite newer state.
        "seq": 0,
    }


class Store:
    """Reads and the API's own writes. The recorder's event writes live in the recorder."""

    def __init__(self, db: Database):
        self.db = db
        self.status = db[names.STATUS]
        self.epochs = db[names.EPOCHS]
        self.trainings = db[names.TRAININGS]
        self.counters = db[names.COUNTERS]

    def ping(self) -> None:
        self.db.command("ping")

    def next_version(self, model_name: str) -> str:
        """ "v1", "v2", … per model, as the original numbered its runs."""
        counter = self.counters.find_one_and_update(
            {"name": f"version:{model_name}"},
            {"$inc": {"value": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return f"v{counter['value']}"

    def insert_queued_run(self, document: dict[str, Any]) -> None:
        self.status.insert_one(dict(document))

    def list_runs(
        self,
        query: dict[str, Any] | None = None,
        sort: str = "created_at",
        descending: bool = True,
        limit: int = 50,
        skip: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of the runs matching query, sorted on `sort` (a field of `status`, dotted
        for metrics), runs without a value for it last in either direction; and the count.

        Two queries when some runs lack the value: MongoDB sorts null and missing first when
        ascending, and nx-27017 does not order them at all.
        """
        query = dict(query or {})
        direction = DESCENDING if descending else ASCENDING
        total = self.count_runs(query)
        finding = _for_find(query)
        if sort == "created_at":  # every run has one: one query
            cursor = self.status.find(finding, {"_id": 0}).sort(sort, direction).skip(skip).limit(limit)
            return list(cursor), total
        cursor = self.status.find(_and(finding, {sort: HAS_VALUE}), {"_id": 0})
        runs = list(cursor.sort(sort, direction).skip(skip).limit(limit))
        if len(runs) == limit:  # the page holds only runs with the value: nothing else to count
            return runs, total
        # The runs with the value end on this page (or before it): how many there are says
        # where the runs without it start.
        valued = skip + len(runs) if runs else self.count_runs(_and(query, {sort: HAS_VALUE}))
        if total > valued:
            # {field: None} matches null and missing alike (on nx-27017 `$exists: False` also
            # matches null, and an `$or` of the two does not).
            cursor = self.status.find(_and(finding, {sort: None}), {"_id": 0}).sort("created_at", DESCENDING)
            runs += list(cursor.skip(max(0, skip - valued)).limit(limit - len(runs)))
        return runs, total

    def count_runs(self, query: dict[str, Any]) -> int:
        """How many runs match query.

        Counted by aggregation: on nx-27017 count_documents scans every document (about 2 s
        for 10,000 runs) where a $match + $group runs in SQL (a few ms), except for date
        comparisons, which that path gets wrong: those are counted with count_documents. A
        `$in` over statuses is counted one status at a time: each is an indexed equality,
        together several times faster than the `$in`.
        """
        if _compares_dates(query):
            return self.status.count_documents(query)
        statuses = query.get("status")
        if isinstance(statuses, dict) and set(statuses) == {"$in"}:
            return sum(self.count_runs({**query, "status": state}) for state in statuses["$in"])
        rest = {name: value for name, value in query.items() if name != "archived"}
        if query.get("archived") is False and len(rest) <= 1:
            # All minus the archived few: a count on one indexed condition takes about 2 ms, one
            # that adds `archived: False` (true for nearly every run) 40–70 ms. With two or more
            # conditions both ways cost the same (about 20 ms).
            return self._aggregate_count(rest) - self._aggregate_count({**rest, "archived": True})
        return self._aggregate_count(query)

    def _aggregate_count(self, query: dict[str, Any]) -> int:
        result = list(self.status.aggregate([{"$match": query}, {"$group": {"_id": None, "n": {"$sum": 1}}}]))
        return int(result[0]["n"]) if result else 0

    def status_counts(self) -> dict[str, int]:
        """Runs per status, archived ones included."""
        groups = self.status.aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}])
        return {group["_id"]: int(group["n"]) for group in groups}

    def archive(self, run_id: str) -> dict[str, Any] | None:
        """Hide a run from lists, keeping its data; the archived run, or None when there is none.

        `$set` of a bool is safe on nx-27017 (only datetimes turn into strings) and leaves seq
        alone, so no event of a still running trainer is ever taken for an old one.
        """
        return self.status.find_one_and_update(
            {"run_id": run_id},
            {"$set": {"archived": True}},
            projection={"_id": 0},
            return_document=ReturnDocument.AFTER,
        )

    def runs_of_sweep(self, sweep_id: str) -> list[dict[str, Any]]:
        return list(self.status.find({"sweep_id": sweep_id}, {"_id": 0}).sort("created_at", ASCENDING))

    def insert_sweep(self, document: dict[str, Any]) -> None:
        self.db[SWEEPS].insert_one(dict(document))

    def get_sweep(self, sweep_id: str) -> dict[str, Any] | None:
        return self.db[SWEEPS].find_one({"sweep_id": sweep_id}, {"_id": 0})

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        return self.status.find_one({"run_id": run_id}, {"_id": 0})

    def get_training(self, run_id: str) -> dict[str, Any] | None:
        return self.trainings.find_one({"run_id": run_id}, {"_id": 0})

    def get_epochs(self, run_id: str) -> list[dict[str, Any]]:
        return list(self.epochs.find({"run_id": run_id}, {"_id": 0}).sort("epoch", ASCENDING))

    def mark_failed(self, run_id: str, error: str, when: datetime) -> None:
        """For failures the API sees itself (the job never reached a trainer)."""
        self._finish_queued(run_id, "failed", when, error=error)

    def mark_cancelled(self, run_id: str, when: datetime) -> bool:
        """Cancel a run still queued; False when it is not (any more) queued."""
        return self._finish_queued(run_id, "cancelled", when)

    def _finish_queued(self, run_id: str, status: str, when: datetime, **fields: Any) -> bool:
        """Move a queued run to a final status; False when it is not queued.

        Written as a whole document guarded by seq, like the recorder's writes: nx-27017 turns
        a datetime given to `$set` into a string. When the guard fails (a trainer's event was
        stored meanwhile) the run is read again: it may have started.
        """
        for _ in range(3):
            run = self.status.find_one({"run_id": run_id})
            if run is None or run["status"] != "queued":
                return False
            read_seq = run["seq"]
            run.update(
                status=status,
                end_time=when,
                seq=read_seq + 1,
                **fields,
                status_history=[*run["status_history"], {"status": status, "time": when}],
            )
            if self.status.replace_one({"run_id": run_id, "seq": read_seq}, run).matched_count:
                return True
        return False


def _and(query: dict[str, Any], condition: dict[str, Any]) -> dict[str, Any]:
    """Both conditions, as one flat filter where possible: nx-27017 evaluates an `$and` in
    Python after reading every document (550 ms for 10,000 runs, against 15 ms flat)."""
    merged = dict(query)
    for name, wanted in condition.items():
        if name not in merged:
            merged[name] = wanted
        elif _operators(merged[name]) and _operators(wanted) and not set(merged[name]) & set(wanted):
            merged[name] = {**merged[name], **wanted}  # {"$gte": x} and {"$ne": None}: one field, both
        else:
            return {"$and": [query, condition]}
    return merged


def _operators(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(key.startswith("$") for key in value)


def _for_find(query: dict[str, Any]) -> dict[str, Any]:
    """The query as find() is fastest with on nx-27017: `archived: False` becomes
    `archived: {$ne: True}` (the same runs: every status document has the field). Equality
    makes the server pick the archived index, which matches nearly every run, and sort them
    all (150–250 ms for 10,000 runs) instead of walking the sort index (about 25 ms); counting
    is the other way round."""
    if query.get("archived") is False:
        return {**query, "archived": {"$ne": True}}
    return query


def _compares_dates(query: Any) -> bool:
    if isinstance(query, dict):
        return any(isinstance(value, datetime) or _compares_dates(value) for value in query.values())
    if isinstance(query, list):
        return any(_compares_dates(value) for value in query)
    return False
