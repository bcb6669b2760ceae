"""Trainer events of whole runs, as the recorder's tests and benchmarks put them on the stream."""

import itertools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from shared import names
from shared.schemas.events import (
    SEQ_PER_ATTEMPT,
    EpochFinished,
    EpochStarted,
    GpuReading,
    ImagePrediction,
    RunCompleted,
    RunStarted,
    TestPredictions,
    TrainingSummary,
    encode_event,
    utc_now,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = {"model_name": "custom_cnn", "dataset": "d", "epochs": 3, "version": "v1"}
# run started + 49 × (epoch started, epoch finished) + run completed = 100 events a run.
EPOCHS_PER_RUN = 49


def training_summary(run_id: str, **fields) -> TrainingSummary:
    """A completed run's summary: these values unless `fields` say otherwise."""
    values = {
        "run_id": run_id,
        "model_name": "custom_cnn",
        "version": "v1",
        "num_classes": 2,
        "dropout": 0.5,
        "feature_extraction": False,
        "batch_size": 8,
        "learning_rate": 0.001,
        "early_stopped": False,
        "epochs_run": 3,
        "train_accuracy": 0.9,
        "val_accuracy": 0.8,
        "test_accuracy": 0.7,
        "best_val_loss": 0.3,
        "duration_minutes": 0.1,
        "start_time": T0,
        "end_time": T0 + timedelta(seconds=10),
        "test_loss": 0.4,
        "class_names": ["a", "b"],
        "dataset": "d",
        "image_size": 64,
        "seed": 1,
    }
    return TrainingSummary(**(values | fields))


def plain_metrics(epoch: int) -> dict[str, float]:
    return {"train_loss": 1 / epoch, "train_acc": 0.5, "val_loss": 1 / epoch, "val_acc": 0.6, "epoch_time_sec": 0.5}


def run_events(
    run_id: str,
    epochs: int = 3,
    *,
    start: datetime = T0,
    spec: dict = SPEC,
    class_names: Sequence[str] = ("a", "b"),
    metrics: Callable[[int], dict[str, float]] = plain_metrics,
    **summary_fields,
) -> list:
    """One run of attempt 1, seq in order: run started, each epoch started (at `start` + epoch
    seconds) and finished half a second later, run completed (at the summary's end_time)."""
    seq = itertools.count(SEQ_PER_ATTEMPT + 1)
    events = [
        RunStarted(
            run_id=run_id,
            seq=next(seq),
            time=start,
            spec=spec,
            attempt=1,
            worker="w",
            device="cpu",
            epochs_planned=epochs,
            class_names=list(class_names),
            split_sizes={"train": 6, "val": 2, "test": 2},
        )
    ]
    for epoch in range(1, epochs + 1):
        events.append(EpochStarted(run_id=run_id, seq=next(seq), epoch=epoch, time=start + timedelta(seconds=epoch)))
        finished_at = start + timedelta(seconds=epoch + 0.5)
        events.append(EpochFinished(run_id=run_id, seq=next(seq), epoch=epoch, time=finished_at, **metrics(epoch)))
    run_fields = {
        "epochs_run": epochs,
        "num_classes": len(class_names),
        "class_names": list(class_names),
        "start_time": start,
        "end_time": start + timedelta(seconds=10),
    }
    summary = training_summary(run_id, **(run_fields | summary_fields))
    events.append(RunCompleted(run_id=run_id, seq=next(seq), summary=summary, time=summary.end_time))
    return events


def image_predictions(
    right: Sequence[bool], class_names: Sequence[str] = ("a", "b"), files: Sequence[str] | None = None
) -> list[ImagePrediction]:
    """One prediction per image: image i is of class i mod C (`<class>/img-<i>.png` unless files
    names it), predicted right where right[i] says, else as the next class."""
    entries = []
    for i, correct in enumerate(right):
        true_class = class_names[i % len(class_names)]
        predicted = true_class if correct else class_names[(i + 1) % len(class_names)]
        rest = round(0.1 / (len(class_names) - 1), 4)
        entries.append(
            ImagePrediction(
                file=files[i] if files is not None else f"{true_class}/img-{i:03d}.png",
                group=f"photo-{i // 2}",
                true_class=true_class,
                predicted_class=predicted,
                probabilities=[0.9 if name == predicted else rest for name in class_names],
            )
        )
    return entries


def predictions_event(
    run_id: str, seq: int, right: Sequence[bool], split_hash: str = "split-1", class_names: Sequence[str] = ("a", "b")
) -> TestPredictions:
    """A run's test_predictions (image_predictions of `right`)."""
    return TestPredictions(
        run_id=run_id,
        seq=seq,
        split_hash=split_hash,
        class_names=list(class_names),
        predictions=image_predictions(right, class_names),
    )


def paired_rights(both_right: int, only_a: int, only_b: int, both_wrong: int) -> tuple[list[bool], list[bool]]:
    """Which test images runs A and B got right, with these counts of (dis)agreement."""
    a = [True] * both_right + [True] * only_a + [False] * only_b + [False] * both_wrong
    b = [True] * both_right + [False] * only_a + [True] * only_b + [False] * both_wrong
    return a, b


def epoch_metrics(run: int, epoch: int) -> dict[str, float]:
    """Numbers of their own for each run and epoch, so a mix-up shows."""
    return {
        "train_loss": 1 / (run + epoch + 1),
        "train_acc": (run * 7 + epoch) % 100 / 100,
        "val_loss": 2 / (run + epoch + 3),
        "val_acc": (run * 3 + epoch) % 97 / 97,
        "epoch_time_sec": 10 + run + epoch / 8,
    }


def final_test_accuracy(run: int) -> float:
    return (run % 50) / 50


def numbered_run_events(run: int, epochs: int = EPOCHS_PER_RUN) -> list:
    """Run number `run` ("run-007"), started now, with epoch_metrics and final_test_accuracy."""
    start = utc_now()
    return run_events(
        f"run-{run:03d}",
        epochs,
        start=start,
        spec=SPEC | {"epochs": epochs},
        class_names=("a", "b", "c"),
        metrics=lambda epoch: epoch_metrics(run, epoch),
        test_accuracy=final_test_accuracy(run),
        duration_minutes=1.0,
        end_time=start + timedelta(minutes=1),
    )


def interleaved_events(runs: int, epochs: int = EPOCHS_PER_RUN) -> list:
    """The events of all runs as concurrent trainers send them: each run in seq order."""
    per_run = [numbered_run_events(run, epochs) for run in range(runs)]
    return [events[i] for i in range(len(per_run[0])) for events in per_run]


def publish(redis_client, events) -> None:
    for event in events:
        redis_client.xadd(names.EVENTS_STREAM, encode_event(event))


def drain(recorder) -> None:
    """Until the recorder has stored everything new on the stream."""
    while entries := recorder._read(">"):
        recorder.process(entries)


def h200_reading(**fields) -> GpuReading:
    """What a trainer's NVML reader reports for one busy H200; `fields` override."""
    values = {
        "index": 0,
        "uuid": "GPU-1",
        "name": "NVIDIA H200",
        "utilization_pct": 87.0,
        "memory_used_mib": 30_000.0,
        "memory_total_mib": 143_771.0,
    }
    return GpuReading(**{**values, **fields})
