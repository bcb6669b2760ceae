"""Stream trimming against a real redis-server: acknowledged entries go, needed ones never do."""

from services.recorder.consumer import Recorder
from services.recorder.settings import RecorderSettings
from services.recorder.trimming import oldest_needed_id, trim_acknowledged
from services.trainer.events import EventPublisher
from shared import names
from shared.schemas.events import Heartbeat
from tests.utils.events import T0, publish, run_events

STREAM, GROUP = names.EVENTS_STREAM, names.RECORDER_GROUP


def add_entries(redis_client, count: int) -> list[bytes]:
    return [redis_client.xadd(STREAM, {"n": str(i)}) for i in range(count)]


def read(redis_client, consumer: str, count: int, group: str = GROUP) -> list[bytes]:
    [(_stream, entries)] = redis_client.xreadgroup(group, consumer, {STREAM: ">"}, count=count)
    return [entry_id for entry_id, _fields in entries]


def id_key(entry_id) -> tuple[int, int]:
    ms, _, seq = (entry_id.decode() if isinstance(entry_id, bytes) else entry_id).partition("-")
    return int(ms), int(seq)


def stream_ids(redis_client) -> list[bytes]:
    return [entry_id for entry_id, _fields in redis_client.xrange(STREAM)]


def test_entries_pending_for_a_dead_consumer_are_never_trimmed(redis_client):
    ids = add_entries(redis_client, 10)
    redis_client.xgroup_create(STREAM, GROUP, id="0")
    dead = read(redis_client, "dead", 4)  # read, never acknowledged: its recorder died
    alive = read(redis_client, "alive", 4)
    redis_client.xack(STREAM, GROUP, *alive)

    assert trim_acknowledged(redis_client, STREAM) == 0  # ids[0] is still pending
    assert stream_ids(redis_client) == ids

    redis_client.xack(STREAM, GROUP, *dead[:2])
    assert trim_acknowledged(redis_client, STREAM) == 2
    assert stream_ids(redis_client) == ids[2:]
    # What is still pending can still be claimed, contents included.
    claimed = redis_client.xclaim(STREAM, GROUP, "alive", min_idle_time=0, message_ids=dead[2:])
    assert [(entry_id, fields) for entry_id, fields in claimed] == [(dead[2], {b"n": b"2"}), (dead[3], {b"n": b"3"})]


def test_undelivered_entries_are_never_trimmed(redis_client):
    ids = add_entries(redis_client, 6)
    redis_client.xgroup_create(STREAM, GROUP, id="0")
    redis_client.xack(STREAM, GROUP, *read(redis_client, "alive", 4))
    # The bound is "just after the last delivered id": above ids[3], at most ids[4] (equal only
    # when both share a millisecond), so MINID keeps ids[4] on.
    assert id_key(ids[3]) < id_key(oldest_needed_id(redis_client, STREAM)) <= id_key(ids[4])
    assert trim_acknowledged(redis_client, STREAM) == 4
    assert stream_ids(redis_client) == ids[4:]


def test_every_group_on_the_stream_counts(redis_client):
    ids = add_entries(redis_client, 5)
    redis_client.xgroup_create(STREAM, GROUP, id="0")
    redis_client.xgroup_create(STREAM, "audit", id="0")
    redis_client.xack(STREAM, GROUP, *read(redis_client, "alive", 5))
    assert trim_acknowledged(redis_client, STREAM) == 0  # "audit" has read nothing yet
    redis_client.xack(STREAM, "audit", *read(redis_client, "a", 3, group="audit"))
    assert trim_acknowledged(redis_client, STREAM) == 3
    assert stream_ids(redis_client) == ids[3:]


def test_no_stream_or_no_group_trims_nothing(redis_client):
    assert trim_acknowledged(redis_client, STREAM) == 0
    add_entries(redis_client, 3)
    assert trim_acknowledged(redis_client, STREAM) == 0
    assert redis_client.xlen(STREAM) == 3


def test_the_recorder_trims_what_it_stored(settings, db, redis_client):
    events = run_events("r1") + run_events("r2")
    publish(redis_client, events)
    recorder = Recorder(
        redis_client, db, RecorderSettings(consumer_name="rec", block_ms=50, trim_interval_s=0, batch_size=5)
    )
    stops = iter([False] * 5 + [True])
    recorder.run_forever(should_stop=lambda: next(stops))
    assert db[names.STATUS].count_documents({"status": "completed"}) == 2
    assert recorder.stats.entries_trimmed == len(events)
    assert redis_client.xlen(STREAM) == 0


def test_the_trainer_publishes_without_a_length_cap(redis_client):
    publisher = EventPublisher(redis_client, "r1", attempt=1)
    for _ in range(300):
        publisher.publish(Heartbeat, time=T0)
    assert publisher.close()
    assert redis_client.xlen(STREAM) == 300
