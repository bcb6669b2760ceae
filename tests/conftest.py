"""Real processes for the tests: redis-server and the nx-27017 MongoDB server on free ports."""

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from infra.local_stack import LocalStack, StackConfig
from shared.settings import PaddySettings
from shared.store import connect, ensure_indexes


def wait_for(predicate, timeout_s: float, what: str):
    """predicate()'s first truthy value, polled until timeout_s; fails naming what it waited for."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def wait_for_run(api, run_id: str, *states: str, timeout_s: float = 60) -> dict:
    """The run as `GET /jobs/{run_id}` answers it once its status is one of states."""

    def reached():
        run = api.get(f"/jobs/{run_id}").json()
        return run if run["status"] in states else None

    return wait_for(reached, timeout_s, f"run {run_id} to be {' or '.join(states)}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def backing_services(tmp_path_factory) -> Iterator[LocalStack]:
    """One redis-server and one nx-27017 for the whole session; tests keep apart by database."""
    config = StackConfig(
        state_dir=tmp_path_factory.mktemp("backing"),
        services=("redis", "mongo"),
        redis_port=free_port(),
        mongo_port=free_port(),
    )
    with LocalStack(config) as stack:
        yield stack


@pytest.fixture
def settings(backing_services: LocalStack, tmp_path: Path, monkeypatch) -> PaddySettings:
    """Settings (also exported as PADDY_* env vars) for an empty database and an empty Redis."""
    env = backing_services.env()
    values = {
        "PADDY_REDIS_URL": env["PADDY_REDIS_URL"],
        "PADDY_MONGODB_URI": env["PADDY_MONGODB_URI"],
        "PADDY_MONGODB_DATABASE": f"test_{uuid.uuid4().hex[:10]}",
        "PADDY_DATA_ROOT": str(tmp_path / "data"),
        "PADDY_ARTIFACTS_ROOT": str(tmp_path / "artifacts"),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "data").mkdir()
    redis.Redis.from_url(values["PADDY_REDIS_URL"]).flushdb()
    return PaddySettings()


@pytest.fixture
def db(settings: PaddySettings):
    database = connect(settings)
    ensure_indexes(database)
    yield database
    database.client.drop_database(database.name)
    database.client.close()


@pytest.fixture
def redis_client(settings: PaddySettings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.redis_url)
    yield client
    client.close()
