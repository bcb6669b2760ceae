"""One training job from spec to summary, reporting every step as an event."""

import logging
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch

from services.trainer import checkpoints, feature_cache
from services.trainer.checkpoints import RunRecord
from services.trainer.data import ImageTensors, SplitData, load_split_data, place
from services.trainer.device import pick_device, reproducibility
from services.trainer.engine import (
    BatchProgress,
    EarlyStopping,
    EpochMetrics,
    RandomStreams,
    TrainingState,
    fit,
    make_optimizer,
    make_setup,
    predict_logits,
)
from services.trainer.gradcam import Explained
from services.trainer.lifecycle import Attempt, Outcome, completed_run, run_attempt, stopped_run
from services.trainer.models import build_model
from services.trainer.run_heatmaps import save_test_heatmaps
from services.trainer.settings import TrainerSettings
from services.trainer.splitting import run_split
from services.trainer.summary import (
    RunSplit,
    evaluation_of,
    publish_evaluation,
    publish_run_started,
    publish_test_predictions,
    training_summary,
)
from shared.datasets.imagefolder import resolve_dataset, scan_image_folder
from shared.schemas.events import CheckpointSaved, EpochFinished, EpochProgress, EpochStarted, utc_now
from shared.schemas.jobs import JobSpec

log = logging.getLogger(__name__)


def run_training(run_id: str, spec: JobSpec, settings: TrainerSettings, worker: str) -> Outcome:
    """One attempt at training spec as run run_id, publishing to Redis: the lifecycle around `train`."""
    return run_attempt(run_id, settings, worker, partial(train, spec, settings))


class EpochReporter:
    """The loop's callbacks (engine.FitEvents): publish progress; at an epoch's end save last
    (and best) checkpoints, each announced once written, then publish the epoch.

    Checkpoints are replaced, and epochs begun, only while the attempt holds the run.
    """

    def __init__(self, attempt: Attempt, record: RunRecord, checkpoint_dir: Path, artifacts_root: Path):
        self.attempt = attempt
        self.record = record
        self.checkpoint_dir = checkpoint_dir
        # checkpoint_saved events name their file relative to this (settings.artifacts_root).
        self.artifacts_root = artifacts_root

    def epoch_started(self, epoch: int) -> None:
        self.attempt.lease.confirm()
        self.attempt.publisher.publish(EpochStarted, epoch=epoch)

    def epoch_progress(self, epoch: int, progress: BatchProgress) -> None:
        self.attempt.publisher.publish(EpochProgress, epoch=epoch, **vars(progress))

    def epoch_finished(self, metrics: EpochMetrics, state: TrainingState, is_best: bool) -> None:
        finished_at = utc_now()
        self.record.finished_at.append(finished_at)
        if self.attempt.lease.confirm():
            checkpoint = checkpoints.checkpoint_of(self.record, state)
            last = self._save(checkpoints.LAST, "last", metrics.epoch, checkpoint)
            if is_best:  # the same checkpoint: its file copied, not serialised again
                self._save(checkpoints.BEST, "best", metrics.epoch, checkpoint, copy_of=last)
        else:  # Redis away for longer than the lease lives: another attempt may hold the run
            log.warning(
                "run %s: epoch %d not checkpointed; the lease could not be confirmed",
                self.attempt.run_id,
                metrics.epoch,
            )
        self.attempt.publisher.publish(EpochFinished, time=finished_at, **vars(metrics))

    def _save(self, name: str, kind: str, epoch: int, checkpoint: dict, copy_of: Path | None = None) -> Path:
        path = self.checkpoint_dir / name
        if copy_of is None:
            checkpoints.save_checkpoint(path, checkpoint)
        else:
            checkpoints.copy_checkpoint(copy_of, path, self.attempt.number)
        shown = path.relative_to(self.artifacts_root) if path.is_relative_to(self.artifacts_root) else path
        self.attempt.publisher.publish(CheckpointSaved, epoch=epoch, kind=kind, path=shown.as_posix())
        return path


def on_features(data: SplitData, features: feature_cache.Features) -> SplitData:
    """data with its images replaced by their features.

    Only the head trains on them; the model stays whole, so checkpoints and the best epoch's
    weights are those of the whole model, and the head on a test image's features gives what the
    whole model gives on the image (test-time augmentation needs the images themselves).
    """

    def replaced(images: ImageTensors, values: torch.Tensor) -> ImageTensors:
        return ImageTensors(values, images.labels.to(values.device), images.positions)

    return replace(
        data,
        train=replaced(data.train, features.train),
        val=replaced(data.val, features.val),
        test=replaced(data.test, features.test),
    )


