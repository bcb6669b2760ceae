"""A real (tiny) training job against a real redis-server: the events it publishes."""

from pathlib import Path

import pytest
import torch

from services.trainer.lifecycle import COMPLETED_FILE
from services.trainer.settings import TrainerSettings
from services.trainer.training import run_training
from shared import names
from shared.datasets.imagefolder import DatasetError
from shared.datasets.synth import synthesize_dataset
from shared.schemas.events import SEQ_PER_ATTEMPT, decode_event
from shared.schemas.jobs import JobSpec


@pytest.fixture
def dataset(settings) -> str:
    synthesize_dataset(Path(settings.data_root) / "tiny", per_class=10, size=32, seed=3)
    return "tiny"


def published(redis_client) -> list:
    return [decode_event(fields) for _id, fields in redis_client.xrange(names.EVENTS_STREAM)]


def test_a_job_publishes_its_whole_lifecycle_in_order(settings, redis_client, dataset):
    spec = JobSpec(model_name="custom_cnn", dataset=dataset, epochs=2, image_size=32, batch_size=8, version="v1")
    # 18 training images in batches of 8: 3 batches an epoch, progress after the second.
    summary = run_training("run-a", spec, TrainerSettings(progress_every_batches=2), worker="test")
    events = [e for e in published(redis_client) if e.type != "heartbeat"]
    finished = [e for e in events if e.type == "epoch_finished"]
    best_again = finished[1].val_loss < finished[0].val_loss  # epoch 2 is saved as best too
    assert [e.type for e in events] == [
        "dataset_audited",  # no audit of the dataset was cached: the trainer found its copy groups itself
        "run_started",
        "epoch_started",
        "epoch_progress",
        "checkpoint_saved",
        "checkpoint_saved",
        "epoch_finished",
        "epoch_started",
        "epoch_progress",
        "checkpoint_saved",
        *["checkpoint_saved"] * best_again,
        "epoch_finished",
        "evaluation_finished",
        "test_predictions",
        "run_completed",
    ]
    seqs = [e.seq for e in published(redis_client)]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and seqs[0] == SEQ_PER_ATTEMPT + 1
    audited, started = events[:2]
    assert audited.audit.dataset == dataset and audited.audit.images == 30
    assert started.class_names == ["Bacterialblight", "Brownspot", "Leafsmut"]
    assert started.split_sizes == {"train": 18, "val": 6, "test": 6}
    assert started.split.method == "grouped" and started.split.group_source == "audit" and started.split.split_seed == 0
    assert started.split == summary.split and started.split.split_hash == summary.split_hash and not summary.may_leak
    assert events[-1].summary == summary
    assert summary.epochs_run == 2 and 0 <= summary.test_accuracy <= 1 and summary.version == "v1"

    for progress in (e for e in events if e.type == "epoch_progress"):
        assert (progress.batch, progress.batches) == (2, 3)
        assert progress.running_loss > 0 and 0 <= progress.running_acc <= 1 and progress.images_per_sec > 0
    saved = [e for e in events if e.type == "checkpoint_saved"]
    assert [(e.epoch, e.kind) for e in saved[:2]] == [(1, "last"), (1, "best")]
    assert [(e.epoch, e.kind) for e in saved[2:]] == [(2, "last")] + ([(2, "best")] if best_again else [])
    for checkpoint in saved:
        assert checkpoint.path == f"runs/run-a/{checkpoint.kind}.pt"  # relative to the artifacts root
        assert (Path(settings.artifacts_root) / checkpoint.path).is_file()
    # best.pt is the best epoch's checkpoint (a copy of the last.pt written with it), whole.
    best = torch.load(Path(settings.artifacts_root) / "runs/run-a/best.pt", weights_only=False)
    assert best["epoch"] == (2 if best_again else 1) and best["history"][-1]["val_loss"] == min(
        event.val_loss for event in finished[: best["epoch"]]
    )
    [evaluation] = [e for e in events if e.type == "evaluation_finished"]
    assert (evaluation.accuracy, evaluation.loss, evaluation.f1_macro, evaluation.images) == (
        summary.test_accuracy,
        summary.test_loss,
        summary.test_f1_macro,
        6,
    )
    [predicted] = [e for e in events if e.type == "test_predictions"]
    assert predicted.split_hash == summary.split_hash and predicted.class_names == summary.class_names
    dataset_root = Path(settings.data_root) / dataset
    assert len(predicted.predictions) == 6 and len({p.file for p in predicted.predictions}) == 6
    for prediction in predicted.predictions:
        assert (dataset_root / prediction.file).is_file()
        assert prediction.true_class == prediction.file.split("/")[0]  # the class folder
    right = sum(p.predicted_class == p.true_class for p in predicted.predictions)
    assert right / 6 == pytest.approx(summary.test_accuracy)
    # Each row of the confusion matrix counts the predictions of its true class.
    for true_index, true_class in enumerate(summary.class_names):
        assert summary.confusion_matrix[true_index] == [
            sum(p.true_class == true_class and p.predicted_class == predicted_class for p in predicted.predictions)
            for predicted_class in summary.class_names
        ]


