"""The recorder process killed, and the MongoDB server killed, while events flow: nothing lost.

Real processes: redis-server, nx-27017 and `python -m services.recorder`, on free ports.
"""

import os
import signal
import threading
import time
from datetime import timedelta

import pymongo
import pytest
import redis

from infra.local_stack import LocalStack, StackConfig
from shared import names
from shared.schemas.events import (
    SEQ_PER_ATTEMPT,
    EpochFinished,
    EpochStarted,
    RunCompleted,
    RunStarted,
    TrainingSummary,
    encode_event,
    utc_now,
)
from tests.conftest import free_port, wait_for

pytestmark = pytest.mark.integration

DATABASE = "crash_recovery"
EPOCHS_PER_RUN = 49  # run_started + 49 × (epoch started, epoch finished) + run_completed = 100 events


@pytest.fixture
def stack(tmp_path):
    config = StackConfig(
        state_dir=tmp_path,
        services=("redis", "mongo", "recorder"),
        redis_port=free_port(),
        mongo_port=free_port(),
        extra_env={
            "PADDY_MONGODB_DATABASE": DATABASE,
            "PADDY_CLAIM_IDLE_MS": "1000",
            "PADDY_CLAIM_INTERVAL_S": "1",
            "PADDY_TRIM_INTERVAL_S": "1",
            # Event times are real; the reaper must not mark runs lost meanwhile (the
            # visibility timeout has to outlast the heartbeat timeout: LivenessSettings).
            "PADDY_HEARTBEAT_TIMEOUT_S": "3600",
            "PADDY_VISIBILITY_TIMEOUT_S": "7200",
        },
    )
    with LocalStack(config) as running:
        yield running


def metrics(run: int, epoch: int) -> dict[str, float]:
    return {
        "train_loss": 1 / (run + epoch + 1),
        "train_acc": (run * 7 + epoch) % 100 / 100,
        "val_loss": 2 / (run + epoch + 3),
        "val_acc": (run * 3 + epoch) % 97 / 97,
        "epoch_time_sec": 10 + run + epoch / 8,
    }


def test_accuracy(run: int) -> float:
    return (run % 50) / 50


test_accuracy.__test__ = False  # a helper, not a test


def run_events(run: int, epochs: int = EPOCHS_PER_RUN) -> list:
    run_id = f"run-{run:03d}"
    seq = iter(range(SEQ_PER_ATTEMPT + 1, 2 * SEQ_PER_ATTEMPT))
    t0 = utc_now()
    events = [
        RunStarted(
            run_id=run_id,
            seq=next(seq),
            time=t0,
            spec={"model_name": "custom_cnn", "dataset": "d", "epochs": epochs, "version": "v1"},
            attempt=1,
            worker="w",
            device="cpu",
            epochs_planned=epochs,
            class_names=["a", "b", "c"],
            split_sizes={"train": 6, "val": 2, "test": 2},
        )
    ]
    for epoch in range(1, epochs + 1):
        events.append(EpochStarted(run_id=run_id, seq=next(seq), epoch=epoch, time=t0))
        events.append(
            EpochFinished(
                run_id=run_id, seq=next(seq), epoch=epoch, time=t0 + timedelta(seconds=epoch), **metrics(run, epoch)
            )
        )
    summary = TrainingSummary(
        run_id=run_id,
        model_name="custom_cnn",
        version="v1",
        num_classes=3,
        dropout=0.5,
        feature_extraction=False,
        batch_size=8,
        learning_rate=0.001,
        early_stopped=False,
        epochs_run=epochs,
        train_accuracy=0.9,
        val_accuracy=0.8,
        test_accuracy=test_accuracy(run),
        best_val_loss=0.3,
        duration_minutes=1.0,
        start_time=t0,
        end_time=t0 + timedelta(minutes=1),
        test_loss=0.4,
        class_names=["a", "b", "c"],
        dataset="d",
        image_size=64,
        seed=1,
    )
    events.append(RunCompleted(run_id=run_id, seq=next(seq), summary=summary, time=t0 + timedelta(minutes=1)))
    return events


def interleaved_events(runs: int, epochs: int = EPOCHS_PER_RUN) -> list:
    """The events of all runs as concurrent trainers send them: each run in seq order."""
    per_run = [run_events(run, epochs) for run in range(runs)]
    return [events[i] for i in range(len(per_run[0])) for events in per_run]


class Publisher(threading.Thread):
    """Sends the events in batches, pausing between them, so that they are in flight a while."""

    def __init__(self, client: redis.Redis, events: list, batch: int, pause_s: float):
        super().__init__(daemon=True)
        self.client, self.events, self.batch, self.pause_s = client, events, batch, pause_s
        self.sent = 0
        self.last_id: bytes | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for start in range(0, len(self.events), self.batch):
                pipe = self.client.pipeline(transaction=False)
                for event in self.events[start : start + self.batch]:
                    pipe.xadd(names.EVENTS_STREAM, encode_event(event))
                ids = pipe.execute()
                self.sent += len(ids)
                self.last_id = ids[-1]
                time.sleep(self.pause_s)
        except redis.RedisError as error:  # reported by the test
            self.error = error


