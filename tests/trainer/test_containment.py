"""The trainer reads a job's files only inside their roots, whatever the API let through: a
dataset scanned with a link out of the data root and a weights file outside the weights root
both fail the run (run_failed), and nothing outside is read."""

from pathlib import Path

import pytest

from services.trainer.settings import TrainerSettings
from services.trainer.training import run_training
from shared import names
from shared.datasets.imagefolder import DatasetError
from shared.datasets.synth import synthesize_dataset
from shared.schemas.events import decode_event
from shared.schemas.jobs import JobSpec


def failure(redis_client):
    events = [decode_event(fields) for _id, fields in redis_client.xrange(names.EVENTS_STREAM)]
    assert events[-1].type == "run_failed" and not [e for e in events if e.type == "epoch_started"]
    return events[-1]


def job(dataset: str, **overrides) -> JobSpec:
    return JobSpec(model_name="custom_cnn", dataset=dataset, epochs=1, image_size=32, batch_size=8, **overrides)


def test_a_class_folder_linked_out_of_the_data_root_fails_the_run(settings, redis_client, tmp_path):
    outside = tmp_path / "outside"
    synthesize_dataset(outside, per_class=4, size=32, seed=1)
    linked = Path(settings.data_root) / "linked"
    synthesize_dataset(linked, per_class=4, size=32, seed=2)
    (linked / "Stolen").symlink_to(outside / "Brownspot", target_is_directory=True)
    with pytest.raises(DatasetError, match="class folder 'linked/Stolen' is a link that leads outside"):
        run_training("run-link", job("linked"), TrainerSettings(), worker="test")
    failed = failure(redis_client)
    assert failed.error_type == "DatasetError" and str(tmp_path) not in failed.message


@pytest.mark.parametrize("weights", ["/etc/passwd", "escape.pt"])
def test_weights_outside_the_weights_root_fail_the_run_unread(settings, redis_client, tmp_path, weights):
    synthesize_dataset(Path(settings.data_root) / "tiny", per_class=4, size=32, seed=3)
    weights_root = tmp_path / "weights"
    weights_root.mkdir()
    (weights_root / "escape.pt").symlink_to("/etc/passwd")
    with pytest.raises(ValueError, match="outside the weights root"):
        run_training(
            "run-weights", job("tiny", weights=weights), TrainerSettings(weights_root=weights_root), worker="test"
        )
    failed = failure(redis_client)
    assert "outside the weights root" in failed.message and str(weights_root) not in failed.message
