"""Recorder states and lag against a real redis-server."""

from datetime import UTC, datetime

from shared import names
from shared.recorder_state import publish_recorder_state, read_recorder_states, recorder_lag


def test_states_round_trip_and_expire(redis_client):
    when = datetime(2026, 1, 1, tzinfo=UTC)
    publish_recorder_state(redis_client, "rec-a", mongodb_ok=True, events_stored=7, dead_lettered=1, last_write_at=when)
    publish_recorder_state(
        redis_client,
        "rec-b",
        mongodb_ok=False,
        events_stored=0,
        dead_lettered=0,
        last_write_at=None,
        error="ServerSelectionTimeoutError",
    )
    states = read_recorder_states(redis_client)
    assert [s["consumer"] for s in states] == ["rec-a", "rec-b"]
    assert states[0] == {
        "consumer": "rec-a",
        "mongodb": "ok",
        "events_stored": 7,
        "dead_lettered": 1,
        "last_write_at": when.isoformat(),
        "error": None,
    }
    assert states[1]["mongodb"] == "unreachable" and states[1]["error"] == "ServerSelectionTimeoutError"
    assert 0 < redis_client.ttl("paddy:recorder:rec-a") <= 30


def test_lag_counts_pending_and_undelivered(redis_client):
    assert recorder_lag(redis_client) is None  # no stream yet
    for i in range(5):
        redis_client.xadd(names.EVENTS_STREAM, {"n": str(i)})
    redis_client.xgroup_create(names.EVENTS_STREAM, names.RECORDER_GROUP, id="0")
    assert recorder_lag(redis_client) == 5
    [(_, entries)] = redis_client.xreadgroup(names.RECORDER_GROUP, "c", {names.EVENTS_STREAM: ">"}, count=3)
    assert recorder_lag(redis_client) == 5  # read, not yet acknowledged
    redis_client.xack(names.EVENTS_STREAM, names.RECORDER_GROUP, *[entry_id for entry_id, _ in entries[:2]])
    assert recorder_lag(redis_client) == 3
