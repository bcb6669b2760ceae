"""The whole local stack, started as `paddy up` starts it, used as a person would use it.

Real redis-server, nx-27017, recorder, API (uvicorn) and a Celery trainer process, on free ports.
"""

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from shared import names
from shared.datasets.synth import synthesize_dataset
from shared.settings import PaddySettings
from shared.store import connect
from tests.utils.documents import EPOCH_FIELDS, TRAININGS_FIELDS
from tests.utils.stack import TRAINING_STACK, api_client, queue_job, running_stack
from tests.utils.waiting import wait_for_run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("paddy")
    with running_stack(state_dir, TRAINING_STACK, env={"PADDY_HEARTBEAT_INTERVAL_S": "2"}, predictors=False) as running:
        for name in ("tiny", "doomed"):
            synthesize_dataset(state_dir / "data" / name, per_class=12, size=64, seed=1)
        yield running


@pytest.fixture(scope="module")
def api(stack):
    with api_client(stack) as client:
        yield client


@pytest.fixture(scope="module")
def db(stack):
    env = stack.env()
    database = connect(PaddySettings(redis_url=env["PADDY_REDIS_URL"], mongodb_uri=env["PADDY_MONGODB_URI"]))
    yield database
    database.client.close()


def post_job(api, **spec) -> str:
    return queue_job(api, **({"dataset": "tiny", "epochs": 3, "image_size": 64, "batch_size": 16} | spec))


def wait_until_finished(api, run_id: str, timeout_s: float = 240) -> dict:
    return wait_for_run(api, run_id, "completed", "failed", "cancelled", timeout_s=timeout_s)


def test_a_job_trains_and_is_recorded_as_the_original_system_did(stack, api, db):
    run_id = post_job(api)
    # Visible at once: queued, or already started should an idle worker have taken it first.
    assert api.get(f"/jobs/{run_id}").json()["status"] in ("queued", "in_progress")
    run = wait_until_finished(api, run_id)
    assert run["status"] == "completed", run["error"]

    status = db[names.STATUS].find_one({"run_id": run_id})
    assert [h["status"] for h in status["status_history"]] == ["queued", "in_progress", "completed"]
    assert isinstance(status["start_time"], datetime) and isinstance(status["end_time"], datetime)

    epochs = list(db[names.EPOCHS].find({"run_id": run_id}).sort("epoch", 1))
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    for epoch in epochs:
        for field, kind in EPOCH_FIELDS.items():
            assert isinstance(epoch[field], kind), (field, epoch[field])

    [training] = db[names.TRAININGS].find({"run_id": run_id})
    for field, kind in TRAININGS_FIELDS.items():
        assert isinstance(training[field], kind), (field, training[field])
    assert training["version"].startswith("v") and training["epochs_run"] == 3
    assert 0 <= training["test_accuracy"] <= 1 and training["end_time"] > training["start_time"]
    assert sum(map(sum, training["confusion_matrix"])) == status["split_sizes"]["test"]
    assert set(training["per_class"]) == set(training["class_names"]) == set(status["class_names"])
    assert training["reproducibility"]["torch"].startswith("2.14.1")

    # The API says what the store says.
    summary = run["summary"]
    assert {k: summary[k] for k in TRAININGS_FIELDS if k not in ("start_time", "end_time")} == {
        k: training[k] for k in TRAININGS_FIELDS if k not in ("start_time", "end_time")
    }
    assert [e["val_loss"] for e in api.get(f"/jobs/{run_id}/epochs").json()["data"]] == [e["val_loss"] for e in epochs]

    # Every test image's prediction is kept, and agrees with the test accuracy and its interval.
    predictions = api.get(f"/jobs/{run_id}/predictions", params={"limit": 500}).json()
    assert predictions["count"] == status["split_sizes"]["test"] == run["test_images"]
    assert predictions["split_hash"] == training["split_hash"]
    right = sum(p["predicted_class"] == p["true_class"] for p in predictions["data"])
    assert right / predictions["count"] == pytest.approx(training["test_accuracy"])
    low, high = run["test_accuracy_interval"]
    assert low <= training["test_accuracy"] <= high


def test_the_api_process_never_loaded_torch(stack, api):
    assert api.get("/health").json()["status"] == "ok"
    # torch's shared libraries would be mapped into the process had anything imported it.
    maps = Path(f"/proc/{stack.process('api').pid}/maps").read_text()
    assert "site-packages" in maps  # the check sees the venv's native modules…
    assert "torch" not in maps  # …and none of them is torch's


def test_a_missing_dataset_is_refused_with_its_path(api):
    response = api.post("/jobs", json={"model_name": "custom_cnn", "dataset": "not/here", "epochs": 1})
    assert response.status_code == 422
    assert "not/here" in str(response.json()["detail"])


def test_a_dataset_gone_before_training_fails_the_run_and_the_worker_goes_on(stack, api):
    busy = post_job(api, epochs=2)  # keeps the single trainer busy while the dataset disappears
    doomed = post_job(api, dataset="doomed", epochs=1)
    shutil.rmtree(stack.config.state_dir / "data" / "doomed")
    after = post_job(api, epochs=1)

    failed = wait_until_finished(api, doomed)
    assert failed["status"] == "failed"
    assert "DatasetError" in failed["error"] and "doomed" in failed["error"]
    assert wait_until_finished(api, busy)["status"] == "completed"
    assert wait_until_finished(api, after)["status"] == "completed"
