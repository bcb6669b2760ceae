"""MongoDB access for every service: connection, indexes, and the reads and writes of runs.

Collections and field names are the original system's (see DESIGN.md): `status` holds one
document per run from the moment it is queued, `epochs` one per run and epoch, `trainings`
one per completed run.

Lists of runs are asked for with the queries of the server found at connect time: MongoDB's
(run_queries.py), or nx-27017's, the embedded server of the local stack and the tests, which
gives the same answers faster there (embedded_mongo.py).
"""

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.database import Database

from shared import names
from shared.embedded_mongo import START_TS, EmbeddedMongoQueries, serves_nx_27017, start_ts
from shared.run_queries import HAS_VALUE, RunListing, RunQueries
from shared.settings import PaddySettings

# The API's own collection: one document per sweep (POST /sweeps), its runs carry `sweep_id`.
SWEEPS = "sweeps"
# The model registry's (services/api/routes/registry.py): one document per dataset and alias
# naming the run that holds it (`run_id`, `since`, `by`, `reason`), and every promotion and
# demotion ever made, append-only, ordered by `seq`.
REGISTRY = "registry"
REGISTRY_HISTORY = "registry_history"


def start_fields(start_time: datetime | None) -> dict[str, Any]:
    """`start_time` and the numeric copy nx-27017 filters date ranges on (embedded_mongo.py)."""
    return {"start_time": start_time, START_TS: start_ts(start_time)}


def connect(settings: PaddySettings, timeout_ms: int = 5000) -> Database:
    client: MongoClient = MongoClient(
        settings.mongodb_uri,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        tz_aware=True,
    )
    return client[settings.mongodb_database]


def run_queries_for(db: Database) -> RunQueries:
    """The queries for the server behind db: MongoDB's, or nx-27017's (embedded_mongo.py)."""
    return EmbeddedMongoQueries() if serves_nx_27017(db) else RunQueries()


