"""A running API with recorded runs: redis-server, nx-27017, the recorder and the API as real
processes on free ports; runs are recorded by publishing trainer events to the stream."""

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
import streamlit as st

from infra.local_stack import LocalStack, StackConfig
from services.dashboard.settings import get_settings
from shared import names
from shared.datasets.synth import synthesize_dataset
from shared.schemas.events import (
    SEQ_PER_ATTEMPT,
    EpochFinished,
    EpochStarted,
    RunCompleted,
    RunFailed,
    RunStarted,
    TrainingSummary,
    encode_event,
)
from tests.conftest import free_port

APP = Path(__file__).resolve().parents[2] / "services" / "dashboard" / "app.py"
CLASSES = ["Bacterialblight", "Brownspot", "Leafsmut"]


def utc(moment: datetime) -> datetime:
    """MongoDB keeps milliseconds: a time with more would not round-trip."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def epoch_metrics(epoch: int) -> dict[str, float]:
    """Plausible curves: losses fall and accuracies rise with the epoch."""
    return {"train_loss": 1.2 / epoch, "val_loss": 1.3 / epoch, "train_acc": 1 - 0.4 / epoch,
            "val_acc": 1 - 0.5 / epoch, "epoch_time_sec": 12.5}


@dataclass
class RunPublisher:
    """Publishes one run's events as a trainer would: attempt 1, seq growing per event."""

    client: redis.Redis
    model_name: str = "custom_cnn"
    version: str = "v1"
    epochs: int = 5
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    seq: int = SEQ_PER_ATTEMPT
    started_at: datetime | None = None

    def publish(self, event_type, at: datetime | None = None, **fields) -> None:
        self.seq += 1
        event = event_type(run_id=self.run_id, seq=self.seq, time=utc(at or datetime.now(UTC)), **fields)
        self.client.xadd(names.EVENTS_STREAM, encode_event(event))

    def start(self, at: datetime | None = None) -> "RunPublisher":
        self.started_at = utc(at or datetime.now(UTC))
        spec = {"model_name": self.model_name, "dataset": "x", "epochs": self.epochs, "batch_size": 32,
                "learning_rate": 0.001, "dropout": 0.5, "image_size": 64, "version": self.version}
        self.publish(RunStarted, at=self.started_at, spec=spec, attempt=1, worker="trainer-1@test",
                     device="cpu", epochs_planned=self.epochs, class_names=CLASSES,
                     split_sizes={"train": 210, "val": 45, "test": 45})
        return self

    def epoch(self, epoch: int, finish: bool = True) -> "RunPublisher":
        self.publish(EpochStarted, epoch=epoch)
        if finish:
            self.publish(EpochFinished, epoch=epoch, **epoch_metrics(epoch))
        return self

    def fail(self, error_type: str, message: str) -> "RunPublisher":
        self.publish(RunFailed, error_type=error_type, message=message, traceback_tail="...")
        return self

    def complete(self, epochs_run: int) -> "RunPublisher":
        last = epoch_metrics(epochs_run)
        summary = TrainingSummary(
            run_id=self.run_id, model_name=self.model_name, version=self.version, num_classes=3,
            dropout=0.5, feature_extraction=False, batch_size=32, learning_rate=0.001,
            early_stopped=epochs_run < self.epochs, epochs_run=epochs_run,
            train_accuracy=last["train_acc"], val_accuracy=last["val_acc"], test_accuracy=0.87,
            best_val_loss=last["val_loss"], duration_minutes=1.5, start_time=self.started_at,
            end_time=utc(datetime.now(UTC)), test_loss=0.41, class_names=CLASSES, dataset="x",
            image_size=64, seed=42,
        )
        self.publish(RunCompleted, summary=summary)
        return self


@dataclass
class RecordedRuns:
    completed: str
    failed: str
    running: str
    queued: str


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator[LocalStack]:
    config = StackConfig(
        state_dir=tmp_path_factory.mktemp("dashboard-stack"),
        services=("redis", "mongo", "recorder", "api"),
        redis_port=free_port(), mongo_port=free_port(), api_port=free_port(),
    )
    with LocalStack(config) as running:
        # POST /jobs checks that the dataset exists; no trainer runs, so the job stays queued.
        synthesize_dataset(config.state_dir / "data" / "tiny", per_class=2, size=32, seed=1)
        yield running


@pytest.fixture(scope="session")
def api_url(stack: LocalStack) -> str:
    return stack.urls()["api"]


@pytest.fixture(scope="session")
def events(stack: LocalStack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.env()["PADDY_REDIS_URL"])
    yield client
    client.close()


@pytest.fixture(scope="session")
def api(api_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, timeout=10) as client:
        yield client


def wait_for(api: httpx.Client, check: Callable[[httpx.Client], bool], timeout_s: float = 20) -> None:
    """Until the recorder has stored what was published and the API shows it."""
    deadline = time.monotonic() + timeout_s
    while not check(api):
        if time.monotonic() > deadline:
            raise AssertionError(f"the API did not show the published events within {timeout_s} s")
        time.sleep(0.1)


def statuses(api: httpx.Client) -> dict[str, str]:
    return {run["run_id"]: run["status"] for run in api.get("/jobs", params={"limit": 500}).json()["data"]}


@pytest.fixture(scope="session")
def recorded_runs(api: httpx.Client, events: redis.Redis) -> RecordedRuns:
    """Four runs, oldest first: completed, failed, queued (through POST /jobs), in progress."""
    now = datetime.now(UTC)
    completed = RunPublisher(events, epochs=3).start(at=now - timedelta(minutes=30))
    for epoch in (1, 2, 3):
        completed.epoch(epoch)
    completed.complete(epochs_run=3)

    failed = RunPublisher(events, model_name="mobilenet_v2", epochs=4).start(at=now - timedelta(minutes=20))
    failed.epoch(1).epoch(2, finish=False)
    failed.fail("OutOfMemoryError", "CUDA out of memory")

    response = api.post("/jobs", json={"model_name": "custom_cnn", "dataset": "tiny", "epochs": 7,
                                       "image_size": 64, "version": "v9"})
    assert response.status_code == 202, response.text
    queued = response.json()["run_id"]

    running = RunPublisher(events, model_name="resnet50", epochs=5).start()
    running.epoch(1).epoch(2).epoch(3, finish=False)

    expected = {completed.run_id: "completed", failed.run_id: "failed", queued: "queued",
                running.run_id: "in_progress"}
    wait_for(api, lambda client: expected.items() <= statuses(client).items()
             and client.get(f"/jobs/{running.run_id}").json()["current_epoch"] == 3)
    return RecordedRuns(completed.run_id, failed.run_id, running.run_id, queued)


@pytest.fixture(scope="session")
def empty_api_url(tmp_path_factory) -> Iterator[str]:
    """An API over a store with no runs at all. A stack of its own: nx-27017 serves every
    database name from the same collections, so another database would not be empty."""
    config = StackConfig(
        state_dir=tmp_path_factory.mktemp("empty-stack"), services=("redis", "mongo", "api"),
        redis_port=free_port(), mongo_port=free_port(), api_port=free_port(),
    )
    with LocalStack(config) as running:
        yield running.urls()["api"]


@pytest.fixture
def dashboard_env(monkeypatch) -> Callable[[str], None]:
    """Point the dashboard at an API; its settings and caches start afresh."""

    def point_at(url: str) -> None:
        monkeypatch.setenv("PADDY_API_URL", url)
        get_settings.cache_clear()
        st.cache_data.clear()

    yield point_at
    get_settings.cache_clear()
