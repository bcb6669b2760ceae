"""A store at scale for the API and dashboard benchmarks: status, trainings and epoch documents
as the recorder writes them, put straight into a fresh nx-27017, and the API started on it."""

import argparse
import dataclasses
import os
import platform
import random
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pymongo
from pymongo.database import Database

from infra.local_stack import LocalStack, StackConfig
from shared import names
from shared.models import MODELS
from shared.schemas.jobs import SUMMARY_METRICS
from shared.store import ensure_indexes, new_status_document, start_fields
from tests.utils.stack import stack_config

BATCH = 20_000
STATUSES = ["completed"] * 14 + ["failed"] * 2 + ["cancelled", "lost", "in_progress", "queued"]
MODEL_NAMES = sorted(MODELS)
START = datetime(2026, 1, 1, tzinfo=UTC)


def run_documents(index: int, epochs: int, rng: random.Random) -> tuple[dict, dict | None]:
    """One run's status document (and its trainings document when completed)."""
    model_name = MODEL_NAMES[index % len(MODEL_NAMES)]
    version = f"v{index // len(MODEL_NAMES) + 1}"
    created = START + timedelta(minutes=10 * index)
    spec = {
        "model_name": model_name,
        "dataset": "rice",
        "epochs": epochs,
        "patience": 10,
        "batch_size": rng.choice([16, 32, 64]),
        "learning_rate": rng.choice([1e-4, 3e-4, 1e-3]),
        "weight_decay": 1e-4,
        "dropout": 0.5,
        "feature_extraction": model_name != "custom_cnn",
        "trainable_layers": 0,
        "weights": "none",
        "image_size": 224,
        "augment": "original",
        "seed": index,
        "channels_last": True,
        "mixed_precision": True,
        "version": version,
    }
    doc = new_status_document(f"run{index:08d}", spec, version, created_at=created)
    status = STATUSES[index % len(STATUSES)]
    doc["status"] = status
    doc["sweep_id"] = f"sweep{index // 50:05d}" if index % 3 == 0 else None
    doc["archived"] = index % 50 == 49
    if status == "queued":
        return doc, None
    start = created + timedelta(minutes=1)
    end = start + timedelta(minutes=rng.uniform(5, 120))
    done = epochs if status == "completed" else rng.randint(0, epochs)
    doc.update(
        start_fields(start),
        attempt=1,
        worker="trainer-1@host",
        device="cuda:0",
        epochs_done=done,
        current_epoch=done or None,
        heartbeat_at=end,
        class_names=["Bacterialblight", "Brownspot", "Leafsmut"],
        split_sizes={"train": 2810, "val": 937, "test": 937},
        latest={"train_loss": 0.3, "train_acc": 0.9, "val_loss": 0.4, "val_acc": 0.88},
    )
    doc["status_history"] = [*doc["status_history"], {"status": "in_progress", "time": start}]
    if status == "in_progress":
        return doc, None
    doc["end_time"] = end
    doc["status_history"].append({"status": status, "time": end})
    if status != "completed":
        return doc, None
    metrics = {
        "train_accuracy": rng.uniform(0.7, 1),
        "val_accuracy": rng.uniform(0.6, 1),
        "test_accuracy": rng.uniform(0.6, 1),
        "test_loss": rng.uniform(0.05, 1),
        "test_f1_macro": rng.uniform(0.6, 1),
        "best_val_loss": rng.uniform(0.05, 1),
        "duration_minutes": (end - start).total_seconds() / 60,
        "epochs_run": done,
    }
    doc["metrics"] = metrics
    doc["best_val_loss"] = metrics["best_val_loss"]
    doc["checkpoints"] = {"best": {"epoch": done, "path": f"runs/{doc['run_id']}/best.pt"}}
    training = {
        "run_id": doc["run_id"],
        "model_name": model_name,
        "version": version,
        "num_classes": 3,
        "dropout": 0.5,
        "feature_extraction": spec["feature_extraction"],
        "batch_size": spec["batch_size"],
        "learning_rate": spec["learning_rate"],
        "early_stopped": False,
        "start_time": start,
        "end_time": end,
        **{name: metrics[name] for name in SUMMARY_METRICS},
    }
    return doc, training


def epoch_documents(run_id: str, epochs: int, rng: random.Random) -> list[dict]:
    return [
        {
            "run_id": run_id,
            "epoch": epoch,
            "train_loss": rng.random(),
            "train_acc": rng.random(),
            "val_loss": rng.random(),
            "val_acc": rng.random(),
            "epoch_time_sec": rng.uniform(5, 60),
        }
        for epoch in range(1, epochs + 1)
    ]


def fill(db: Database, runs: int, epochs: int) -> dict[str, float]:
    """Insert the runs and their epochs; returns seconds per collection."""
    rng = random.Random(0)
    ensure_indexes(db)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    statuses, trainings = [], []
    for index in range(runs):
        doc, training = run_documents(index, epochs, rng)
        statuses.append(doc)
        if training:
            trainings.append(training)
    for start in range(0, len(statuses), BATCH):
        db[names.STATUS].insert_many(statuses[start : start + BATCH], ordered=False)
    for start in range(0, len(trainings), BATCH):
        db[names.TRAININGS].insert_many(trainings[start : start + BATCH], ordered=False)
    timings["status + trainings"] = time.perf_counter() - started
    started = time.perf_counter()
    batch: list[dict] = []
    for index in range(runs):
        batch.extend(epoch_documents(f"run{index:08d}", epochs, rng))
        if len(batch) >= BATCH:
            db[names.EPOCHS].insert_many(batch, ordered=False)
            batch = []
    if batch:
        db[names.EPOCHS].insert_many(batch, ordered=False)
    timings["epochs"] = time.perf_counter() - started
    return timings


def add_size_options(parser: argparse.ArgumentParser) -> None:
    """--runs and --epochs: how much filled_store puts in the store."""
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=100, help="epoch documents per run")


@dataclass
class FilledStore:
    db: Database
    backing: StackConfig  # redis-server and nx-27017, holding the filled store

    @contextmanager
    def api(self) -> Iterator[str]:
        """The API (uvicorn, one worker: see DESIGN.md on Nagle) on this store; its URL."""
        state_dir = self.backing.state_dir.parent / "api"
        with LocalStack(dataclasses.replace(self.backing, state_dir=state_dir, services=("api",))) as stack:
            yield stack.urls()["api"]


@contextmanager
def filled_store(runs: int, epochs: int, env: Mapping[str, str] | None = None) -> Iterator[FilledStore]:
    """redis-server and nx-27017 on free ports in a temp dir, the store filled with `runs` runs
    and `epochs` epoch documents per run (printing how long it took); stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="paddy-bench-") as tmp:
        backing = stack_config(Path(tmp) / "backing", ("redis", "mongo"), env=env)
        with LocalStack(backing) as stack:
            db = pymongo.MongoClient(stack.env()["PADDY_MONGODB_URI"], tz_aware=True)[names.DATABASE]
            print(f"filling {runs:,} runs and {runs * epochs:,} epoch documents …", flush=True)
            for what, seconds in fill(db, runs, epochs).items():
                print(f"  {what}: {seconds:.1f} s", flush=True)
            yield FilledStore(db, backing)


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"{model}; nproc {os.cpu_count()}; load average {load}; Python {platform.python_version()}"
