"""Real processes for the tests: redis-server and the nx-27017 MongoDB server on free ports."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from infra.local_stack import LocalStack
from shared.settings import PaddySettings
from shared.store import connect, ensure_indexes
from tests.utils.stack import TRAINING_STACK, running_stack

# Liveness timings for a stack whose services get killed: a dead trainer's job comes back after
# ~10 s instead of ~1 min; the lease and the lost timeout shrink with it (LivenessSettings).
CRASH_TIMINGS = {
    "PADDY_VISIBILITY_TIMEOUT_S": "10",
    "PADDY_HEARTBEAT_INTERVAL_S": "2",
    "PADDY_LEASE_TTL_S": "4",
    "PADDY_HEARTBEAT_TIMEOUT_S": "4",
    "PADDY_REAP_INTERVAL_S": "1",
    "PADDY_SWEEP_POLL_S": "0.3",
}


@pytest.fixture(scope="session")
def backing_services(tmp_path_factory) -> Iterator[LocalStack]:
    """One redis-server and one nx-27017 for the whole session; tests keep apart by database."""
    with running_stack(tmp_path_factory.mktemp("backing"), ("redis", "mongo")) as stack:
        yield stack


@pytest.fixture(scope="session")
def crash_stack(tmp_path_factory) -> Iterator[LocalStack]:
    """The recorder, the API and two trainers (no predictors) with CRASH_TIMINGS, shared by the
    tests that kill its services: each test starts again what it killed. Each module brings its
    own dataset."""
    with running_stack(
        tmp_path_factory.mktemp("crash"), TRAINING_STACK, trainers=2, env=CRASH_TIMINGS, predictors=False
    ) as stack:
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
