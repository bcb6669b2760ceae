"""What a run reports about its test images: one prediction per image, named by its file."""

from pathlib import Path

import pytest
import torch

from services.trainer.lifecycle import Attempt
from services.trainer.local_run import LocalPublisher
from services.trainer.summary import RunSplit, publish_test_predictions
from shared.datasets.imagefolder import ImageFolderIndex
from shared.schemas.events import TestPredictions
from shared.schemas.jobs import JobSpec

CLASSES = ["healthy", "sick"]


@pytest.fixture
def split(tmp_path) -> RunSplit:
    root = tmp_path / "leaves"
    paths = [root / "healthy" / "a.png", root / "healthy" / "b.png", root / "sick" / "c.png", root / "sick" / "d d.png"]
    index = ImageFolderIndex(root, CLASSES, paths, [0, 0, 1, 1])
    spec = JobSpec(model_name="custom_cnn", dataset="leaves")
    return RunSplit(spec, index, {"train": [0], "val": [2], "test": [1, 3]}, "hash-1", CLASSES)


def attempt_recording(tmp_path: Path) -> tuple[Attempt, list]:
    events: list = []
    publisher = LocalPublisher(tmp_path / "events.jsonl", "run-1", on_event=events.append)
    return Attempt("run-1", 1, "test", publisher), events


def test_each_test_image_is_named_by_its_file_with_its_classes_and_probabilities(tmp_path, split):
    attempt, events = attempt_recording(tmp_path)
    logits = torch.tensor([[2.0, 0.0], [0.3, 0.1], [-1.0, 1.0]])
    labels = torch.tensor([0, 1, 1])

    # Positions 1, 3 and 2: the rows' images, whatever order and gaps the decoded split has.
    publish_test_predictions(attempt, split, logits, labels, [1, 3, 2])

    [event] = events
    assert isinstance(event, TestPredictions)
    assert (event.split_hash, event.class_names) == ("hash-1", CLASSES)
    rows = [(p.file, p.group, p.true_class, p.predicted_class) for p in event.predictions]
    assert rows == [
        ("healthy/b.png", "healthy/b.png", "healthy", "healthy"),
        ("sick/d d.png", "sick/d d.png", "sick", "healthy"),
        ("sick/c.png", "sick/c.png", "sick", "sick"),
    ]
    first = event.predictions[0].probabilities
    assert first == [0.8808, 0.1192]  # softmax of (2, 0), rounded to 4 decimals
    for prediction in event.predictions:
        assert sum(prediction.probabilities) == pytest.approx(1, abs=2e-4)


def test_rows_that_do_not_line_up_are_refused(tmp_path, split):
    attempt, events = attempt_recording(tmp_path)
    with pytest.raises(ValueError, match="do not line up"):
        publish_test_predictions(attempt, split, torch.zeros(2, 2), torch.tensor([0, 1]), [1])
    assert events == []


def test_a_test_split_too_large_to_keep_publishes_nothing(tmp_path, split, monkeypatch):
    attempt, events = attempt_recording(tmp_path)
    monkeypatch.setattr("services.trainer.summary.MAX_KEPT_PREDICTIONS", 1)
    publish_test_predictions(attempt, split, torch.zeros(2, 2), torch.tensor([0, 1]), [1, 3])
    assert events == []
