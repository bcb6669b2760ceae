"""Keeps the event stream bounded without ever trimming an entry some consumer group still needs.

An entry is still needed by a group while it is pending (delivered, not acknowledged) or not yet
delivered (after the group's last-delivered-id). The oldest entry needed by any group on the
stream is therefore the smallest of, over every group: the smallest pending id (XPENDING
summary) and the id right after last-delivered-id (XINFO GROUPS). `XTRIM MINID` removes only
entries older than that id.

The group infos are read before the pending summaries: an entry delivered in between has an id
above the last-delivered-id already read, and an entry pending at the first read is either
still pending at the second (and counted) or acknowledged. Either way a needed entry stays.
"""

import logging

import redis

log = logging.getLogger(__name__)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _parse_id(entry_id) -> tuple[int, int]:
    ms, _, seq = _text(entry_id).partition("-")
    return int(ms), int(seq or 0)


def oldest_needed_id(client: redis.Redis, stream: str) -> str | None:
    """A lower bound ("ms-seq") on the ids some group still needs; None: trim nothing.

    Every entry with a smaller id has been acknowledged by every group. The bound need not be an
    existing id: "just after the last delivered id" is that id with its sequence plus one.

    None when the stream has no group: nobody has read anything, so nothing may go.
    """
    groups = client.xinfo_groups(stream)
    if not groups:
        return None
    needed: list[tuple[int, int]] = []
    for group in groups:
        ms, seq = _parse_id(group["last-delivered-id"])
        needed.append((ms, seq + 1))  # the first entry not yet delivered to this group
    for group in groups:
        summary = client.xpending(stream, group["name"])
        if summary["pending"]:
            needed.append(_parse_id(summary["min"]))
    ms, seq = min(needed)
    return f"{ms}-{seq}"


def trim_acknowledged(client: redis.Redis, stream: str) -> int:
    """Remove the entries every group has acknowledged; returns how many were removed."""
    try:
        min_id = oldest_needed_id(client, stream)
    except redis.ResponseError as error:
        if "no such key" in str(error).lower():
            return 0  # no stream yet
        raise
    if min_id is None:
        return 0
    # Exact rather than "~": approximate trimming would be as safe (it only keeps more) but
    # leaves the stream's length depending on Redis's internal node sizes.
    removed = int(client.xtrim(stream, minid=min_id, approximate=False))
    if removed:
        log.info("trimmed %d acknowledged entries from %s (kept from %s on)", removed, stream, min_id)
    return removed
