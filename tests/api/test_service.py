"""GET /compare, /health, /metrics, /models, and errors that never leak internals."""

import logging
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from pymongo.errors import ServerSelectionTimeoutError

from services.api.main import app
from shared import names
from shared.recorder_state import publish_recorder_state
from shared.schemas.events import utc_now
from shared.store import Store
from tests.utils.api import API_KEY, detail, job, metric_values
from tests.utils.documents import stored_run


def test_compare_lines_epochs_up_by_number(client, db):
    stored_run(db, "short", epochs=3)
    stored_run(db, "long", epochs=5, status="in_progress")
    response = client.get("/compare", params={"run_ids": "long,short,long"})
    assert response.status_code == 200
    body = response.json()
    assert [r["run_id"] for r in body["runs"]] == ["long", "short"]
    assert [row["epoch"] for row in body["epochs"]] == [1, 2, 3, 4, 5]
    assert body["epochs"][2]["runs"]["short"]["val_acc"] == pytest.approx(0.3)
    assert body["epochs"][3]["runs"] == {"long": body["epochs"][3]["runs"]["long"], "short": None}
    assert body["epochs"][4]["runs"]["long"]["epoch"] == 5


def test_compare_names_unknown_runs_and_bounds_the_count(client, db):
    stored_run(db, "one")
    response = client.get("/compare", params={"run_ids": "one,ghost,spook"})
    assert response.status_code == 404 and detail(response) == "unknown run(s): ghost, spook"
    for run_ids in ("one", "one,one", ",".join(f"r{i}" for i in range(21))):
        response = client.get("/compare", params={"run_ids": run_ids})
        assert response.status_code == 422 and "2 to 20" in detail(response)


def test_health_when_all_is_well(client):
    assert client.get("/health").json() == {
        "status": "ok",
        "redis": "ok",
        "mongodb": "ok",
        "workers": 0,
        "predictors": 0,
        "worker_details": [],
        "recorder": {"recorders": [], "lag": None},
    }


def test_health_shows_the_recorders_and_a_recorder_without_mongodb_degrades_it(client, redis_client):
    redis_client.xgroup_create(names.EVENTS_STREAM, names.RECORDER_GROUP, id="0", mkstream=True)
    client.post("/jobs", json=job())  # its run_queued event waits for a recorder
    publish_recorder_state(redis_client, "rec-1", mongodb_ok=True, events_stored=7, dead_lettered=0, last_write_at=None)
    healthy = client.get("/health").json()
    assert healthy["status"] == "ok" and healthy["recorder"]["lag"] == 1
    assert healthy["recorder"]["recorders"][0]["events_stored"] == 7
    publish_recorder_state(
        redis_client,
        "rec-2",
        mongodb_ok=False,
        events_stored=0,
        dead_lettered=0,
        last_write_at=None,
        error="ServerSelectionTimeoutError",
    )
    response = client.get("/health")
    assert response.status_code == 503 and response.json()["status"] == "degraded"
    assert [r["mongodb"] for r in response.json()["recorder"]["recorders"]] == ["ok", "unreachable"]


def test_metrics_in_prometheus_text(client, db, redis_client):
    redis_client.xgroup_create(names.EVENTS_STREAM, names.RECORDER_GROUP, id="$", mkstream=True)
    for _ in range(2):
        client.post("/jobs", json=job())
    stored_run(db, "done")
    stored_run(db, "gone", status="lost", archived=True)
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain; version=0.0.4")
    values = metric_values(response.text)
    assert values['paddy_runs{status="queued"}'] == 2 and values['paddy_runs{status="completed"}'] == 1
    assert values['paddy_runs{status="lost"}'] == 1 and values['paddy_runs{status="failed"}'] == 0
    assert values['paddy_queue_length{queue="training"}'] == 2 and values['paddy_queue_length{queue="predict"}'] == 0
    assert values["paddy_recorder_lag_events"] == 2 and values["paddy_workers"] == 0
    assert "# TYPE paddy_runs gauge" in response.text
    assert "paddy_gpu" not in response.text  # no run on a GPU: no GPU lines, not zeros


