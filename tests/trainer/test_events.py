"""EventPublisher against a real redis-server that goes away and comes back.

While Redis is away, events wait in memory, then in the run's spill file; when it is back they
all reach the stream once, in seq order, and the file is removed. Publishing never waits.
"""

import json
import os
import signal
import threading
from collections.abc import Iterator

import pytest
import redis

from infra.local_stack import LocalStack
from services.trainer.events import EventPublisher
from services.trainer.spill import earlier_spill_files, spill_path
from shared import names
from shared.schemas.events import SEQ_PER_ATTEMPT, EpochStarted, Heartbeat, decode_event
from tests.utils.stack import kill_service, running_stack
from tests.utils.waiting import wait_for


@pytest.fixture
def redis_stack(tmp_path) -> Iterator[LocalStack]:
    """A redis-server of this test's own, to stop and start."""
    with running_stack(tmp_path / "stack", ("redis",)) as stack:
        yield stack


def connect(stack: LocalStack) -> redis.Redis:
    # Short timeouts, so that a stopped server holds up the sender for a second, not forever.
    client = redis.Redis.from_url(stack.env()["PADDY_REDIS_URL"], socket_timeout=1, socket_connect_timeout=1)
    client.config_set("appendfsync", "always")  # what the stream holds survives the SIGKILL below
    return client


def stream_seqs(client: redis.Redis) -> list[int]:
    return [decode_event(fields).seq for _id, fields in client.xrange(names.EVENTS_STREAM)]


def publish_epochs(publisher: EventPublisher, first: int, last: int) -> None:
    for epoch in range(first, last + 1):
        publisher.publish(EpochStarted, epoch=epoch)


def threads_using(client: redis.Redis, monkeypatch) -> list[threading.Thread]:
    """The thread of each connection taken from the client's pool, from now on: every command,
    pipelined or not, takes one."""
    users = []
    take = client.connection_pool.get_connection

    def get_connection(*args, **kwargs):
        users.append(threading.current_thread())
        return take(*args, **kwargs)

    monkeypatch.setattr(client.connection_pool, "get_connection", get_connection)
    return users


def test_a_long_outage_spills_to_the_file_and_replays_it_in_order(redis_stack, tmp_path, monkeypatch):
    client = connect(redis_stack)
    path = spill_path(tmp_path / "runs" / "r1", attempt=1)
    publisher = EventPublisher(
        client, "r1", attempt=1, spill_path=path, spill_threshold=5, buffer_size=50, retry_interval_s=0.05, batch_size=3
    )
    publish_epochs(publisher, 1, 3)
    wait_for(lambda: len(stream_seqs(client)) == 3, 10, "the first events on the stream")

    kill_service(redis_stack, "redis")
    redis_users = threads_using(client, monkeypatch)
    publish_epochs(publisher, 4, 20)
    assert threading.current_thread() not in redis_users  # publish never waits for Redis: the sender talks to it
    wait_for(lambda: publisher.on_disk >= 5, 10, "events moved to the spill file")
    assert publisher.in_memory < 50
    on_disk = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["seq"] for e in on_disk] == sorted(e["seq"] for e in on_disk)  # written in seq order
    publish_epochs(publisher, 21, 22)  # newer ones wait in memory, behind the file

    redis_stack.restart("redis")
    assert publisher.close(timeout_s=30)
    seqs = stream_seqs(client)
    assert seqs == [SEQ_PER_ATTEMPT + n for n in range(1, 23)]  # each once, in order
    epochs = [decode_event(f).epoch for _id, f in client.xrange(names.EVENTS_STREAM)]
    assert epochs == list(range(1, 23))
    assert publisher.spilled >= 5 and publisher.dropped == 0
    assert not path.exists()  # removed once sent


def test_a_hung_redis_cannot_make_memory_grow_past_the_buffer(redis_stack, tmp_path):
    client = connect(redis_stack)
    path = spill_path(tmp_path, attempt=2)
    publisher = EventPublisher(
        client,
        "r2",
        attempt=2,
        spill_path=path,
        spill_threshold=10,
        buffer_size=20,
        retry_interval_s=0.05,
        batch_size=5,
    )
    pid = redis_stack.process("redis").pid
    os.kill(pid, signal.SIGSTOP)  # accepts connections, never answers: the sender hangs in a call
    try:
        for n in range(200):
            publisher.publish(Heartbeat if n % 2 else EpochStarted, **({} if n % 2 else {"epoch": 1}))
            assert publisher.in_memory <= 20 + 5  # the buffer and the batch in flight
        assert publisher.on_disk >= 150  # publish itself moved them to disk
    finally:
        os.kill(pid, signal.SIGCONT)
    assert publisher.close(timeout_s=60)
    assert stream_seqs(client) == [2 * SEQ_PER_ATTEMPT + n for n in range(1, 201)]
    assert publisher.dropped == 0 and not path.exists()


def test_events_still_unsent_when_the_job_ends_stay_in_the_file(redis_stack, tmp_path):
    client = connect(redis_stack)
    path = spill_path(tmp_path, attempt=1)
    publisher = EventPublisher(
        client, "r3", attempt=1, spill_path=path, spill_threshold=4, retry_interval_s=0.05, batch_size=2
    )
    kill_service(redis_stack, "redis")
    publish_epochs(publisher, 1, 10)
    wait_for(lambda: publisher.on_disk, 10, "a spill")
    assert not publisher.close(timeout_s=1)  # Redis never came back
    kept = [decode_event({"event": line}) for line in path.read_text().splitlines()]
    assert [e.epoch for e in kept] == list(range(1, 11))  # the batch in flight, the file, memory


def test_events_an_earlier_attempt_left_on_disk_are_sent_first(redis_stack, tmp_path):
    """Attempt 1 spilled during an outage and its trainer died; attempt 2 sends that file
    before its own events and removes it."""
    client = connect(redis_stack)
    kill_service(redis_stack, "redis")
    first = EventPublisher(
        client,
        "r4",
        attempt=1,
        spill_path=spill_path(tmp_path, 1),
        spill_threshold=2,
        retry_interval_s=0.05,
        batch_size=2,
    )
    publish_epochs(first, 1, 6)
    assert not first.close(timeout_s=1)  # as good as killed: its events are only in the file
    redis_stack.restart("redis")

    second = EventPublisher(
        client,
        "r4",
        attempt=2,
        spill_path=spill_path(tmp_path, 2),
        batch_size=4,
        leftovers=earlier_spill_files(tmp_path, attempt=2),
    )
    publish_epochs(second, 7, 8)
    assert second.close(timeout_s=30)
    assert stream_seqs(client) == [SEQ_PER_ATTEMPT + n for n in range(1, 7)] + [
        2 * SEQ_PER_ATTEMPT + 1,
        2 * SEQ_PER_ATTEMPT + 2,
    ]
    assert not spill_path(tmp_path, 1).exists() and second.dropped == 0
