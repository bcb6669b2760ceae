"""One training job from spec to summary, reporting every step as an event."""

import logging
import platform
import subprocess
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
import torch
import torchvision
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.trainer import checkpoints
from services.trainer.data import ImageTensors, SplitData, load_split_data, place
from services.trainer.engine import (
    BatchProgress,
    EarlyStopping,
    EpochMetrics,
    RandomStreams,
    TrainingState,
    fit,
    loss_and_accuracy,
    make_optimizer,
    make_setup,
    predict_logits,
)
from services.trainer.events import EventPublisher, Heartbeater
from services.trainer.lease import RunLease, StoodDown, Unleased
from services.trainer.metrics import classification_report
from services.trainer.models import build_model
from services.trainer.settings import TrainerSettings
from services.trainer.spill import earlier_spill_files, spill_path
from shared import names
from shared.datasets.imagefolder import resolve_dataset, scan_image_folder, split_fingerprint, stratified_split
from shared.schemas.events import (
    CheckpointSaved,
    EpochFinished,
    EpochProgress,
    EpochStarted,
    EvaluationFinished,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
    TrainingSummary,
    utc_now,
)
from shared.schemas.jobs import JobSpec

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]


def pick_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def device_name(device: torch.device) -> str:
    return (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({platform.processor() or platform.machine()})"
    )


@dataclass
class RunContext:
    """What the loop's callbacks need to report and checkpoint a run."""

    run_id: str
    spec: JobSpec
    publisher: EventPublisher
    checkpoint_dir: Path
    split_hash: str
    class_names: list[str]
    start_time: datetime
    # checkpoint_saved events name their file relative to this (settings.artifacts_root).
    artifacts_root: Path | None = None
    # Checkpoints are replaced, and epochs begun, only while this attempt holds the run.
    lease: RunLease | Unleased = field(default_factory=Unleased)
    attempt: int = 1
    # When each epoch of the history finished (the checkpoint keeps them: see restated_epochs).
    finished_at: list[datetime] = field(default_factory=list)


class CheckpointingEvents:
    """The loop's callbacks: publish progress; at an epoch's end save last (and best)
    checkpoints, each announced once written, then publish the epoch."""

    def __init__(self, context: RunContext):
        self.context = context

    def epoch_started(self, epoch: int) -> None:
        self.context.lease.confirm()
        self.context.publisher.publish(EpochStarted, epoch=epoch)

    def epoch_progress(self, epoch: int, progress: BatchProgress) -> None:
        self.context.publisher.publish(EpochProgress, epoch=epoch, **vars(progress))

    def epoch_finished(self, metrics: EpochMetrics, state: TrainingState, is_best: bool) -> None:
        finished_at = utc_now()
        self.context.finished_at.append(finished_at)
        if self.context.lease.confirm():
            checkpoint = checkpoint_of(self.context, state)
            self._save(checkpoints.LAST, "last", metrics.epoch, checkpoint)
            if is_best:
                self._save(checkpoints.BEST, "best", metrics.epoch, checkpoint)
        else:  # Redis away for longer than the lease lives: another attempt may hold the run
            log.warning(
                "run %s: epoch %d not checkpointed; the lease could not be confirmed",
                self.context.run_id,
                metrics.epoch,
            )
        self.context.publisher.publish(EpochFinished, time=finished_at, **vars(metrics))

    def _save(self, name: str, kind: str, epoch: int, checkpoint: dict[str, Any]) -> None:
        path = self.context.checkpoint_dir / name
        checkpoints.save_checkpoint(path, checkpoint)
        root = self.context.artifacts_root
        shown = path.relative_to(root) if root is not None and path.is_relative_to(root) else path
        self.context.publisher.publish(CheckpointSaved, epoch=epoch, kind=kind, path=shown.as_posix())


def checkpoint_of(context: RunContext, state: TrainingState) -> dict[str, Any]:
    return {
        "format": 1,
        "run_id": context.run_id,
        "spec": context.spec.model_dump(),
        "class_names": context.class_names,
        "split_hash": context.split_hash,
        "start_time": context.start_time,
        "attempt": context.attempt,
        "epoch": len(state.history),
        "history": [vars(m) for m in state.history],
        "finished_at": list(context.finished_at),
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "early_stopping": state.early_stopping.state_dict(),
        "random": state.random.state_dict(),
    }


