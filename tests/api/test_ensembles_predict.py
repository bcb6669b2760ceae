"""POST /ensembles (the Celery message checked in the real broker) and POST /predict (upload
checks, and a round trip through a tiny in-test Celery worker that stands in for a trainer)."""

import base64
import io

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from PIL import Image

from shared import names
from shared.schemas.jobs import EnsembleSpec
from shared.settings import PaddySettings
from tests.utils.api import clear_caches, detail, png_header, queued_tasks
from tests.utils.documents import stored_run


def test_an_ensemble_of_completed_runs_is_queued_by_task_name(client, db, redis_client):
    stored_run(db, "m1")
    stored_run(db, "m2")
    response = client.post("/ensembles", json={"members": ["m1", "m2"], "voting": "softmax"})
    assert response.status_code == 202
    created = response.json()
    [(task, (run_id, spec))] = queued_tasks(redis_client)
    assert task == names.ENSEMBLE_TASK and run_id == created["run_id"]
    assert EnsembleSpec.model_validate(spec).members == ["m1", "m2"]  # what the trainer's task validates
    assert spec["voting"] == "softmax" and spec["version"] == created["version"] == "v1"
    run = client.get(f"/jobs/{run_id}").json()
    assert run["model_name"] == "ensemble" and run["status"] == "queued"
    # A finished ensemble is retried as an ensemble.
    db[names.STATUS].update_one({"run_id": run_id}, {"$set": {"status": "failed"}})
    client.post(f"/jobs/{run_id}/retry")
    assert [task for task, _ in queued_tasks(redis_client)] == [names.ENSEMBLE_TASK] * 2


def test_ensemble_members_must_exist_be_completed_and_be_training_runs(client, db, redis_client):
    stored_run(db, "done")
    stored_run(db, "running", status="in_progress")
    stored_run(db, "ens", model_name="ensemble")
    for members, words in [
        (["done", "ghost"], "ghost"),
        (["done", "running"], "running (in_progress)"),
        (["done", "ens"], "ens"),
        (["done", "done"], "repeated"),
        (["done"], "at least 2"),
    ]:
        response = client.post("/ensembles", json={"members": members})
        assert response.status_code == 422 and words in detail(response), members
        assert "members" in response.json()["detail"][0]["loc"]
    assert redis_client.llen(names.TRAINING_QUEUE) == 0


def test_members_tested_on_different_splits_are_refused_at_once(client, db, redis_client):
    split = {"method": "grouped", "split_seed": 0, "group_source": "audit", "groups": 30, "folds": None, "fold": None}
    stored_run(db, "s1", split={**split, "split_hash": "aaaa1111"})
    stored_run(db, "s2", split={**split, "split_hash": "aaaa1111"})
    stored_run(db, "s3", split={**split, "split_seed": 7, "split_hash": "bbbb2222"})
    # A run recorded before status documents kept their split: its summary has the hash.
    stored_run(db, "old")
    db[names.TRAININGS].insert_one({"_id": "old", "run_id": "old", "split_hash": "cccc3333"})

    for members, named in [
        (["s1", "s3"], ["s1 (split aaaa1111)", "s3 (split bbbb2222)"]),
        (["s1", "s2", "old"], ["old (split cccc3333)"]),
    ]:
        response = client.post("/ensembles", json={"members": members})
        assert response.status_code == 422, members
        [error] = response.json()["detail"]
        assert error["loc"][-1] == "members" and "tested on different splits" in error["msg"]
        assert all(words in error["msg"] for words in named), error["msg"]
    assert redis_client.llen(names.TRAINING_QUEUE) == 0
    assert client.post("/ensembles", json={"members": ["s1", "s2"]}).status_code == 202


def image_bytes(fmt: str, size=(8, 8)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 30)).save(out, format=fmt)
    return out.getvalue()


def post_image(client, data: bytes, run_id: str = "done", name: str = "leaf.png"):
    return client.post("/predict", data={"run_id": run_id}, files={"file": (name, data, "image/png")})


