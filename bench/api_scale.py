"""GET /jobs, GET /jobs/{run_id}/epochs and GET /compare at scale, over kept-alive connections.

    python bench/api_scale.py                          # 10,000 runs, 1,000,000 epoch documents
    python bench/api_scale.py --runs 1000 --epochs 20  # a quick run

Starts its own nx-27017 and redis-server (infra/local_stack.py) on free ports in a temp dir,
fills a fresh store with `--runs` runs (status documents like the recorder's, a `trainings`
document per completed run) and `--epochs` epoch documents per run (insert_many in big
batches), then starts the API (uvicorn, one worker: see DESIGN.md on Nagle) and times each
request kind over one kept-alive httpx connection. Prints p50 / p95 per request kind and
whether p95 stays under 200 ms.
"""

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import httpx
import pymongo

from infra.local_stack import LocalStack, StackConfig
from shared import names
from shared.models import MODELS
from shared.schemas.jobs import SUMMARY_METRICS
from shared.store import ensure_indexes, new_status_document, start_fields
from tests.conftest import free_port

GOAL_P95_MS = 200.0
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


def fill(db: pymongo.database.Database, runs: int, epochs: int) -> dict[str, float]:
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


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(client: httpx.Client, requests: list[tuple[str, dict]], warmup: int = 3) -> list[float]:
    """Milliseconds per request, each answered 200, over the client's kept-alive connection."""
    for path, params in requests[:warmup]:
        client.get(path, params=params).raise_for_status()
    timings = []
    for path, params in requests:
        started = time.perf_counter()
        response = client.get(path, params=params)
        timings.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return timings


def scenarios(runs: int, samples: int, rng: random.Random) -> dict[str, list[tuple[str, dict]]]:
    def run_id() -> str:
        return f"run{rng.randrange(runs):08d}"

    middle = (START + timedelta(minutes=10 * runs // 2)).isoformat()
    return {
        "GET /jobs (default: newest first)": [("/jobs", {})] * samples,
        "GET /jobs status=completed model_name sort=-val_accuracy": [
            ("/jobs", {"status": "completed", "model_name": rng.choice(MODEL_NAMES), "sort": "-val_accuracy"})
            for _ in range(samples)
        ],
        "GET /jobs status=completed&failed sort=test_loss offset≤1000": [
            ("/jobs", {"status": ["completed", "failed"], "sort": "test_loss", "offset": rng.randrange(0, 1000, 50)})
            for _ in range(samples)
        ],
        "GET /jobs min_val_accuracy=0.9 sort=-test_accuracy": [
            ("/jobs", {"min_val_accuracy": 0.9, "sort": "-test_accuracy"})
        ]
        * samples,
        "GET /jobs sweep_id": [
            ("/jobs", {"sweep_id": f"sweep{rng.randrange(max(1, runs // 50)):05d}"}) for _ in range(samples)
        ],
        "GET /jobs started_after sort=-start_time": [("/jobs", {"started_after": middle, "sort": "-start_time"})]
        * samples,
        "GET /jobs/{run_id}/epochs": [(f"/jobs/{run_id()}/epochs", {}) for _ in range(samples)],
        "GET /compare (10 runs)": [
            ("/compare", {"run_ids": ",".join(run_id() for _ in range(10))}) for _ in range(samples)
        ],
    }


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=100, help="epoch documents per run")
    parser.add_argument("--samples", type=int, default=100, help="timed requests per kind")
    args = parser.parse_args()
    rng = random.Random(1)

    with tempfile.TemporaryDirectory(prefix="paddy-api-scale-") as tmp:
        ports = {"redis_port": free_port(), "mongo_port": free_port(), "api_port": free_port()}
        backing = StackConfig(state_dir=Path(tmp) / "backing", services=("redis", "mongo"), **ports)
        with LocalStack(backing) as stack:
            db = pymongo.MongoClient(stack.env()["PADDY_MONGODB_URI"], tz_aware=True)[names.DATABASE]
            print(f"filling {args.runs:,} runs and {args.runs * args.epochs:,} epoch documents …", flush=True)
            timings = fill(db, args.runs, args.epochs)
            for what, seconds in timings.items():
                print(f"  {what}: {seconds:.1f} s", flush=True)
            api = StackConfig(state_dir=Path(tmp) / "api", services=("api",), **ports)
            with LocalStack(api) as api_stack, httpx.Client(base_url=api_stack.urls()["api"], timeout=60) as client:
                print(f"\n{machine()}")
                print(
                    f"{args.runs:,} runs, {args.runs * args.epochs:,} epochs; {args.samples} requests each, "
                    "one kept-alive connection, uvicorn with one worker\n"
                )
                print(f"| request | p50 ms | p95 ms | max ms | p95 < {GOAL_P95_MS:.0f} ms |")
                print("|---|---:|---:|---:|---|")
                for name, requests in scenarios(args.runs, args.samples, rng).items():
                    ms = measure(client, requests)
                    p95 = percentile(ms, 0.95)
                    print(
                        f"| {name} | {statistics.median(ms):.1f} | {p95:.1f} | {max(ms):.1f} | "
                        f"{'yes' if p95 < GOAL_P95_MS else 'NO'} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