def restore(state: TrainingState, checkpoint: dict[str, Any]) -> None:
    """Put a job back where `checkpoint` left it: the next epoch is checkpoint["epoch"] + 1."""
    state.model.load_state_dict(checkpoint["model"])
    state.optimizer.load_state_dict(checkpoint["optimizer"])
    state.early_stopping = EarlyStopping.from_state_dict(checkpoint["early_stopping"])
    state.random.load_state_dict(checkpoint["random"])
    state.history = [EpochMetrics(**m) for m in checkpoint["history"]]


def restated_epochs(publisher: EventPublisher, checkpoint: dict[str, Any]) -> None:
    """Publish again the finished epochs a resumed checkpoint holds, each with its first finish time.

    The attempt that wrote the checkpoint may have died, or stood down, before its events for
    them reached the stream; the recorder's seq-guarded writes make a repeat harmless.
    """
    finished_at = checkpoint.get("finished_at") or []
    for position, metrics in enumerate(checkpoint["history"]):
        when = {"time": finished_at[position]} if position < len(finished_at) else {}
        publisher.publish(EpochFinished, **metrics, **when)


def resumable_checkpoint(checkpoint_dir: Path, spec: JobSpec, split_hash: str) -> dict[str, Any] | None:
    """The run's last checkpoint, when it was written for this very spec and split."""
    path = checkpoint_dir / checkpoints.LAST
    if not path.is_file():
        return None
    checkpoint = checkpoints.load_checkpoint(path)
    if checkpoint["spec"] != spec.model_dump() or checkpoint["split_hash"] != split_hash:
        log.warning("ignoring %s: written for another spec or split", path)
        return None
    return checkpoint


@dataclass(frozen=True)
class CancelledRun:
    """What run_training returns for a run stopped on request: no summary, no test accuracy."""

    run_id: str
    epochs_run: int
    test_accuracy: None = None


def cancelled_run(publisher: EventPublisher, run_id: str, epochs_done: int, when: str) -> CancelledRun:
    """Publish run_cancelled for a run stopped on request (`when`: at what point, for the log)."""
    log.info("run %s cancelled %s", run_id, when)
    publisher.publish(RunCancelled, epochs_done=epochs_done)
    return CancelledRun(run_id, epochs_run=epochs_done)


class CancelFlag:
    """Whether the API asked to cancel the run (names.CANCEL_KEY), without a Redis call per batch.

    Checked once on entering; then a thread looks every poll_s seconds and sets an Event,
    which `is_set` (the loop's should_stop, called after every batch) only reads.
    """

    def __init__(self, redis_url: str, run_id: str, poll_s: float = 0.5):
        self._client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self._key = names.CANCEL_KEY.format(run_id=run_id)
        self._poll_s = poll_s
        self._cancelled = threading.Event()
        self._closing = threading.Event()
        self._unreachable = False
        self._thread = threading.Thread(target=self._watch, name="cancel-flag", daemon=True)

    def __enter__(self) -> "CancelFlag":
        self._look()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing.set()
        self._thread.join()
        self._client.close()

    def is_set(self) -> bool:
        return self._cancelled.is_set()

    def _watch(self) -> None:
        while not self._cancelled.is_set() and not self._closing.wait(self._poll_s):
            self._look()

    def _look(self) -> None:
        try:
            if self._client.exists(self._key):
                self._cancelled.set()
            self._unreachable = False
        except redis.RedisError as error:
            # Redis away: training goes on, a later look may see the flag. Said once per outage.
            if not self._unreachable:
                log.warning("cannot read the cancel flag %s: %s", self._key, error)
            self._unreachable = True


@contextmanager
def reporting_failure(publisher: EventPublisher) -> Iterator[None]:
    """Publishes run_failed for an error raised inside, then lets the error go on.

    An attempt that stood down has not failed: a newer one trains the run. Any publisher will
    do: also local_run.LocalPublisher, for jobs run without the stack.
    """
    try:
        yield
    except StoodDown:
        raise
    except Exception as error:
        log.exception("run %s failed", publisher.run_id)
        publisher.publish(
            RunFailed,
            error_type=type(error).__name__,
            message=str(error) or type(error).__name__,
            traceback_tail="".join(traceback.format_exception(error)[-3:])[-2000:],
        )
        raise