@pytest.fixture
def predict_env(client, db, monkeypatch):
    monkeypatch.setenv("PADDY_MAX_UPLOAD_BYTES", "50000")
    monkeypatch.setenv("PADDY_PREDICT_TIMEOUT_S", "1")
    clear_caches()
    stored_run(db, "done")
    return client


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"hello, not an image", 415, "not an image"),
        (b"GIF89a" + b"\0" * 50, 415, "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, 415, "not a readable PNG"),
        (png_header(100_000, 100_000), 413, "too many pixels"),  # past Pillow's own bomb limit
        (png_header(8000, 6000), 413, "48000000 pixels; at most 40000000"),  # past ours only
        (b"\xff\xd8\xff" + b"\0" * 60_000, 413, "larger than 50000 bytes"),  # read, then refused
        (b"\xff\xd8\xff" + b"\0" * 200_000, 413, "larger than 50000 bytes"),  # refused by Content-Length
    ],
)
def test_uploads_that_are_refused(predict_env, data, code, words):
    response = post_image(predict_env, data)
    assert response.status_code == code and words in detail(response)


def test_predicting_needs_a_completed_run_and_a_trainer(predict_env, db):
    stored_run(db, "queued", status="queued")
    png = image_bytes("PNG")
    assert post_image(predict_env, png, run_id="ghost").status_code == 404
    response = post_image(predict_env, png, run_id="queued")
    assert response.status_code == 409 and "queued" in detail(response)
    response = post_image(predict_env, png)  # no worker consumes the predict queue
    assert response.status_code == 504 and "no trainer answered within 1 s" in detail(response)


# A stand-in trainer: one Celery app for the module (task names are registered once per
# process), pointed at each test's Redis by the fixture.
tiny_app = Celery("tiny-trainer", set_as_current=False)
tiny_app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])


# shared=False: a stand-in must not become the paddy.predict of every Celery app finalized later
# in the session (the trainers' own app among them, which tests/test_batch_predict.py runs).
@tiny_app.task(name=names.PREDICT_TASK, ignore_result=False, shared=False)
def tiny_predict(run_id: str, images: list[str], heatmap: bool = False) -> list[dict]:
    """Answers with what it decoded (and a stand-in heatmap when asked), or fails like a trainer
    that cannot use the run."""
    raw = base64.b64decode(images[0], validate=True)
    if run_id == "broken":
        artifacts = PaddySettings().artifacts_root.resolve()
        raise ValueError(f"cannot read image 1 ({len(raw)} bytes) with {artifacts}/runs/broken/best.pt")
    return [
        {
            "class": f"{run_id}:{len(raw)}:{Image.open(io.BytesIO(raw)).format}",
            "probabilities": {"Brownspot": 0.75, "Leafsmut": 0.25},
        }
        | ({"heatmap": base64.b64encode(b"jpeg of " + raw[:4]).decode()} if heatmap else {})
    ]


@pytest.fixture
def tiny_trainer(settings):
    """A Celery worker thread serving only the predict queue, with tiny_predict."""
    tiny_app.conf.update(broker_url=settings.redis_url, result_backend=settings.redis_url)
    with start_worker(
        tiny_app, pool="solo", concurrency=1, perform_ping_check=False, queues=[names.PREDICT_QUEUE], loglevel="WARNING"
    ):
        yield


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_prediction_goes_to_the_predict_queue_and_comes_back(predict_env, tiny_trainer, fmt):
    data = image_bytes(fmt)
    response = post_image(predict_env, data, name="leaf.bin")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "run_id": "done",
        "class_name": f"done:{len(data)}:{fmt}",
        "probabilities": {"Brownspot": 0.75, "Leafsmut": 0.25},
        "heatmap": None,
        "served_by": "predictor",
    }


def test_a_heatmap_is_asked_for_and_comes_back_with_the_prediction(predict_env, tiny_trainer):
    data = image_bytes("PNG")
    response = predict_env.post(
        "/predict", data={"run_id": "done", "heatmap": "true"}, files={"file": ("leaf.png", data, "image/png")}
    )
    assert response.status_code == 200, response.text
    assert base64.b64decode(response.json()["heatmap"]) == b"jpeg of " + data[:4]


def test_a_trainer_failure_is_422_without_server_paths(predict_env, tiny_trainer, db, settings):
    stored_run(db, "broken")
    response = post_image(predict_env, image_bytes("PNG"), run_id="broken")
    assert response.status_code == 422 and "cannot read image 1" in detail(response)
    assert str(settings.artifacts_root.resolve()) not in detail(response)