def train(spec: JobSpec, settings: TrainerSettings, attempt: Attempt) -> Outcome:
    """The job itself: data, model, loop, test evaluation; resumes from the run's last checkpoint.

    attempt.should_stop is asked after every batch: when it says so the loop stops within that
    batch, the checkpoints written so far (best included) stay, and run_cancelled is published.
    """
    folder = resolve_dataset(spec.dataset, settings.data_root)
    index = scan_image_folder(folder, within=settings.data_root)
    # The dataset's split (its split_seed and groups), whatever the training seed: every run on
    # a dataset is tested on the same images unless its job asks for another split.
    dataset_split = run_split(spec, index, folder, settings, attempt.publisher)
    positions = dataset_split.positions
    split = RunSplit(
        spec,
        index,
        positions,
        dataset_split.record.split_hash,
        index.class_names,
        dataset_split.groups,
        dataset_split.record,
    )
    device = pick_device(settings.device)
    checkpoint_dir = checkpoints.run_dir(settings.artifacts_root, attempt.run_id)
    resume = checkpoints.resumable_checkpoint(checkpoint_dir, spec, split.split_hash)
    record = RunRecord(
        attempt.run_id,
        spec,
        split.split_hash,
        index.class_names,
        start_time=resume["start_time"] if resume else utc_now(),
        attempt=attempt.number,
        finished_at=list(resume.get("finished_at") or []) if resume else [],
    )
    publish_run_started(attempt, spec, split, device, resumed_from_epoch=resume["epoch"] if resume else 0)
    data = load_split_data(index, positions, spec.geometry, settings.max_image_pixels)
    if data.skipped_files:
        log.warning("run %s: %d unreadable images skipped", attempt.run_id, data.skipped_files)

    def on_device(images: ImageTensors) -> ImageTensors:
        return place(images, device, settings.images_on_gpu_fraction, settings.pin_memory)

    placed = replace(data, train=on_device(data.train), val=on_device(data.val), test=on_device(data.test))

    torch.manual_seed(spec.seed)
    model = build_model(spec, len(index.class_names), weights_root=settings.weights_root).to(device)
    if spec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    state = TrainingState(
        model, make_optimizer(spec, model), EarlyStopping.of(spec), RandomStreams.seeded(spec.seed, device)
    )
    if resume:
        checkpoints.restore(state, resume)
        checkpoints.restated_epochs(attempt.publisher, resume)
        log.info("run %s resumes at epoch %d", attempt.run_id, state.next_epoch)
    setup = make_setup(spec, device)
    fit_data, fit_setup = placed, setup
    if spec.feature_views:
        key = feature_cache.feature_key(spec, split.split_hash, data, setup, settings.weights_root)
        features = feature_cache.frozen_features(
            model,
            spec,
            placed,
            setup,
            key,
            Path(settings.artifacts_root),
            settings.images_on_gpu_fraction,
            attempt.should_stop,
        )
        if features is None:
            done = len(state.history)  # a resumed run's epochs
            return stopped_run(
                attempt.publisher, attempt.run_id, done, "while computing features", attempt.stop_reason()
            )
        fit_data, fit_setup = on_features(placed, features), replace(setup, features=True)
    reporter = EpochReporter(attempt, record, checkpoint_dir, Path(settings.artifacts_root))
    result = fit(spec, state, fit_data, fit_setup, reporter, attempt.should_stop, settings.progress_every_batches)
    epochs_run = len(result.history)
    if result.stopped_by_request:
        when = f"after {epochs_run} epochs"
        return stopped_run(attempt.publisher, attempt.run_id, epochs_run, when, attempt.stop_reason())

    on_test_features = fit_setup.features and not setup.tta
    test_data, test_setup = (fit_data, fit_setup) if on_test_features else (placed, setup)
    logits = predict_logits(model, test_data.test, test_setup, spec.batch_size)
    evaluation = evaluation_of(logits, data.test.labels, index.class_names)
    publish_evaluation(attempt, evaluation)
    publish_test_predictions(attempt, split, logits, data.test.labels, data.test.positions)
    save_test_heatmaps(
        checkpoint_dir,
        [Explained(model, spec.model_name, spec.geometry, setup)],
        index,
        data.test.positions,
        data.test.labels.tolist(),
        logits.argmax(1).tolist(),
        settings.heatmaps_per_run,
        settings.max_image_pixels,
    )
    best = result.history[result.best_epoch - 1]
    summary = training_summary(
        attempt,
        spec,
        split,
        evaluation,
        data.skipped_files,
        record.start_time,
        reproducibility(spec, device, setup.autocast_dtype),
        # The weights kept are the best epoch's, so are the accuracies reported.
        train_accuracy=best.train_acc,
        val_accuracy=best.val_acc,
        best_val_loss=result.best_val_loss,
        epochs_run=epochs_run,
        best_epoch=result.best_epoch,
        early_stopped=result.early_stopped,
    )
    return completed_run(attempt, summary)