def all_stored(client: redis.Redis, publisher: Publisher) -> bool:
    """Everything published was delivered to the group and acknowledged."""
    if publisher.is_alive():
        return False
    [group] = client.xinfo_groups(names.EVENTS_STREAM)
    last_published = publisher.last_id
    return group["pending"] == 0 and group["last-delivered-id"] == last_published


def check_everything_stored_once(db, runs: int) -> None:
    status = {doc["run_id"]: doc for doc in db[names.STATUS].find()}
    assert sorted(status) == [f"run-{run:03d}" for run in range(runs)]
    for doc in status.values():
        assert (doc["status"], doc["epochs_done"]) == ("completed", EPOCHS_PER_RUN), doc["run_id"]
        assert doc["seq"] == SEQ_PER_ATTEMPT + 2 + 2 * EPOCHS_PER_RUN

    epochs = list(db[names.EPOCHS].find({}, {"_id": 0}))
    keys = {(doc["run_id"], doc["epoch"]) for doc in epochs}
    assert len(epochs) == len(keys) == runs * EPOCHS_PER_RUN
    for doc in epochs:
        run = int(doc["run_id"].removeprefix("run-"))
        assert {name: doc[name] for name in metrics(run, 0)} == metrics(run, doc["epoch"]), doc

    trainings = list(db[names.TRAININGS].find({}, {"_id": 0}))
    assert sorted(doc["run_id"] for doc in trainings) == sorted(status)
    for doc in trainings:
        run = int(doc["run_id"].removeprefix("run-"))
        assert (doc["test_accuracy"], doc["epochs_run"]) == (test_accuracy(run), EPOCHS_PER_RUN)


def publish(stack: LocalStack, events: list, batch: int, pause_s: float) -> tuple[redis.Redis, Publisher]:
    client = redis.Redis.from_url(stack.env()["PADDY_REDIS_URL"])
    publisher = Publisher(client, events, batch, pause_s)
    publisher.start()
    return client, publisher


def test_a_recorder_killed_with_5000_events_in_flight_stores_each_once(stack):
    runs = 50
    events = interleaved_events(runs)
    assert len(events) == 5000
    db = pymongo.MongoClient(stack.env()["PADDY_MONGODB_URI"])[DATABASE]
    client, publisher = publish(stack, events, batch=50, pause_s=0.05)

    wait_for(lambda: db[names.EPOCHS].count_documents({}) >= 300, 60, "the first epochs stored")
    recorder = stack.process("recorder")
    os.killpg(recorder.pid, signal.SIGKILL)
    recorder.wait()
    killed_at = publisher.sent
    time.sleep(1)  # events keep coming while no recorder runs
    stack.restart("recorder")

    publisher.join(120)
    assert publisher.error is None and publisher.sent == 5000
    assert killed_at < 5000, "the recorder was killed only after the last event was published"
    wait_for(lambda: all_stored(client, publisher), 120, "every event acknowledged")
    check_everything_stored_once(db, runs)
    # Everything acknowledged, so the recorder trims the whole stream (every trim_interval_s).
    wait_for(lambda: client.xlen(names.EVENTS_STREAM) == 0, 10, "the stream trimmed")


def test_mongodb_down_for_20_s_loses_nothing(stack):
    runs = 20
    events = interleaved_events(runs)
    db = pymongo.MongoClient(stack.env()["PADDY_MONGODB_URI"], serverSelectionTimeoutMS=60_000)[DATABASE]
    # About 2,000 events over about 30 s: the outage falls in the middle of the flow.
    client, publisher = publish(stack, events, batch=20, pause_s=0.3)

    wait_for(lambda: db[names.EPOCHS].count_documents({}) >= 100, 60, "the first epochs stored")
    mongo = stack.process("mongo")
    os.killpg(mongo.pid, signal.SIGKILL)
    mongo.wait()
    down_at = publisher.sent
    time.sleep(20)
    stack.restart("mongo")
    assert publisher.sent > down_at, "no events were published during the outage"

    publisher.join(120)
    assert publisher.error is None and publisher.sent == len(events)
    wait_for(lambda: all_stored(client, publisher), 120, "every event acknowledged")
    check_everything_stored_once(db, runs)
    assert stack.process("recorder").poll() is None, "the recorder died"
    log = (stack.log_dir / "recorder.log").read_text()
    assert "MongoDB write failed" in log and log.count("=== paddy: starting recorder") == 1


def test_a_recorder_started_while_mongodb_is_down_waits_for_it(stack):
    mongo = stack.process("mongo")
    os.killpg(mongo.pid, signal.SIGKILL)
    mongo.wait()
    stack.restart("recorder")  # ensure_indexes fails: the recorder must keep trying, not exit
    client, publisher = publish(stack, interleaved_events(5), batch=50, pause_s=0)
    time.sleep(8)  # longer than one attempt (the store's 5 s server selection timeout)
    assert stack.process("recorder").poll() is None, "the recorder exited while MongoDB was down"
    stack.restart("mongo")
    db = pymongo.MongoClient(stack.env()["PADDY_MONGODB_URI"])[DATABASE]
    publisher.join(60)
    wait_for(lambda: all_stored(client, publisher), 120, "every event acknowledged")
    check_everything_stored_once(db, 5)
    assert "MongoDB unreachable at start" in (stack.log_dir / "recorder.log").read_text()