def ensure_indexes(db: Database) -> None:
    """Unique keys make at-least-once delivery safe; the single run_id index serves reads.

    nx-27017 does not use a compound index for a query on its first field, hence the
    separate single-field index on epochs.run_id (DESIGN.md, "This machine").
    """
    db[names.STATUS].create_index([("run_id", ASCENDING)], unique=True)
    for field in run_queries_for(db).indexed_fields:
        db[names.STATUS].create_index([(field, DESCENDING if field == "created_at" else ASCENDING)])
    db[SWEEPS].create_index([("sweep_id", ASCENDING)], unique=True)
    db[names.EPOCHS].create_index([("run_id", ASCENDING), ("epoch", ASCENDING)], unique=True)
    db[names.EPOCHS].create_index([("run_id", ASCENDING)])
    db[names.TRAININGS].create_index([("run_id", ASCENDING)], unique=True)
    db[names.COUNTERS].create_index([("name", ASCENDING)], unique=True)
    db[REGISTRY].create_index([("dataset", ASCENDING), ("alias", ASCENDING)], unique=True)
    db[REGISTRY].create_index([("run_id", ASCENDING)])
    db[REGISTRY_HISTORY].create_index([("seq", DESCENDING)], unique=True)
    db[REGISTRY_HISTORY].create_index([("dataset", ASCENDING)])
    db[REGISTRY_HISTORY].create_index([("run_id", ASCENDING)])


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
        # How the images were split (shared/schemas/splits.py SplitRecord), from run_started.
        "split": None,
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
        # The trainer's GPUs at its newest heartbeat that had them (GpuReading, shared/schemas/events.py):
        # [{"index", "uuid", "name", "utilization_pct", "memory_used_mib", "memory_total_mib"}];
        # None on a CPU trainer.
        "gpu": None,
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

    def __init__(self, db: Database, queries: RunQueries | None = None):
        self.db = db
        # How lists of runs are queried: chosen for the server unless given.
        self.queries = queries or run_queries_for(db)
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
        assert counter is not None  # an upsert returning the document after it: never None
        return f"v{counter['value']}"

    def insert_queued_run(self, document: dict[str, Any]) -> None:
        self.status.insert_one(dict(document))

    def list_runs(self, listing: RunListing) -> tuple[list[dict[str, Any]], int]:
        """One page of the runs the listing asks for, sorted on `listing.sort`, runs without a
        value for it last in either direction; and how many runs match.

        Two queries when some runs lack the value: MongoDB sorts null and missing first when
        ascending, and nx-27017 does not order them at all.
        """
        queries, status = self.queries, self.status
        query = queries.filter(listing)
        sort = queries.sort_field(listing.sort)
        direction = DESCENDING if listing.descending else ASCENDING
        skip, limit = listing.skip, listing.limit
        total = queries.count(status, query)
        if sort == "created_at":  # every run has one: one query
            return list(queries.find(status, query).sort(sort, direction).skip(skip).limit(limit)), total
        with_value = queries.both(query, {sort: HAS_VALUE})
        runs = list(queries.find(status, with_value).sort(sort, direction).skip(skip).limit(limit))
        if len(runs) == limit:  # the page holds only runs with the value: nothing else to count
            return runs, total
        # The runs with the value end on this page (or before it): how many there are says
        # where the runs without it start.
        valued = skip + len(runs) if runs else queries.count(status, with_value)
        if total > valued:
            # {field: None} matches null and missing alike.
            cursor = queries.find(status, queries.both(query, {sort: None})).sort("created_at", DESCENDING)
            runs += list(cursor.skip(max(0, skip - valued)).limit(limit - len(runs)))
        return runs, total

    def status_counts(self) -> dict[str, int]:
        """Runs per status, archived ones included."""
        groups = self.status.aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}])
        return {group["_id"]: int(group["n"]) for group in groups}

    def running_gpus(self) -> list[dict[str, Any]]:
        """The runs in progress whose trainers reported GPU figures: run_id, worker, heartbeat_at
        and gpu (a list of GpuReading dicts)."""
        fields = {"_id": 0, "run_id": 1, "worker": 1, "heartbeat_at": 1, "gpu": 1}
        return [run for run in self.status.find({"status": "in_progress"}, fields) if run.get("gpu")]

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

    def list_sweeps(self, limit: int) -> list[dict[str, Any]]:
        """The newest sweeps and studies first, without their trials."""
        found = self.db[SWEEPS].find({}, {"_id": 0, "search": 0}).sort("created_at", DESCENDING).limit(limit)
        return list(found)

    def running_searches(self) -> list[str]:
        """The random and tpe sweeps a driver still advances (`state` running)."""
        return [doc["sweep_id"] for doc in self.db[SWEEPS].find({"state": "running"}, {"sweep_id": 1})]

    def save_search(self, sweep_id: str, search: dict[str, Any]) -> None:
        """A search's state as its driver leaves it; written whole, since nx-27017 turns a
        datetime given to `$set` into a string. One driver at a time writes a sweep (its lock)."""
        sweep = self.db[SWEEPS].find_one({"sweep_id": sweep_id})
        if sweep is not None:
            sweep.update(search=search, state=search["state"])
            self.db[SWEEPS].replace_one({"_id": sweep["_id"]}, sweep)

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        return self.status.find_one({"run_id": run_id}, {"_id": 0})

    # --- the model registry ---------------------------------------------------------------

    def promote(self, dataset: str, alias: str, run_id: str, by: str, reason: str, at: datetime) -> dict[str, Any]:
        """Give run_id the alias of dataset, in one replace (upserted, keyed by dataset and alias),
        and append the change to the history; the history entry.

        Written whole: nx-27017 turns a datetime given to `$set` into a string.
        """
        key = {"dataset": dataset, "alias": alias}
        before = self.db[REGISTRY].find_one_and_replace(
            key,
            {**key, "run_id": run_id, "since": at, "by": by, "reason": reason},
            projection={"_id": 0},
            upsert=True,
            return_document=ReturnDocument.BEFORE,
        )
        previous = before["run_id"] if before else None
        return self._record_change(key, "promote", run_id, previous, by, reason, at)

    def demote(self, dataset: str, alias: str, by: str, reason: str, at: datetime) -> dict[str, Any] | None:
        """Empty the alias of dataset; the history entry, or None when the alias was empty."""
        key = {"dataset": dataset, "alias": alias}
        removed = self.db[REGISTRY].find_one_and_delete(key, projection={"_id": 0})
        if removed is None:
            return None
        return self._record_change(key, "demote", removed["run_id"], None, by, reason, at)

    def _record_change(
        self, key: dict[str, str], action: str, run_id: str, previous: str | None, by: str, reason: str, at: datetime
    ) -> dict[str, Any]:
        counter = self.counters.find_one_and_update(
            {"name": REGISTRY_HISTORY}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        assert counter is not None  # an upsert returning the document after it: never None
        entry = {
            **key,
            "action": action,
            "run_id": run_id,
            "previous_run_id": previous,
            "by": by,
            "at": at,
            "reason": reason,
            "seq": counter["value"],
        }
        self.db[REGISTRY_HISTORY].insert_one(dict(entry))
        return entry

    def registry_entries(self, dataset: str | None = None) -> list[dict[str, Any]]:
        """The aliases held, by dataset then alias."""
        query = {} if dataset is None else {"dataset": dataset}
        found = self.db[REGISTRY].find(query, {"_id": 0})
        return sorted(found, key=lambda entry: (entry["dataset"], entry["alias"]))

    def registry_entry(self, dataset: str, alias: str) -> dict[str, Any] | None:
        return self.db[REGISTRY].find_one({"dataset": dataset, "alias": alias}, {"_id": 0})

    def aliases_of(self, run_id: str) -> list[str]:
        """The aliases the run holds (of its dataset), in alias order."""
        return sorted(entry["alias"] for entry in self.db[REGISTRY].find({"run_id": run_id}, {"alias": 1}))

    def registry_history(
        self, dataset: str | None, run_id: str | None, skip: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of promotions and demotions, newest first, and how many match."""
        query: dict[str, Any] = {} if dataset is None else {"dataset": dataset}
        if run_id is not None:  # the run promoted or demoted, or the one a promotion replaced
            query["$or"] = [{"run_id": run_id}, {"previous_run_id": run_id}]
        history = self.db[REGISTRY_HISTORY]
        page = history.find(query, {"_id": 0}).sort("seq", DESCENDING).skip(skip).limit(limit)
        return list(page), history.count_documents(query)

    def get_training(self, run_id: str) -> dict[str, Any] | None:
        return self.trainings.find_one({"run_id": run_id}, {"_id": 0})

    def get_epochs(self, run_id: str) -> list[dict[str, Any]]:
        return list(self.epochs.find({"run_id": run_id}, {"_id": 0}).sort("epoch", ASCENDING))

    def get_test_predictions(self, run_id: str) -> dict[str, Any] | None:
        """The run's `test_predictions` document (keyed by run id), None when it has none."""
        return self.db[names.TEST_PREDICTIONS].find_one({"_id": run_id}, {"_id": 0, "seq": 0})

    def audit_summaries(self) -> dict[str, dict[str, Any]]:
        """Dataset name → the summary of its latest audit (`audits` documents, written by the recorder)."""
        return {doc["_id"]: doc["summary"] for doc in self.db[names.AUDITS].find({}, {"summary": 1})}

    def audit_summary(self, dataset: str) -> dict[str, Any] | None:
        """The summary of the dataset's latest audit, None when it has none."""
        found = self.db[names.AUDITS].find_one({"_id": dataset}, {"summary": 1})
        return found["summary"] if found else None

    def get_audit(self, dataset: str) -> dict[str, Any] | None:
        """The dataset's latest audit, whole (a DatasetAudit), None when it has none."""
        return self.db[names.AUDITS].find_one({"_id": dataset}, {"_id": 0, "summary": 0, "published_by": 0, "seq": 0})

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
