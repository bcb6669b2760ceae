"""Documents as the services leave them, written straight into MongoDB or Redis; and the field
types of the original system's documents (DESIGN.md)."""

from datetime import UTC, datetime, timedelta
from typing import Any

from services.recorder.handlers import apply_to_status
from shared import names
from shared.schemas.events import RunStarted, utc_now
from shared.schemas.jobs import SUMMARY_METRICS
from shared.store import new_status_document, start_fields

# The original system's `trainings` fields and their types, for a run with a dropout.
TRAININGS_FIELDS = {
    "run_id": str,
    "model_name": str,
    "version": str,
    "num_classes": int,
    "dropout": float,
    "feature_extraction": bool,
    "batch_size": int,
    "learning_rate": float,
    "early_stopped": bool,
    "epochs_run": int,
    "train_accuracy": float,
    "val_accuracy": float,
    "test_accuracy": float,
    "best_val_loss": float,
    "duration_minutes": float,
    "start_time": datetime,
    "end_time": datetime,
}
# The original system's `epochs` fields and their types.
EPOCH_FIELDS = {
    "run_id": str,
    "epoch": int,
    "train_loss": float,
    "train_acc": float,
    "val_loss": float,
    "val_acc": float,
    "epoch_time_sec": float,
}

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def stored_run(
    db,
    run_id: str,
    *,
    status: str = "completed",
    model_name: str = "custom_cnn",
    version: str = "v1",
    created_minute: int = 0,
    start_minute: int | None = 1,
    metrics: dict[str, Any] | None = None,
    epochs: int = 0,
    **fields: Any,
) -> dict[str, Any]:
    """A run document as the recorder leaves it, written straight into `status` (and `epochs`)."""
    spec = {
        "model_name": model_name,
        "dataset": "leaves",
        "epochs": max(epochs, 1),
        "version": version,
        "split": "grouped",
    }
    doc = new_status_document(run_id, spec, version, created_at=T0 + timedelta(minutes=created_minute))
    doc["status"] = status
    if start_minute is not None and status != "queued":
        doc.update(start_fields(T0 + timedelta(minutes=start_minute)))
    if status in ("completed", "failed", "cancelled"):
        doc["end_time"] = (doc["start_time"] or doc["created_at"]) + timedelta(minutes=5)
    if status == "completed":
        doc["metrics"] = {name: 0.5 for name in SUMMARY_METRICS} | (metrics or {})
    doc.update(fields)
    db[names.STATUS].insert_one(dict(doc))
    if epochs:
        db[names.EPOCHS].insert_many(
            [
                {
                    "run_id": run_id,
                    "epoch": e,
                    "train_loss": 1 / e,
                    "train_acc": 0.1 * e,
                    "val_loss": 1 / e,
                    "val_acc": 0.1 * e,
                    "epoch_time_sec": 1.0,
                }
                for e in range(1, epochs + 1)
            ]
        )
    return doc


RUNNING_SPEC = {"model_name": "custom_cnn", "dataset": "d", "epochs": 2, "version": "v1"}


def store_running(db, run_id: str, heartbeat_age_s: float) -> dict:
    """A run in progress whose last sign of life is heartbeat_age_s old."""
    now = utc_now()
    queued = new_status_document(run_id, RUNNING_SPEC, "v1", created_at=now - timedelta(hours=1))
    started = RunStarted(
        run_id=run_id,
        seq=1_000_000_001,
        time=now - timedelta(seconds=heartbeat_age_s),
        spec=RUNNING_SPEC,
        attempt=1,
        worker="w",
        device="cpu",
        epochs_planned=2,
        class_names=["a"],
        split_sizes={"train": 1, "val": 1, "test": 1},
    )
    doc = apply_to_status(queued, started)
    db[names.STATUS].insert_one(dict(doc))
    return doc


def worker_presence(hostname: str, **fields) -> dict:
    """A trainer's presence document (shared/worker_presence.py): idle unless `fields` say otherwise."""
    return {
        "hostname": hostname,
        "pid": 4242,
        "started_at": "2026-05-01T10:00:00+00:00",
        "seen_at": "2026-05-01T10:05:00+00:00",
        "queues": ["predict", "training"],
        "task": None,
        "run_id": None,
        "stopping": False,
        **fields,
    }