def gpu(index: int, uuid: str, utilization: float, used_mib: float) -> dict:
    return {
        "index": index,
        "uuid": uuid,
        "name": 'NVIDIA "H200"',
        "utilization_pct": utilization,
        "memory_used_mib": used_mib,
        "memory_total_mib": 143_771.0,
    }


def test_metrics_show_each_trainer_gpu_from_the_newest_heartbeat_of_its_running_runs(client, db):
    now = utc_now()
    # Two runs packed on one GPU of w1: the newer heartbeat's figures count, once.
    stored_run(
        db,
        "older",
        status="in_progress",
        worker="w1",
        heartbeat_at=now - timedelta(seconds=9),
        gpu=[gpu(0, "GPU-a", 40.0, 1000.0)],
    )
    stored_run(db, "newer", status="in_progress", worker="w1", heartbeat_at=now, gpu=[gpu(0, "GPU-a", 87.5, 30_000.0)])
    stored_run(db, "other", status="in_progress", worker="w2", heartbeat_at=now, gpu=[gpu(0, "GPU-b", 5.0, 512.0)])
    stored_run(db, "on-cpu", status="in_progress", worker="w3", heartbeat_at=now)
    stored_run(db, "ended", worker="w4", gpu=[gpu(0, "GPU-c", 99.0, 1.0)])  # completed: its GPU is not its own now

    text = client.get("/metrics").text

    values = {name: value for name, value in metric_values(text).items() if name.startswith("paddy_gpu")}
    a = 'worker="w1",gpu="0",uuid="GPU-a",name="NVIDIA \\"H200\\""'
    b = 'worker="w2",gpu="0",uuid="GPU-b",name="NVIDIA \\"H200\\""'
    assert values == {
        f"paddy_gpu_utilization_percent{{{a}}}": 87.5,
        f"paddy_gpu_utilization_percent{{{b}}}": 5.0,
        f"paddy_gpu_memory_used_bytes{{{a}}}": 30_000 * 2**20,
        f"paddy_gpu_memory_used_bytes{{{b}}}": 512 * 2**20,
        f"paddy_gpu_memory_total_bytes{{{a}}}": 143_771 * 2**20,
        f"paddy_gpu_memory_total_bytes{{{b}}}": 143_771 * 2**20,
    }
    assert "# TYPE paddy_gpu_memory_used_bytes gauge" in text


def test_models_come_with_their_default_specs(client):
    listing = client.get("/models").json()
    assert listing["count"] == 4 and {m["name"] for m in listing["data"]} == {
        "custom_cnn",
        "resnet50",
        "vgg16",
        "mobilenet_v2",
    }


def test_an_unexpected_error_is_a_bare_500_with_an_id_in_the_log(client, monkeypatch, caplog, settings):
    def explode(self, run_id):
        raise RuntimeError(f"boom in {settings.data_root}/secret.py")

    monkeypatch.setattr(Store, "get_run", explode)
    with (
        TestClient(app, raise_server_exceptions=False, headers={"X-API-Key": API_KEY}) as quiet,
        caplog.at_level(logging.ERROR, logger="services.api"),
    ):
        response = quiet.get("/jobs/x")
    assert response.status_code == 500
    message = detail(response)
    assert message.startswith("internal error") and "boom" not in message and "Traceback" not in response.text
    error_id = message.rsplit(" ", 1)[-1]
    assert any(error_id in record.getMessage() and record.exc_info for record in caplog.records)


def test_mongodb_unreachable_is_503(client, monkeypatch):
    def unreachable(self, *args, **kwargs):
        raise ServerSelectionTimeoutError("127.0.0.1:27017: [Errno 111] Connection refused")

    monkeypatch.setattr(Store, "list_runs", unreachable)
    response = client.get("/jobs")
    assert response.status_code == 503 and response.json() == {"detail": "MongoDB is unreachable"}
