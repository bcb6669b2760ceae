"""A running API with recorded runs: redis-server, nx-27017, the recorder and the API as real
processes on free ports; runs are recorded by publishing trainer events to the stream."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis
import streamlit as st

from infra.local_stack import LocalStack
from services.dashboard.settings import get_settings
from shared.datasets.synth import synthesize_dataset
from tests.utils.dashboard import API_KEY, STACK_ENV, TINY_PER_CLASS, RunPublisher, statuses, wait_until_shown
from tests.utils.stack import running_stack


@dataclass
class RecordedRuns:
    completed: str
    failed: str
    running: str
    queued: str


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator[LocalStack]:
    state_dir = tmp_path_factory.mktemp("dashboard-stack")
    with running_stack(state_dir, ("redis", "mongo", "recorder", "api"), env=STACK_ENV) as running:
        # POST /jobs checks that the dataset exists; no trainer runs, so the job stays queued.
        synthesize_dataset(state_dir / "data" / "tiny", per_class=TINY_PER_CLASS, size=32, seed=1)
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
    with httpx.Client(base_url=api_url, timeout=10, headers={"X-API-Key": API_KEY}) as client:
        yield client


@pytest.fixture(scope="session")
def recorded_runs(api: httpx.Client, events: redis.Redis) -> RecordedRuns:
    """Four runs, oldest first: completed, failed, queued (through POST /jobs), in progress."""
    now = datetime.now(UTC)
    completed = RunPublisher(events, epochs=3).start(at=now - timedelta(minutes=30))
    for epoch in (1, 2, 3):
        completed.epoch(epoch)
    completed.checkpoint(3).complete(epochs_run=3)

    failed = RunPublisher(events, model_name="mobilenet_v2", epochs=4).start(at=now - timedelta(minutes=20))
    failed.epoch(1).epoch(2, finish=False)
    failed.fail("OutOfMemoryError", "CUDA out of memory")

    response = api.post(
        "/jobs", json={"model_name": "custom_cnn", "dataset": "tiny", "epochs": 7, "image_size": 64, "version": "v9"}
    )
    assert response.status_code == 202, response.text
    queued = response.json()["run_id"]

    running = RunPublisher(events, model_name="resnet50", epochs=5).start()
    running.epoch(1).epoch(2).epoch(3, finish=False).progress(3, batch=5, batches=10, images_per_sec=250.0)

    expected = {completed.run_id: "completed", failed.run_id: "failed", queued: "queued", running.run_id: "in_progress"}
    wait_until_shown(
        api,
        lambda client: (
            expected.items() <= statuses(client).items()
            and (client.get(f"/jobs/{running.run_id}").json()["progress"] or {}).get("batch") == 5
        ),
    )
    return RecordedRuns(completed.run_id, failed.run_id, running.run_id, queued)


@pytest.fixture(scope="session")
def empty_api_url(tmp_path_factory) -> Iterator[str]:
    """An API over a store with no runs at all. A stack of its own: nx-27017 serves every
    database name from the same collections, so another database would not be empty."""
    with running_stack(tmp_path_factory.mktemp("empty-stack"), ("redis", "mongo", "api"), env=STACK_ENV) as running:
        yield running.urls()["api"]


@pytest.fixture
def dashboard_env(monkeypatch) -> Callable[[str], None]:
    """Point the dashboard at an API; its settings and caches start afresh."""

    def point_at(url: str, api_key: str | None = API_KEY) -> None:
        monkeypatch.setenv("PADDY_API_URL", url)
        if api_key is None:
            monkeypatch.delenv("PADDY_API_KEY", raising=False)
        else:
            monkeypatch.setenv("PADDY_API_KEY", api_key)
        get_settings.cache_clear()
        st.cache_data.clear()

    yield point_at
    get_settings.cache_clear()
