"""The run lease against a real redis-server: the newest attempt holds the run, older ones stand down."""

import time
from pathlib import Path

import pytest
import redis

from services.trainer.events import EventPublisher, Heartbeater
from services.trainer.lease import RunLease, StoodDown
from shared import names
from shared.schemas.events import EpochStarted, Heartbeat, decode_event
from tests.utils.waiting import wait_for

TTL_S = 2.0


def lease_for(redis_client, attempt: int, run_id: str = "r1", ttl_s: float = TTL_S) -> RunLease:
    return RunLease(redis_client, run_id, attempt, ttl_s, recheck_s=0.1)


def held_by(redis_client, run_id: str = "r1") -> int | None:
    value = redis_client.get(names.LEASE_KEY.format(run_id=run_id))
    return int(value) if value is not None else None


def test_the_first_attempt_takes_the_lease_and_renewing_keeps_it(redis_client):
    lease = lease_for(redis_client, 1)
    lease.acquire()
    assert held_by(redis_client) == 1 and lease.held()
    assert 0 < redis_client.pttl(names.LEASE_KEY.format(run_id="r1")) <= TTL_S * 1000
    lease.renew()
    lease.check()
    assert lease.confirm() is True
    lease.release()
    assert held_by(redis_client) is None


def test_a_newer_attempt_takes_the_run_and_the_older_one_stands_down_everywhere(redis_client):
    old, new = lease_for(redis_client, 1), lease_for(redis_client, 2)
    old.acquire()
    redis_client.delete(names.LEASE_KEY.format(run_id="r1"))  # as if it had expired
    new.acquire()
    with pytest.raises(StoodDown, match="attempt 1 stood down"):
        old.confirm()
    for look in (old.check, old.renew, old.confirm):
        with pytest.raises(StoodDown):
            look()
    assert not old.held()
    old.release()  # not its lease any more: left alone
    assert held_by(redis_client) == 2
    new.check()
    assert new.held()


def test_an_older_attempt_never_takes_the_lease_back(redis_client):
    lease_for(redis_client, 3).acquire()
    with pytest.raises(StoodDown):
        lease_for(redis_client, 2).acquire()
    assert held_by(redis_client) == 3


def test_a_newer_attempt_waits_out_what_an_older_live_lease_had_left(redis_client):
    old = lease_for(redis_client, 1)
    old.acquire()
    waited = lease_for(redis_client, 2).acquire()
    assert 0 < waited <= TTL_S + 0.1
    # By then the older attempt can no longer pass a local check and replace a checkpoint.
    assert not old.held()
    assert held_by(redis_client) == 2


def test_check_asks_redis_only_once_the_last_confirmation_is_older_than_the_lease(redis_client):
    old = lease_for(redis_client, 1)
    old.acquire()
    redis_client.set(names.LEASE_KEY.format(run_id="r1"), 2)  # taken over behind its back
    old.check()  # confirmed just now: no Redis call, no news yet
    time.sleep(TTL_S + 0.1)  # as after a pause longer than the lease (SIGSTOP)
    with pytest.raises(StoodDown):
        old.check()


def test_redis_away_keeps_the_lease_only_as_long_as_it_lives():
    lease = lease_for(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2), 1)
    with pytest.raises(redis.RedisError):
        lease.acquire()
    assert lease.confirm() is False  # never confirmed: checkpoints are not replaced
    lease.check()  # training itself goes on


def test_a_publisher_whose_attempt_stood_down_publishes_nothing_more(tmp_path: Path, redis_client):
    publisher = EventPublisher(redis_client, "r1", 1, spill_path=tmp_path / "spill.jsonl")
    publisher.publish(EpochStarted, epoch=1)
    wait_for(lambda: redis_client.xlen(names.EVENTS_STREAM) == 1, 10, "the first event to be sent")
    publisher.stand_down()
    publisher.publish(EpochStarted, epoch=2)
    assert publisher.close() is True
    assert [decode_event(f).type for _id, f in redis_client.xrange(names.EVENTS_STREAM)] == ["epoch_started"]


def test_the_heartbeat_renews_the_lease_and_stops_when_a_newer_attempt_holds_it(tmp_path: Path, redis_client):
    lease = lease_for(redis_client, 1)
    lease.acquire()
    publisher = EventPublisher(redis_client, "r1", 1, spill_path=tmp_path / "spill.jsonl")
    with Heartbeater(publisher, 0.2, lease):
        time.sleep(TTL_S + 0.5)
        assert held_by(redis_client) == 1  # renewed past its first life
        redis_client.set(names.LEASE_KEY.format(run_id="r1"), 2)
        wait_for(lambda: not lease.held(), 5, "the heartbeat to find the newer attempt")
        sent = redis_client.xlen(names.EVENTS_STREAM)
        time.sleep(0.6)
        assert redis_client.xlen(names.EVENTS_STREAM) == sent  # no heartbeat after standing down
    publisher.close()
    events = [decode_event(f) for _id, f in redis_client.xrange(names.EVENTS_STREAM)]
    assert events and all(isinstance(e, Heartbeat) for e in events)