@contextmanager
def published_run(run_id: str, settings: TrainerSettings) -> Iterator[tuple[EventPublisher, RunLease]]:
    """(publisher, lease) for one attempt at a job: the run's lease, events to Redis, heartbeats
    that renew the lease, run_failed on errors. StoodDown raised inside (or by the lease at the
    start) goes on to the caller, with nothing more published."""
    # A Redis that hangs holds up the event sender's thread for a timeout, never longer; one quick
    # retry (a pooled connection Redis dropped) and then the publisher's own retry loop, which
    # spills long outages to disk, instead of redis-py's backoff of several seconds.
    client = redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.event_socket_timeout_s,
        socket_connect_timeout=settings.event_socket_timeout_s,
        retry=Retry(NoBackoff(), retries=1),
    )
    attempt = int(client.incr(names.ATTEMPT_KEY.format(run_id=run_id)))
    lease = RunLease(client, run_id, attempt, settings.lease_ttl_s)
    try:
        lease.acquire()
    except BaseException:
        client.close()
        raise
    run_dir = checkpoints.run_dir(settings.artifacts_root, run_id)
    publisher = EventPublisher(
        client,
        run_id,
        attempt,
        buffer_size=settings.event_buffer_size,
        spill_path=spill_path(run_dir, attempt),
        spill_threshold=settings.event_spill_threshold,
        leftovers=earlier_spill_files(run_dir, attempt),
    )
    try:
        with reporting_failure(publisher), Heartbeater(publisher, settings.heartbeat_interval_s, lease):
            yield publisher, lease
    except StoodDown:
        publisher.stand_down()
        raise
    finally:
        publisher.close()
        lease.release()
        client.close()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # the worker process lives on: hand its GPU memory back


class TooManyAttempts(RuntimeError):
    """A job whose workers kept dying is not run again."""


def run_training(run_id: str, spec: JobSpec, settings: TrainerSettings, worker: str) -> TrainingSummary | CancelledRun:
    """Train spec as run run_id, publishing to Redis; publishes run_failed (and re-raises) on errors.

    A run cancelled before it starts (the worker got the job although it was revoked) or while
    it trains publishes run_cancelled and returns a CancelledRun.
    """
    with published_run(run_id, settings) as (publisher, lease), CancelFlag(settings.redis_url, run_id) as cancel:
        attempt = lease.attempt
        if cancel.is_set():
            return cancelled_run(publisher, run_id, 0, "before it started")
        if attempt > settings.max_attempts:
            # Raised inside published_run: the run is recorded as failed with this reason.
            raise TooManyAttempts(
                f"run {run_id} was delivered {attempt} times; its worker died during each of the "
                f"last {attempt - 1} (limit: PADDY_MAX_ATTEMPTS={settings.max_attempts})"
            )
        return train_run(
            run_id, spec, settings, worker, attempt, publisher, should_stop=stop_check(lease, cancel), lease=lease
        )


def stop_check(lease: RunLease | Unleased, cancel: CancelFlag) -> Callable[[], bool]:
    """The loop's should_stop: True once cancelled; raises StoodDown once a newer attempt holds the run."""

    def should_stop() -> bool:
        lease.check()
        return cancel.is_set()

    return should_stop


