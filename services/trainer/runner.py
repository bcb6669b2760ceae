"""One training job from spec to summary, reporting every step as an event."""

import logging
import traceback
from datetime import datetime

import redis
import torch

from services.trainer.data import load_split_data
from services.trainer.engine import EpochMetrics, evaluate, fit
from services.trainer.events import EventPublisher, Heartbeater
from services.trainer.models import build_model
from services.trainer.settings import TrainerSettings
from shared import names
from shared.datasets.imagefolder import resolve_dataset, scan_image_folder, stratified_split
from shared.schemas.events import (
    EpochFinished,
    EpochStarted,
    RunCompleted,
    RunFailed,
    RunStarted,
    TrainingSummary,
    utc_now,
)
from shared.schemas.jobs import JobSpec

log = logging.getLogger(__name__)


def pick_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


class PublishingEpochEvents:
    """Turns the training loop's epoch callbacks into stream events."""

    def __init__(self, publisher: EventPublisher):
        self._publisher = publisher

    def epoch_started(self, epoch: int) -> None:
        self._publisher.publish(EpochStarted, epoch=epoch)

    def epoch_finished(self, metrics: EpochMetrics) -> None:
        self._publisher.publish(EpochFinished, **vars(metrics))


def run_training(run_id: str, spec: JobSpec, settings: TrainerSettings, worker: str) -> TrainingSummary:
    """Train spec as run run_id; publishes run_failed (and re-raises) when anything goes wrong."""
    client = redis.Redis.from_url(settings.redis_url)
    attempt = int(client.incr(names.ATTEMPT_KEY.format(run_id=run_id)))
    publisher = EventPublisher(
        client, run_id, attempt, settings.events_stream_maxlen, settings.event_buffer_size
    )
    try:
        with Heartbeater(publisher, settings.heartbeat_interval_s):
            return _train(run_id, spec, settings, worker, attempt, publisher)
    except Exception as error:
        log.exception("run %s failed", run_id)
        publisher.publish(
            RunFailed,
            error_type=type(error).__name__,
            message=str(error) or type(error).__name__,
            traceback_tail="".join(traceback.format_exception(error)[-3:])[-2000:],
        )
        raise
    finally:
        publisher.close()
        client.close()


def _train(
    run_id: str, spec: JobSpec, settings: TrainerSettings, worker: str, attempt: int,
    publisher: EventPublisher,
) -> TrainingSummary:
    start_time = utc_now()
    index = scan_image_folder(resolve_dataset(spec.dataset, settings.data_root))
    split = stratified_split(index.labels, spec.seed)
    device = pick_device(settings.device)
    publisher.publish(
        RunStarted,
        spec=spec.model_dump(),
        attempt=attempt,
        worker=worker,
        device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        epochs_planned=spec.epochs,
        class_names=index.class_names,
        split_sizes={name: len(positions) for name, positions in split.items()},
    )
    data = load_split_data(index, split, spec.image_size, settings.max_image_pixels)
    if data.skipped_files:
        log.warning("run %s: %d unreadable images skipped", run_id, data.skipped_files)

    torch.manual_seed(spec.seed)
    model = build_model(spec, len(index.class_names)).to(device)
    result = fit(spec, model, data, device, PublishingEpochEvents(publisher))
    test_loss, test_acc = evaluate(model, data.test, device, spec.batch_size)
    end_time = utc_now()

    last = result.epochs[-1]
    summary = TrainingSummary(
        run_id=run_id,
        model_name=spec.model_name,
        version=spec.version or "v0",
        num_classes=len(index.class_names),
        dropout=spec.dropout,
        feature_extraction=spec.feature_extraction,
        batch_size=spec.batch_size,
        learning_rate=spec.learning_rate,
        early_stopped=result.early_stopped,
        epochs_run=len(result.epochs),
        train_accuracy=last.train_acc,
        val_accuracy=last.val_acc,
        test_accuracy=test_acc,
        best_val_loss=result.best_val_loss,
        duration_minutes=_minutes_between(start_time, end_time),
        start_time=start_time,
        end_time=end_time,
        test_loss=test_loss,
        class_names=index.class_names,
        dataset=spec.dataset,
        image_size=spec.image_size,
        seed=spec.seed,
    )
    publisher.publish(RunCompleted, summary=summary)
    return summary


def _minutes_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 60
