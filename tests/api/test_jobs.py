"""The API against a real redis-server and nx-27017 (no trainer: jobs stay queued)."""

import pytest
from fastapi.testclient import TestClient

from services.api import deps, settings as api_settings
from services.api.main import app
from shared import names
from shared.datasets.synth import synthesize_dataset


@pytest.fixture
def client(settings, db):
    for cached in (api_settings.get_settings, deps.get_store, deps.get_queue, deps.get_redis):
        cached.cache_clear()
    synthesize_dataset(settings.data_root / "leaves", per_class=3, size=32, seed=0)
    with TestClient(app) as test_client:
        yield test_client
    for cached in (api_settings.get_settings, deps.get_store, deps.get_queue, deps.get_redis):
        cached.cache_clear()


def job(**overrides) -> dict:
    return {"model_name": "custom_cnn", "dataset": "leaves", "epochs": 3, "image_size": 64, **overrides}


def test_a_posted_job_is_queued_and_visible_at_once(client, redis_client):
    response = client.post("/jobs", json=job())
    assert response.status_code == 202
    created = response.json()
    run = client.get(f"/jobs/{created['run_id']}").json()
    assert run["status"] == "queued" and run["epochs_planned"] == 3 and run["summary"] is None
    assert run["spec"]["version"] == created["version"] == "v1"
    assert redis_client.llen(names.TRAINING_QUEUE) == 1  # the Celery message waits for a trainer


def test_jobs_are_listed_newest_first_and_versioned_per_model(client):
    ids = [client.post("/jobs", json=job()).json()["run_id"] for _ in range(3)]
    listed = client.get("/jobs").json()
    assert [r["run_id"] for r in listed["data"]] == ids[::-1] and listed["count"] == 3
    assert [r["version"] for r in listed["data"]] == ["v3", "v2", "v1"]
    assert client.get("/jobs", params={"limit": 1, "offset": 1}).json()["data"][0]["run_id"] == ids[1]


def detail(response) -> str:
    return str(response.json()["detail"])


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (job(dataset="no-such-dir"), "dataset", "no-such-dir"),
        (job(model_name="resnet9000"), "model_name", "custom_cnn"),
        (job(epochs=0), "epochs", "greater than or equal to 1"),
        (job(extra_field=1), "extra_field", "not permitted"),
    ],
)
def test_bad_jobs_are_refused_naming_the_field(client, body, field, words):
    response = client.post("/jobs", json=body)
    assert response.status_code == 422
    assert field in str(response.json()["detail"][0]["loc"]) and words in detail(response)
    assert client.get("/jobs").json()["count"] == 0


def test_malformed_json_is_refused(client):
    response = client.post("/jobs", content=b'{"model_name": ', headers={"content-type": "application/json"})
    assert response.status_code == 422 and "JSON" in detail(response)


def test_unknown_runs_are_404(client):
    assert client.get("/jobs/nope").status_code == 404
    assert client.get("/jobs/nope/epochs").json()["detail"] == "run nope not found"


def test_health_reports_both_stores(client):
    assert client.get("/health").json() == {"status": "ok", "redis": "ok", "mongodb": "ok"}


def test_health_and_posting_when_redis_is_down(client, monkeypatch):
    monkeypatch.setenv("PADDY_REDIS_URL", "redis://127.0.0.1:9/0")
    monkeypatch.setenv("PADDY_BROKER_TIMEOUT_S", "0.5")
    for cached in (api_settings.get_settings, deps.get_queue, deps.get_redis):
        cached.cache_clear()
    health = client.get("/health")
    assert health.status_code == 503 and health.json()["redis"].startswith("unreachable")
    response = client.post("/jobs", json=job())
    assert response.status_code == 503 and "unreachable" in detail(response)
    [run] = client.get("/jobs").json()["data"]
    assert run["status"] == "failed" and "broker" in run["error"]


def test_models_come_with_their_default_specs(client):
    models = {m["name"]: m for m in client.get("/models").json()["data"]}
    assert set(models) == {"custom_cnn", "resnet50", "vgg16", "mobilenet_v2"}
    assert models["resnet50"]["defaults"]["feature_extraction"] is True
    assert models["resnet50"]["defaults"]["weights"] == "imagenet"
    assert models["custom_cnn"]["defaults"]["weights"] == "none"
    assert models["custom_cnn"]["defaults"]["patience"] == 10


def test_the_stored_spec_says_exactly_what_runs(client):
    run_id = client.post("/jobs", json=job(model_name="mobilenet_v2", dropout=None)).json()["run_id"]
    spec = client.get(f"/jobs/{run_id}").json()["spec"]
    assert (spec["feature_extraction"], spec["weights"], spec["dropout"]) == (True, "imagenet", None)


def test_a_queued_job_is_cancelled_and_revoked_without_terminating(client, redis_client, monkeypatch):
    revoked = []
    monkeypatch.setattr(deps.get_queue().__class__, "revoke", lambda self, run_id: revoked.append(run_id))
    run_id = client.post("/jobs", json=job()).json()["run_id"]
    response = client.post(f"/jobs/{run_id}/cancel")
    assert response.status_code == 202
    run = response.json()
    assert run["status"] == "cancelled" and run["end_time"] is not None
    assert [h["status"] for h in run["status_history"]] == ["queued", "cancelled"]
    assert revoked == [run_id]
    # The flag makes a worker that gets the job anyway skip it.
    assert redis_client.exists(names.CANCEL_KEY.format(run_id=run_id))
    assert 0 < redis_client.ttl(names.CANCEL_KEY.format(run_id=run_id)) <= names.CANCEL_FLAG_TTL_S


def test_a_running_job_gets_its_cancel_flag_and_keeps_its_status(client, db, redis_client, monkeypatch):
    monkeypatch.setattr(deps.get_queue().__class__, "revoke", lambda self, run_id: pytest.fail("revoked"))
    run_id = client.post("/jobs", json=job()).json()["run_id"]
    db[names.STATUS].update_one({"run_id": run_id}, {"$set": {"status": "in_progress"}})
    response = client.post(f"/jobs/{run_id}/cancel")
    assert response.status_code == 202 and response.json()["status"] == "in_progress"
    assert redis_client.exists(names.CANCEL_KEY.format(run_id=run_id))


def test_finished_and_unknown_runs_cannot_be_cancelled(client, db):
    run_id = client.post("/jobs", json=job()).json()["run_id"]
    db[names.STATUS].update_one({"run_id": run_id}, {"$set": {"status": "completed"}})
    response = client.post(f"/jobs/{run_id}/cancel")
    assert response.status_code == 409
    assert detail(response) == f"run {run_id} is already completed; only queued or running runs can be cancelled"
    assert client.post("/jobs/nope/cancel").status_code == 404
