"""The API in-process (TestClient) against a real redis-server and nx-27017; no trainer runs."""

import pytest
from fastapi.testclient import TestClient

from services.api.main import app
from shared.datasets.synth import synthesize_dataset
from tests.utils.api import API_KEY, clear_caches


@pytest.fixture
def api_env(settings, monkeypatch) -> dict[str, str]:
    # The sweep driver's thread makes one pass at startup; tests drive sweeps themselves.
    values = {"PADDY_API_KEY": API_KEY, "PADDY_ENVIRONMENT": "production", "PADDY_SWEEP_POLL_S": "3600"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def client(settings, db, api_env):
    """A client that sends the API key; `anonymous` is the same app without it."""
    clear_caches()
    synthesize_dataset(settings.data_root / "leaves", per_class=3, size=32, seed=0)
    with TestClient(app, headers={"X-API-Key": API_KEY}) as test_client:
        yield test_client
    clear_caches()


@pytest.fixture
def anonymous(client):
    with TestClient(app) as test_client:
        yield test_client
