"""What a run reports about itself: run_started, evaluation_finished, test_predictions and its summary.

Training runs and ensembles report the same events with the same fields (an ensemble has no
epochs, dropout or learning rate), so each is built here once for both.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import torch

from services.trainer.device import device_name
from services.trainer.engine import loss_and_accuracy
from services.trainer.lifecycle import Attempt
from services.trainer.metrics import classification_report
from shared.datasets.imagefolder import ImageFolderIndex
from shared.schemas.events import (
    EvaluationFinished,
    ImagePrediction,
    RunStarted,
    TestPredictions,
    TrainingSummary,
    utc_now,
)
from shared.schemas.jobs import EnsembleSpec, JobSpec
from shared.schemas.splits import SplitRecord

log = logging.getLogger(__name__)
# Test splits of more images keep no per-image predictions: their document (about 150 bytes an
# image) would near MongoDB's 16 MB limit.
MAX_KEPT_PREDICTIONS = 50_000


@dataclass(frozen=True)
class RunSplit:
    """The images a run used and how they were split.

    source: the training spec whose dataset, image size and seed the run used (for an
    ensemble, its first member's).
    """

    source: JobSpec
    index: ImageFolderIndex
    positions: dict[str, list[int]]  # split name → positions in index
    split_hash: str
    class_names: list[str]
    # Each image's group, in index order (None: a random split, each image on its own), and
    # what run_started and the summary record about the split (shared/datasets/splits.py).
    groups: list[str] | None = None
    record: SplitRecord | None = None


@dataclass(frozen=True)
class Evaluation:
    """How the kept weights (or the ensemble's vote) do on the test images."""

    loss: float
    accuracy: float
    report: dict[str, Any]  # metrics.classification_report
    images: int


def evaluation_of(logits: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> Evaluation:
    loss, accuracy = loss_and_accuracy(logits, labels)
    return Evaluation(loss, accuracy, classification_report(labels, logits.argmax(1), class_names), len(labels))


def publish_run_started(
    attempt: Attempt,
    spec: JobSpec | EnsembleSpec,
    split: RunSplit,
    device: torch.device,
    resumed_from_epoch: int = 0,
) -> None:
    attempt.publisher.publish(
        RunStarted,
        spec=spec.model_dump(),
        attempt=attempt.number,
        worker=attempt.worker,
        device=device_name(device),
        epochs_planned=spec.epochs if isinstance(spec, JobSpec) else 0,
        class_names=split.class_names,
        split_sizes={name: len(positions) for name, positions in split.positions.items()},
        resumed_from_epoch=resumed_from_epoch,
        split=split.record,
    )


def publish_evaluation(attempt: Attempt, evaluation: Evaluation) -> None:
    attempt.publisher.publish(
        EvaluationFinished,
        accuracy=evaluation.accuracy,
        loss=evaluation.loss,
        f1_macro=evaluation.report["macro_f1"],
        images=evaluation.images,
    )


def publish_test_predictions(
    attempt: Attempt, split: RunSplit, logits: torch.Tensor, labels: torch.Tensor, positions: Sequence[int]
) -> None:
    """test_predictions: every test image's file, group, true and predicted class and probabilities.

    logits and labels are the test evaluation's, row by row; positions say where in split.index
    each row's image is (services/trainer/data.py: ImageTensors.positions). The predicted class is
    the logits' argmax, as the evaluation's accuracy counts it.
    """
    if not len(positions) == len(labels) == len(logits):
        raise ValueError(f"{len(logits)} logits, {len(labels)} labels and {len(positions)} positions do not line up")
    if len(labels) > MAX_KEPT_PREDICTIONS:
        log.warning(
            "run %s: %d test images are over the %d whose predictions are kept; none are",
            attempt.run_id,
            len(labels),
            MAX_KEPT_PREDICTIONS,
        )
        return
    names = split.class_names
    probabilities = logits.detach().cpu().double().softmax(1).numpy().round(4).tolist()
    entries = []
    for position, label, predicted, row in zip(
        positions, labels.tolist(), logits.argmax(1).tolist(), probabilities, strict=True
    ):
        file = split.index.paths[position].relative_to(split.index.root).as_posix()
        group = split.groups[position] if split.groups else file
        entries.append(
            ImagePrediction(
                file=file, group=group, true_class=names[label], predicted_class=names[predicted], probabilities=row
            )
        )
    attempt.publisher.publish(TestPredictions, split_hash=split.split_hash, class_names=names, predictions=entries)


def training_summary(
    attempt: Attempt,
    spec: JobSpec | EnsembleSpec,
    split: RunSplit,
    evaluation: Evaluation,
    skipped_files: int,
    start_time: datetime,
    reproducibility: dict[str, Any],
    *,
    train_accuracy: float,
    val_accuracy: float,
    best_val_loss: float,
    epochs_run: int = 0,
    best_epoch: int = 0,
    early_stopped: bool = False,
) -> TrainingSummary:
    """The run's `trainings` document, ending now."""
    end_time = utc_now()
    training = spec if isinstance(spec, JobSpec) else None
    return TrainingSummary(
        run_id=attempt.run_id,
        model_name=spec.model_name,
        version=spec.version or "v0",
        num_classes=len(split.class_names),
        dropout=training.dropout if training else None,
        feature_extraction=bool(training.feature_extraction) if training else False,
        batch_size=spec.batch_size,
        learning_rate=training.learning_rate if training else 0.0,
        early_stopped=early_stopped,
        epochs_run=epochs_run,
        train_accuracy=train_accuracy,
        val_accuracy=val_accuracy,
        test_accuracy=evaluation.accuracy,
        best_val_loss=best_val_loss,
        duration_minutes=(end_time - start_time).total_seconds() / 60,
        start_time=start_time,
        end_time=end_time,
        test_loss=evaluation.loss,
        class_names=split.class_names,
        dataset=split.source.dataset,
        image_size=split.source.image_size,
        seed=split.source.seed,
        best_epoch=best_epoch,
        test_f1_macro=evaluation.report["macro_f1"],
        confusion_matrix=evaluation.report["confusion_matrix"],
        per_class=evaluation.report["per_class"],
        split_hash=split.split_hash,
        dataset_files=len(split.index.paths),
        dataset_hash=split.index.fingerprint(),
        skipped_files=skipped_files,
        attempts=attempt.number,
        spec=spec.model_dump(),
        reproducibility=reproducibility,
        members=spec.members if isinstance(spec, EnsembleSpec) else None,
        split=split.record,
        may_leak=split.record.may_leak if split.record else False,
    )
