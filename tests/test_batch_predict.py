"""Batch predictions with one tiny trained run (custom_cnn, 32 px, one epoch): the chunks as a
predictor runs them (progress, the CSV, a chunk delivered again, unreadable images, a run that
cannot predict); a Celery predictor (a worker thread of the trainers' own app) that answers a
single prediction while a batch is in flight; and `paddy predict --run RUN DIR` against the API
served by uvicorn in a thread. Real redis-server and nx-27017 behind them."""

import base64
import csv
import io
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from celery import Celery
from celery.contrib.testing.worker import start_worker
from typer.testing import CliRunner

from infra.cli import app as cli_app
from services.api.main import app as api_app
from services.trainer import checkpoints
from services.trainer.batch_job import run_batch_chunk
from services.trainer.local_run import train_locally
from services.trainer.predict import PredictionError
from services.trainer.settings import TrainerSettings
from shared import names
from shared.batches import CSV_FILE, batch_dir, read_progress
from shared.datasets.synth import CLASS_NAMES, synthesize_dataset
from shared.schemas.jobs import JobSpec
from tests.utils.api import API_KEY, clear_caches
from tests.utils.batches import unpacked_batch
from tests.utils.documents import stored_run
from tests.utils.stack import free_port
from tests.utils.waiting import wait_for

RUN_ID = "tiny"
CLASSES = sorted(CLASS_NAMES)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """(the run's best checkpoint, 60 new photos to classify by their name in a batch)."""
    data, artifacts = tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("artifacts")
    synthesize_dataset(data / "tiny", per_class=10, size=32, seed=3)
    # A random split: no audit of the dataset first, which a prediction does not need.
    spec = JobSpec(model_name="custom_cnn", dataset="tiny", epochs=1, batch_size=8, image_size=32, split="random")
    train_locally(RUN_ID, spec, TrainerSettings(data_root=data, artifacts_root=artifacts, device="cpu"))
    photos = tmp_path_factory.mktemp("photos")
    synthesize_dataset(photos, per_class=20, size=32, seed=11)
    named = {path.relative_to(photos).as_posix(): path for path in sorted(photos.rglob("*.png"))}
    return checkpoints.run_dir(artifacts, RUN_ID) / checkpoints.BEST, named


@pytest.fixture
def trainer_settings(settings, tiny_run, monkeypatch) -> TrainerSettings:
    """The test's roots and Redis (as the predictor thread reads them too), the run in its artifacts."""
    monkeypatch.setenv("PADDY_DEVICE", "cpu")
    run_dir = checkpoints.run_dir(settings.artifacts_root, RUN_ID)
    run_dir.mkdir(parents=True)
    shutil.copyfile(tiny_run[0], run_dir / checkpoints.BEST)
    return TrainerSettings()


def run_chain(batch_id: str, settings: TrainerSettings, queued: list[int] | None = None) -> list[int]:
    """The batch's chunks in this process, from those queued (default: the first), each one
    queuing the next as a predictor does; returns every chunk queued."""
    queued = [0] if queued is None else queued
    for chunk in queued:  # grows as the chunks queue their successors
        run_batch_chunk(batch_id, chunk, settings, queued.append)
    return queued


def csv_rows(settings: TrainerSettings, batch_id: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO((batch_dir(settings.artifacts_root, batch_id) / CSV_FILE).read_text())))


def test_every_image_gets_one_row_with_probabilities_and_unreadable_ones_their_error(
    trainer_settings, tiny_run, redis_client, tmp_path
):
    photos = dict(list(tiny_run[1].items())[:7])
    secret = tmp_path / "secret.png"
    shutil.copyfile(next(iter(photos.values())), secret)
    batch_id = unpacked_batch(
        trainer_settings.artifacts_root, RUN_ID, {**photos, "broken.png": b"not a png", "zz/link.png": b""}, 3
    )
    link = batch_dir(trainer_settings.artifacts_root, batch_id) / "images" / "zz" / "link.png"
    link.unlink()
    link.symlink_to(secret)  # as no zip may put it there: the predictor refuses it all the same

    queued: list[int] = []
    assert run_batch_chunk(batch_id, 0, trainer_settings, queued.append) == 3
    progress = read_progress(redis_client, batch_id)
    assert (progress.state, progress.done, progress.total) == ("running", 3, 9)
    assert run_chain(batch_id, trainer_settings, queued) == [1, 2]

    progress = read_progress(redis_client, batch_id)
    assert (progress.state, progress.done, progress.total, progress.failed_images) == ("done", 9, 9, 2)
    header, *rows = csv_rows(trainer_settings, batch_id)
    assert header == ["file", "class", *CLASSES, "error"]
    assert [row[0] for row in rows] == sorted([*photos, "broken.png", "zz/link.png"])
    by_file = {row[0]: row for row in rows}
    for file in photos:
        _, predicted, *probabilities, error = by_file[file]
        values = [float(p) for p in probabilities]
        assert sum(values) == pytest.approx(1, abs=1e-5) and error == ""
        assert predicted == CLASSES[values.index(max(values))]
    assert by_file["broken.png"][1:5] == ["", "", "", ""]
    assert by_file["broken.png"][-1].startswith("cannot read image broken.png")
    assert by_file["zz/link.png"][-1] == "a link that leads outside the batch's folder"
    assert str(tmp_path) not in (batch_dir(trainer_settings.artifacts_root, batch_id) / CSV_FILE).read_text()