def train_run(
    run_id: str,
    spec: JobSpec,
    settings: TrainerSettings,
    worker: str,
    attempt: int,
    publisher: EventPublisher,
    should_stop: Callable[[], bool] = lambda: False,
    lease: RunLease | Unleased | None = None,
) -> TrainingSummary | CancelledRun:
    """The job itself: data, model, loop, test evaluation; resumes from the run's last checkpoint.

    should_stop is asked after every batch: when it says so the loop stops within that batch,
    the checkpoints written so far (best included) stay, and run_cancelled is published.
    Checkpoints are replaced only while `lease` holds (None: no other attempt competes).
    """
    lease = lease or Unleased()
    index = scan_image_folder(resolve_dataset(spec.dataset, settings.data_root), within=settings.data_root)
    split = stratified_split(index.labels, spec.seed)
    split_hash = split_fingerprint(index, split)
    device = pick_device(settings.device)
    checkpoint_dir = checkpoints.run_dir(settings.artifacts_root, run_id)
    resume = resumable_checkpoint(checkpoint_dir, spec, split_hash)
    context = RunContext(
        run_id,
        spec,
        publisher,
        checkpoint_dir,
        split_hash,
        index.class_names,
        start_time=resume["start_time"] if resume else utc_now(),
        artifacts_root=Path(settings.artifacts_root),
        lease=lease,
        attempt=attempt,
        finished_at=list(resume.get("finished_at") or []) if resume else [],
    )
    publisher.publish(
        RunStarted,
        spec=spec.model_dump(),
        attempt=attempt,
        worker=worker,
        device=device_name(device),
        epochs_planned=spec.epochs,
        class_names=index.class_names,
        split_sizes={name: len(positions) for name, positions in split.items()},
        resumed_from_epoch=resume["epoch"] if resume else 0,
    )
    data = load_split_data(index, split, spec.image_size, settings.max_image_pixels)
    if data.skipped_files:
        log.warning("run %s: %d unreadable images skipped", run_id, data.skipped_files)

    def on_device(images: ImageTensors) -> ImageTensors:
        return place(images, device, settings.images_on_gpu_fraction, settings.pin_memory)

    placed = SplitData(
        data.class_names,
        on_device(data.train),
        on_device(data.val),
        on_device(data.test),
        data.fingerprint,
        data.skipped_files,
    )

    torch.manual_seed(spec.seed)
    model = build_model(spec, len(index.class_names), weights_root=settings.weights_root).to(device)
    if spec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    state = TrainingState(
        model, make_optimizer(spec, model), EarlyStopping(spec.patience), RandomStreams.seeded(spec.seed, device)
    )
    if resume:
        restore(state, resume)
        restated_epochs(publisher, resume)
        log.info("run %s resumes at epoch %d", run_id, state.next_epoch)
    setup = make_setup(spec, device)
    result = fit(
        spec,
        state,
        placed,
        setup,
        CheckpointingEvents(context),
        should_stop,
        progress_every=settings.progress_every_batches,
    )
    if result.stopped_by_request:
        return cancelled_run(publisher, run_id, len(result.history), f"after {len(result.history)} epochs")

    logits = predict_logits(model, placed.test, setup, spec.batch_size)
    test_loss, test_acc = loss_and_accuracy(logits, data.test.labels)
    report = classification_report(data.test.labels, logits.argmax(1), index.class_names)
    publisher.publish(
        EvaluationFinished, accuracy=test_acc, loss=test_loss, f1_macro=report["macro_f1"], images=len(data.test.labels)
    )
    end_time = utc_now()
    best = result.history[result.best_epoch - 1]
    summary = TrainingSummary(
        run_id=run_id,
        model_name=spec.model_name,
        version=spec.version or "v0",
        num_classes=len(index.class_names),
        dropout=spec.dropout,
        feature_extraction=bool(spec.feature_extraction),
        batch_size=spec.batch_size,
        learning_rate=spec.learning_rate,
        early_stopped=result.early_stopped,
        epochs_run=len(result.history),
        # The weights kept are the best epoch's, so are the accuracies reported.
        train_accuracy=best.train_acc,
        val_accuracy=best.val_acc,
        test_accuracy=test_acc,
        best_val_loss=result.best_val_loss,
        duration_minutes=(end_time - context.start_time).total_seconds() / 60,
        start_time=context.start_time,
        end_time=end_time,
        test_loss=test_loss,
        class_names=index.class_names,
        dataset=spec.dataset,
        image_size=spec.image_size,
        seed=spec.seed,
        best_epoch=result.best_epoch,
        test_f1_macro=report["macro_f1"],
        confusion_matrix=report["confusion_matrix"],
        per_class=report["per_class"],
        split_hash=split_hash,
        dataset_files=len(index.paths),
        dataset_hash=index.fingerprint(),
        skipped_files=data.skipped_files,
        attempts=attempt,
        spec=spec.model_dump(),
        reproducibility=reproducibility(spec, device, setup.autocast_dtype),
    )
    lease.confirm()  # a newer attempt completes the run, not this one
    publisher.publish(RunCompleted, summary=summary)
    return summary


def environment(seed: int, device: torch.device) -> dict[str, Any]:
    """What a result depends on besides its spec and data: seed, versions, code, device."""
    return {
        "seed": seed,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "git_commit": git_commit(),
        "device": device_name(device),
    }


def reproducibility(spec: JobSpec, device: torch.device, autocast_dtype) -> dict[str, Any]:
    return {
        **environment(spec.seed, device),
        "mixed_precision": str(autocast_dtype).removeprefix("torch.") if autocast_dtype else "fp32",
        "channels_last": spec.channels_last,
    }


def git_commit() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None