def died_before_its_events_were_sent(settings, run_id: str) -> None:
    """As if the attempt that just completed run_id had died before its last events reached
    the stream: it would have left no completed.json."""
    (Path(settings.artifacts_root) / "runs" / run_id / COMPLETED_FILE).unlink()


def test_a_job_delivered_again_after_its_run_completed_does_nothing(settings, redis_client, dataset):
    # A Redis restart makes kombu put back the messages a worker had in hand, even one whose task then completed.
    spec = JobSpec(model_name="custom_cnn", dataset=dataset, epochs=1, image_size=32, batch_size=8)
    summary = run_training("run-f", spec, TrainerSettings(), worker="test")
    events = published(redis_client)
    assert run_training("run-f", spec, TrainerSettings(), worker="test") == summary
    assert published(redis_client) == events  # nothing published
    assert redis_client.get(names.ATTEMPT_KEY.format(run_id="run-f")) == b"1"  # no second attempt taken
    # A damaged file is no proof of completion: the job runs (resuming from its checkpoint).
    (Path(settings.artifacts_root) / "runs" / "run-f" / COMPLETED_FILE).write_text("{")
    run_training("run-f", spec, TrainerSettings(), worker="test")
    assert [e.type for e in published(redis_client)[len(events) :] if e.type != "heartbeat"][-1] == "run_completed"
    assert redis_client.get(names.ATTEMPT_KEY.format(run_id="run-f")) == b"2"


def test_a_second_attempt_numbers_its_events_after_the_first(settings, redis_client, dataset):
    spec = JobSpec(model_name="custom_cnn", dataset=dataset, epochs=1, image_size=32, batch_size=8)
    run_training("run-b", spec, TrainerSettings(), worker="test")
    last_of_first = published(redis_client)[-1].seq
    redis_client.delete(names.EVENTS_STREAM)
    died_before_its_events_were_sent(settings, "run-b")
    run_training("run-b", spec, TrainerSettings(), worker="test")
    events = published(redis_client)
    assert events[0].seq > last_of_first and events[0].attempt == 2


def test_a_missing_dataset_publishes_run_failed_and_raises(settings, redis_client):
    spec = JobSpec(model_name="custom_cnn", dataset="gone", epochs=1)
    with pytest.raises(DatasetError):
        run_training("run-c", spec, TrainerSettings(), worker="test")
    [failed] = published(redis_client)
    assert failed.type == "run_failed" and failed.error_type == "DatasetError" and "gone" in failed.message


def test_a_job_delivered_too_often_fails_with_the_reason(settings, redis_client, dataset):
    spec = JobSpec(model_name="custom_cnn", dataset=dataset, epochs=1, image_size=32, batch_size=8)
    redis_client.set(names.ATTEMPT_KEY.format(run_id="run-d"), 3)  # three workers died on it
    with pytest.raises(Exception, match="delivered 4 times"):
        run_training("run-d", spec, TrainerSettings(max_attempts=3), worker="test")
    [failed] = published(redis_client)
    assert failed.type == "run_failed" and failed.error_type == "TooManyAttempts"


def test_a_resumed_attempt_restates_the_checkpoints_epochs_with_their_first_times(settings, redis_client, dataset):
    # The attempt that wrote the checkpoint may have died before its epoch events were sent.
    spec = JobSpec(model_name="custom_cnn", dataset=dataset, epochs=2, patience=5, image_size=32, batch_size=8)
    run_training("run-e", spec, TrainerSettings(), worker="test")
    first = {e.epoch: e for e in published(redis_client) if e.type == "epoch_finished"}
    redis_client.delete(names.EVENTS_STREAM)
    died_before_its_events_were_sent(settings, "run-e")
    run_training("run-e", spec, TrainerSettings(), worker="test")  # delivered again: resumes after epoch 2
    events = [e for e in published(redis_client) if e.type != "heartbeat"]
    assert events[0].type == "run_started" and events[0].resumed_from_epoch == 2
    restated = [e for e in events if e.type == "epoch_finished"]
    assert [e.epoch for e in restated] == [1, 2] and all(e.seq > 2 * SEQ_PER_ATTEMPT for e in restated)
    for again in restated:
        assert again.model_dump(exclude={"event_id", "seq"}) == first[again.epoch].model_dump(
            exclude={"event_id", "seq"}
        )
    assert "epoch_started" not in {e.type for e in events}  # nothing left to train
    checkpoint = torch.load(Path(settings.artifacts_root) / "runs" / "run-e" / "last.pt", weights_only=False)
    assert checkpoint["attempt"] == 1 and len(checkpoint["finished_at"]) == 2
