"""WorkerPresence against a real redis-server: the key a trainer keeps fresh while it lives."""

import os
import subprocess
import sys

import pytest
import redis
from pydantic import ValidationError

from services.trainer.presence import WorkerPresence
from services.trainer.settings import TrainerSettings
from shared import names
from shared.worker_presence import read_workers
from tests.utils.waiting import wait_for

QUEUES = ["predict", "training"]

# A worker's main process that refreshes its presence until it is killed.
KILLED_WORKER = """
import sys, threading
import redis
from services.trainer.presence import WorkerPresence
WorkerPresence(redis.Redis.from_url(sys.argv[1]), "trainer-9@box", ["training"], refresh_s=0.2, ttl_s=2,
               running=lambda: None).start()
threading.Event().wait()
"""


def test_a_worker_is_counted_while_it_runs_shows_its_run_and_leaves_when_stopped(settings, redis_client):
    running: list[tuple[str, str] | None] = [None]
    presence = WorkerPresence(
        redis.Redis.from_url(settings.redis_url),
        "trainer-1@box",
        QUEUES,
        refresh_s=0.1,
        ttl_s=5,
        running=lambda: running[0],
    )
    presence.start()
    try:
        [idle] = wait_for(lambda: read_workers(redis_client), 10, "the first refresh")
        assert idle["hostname"] == "trainer-1@box" and idle["pid"] == os.getpid() and idle["queues"] == QUEUES
        assert idle["task"] is None and idle["run_id"] is None and idle["stopping"] is False
        assert 0 < redis_client.pttl(names.WORKER_PRESENCE_KEY.format(hostname="trainer-1@box")) <= 5_000
        wait_for(lambda: read_workers(redis_client)[0]["seen_at"] != idle["seen_at"], 10, "a second refresh")

        running[0] = ("paddy.train", "7f3a")  # a training task's id is its run id
        wait_for(lambda: read_workers(redis_client)[0]["run_id"] == "7f3a", 10, "the busy run to show")
        running[0] = ("paddy.predict", "0b9e")  # a prediction is not a run
        [predicting] = wait_for(
            lambda: [w for w in read_workers(redis_client) if w["task"] == "paddy.predict"],
            10,
            "the prediction to show",
        )
        assert predicting["run_id"] is None

        presence.stopping = True  # a warm shutdown: still finishing its task
        [stopping] = wait_for(lambda: [w for w in read_workers(redis_client) if w["stopping"]], 10, "stopping")
        assert stopping["started_at"] == idle["started_at"]
    finally:
        presence.stop()
    assert read_workers(redis_client) == []  # deleted at once, not left to expire


def test_a_killed_worker_drops_out_when_its_key_expires(settings, redis_client):
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WORKER, settings.redis_url],
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    try:
        wait_for(lambda: read_workers(redis_client), 60, "the worker to announce itself")
        assert 0 < redis_client.pttl(names.WORKER_PRESENCE_KEY.format(hostname="trainer-9@box")) <= 2_000
    finally:
        proc.kill()
        proc.wait()
    wait_for(lambda: read_workers(redis_client) == [], 30, "the killed worker's key to expire")


def test_the_expiry_must_span_at_least_two_refreshes(settings):
    with pytest.raises(ValidationError, match="PADDY_WORKER_PRESENCE_TTL_S"):
        TrainerSettings(worker_presence_refresh_s=10, worker_presence_ttl_s=15)
    assert TrainerSettings(worker_presence_refresh_s=5, worker_presence_ttl_s=15).worker_presence_ttl_s == 15
