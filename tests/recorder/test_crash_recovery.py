"""The recorder process killed, and the MongoDB server killed, while events flow: nothing lost.

Real processes: redis-server, nx-27017 and `python -m services.recorder`, on free ports.
"""

import threading
import time

import pymongo
import pytest
import redis

from infra.local_stack import LocalStack
from shared import names
from shared.schemas.events import SEQ_PER_ATTEMPT, encode_event
from tests.utils.events import EPOCHS_PER_RUN, epoch_metrics, final_test_accuracy, interleaved_events
from tests.utils.stack import kill_service, running_stack
from tests.utils.waiting import wait_for

pytestmark = pytest.mark.integration

DATABASE = "crash_recovery"


@pytest.fixture
def stack(tmp_path):
    env = {
        "PADDY_MONGODB_DATABASE": DATABASE,
        "PADDY_CLAIM_IDLE_MS": "1000",
        "PADDY_CLAIM_INTERVAL_S": "1",
        "PADDY_TRIM_INTERVAL_S": "1",
        # Event times are real; the reaper must not mark runs lost meanwhile (the
        # visibility timeout has to outlast the heartbeat timeout: LivenessSettings).
        "PADDY_HEARTBEAT_TIMEOUT_S": "3600",
        "PADDY_VISIBILITY_TIMEOUT_S": "7200",
    }
    with running_stack(tmp_path, ("redis", "mongo", "recorder"), env=env) as running:
        yield running


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
    groups = client.xinfo_groups(names.EVENTS_STREAM)
    if not groups:  # a recorder started while MongoDB was down creates its group once MongoDB is back
        return False
    [group] = groups
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
        assert {name: doc[name] for name in epoch_metrics(run, 0)} == epoch_metrics(run, doc["epoch"]), doc

    trainings = list(db[names.TRAININGS].find({}, {"_id": 0}))
    assert sorted(doc["run_id"] for doc in trainings) == sorted(status)
    for doc in trainings:
        run = int(doc["run_id"].removeprefix("run-"))
        assert (doc["test_accuracy"], doc["epochs_run"]) == (final_test_accuracy(run), EPOCHS_PER_RUN)


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
    kill_service(stack, "recorder")
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
    kill_service(stack, "mongo")
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
    kill_service(stack, "mongo")
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
