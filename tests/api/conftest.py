"""The API in-process (TestClient) against a real redis-server and nx-27017; no trainer runs."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.api import deps
from services.api import settings as api_settings
from services.api.main import app
from shared import names
from shared.datasets.synth import synthesize_dataset
from shared.schemas.jobs import SUMMARY_METRICS
from shared.store import new_status_document, start_fields

API_KEY = "api-test-key-0123456789"
CACHED = (api_settings.get_settings, deps.get_store, deps.get_queue, deps.get_redis)


def clear_caches() -> None:
    for cached in CACHED:
        cached.cache_clear()


@pytest.fixture
def api_env(settings, monkeypatch) -> dict[str, str]:
    values = {"PADDY_API_KEY": API_KEY, "PADDY_ENVIRONMENT": "production"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def client(settings, db, api_env):
    """A client that sends the API key; `anonymous` is the same app without it."""
    clear_caches()
    synthesize_dataset(settings.data_root / "leaves", per_class=3, size=32, seed=0)
    with TestClient(app, headers={"X-API-Key": API_KEY}) as test_client:
        yield test_client
    clear_caches()


@pytest.fixture
def anonymous(client):
    with TestClient(app) as test_client:
        yield test_client


def job(**overrides) -> dict:
    return {"model_name": "custom_cnn", "dataset": "leaves", "epochs": 3, "image_size": 64, **overrides}


def detail(response) -> str:
    return str(response.json()["detail"])


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
    spec = {"model_name": model_name, "dataset": "leaves", "epochs": max(epochs, 1), "version": version}
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


def queued_tasks(redis_client, queue: str = names.TRAINING_QUEUE) -> list[tuple[str, list]]:
    """(task name, args) of each Celery message waiting in a queue's Redis list, oldest first."""
    import base64
    import json

    tasks = []
    for raw in reversed(redis_client.lrange(queue, 0, -1)):  # kombu LPUSHes, workers BRPOP
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        tasks.append((message["headers"]["task"], args))
    return tasks