def test_a_chunk_delivered_again_adds_no_row_and_queues_nothing_twice(trainer_settings, tiny_run, redis_client):
    photos = dict(list(tiny_run[1].items())[:6])
    batch_id = unpacked_batch(trainer_settings.artifacts_root, RUN_ID, photos, 2)
    queued: list[int] = []
    run_batch_chunk(batch_id, 0, trainer_settings, queued.append)
    run_batch_chunk(batch_id, 0, trainer_settings, queued.append)  # its worker died before the ack
    assert queued == [1]
    assert read_progress(redis_client, batch_id).done == 2

    run_chain(batch_id, trainer_settings, queued)
    first = csv_rows(trainer_settings, batch_id)
    run_batch_chunk(batch_id, 1, trainer_settings, queued.append)  # again, after the batch is done
    assert csv_rows(trainer_settings, batch_id) == first and len(first) == 1 + 6
    progress = read_progress(redis_client, batch_id)
    assert (progress.state, progress.done) == ("done", 6)


def test_a_run_that_cannot_predict_fails_the_batch_saying_why(trainer_settings, tiny_run, redis_client):
    batch_id = unpacked_batch(trainer_settings.artifacts_root, "ghost", dict(list(tiny_run[1].items())[:2]), 1)
    with pytest.raises(PredictionError):
        run_batch_chunk(batch_id, 0, trainer_settings, lambda chunk: None)
    progress = read_progress(redis_client, batch_id)
    assert progress.state == "failed"
    assert progress.error == "run ghost has no checkpoint in <artifacts>/runs/ghost: is it completed?"


@pytest.fixture
def predictor(trainer_settings) -> Iterator[Celery]:
    """A predictor as `paddy up` runs one (the trainers' Celery app on the predict queue alone),
    in a thread; yields a client app that sends tasks by name, as the API does."""
    from services.trainer.celery_app import app as trainer_app

    trainer_app.conf.update(broker_url=trainer_settings.redis_url, result_backend=trainer_settings.redis_url)
    client = Celery("test-client", broker=trainer_settings.redis_url, backend=trainer_settings.redis_url)
    with start_worker(
        trainer_app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        queues=[names.PREDICT_QUEUE],
        loglevel="WARNING",
    ):
        # A stand-in task of another test registered under the same name would answer instead.
        assert trainer_app.tasks[names.PREDICT_TASK].run.__module__ == "services.trainer.tasks"
        yield client
    client.close()


def test_a_single_prediction_is_answered_while_a_batch_is_in_flight(
    predictor, trainer_settings, tiny_run, redis_client
):
    photos = tiny_run[1]
    batch_id = unpacked_batch(trainer_settings.artifacts_root, RUN_ID, photos, 1)  # 60 chunks
    predictor.send_task(names.BATCH_PREDICT_TASK, args=[batch_id, 0], queue=names.PREDICT_QUEUE)
    wait_for(lambda: (p := read_progress(redis_client, batch_id)) and p.done >= 2, 60, "the batch to be under way")

    photo = base64.b64encode(next(iter(photos.values())).read_bytes()).decode()
    answer = predictor.send_task(names.PREDICT_TASK, args=[RUN_ID, [photo]], queue=names.PREDICT_QUEUE).get(timeout=30)
    when_answered = read_progress(redis_client, batch_id)

    assert answer[0]["class"] in CLASSES
    assert when_answered.state == "running" and when_answered.done < len(photos), when_answered
    wait_for(lambda: read_progress(redis_client, batch_id).state == "done", 60, "the batch to finish")
    assert len(csv_rows(trainer_settings, batch_id)) == 1 + len(photos)


@pytest.fixture
def api_url(settings, db, monkeypatch) -> Iterator[str]:
    """The API served by uvicorn in a thread, with the tiny run stored as completed."""
    monkeypatch.setenv("PADDY_API_KEY", API_KEY)
    monkeypatch.setenv("PADDY_ENVIRONMENT", "production")
    clear_caches()
    stored_run(db, RUN_ID)
    server = uvicorn.Server(uvicorn.Config(api_app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 30, "uvicorn")
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(timeout=10)
    clear_caches()


def test_paddy_predict_with_a_folder_classifies_it_through_the_api(predictor, api_url, tiny_run, tmp_path):
    folder = tmp_path / "field"
    for name, path in list(tiny_run[1].items())[:5]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / name)
    (folder / "notes.txt").write_text("plot 7")
    out = tmp_path / "predictions.csv"
    args = ["predict", "--run", RUN_ID, str(folder), "--api-url", api_url, "--api-key", API_KEY]

    result = CliRunner().invoke(cli_app, [*args, "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("batch ") and f"5 images, 0 unreadable → {out}" in result.stdout
    assert "classifying" in result.stderr  # the progress bar
    header, *rows = list(csv.reader(out.open()))
    assert header == ["file", "class", *CLASSES, "error"] and len(rows) == 5

    printed = CliRunner().invoke(cli_app, args)
    assert printed.exit_code == 0 and printed.stdout == out.read_text()

    refused = CliRunner().invoke(cli_app, ["predict", "--run", "ghost", *args[3:]])
    assert refused.exit_code == 1 and "the API answered 404: run ghost not found" in refused.output
