"""The trainer's side of cancelling: the flag is seen before the start and between batches."""

import threading
import time
from pathlib import Path

from services.trainer.lifecycle import StoppedRun
from services.trainer.settings import TrainerSettings
from services.trainer.training import run_training
from shared import names
from shared.datasets.synth import synthesize_dataset
from shared.schemas.events import decode_event
from shared.schemas.jobs import JobSpec


def published_types(redis_client) -> list[str]:
    events = [decode_event(fields) for _id, fields in redis_client.xrange(names.EVENTS_STREAM)]
    return [e.type for e in events if e.type != "heartbeat"]


def spec(epochs: int) -> JobSpec:
    return JobSpec(
        model_name="custom_cnn",
        dataset="tiny",
        epochs=epochs,
        patience=epochs,
        image_size=32,
        batch_size=4,
        version="v1",
    )


def test_a_job_cancelled_before_it_starts_is_skipped(settings, redis_client):
    redis_client.set(names.CANCEL_KEY.format(run_id="r1"), 1)
    result = run_training("r1", spec(epochs=1), TrainerSettings(), worker="test")
    assert result == StoppedRun("r1", epochs_run=0)
    assert published_types(redis_client) == ["run_cancelled"]


def test_a_running_job_stops_once_its_flag_is_set(settings, redis_client):
    synthesize_dataset(Path(settings.data_root) / "tiny", per_class=10, size=32, seed=3)
    # Set the flag once the first epoch has finished (its checkpoints written).
    best = Path(settings.artifacts_root) / "runs" / "r2" / "best.pt"

    def cancel_after_first_epoch():
        while not best.exists():
            time.sleep(0.02)
        redis_client.set(names.CANCEL_KEY.format(run_id="r2"), 1)

    threading.Thread(target=cancel_after_first_epoch, daemon=True).start()
    result = run_training("r2", spec(epochs=500), TrainerSettings(), worker="test")
    assert isinstance(result, StoppedRun) and 1 <= result.epochs_run < 500
    types = published_types(redis_client)
    # The split needs the dataset's copy groups: audited first, as no audit of it is cached.
    assert types[:2] == ["dataset_audited", "run_started"]
    assert types[-1] == "run_cancelled" and "run_completed" not in types
    assert best.is_file()


def test_a_job_its_sweep_prunes_stops_within_a_batch_and_ends_pruned(settings, redis_client):
    synthesize_dataset(Path(settings.data_root) / "tiny", per_class=10, size=32, seed=3)
    best = Path(settings.artifacts_root) / "runs" / "r3" / "best.pt"

    def prune_after_first_epoch():
        while not best.exists():
            time.sleep(0.02)
        redis_client.set(names.CANCEL_KEY.format(run_id="r3"), names.PRUNE_FLAG_VALUE)

    threading.Thread(target=prune_after_first_epoch, daemon=True).start()
    result = run_training("r3", spec(epochs=500), TrainerSettings(), worker="test")
    assert isinstance(result, StoppedRun) and result.reason == "pruned" and 1 <= result.epochs_run < 500
    types = published_types(redis_client)
    assert types[-1] == "run_pruned" and "run_cancelled" not in types and "run_completed" not in types
    assert best.is_file()  # a pruned run keeps its checkpoints
