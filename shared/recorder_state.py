"""What each recorder reports about itself, and how far behind the stream the recorders are.

Every recorder writes a small hash `paddy:recorder:{consumer}` after each loop (and while it
retries a failing MongoDB write), expiring after a few loop intervals: a recorder that died
simply disappears. The API's `/health` and `/metrics` read these hashes and the consumer
group's lag; nothing else reads them.
"""

from datetime import datetime
from typing import Any

import redis

from shared import names

RECORDER_STATE_KEY = "paddy:recorder:{consumer}"
# A state not refreshed for this long is gone: its recorder is dead or hung.
RECORDER_STATE_TTL_S = 30


def publish_recorder_state(
    client: redis.Redis,
    consumer: str,
    *,
    mongodb_ok: bool,
    events_stored: int,
    dead_lettered: int,
    last_write_at: datetime | None,
    error: str | None = None,
) -> None:
    key = RECORDER_STATE_KEY.format(consumer=consumer)
    state = {
        "consumer": consumer,
        "mongodb": "ok" if mongodb_ok else "unreachable",
        "events_stored": events_stored,
        "dead_lettered": dead_lettered,
        "last_write_at": last_write_at.isoformat() if last_write_at else "",
        "error": error or "",
    }
    with client.pipeline() as pipe:
        pipe.hset(key, mapping=state)
        pipe.expire(key, RECORDER_STATE_TTL_S)
        pipe.execute()


def read_recorder_states(client: redis.Redis) -> list[dict[str, Any]]:
    """The live recorders' states, by consumer name."""
    states = []
    for key in sorted(client.scan_iter(match=RECORDER_STATE_KEY.format(consumer="*"), count=100)):
        raw = client.hgetall(key)
        if not raw:
            continue  # expired between the scan and the read
        state = {k.decode(): v.decode() for k, v in raw.items()}
        state["events_stored"] = int(state.get("events_stored") or 0)
        state["dead_lettered"] = int(state.get("dead_lettered") or 0)
        state["last_write_at"] = state.get("last_write_at") or None
        state["error"] = state.get("error") or None
        states.append(state)
    return states


def recorder_lag(
    client: redis.Redis, stream: str = names.EVENTS_STREAM, group: str = names.RECORDER_GROUP
) -> int | None:
    """Events on the stream the recorders have not stored yet: pending (read, not acknowledged)
    plus not yet delivered. None when the stream or the group does not exist yet."""
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return None
    info = next((g for g in groups if _text(g["name"]) == group), None)
    if info is None:
        return None
    pending = int(info["pending"])
    if info.get("lag") is not None:  # Redis ≥ 7 counts the undelivered entries itself
        return pending + int(info["lag"])
    undelivered = client.xrange(stream, min=f"({_text(info['last-delivered-id'])}", max="+", count=100_000)
    return pending + len(undelivered)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
