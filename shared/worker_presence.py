"""Which trainer workers are alive, and what each one runs.

Every trainer's main process keeps a key `paddy:worker:{hostname}` holding a small JSON
document — hostname, pid, queues, started_at, seen_at, task and run_id (what it runs, null
when idle), stopping — set with an expiry of a few refresh intervals
(services/trainer/presence.py). A worker that stops cleanly deletes its key; one that dies
drops out when the key expires. The API's /health and /metrics read these keys; nothing is
sent to the workers, so a worker whose pool keeps every CPU busy training is still counted.
"""

import json
from typing import Any

import redis

from shared import names

# Keys SCAN looks at per call: the keyspace also holds a few keys per run.
SCAN_PAGE = 1_000


def publish_worker(client: redis.Redis, state: dict[str, Any], ttl_s: float) -> None:
    """Write (or refresh) one worker's document; it expires ttl_s seconds from now."""
    key = names.WORKER_PRESENCE_KEY.format(hostname=state["hostname"])
    client.set(key, json.dumps(state), px=max(1, round(ttl_s * 1000)))


def remove_worker(client: redis.Redis, hostname: str) -> None:
    client.delete(names.WORKER_PRESENCE_KEY.format(hostname=hostname))


def read_workers(client: redis.Redis) -> list[dict[str, Any]]:
    """The live workers' documents, by hostname."""
    prefix = names.WORKER_PRESENCE_KEY.format(hostname="")
    keys = sorted(set(client.scan_iter(match=f"{prefix}*", count=SCAN_PAGE)))
    if not keys:
        return []
    workers = []
    for key, raw in zip(keys, client.mget(keys), strict=True):
        if raw is None:
            continue  # expired or deleted between the scan and the read
        hostname = key.decode().removeprefix(prefix)
        workers.append({**_document(raw), "hostname": hostname})
    return workers


def _document(raw: bytes) -> dict[str, Any]:
    """The worker's own report; an unreadable one still means the worker is alive."""
    try:
        document = json.loads(raw)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def trainers(workers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The workers that take training jobs; the others (predictors) serve predictions alone.
    A document without queues (written before predictors had workers of their own) trains."""
    return [w for w in workers if names.TRAINING_QUEUE in w.get("queues", [names.TRAINING_QUEUE])]
