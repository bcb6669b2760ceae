"""POST /jobs, GET /jobs/{run_id}, cancel, retry and archive against a real redis-server and
nx-27017 (no trainer: jobs stay queued)."""

from datetime import timedelta

import pytest

from services.api import deps
from shared import names
from shared.schemas.events import decode_event, utc_now
from tests.utils.api import clear_caches, detail, job
from tests.utils.documents import stored_run


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


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (job(dataset="no-such-dir"), "dataset", "no-such-dir"),
        (job(model_name="resnet9000"), "model_name", "custom_cnn"),
        (job(epochs=0), "epochs", "greater than or equal to 1"),
        (job(extra_field=1), "extra_field", "not permitted"),
        (job(feature_views=4), "feature_views", "needs a frozen backbone"),
        (job(model_name="mobilenet_v2", trainable_layers=1, feature_views=4), "feature_views", "frozen backbone"),
        (job(model_name="mobilenet_v2", feature_extraction=False, feature_views=4), "feature_views", "frozen"),
        (job(model_name="mobilenet_v2", augment="none", feature_views=4), "feature_views", "use 1"),
        (job(model_name="mobilenet_v2", feature_views=17), "feature_views", "≤ 16"),
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


def test_health_and_posting_when_redis_is_down(client, monkeypatch):
    monkeypatch.setenv("PADDY_REDIS_URL", "redis://127.0.0.1:9/0")
    monkeypatch.setenv("PADDY_BROKER_TIMEOUT_S", "0.5")
    clear_caches()
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
    assert models["custom_cnn"]["defaults"]["patience"] == 25  # a quarter of the default 100 epochs
    assert (models["custom_cnn"]["defaults"]["image_size"], models["vgg16"]["defaults"]["image_size"]) == (128, 224)


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


def test_a_posted_job_is_announced_on_the_event_stream(client, redis_client):
    created = client.post("/jobs", json=job()).json()
    [(_, fields)] = redis_client.xrange(names.EVENTS_STREAM)
    event = decode_event(fields)
    assert (event.type, event.run_id, event.seq, event.version) == ("run_queued", created["run_id"], 0, "v1")


def test_a_finished_run_is_retried_as_a_new_run_with_the_same_spec(client, redis_client):
    old = client.post("/jobs", json=job(learning_rate=0.01)).json()["run_id"]
    assert client.post(f"/jobs/{old}/retry").status_code == 409  # still queued
    client.post(f"/jobs/{old}/cancel")
    before = client.get(f"/jobs/{old}").json()
    response = client.post(f"/jobs/{old}/retry")
    assert response.status_code == 202
    new = response.json()
    assert new["run_id"] != old and new["status"] == "queued" and new["version"] == "v2"
    retried = client.get(f"/jobs/{new['run_id']}").json()
    assert retried["retry_of"] == old
    assert {**retried["spec"], "version": None} == {**before["spec"], "version": None}
    assert client.get(f"/jobs/{old}").json() == {**before, "heartbeat_age_s": None}  # the old run unchanged
    assert redis_client.llen(names.TRAINING_QUEUE) == 2
    assert client.post("/jobs/nope/retry").status_code == 404


def test_a_lost_run_can_be_retried_and_a_running_one_cannot(client, db):
    stored_run(db, "lost1", status="lost")
    stored_run(db, "busy1", status="in_progress")
    assert client.post("/jobs/lost1/retry").status_code == 202
    response = client.post("/jobs/busy1/retry")
    assert response.status_code == 409 and "in_progress" in detail(response)


def test_an_archived_run_is_hidden_but_kept(client, db):
    keep, hide = (client.post("/jobs", json=job()).json()["run_id"] for _ in range(2))
    response = client.delete(f"/jobs/{hide}")
    assert response.status_code == 200 and response.json()["archived"] is True
    assert [r["run_id"] for r in client.get("/jobs").json()["data"]] == [keep]
    assert [r["run_id"] for r in client.get("/jobs", params={"archived": True}).json()["data"]] == [hide]
    assert client.get(f"/jobs/{hide}").json()["status"] == "queued"  # data kept
    assert client.delete("/jobs/nope").status_code == 404


def test_the_heartbeat_age_is_computed_when_read(client, db):
    stored_run(db, "beating", status="in_progress", heartbeat_at=utc_now() - timedelta(seconds=30))
    age = client.get("/jobs/beating").json()["heartbeat_age_s"]
    assert 30 <= age < 60
    assert client.get("/jobs", params={"status": "in_progress"}).json()["data"][0]["heartbeat_age_s"] >= 30


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("epochs", 1001, "≤ 1000"),
        ("learning_rate", 0, "> 0 and ≤ 1"),
        ("batch_size", 0, "≥ 1 and ≤ 4096"),
        ("image_size", 16, "≥ 32 and ≤ 1024"),
        ("patience", 0, "≥ 1"),
        ("augment", "lots", "'flips'"),
    ],
)
def test_out_of_bounds_fields_name_the_allowed_values(client, field, value, allowed):
    response = client.post("/jobs", json=job(**{field: value}))
    assert response.status_code == 422
    errors = response.json()["detail"]
    # image_size is a side or [height, width]: one error per form it does not take.
    assert all(error["loc"][:2] == ["body", field] for error in errors), errors
    assert any(allowed in error["msg"] for error in errors), errors
