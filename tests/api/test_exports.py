"""ONNX exports through the API (the task checked in the real broker, the export made in-test as a
trainer makes it) and the production model answering POST /predict in the API's own process."""

import io
import shutil

import pytest
from PIL import Image

from services.trainer import checkpoints
from services.trainer.local_run import train_locally
from services.trainer.onnx_export import export_run
from services.trainer.predict import predict_images
from services.trainer.settings import TrainerSettings
from shared import names
from shared.datasets.synth import synthesize_dataset
from shared.schemas.jobs import JobSpec
from tests.utils.api import detail, queued_tasks
from tests.utils.documents import stored_run

RUN_ID = "exported1"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(data root, artifacts root) holding a one-epoch fp32 custom_cnn run RUN_ID on dataset `tiny`."""
    data, artifacts = tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("artifacts")
    synthesize_dataset(data / "tiny", per_class=8, size=32, seed=4)
    # fp32 (no bf16 autocast on CPUs that have it): the ONNX model is fp32 and is held to 1e-4 of it.
    spec = JobSpec(
        model_name="custom_cnn",
        dataset="tiny",
        epochs=1,
        batch_size=8,
        image_size=32,
        split="random",
        mixed_precision=False,
    )
    train_locally(RUN_ID, spec, TrainerSettings(data_root=data, artifacts_root=artifacts, device="cpu"))
    return data, artifacts


@pytest.fixture
def run(settings, db, trained) -> TrainerSettings:
    """RUN_ID completed in MongoDB, its files in the test's roots; the trainer's settings there."""
    data, artifacts = trained
    shutil.copytree(data / "tiny", settings.data_root / "tiny")
    shutil.copytree(checkpoints.run_dir(artifacts, RUN_ID), checkpoints.run_dir(settings.artifacts_root, RUN_ID))
    stored_run(db, RUN_ID, dataset="tiny")
    return TrainerSettings(data_root=settings.data_root, artifacts_root=settings.artifacts_root, device="cpu")


def photo(seed: int = 1) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((48, 40), 60 + seed).convert("RGB").save(out, format="PNG")
    return out.getvalue()


def predict(client, data: bytes, **form):
    return client.post("/predict", data={"run_id": RUN_ID, **form}, files={"file": ("leaf.png", data, "image/png")})


def test_an_export_is_queued_once_followed_and_downloaded(client, run, redis_client):
    assert client.get(f"/jobs/{RUN_ID}/export/status").status_code == 404
    assert client.get(f"/jobs/{RUN_ID}/export").status_code == 404

    asked = client.post(f"/jobs/{RUN_ID}/export", json={"quantize": True})
    assert asked.status_code == 202, asked.text
    assert asked.json()["status"] == "queued"
    [(task, args)] = queued_tasks(redis_client, names.BACKGROUND_QUEUE)
    assert task == names.EXPORT_TASK and args == [RUN_ID, True]
    # Asked again while queued: the same export, nothing sent twice.
    again = client.post(f"/jobs/{RUN_ID}/export", json={})
    assert again.status_code == 409 and "already queued" in detail(again)
    assert len(queued_tasks(redis_client, names.BACKGROUND_QUEUE)) == 1
    assert client.get(f"/jobs/{RUN_ID}/export/status").json()["status"] == "queued"

    report = export_run(RUN_ID, run, quantize=True)  # what the trainer does with the task
    state = client.get(f"/jobs/{RUN_ID}/export/status").json()
    assert state["status"] == "completed" and state["requested_at"] is None
    assert state["report"]["parity"]["passed"] and state["report"]["parity"]["max_abs_diff"] <= 1e-4
    assert state["report"]["int8"]["images"] == report.int8.images

    for int8, name in [(False, names.EXPORT_MODEL), (True, names.EXPORT_INT8_MODEL)]:
        download = client.get(f"/jobs/{RUN_ID}/export", params={"format": "onnx", "int8": int8})
        assert download.status_code == 200
        suffix = ".int8.onnx" if int8 else ".onnx"
        assert f'filename="{RUN_ID}{suffix}"' in download.headers["content-disposition"]
        assert download.content == (run.artifacts_root / "runs" / RUN_ID / names.EXPORT_DIR / name).read_bytes()
    assert client.get(f"/jobs/{RUN_ID}/export", params={"format": "tflite"}).status_code == 422
    # Done: a new export may be asked for.
    assert client.post(f"/jobs/{RUN_ID}/export").status_code == 202


def test_a_refused_export_has_no_file_to_download(client, run):
    export_run(RUN_ID, run, tolerance=-1.0)  # no difference can pass: the export is refused
    state = client.get(f"/jobs/{RUN_ID}/export/status").json()
    assert state["status"] == "refused" and "differs from PyTorch" in state["report"]["error"]
    assert client.get(f"/jobs/{RUN_ID}/export").status_code == 404


def test_only_completed_runs_export(client, db, redis_client):
    stored_run(db, "busy1", status="in_progress")
    response = client.post("/jobs/busy1/export")
    assert response.status_code == 409 and "in_progress" in detail(response)
    assert client.post("/jobs/ghost1/export").status_code == 404
    assert queued_tasks(redis_client, names.BACKGROUND_QUEUE) == []


@pytest.fixture
def short_predict_timeout(api_env, monkeypatch):
    monkeypatch.setenv("PADDY_PREDICT_TIMEOUT_S", "0.5")


def test_the_production_model_answers_in_the_api_process_as_pytorch_does(
    short_predict_timeout, client, run, redis_client
):
    export_run(RUN_ID, run)
    pictures = [photo(seed) for seed in range(3)]
    expected = predict_images(RUN_ID, pictures, run)

    # Exported but not in production: the photo goes to the predict queue (no predictor here: 504).
    assert predict(client, pictures[0]).status_code == 504
    assert redis_client.llen(names.PREDICT_QUEUE) == 1
    promoted = client.post("/registry/promote", json={"run_id": RUN_ID, "alias": "production", "reason": "best"})
    assert promoted.status_code in (200, 201), promoted.text
    for picture, want in zip(pictures, expected, strict=True):
        answer = predict(client, picture)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["served_by"] == "onnx" and body["class_name"] == want.class_name
        for name, probability in want.probabilities.items():
            assert abs(body["probabilities"][name] - probability) <= 1e-4
    assert redis_client.llen(names.PREDICT_QUEUE) == 1  # no Celery round trip since the promotion
    # A heatmap needs PyTorch: it still goes to a predictor.
    assert predict(client, pictures[0], heatmap="true").status_code == 504
    assert redis_client.llen(names.PREDICT_QUEUE) == 2
