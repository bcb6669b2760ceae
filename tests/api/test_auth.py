"""The API key: writes always need it, reads only when closed, the example key refused at start."""

import subprocess
import sys

import httpx
import pytest
from fastapi.testclient import TestClient

from services.api.main import app
from services.api.settings import SettingsError
from tests.utils.api import API_KEY, clear_caches, job
from tests.utils.stack import free_port
from tests.utils.waiting import wait_for


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": API_KEY + "x"}, {"X-API-Key": ""}])
def test_writes_without_the_right_key_are_401(anonymous, headers):
    for method, path in (
        ("POST", "/jobs"),
        ("POST", "/jobs/x/cancel"),
        ("POST", "/jobs/x/retry"),
        ("DELETE", "/jobs/x"),
        ("POST", "/sweeps"),
        ("POST", "/ensembles"),
        ("POST", "/predict"),
    ):
        response = anonymous.request(method, path, headers=headers, json=job())
        assert response.status_code == 401, (method, path)
        assert response.json() == {"detail": "missing or wrong X-API-Key header"}
    assert anonymous.get("/jobs").json()["count"] == 0  # nothing was queued


def test_reads_are_open_by_default(anonymous, client):
    assert client.post("/jobs", json=job()).status_code == 202
    for path in ("/jobs", "/models", "/metrics", "/health"):
        assert anonymous.get(path).status_code == 200, path


def test_closed_reads_need_the_key_but_health_stays_open(client, monkeypatch):
    monkeypatch.setenv("PADDY_API_READ_OPEN", "false")
    clear_caches()
    with TestClient(app) as anonymous:
        for path in (
            "/jobs",
            "/jobs/x",
            "/jobs/x/epochs",
            "/models",
            "/metrics",
            "/compare?run_ids=a,b",
            "/sweeps/x",
            "/jobs/x/checkpoint",
            "/jobs/x/predictions",
        ):
            assert anonymous.get(path).status_code == 401, path
        assert anonymous.get("/health").status_code == 200
    assert client.get("/jobs").status_code == 200


def test_the_example_key_is_refused_outside_development(settings, monkeypatch):
    monkeypatch.setenv("PADDY_API_KEY", "change-me")
    monkeypatch.setenv("PADDY_ENVIRONMENT", "production")
    clear_caches()
    with pytest.raises(SettingsError, match="example key"), TestClient(app):
        pass
    monkeypatch.setenv("PADDY_ENVIRONMENT", "development")
    clear_caches()
    with TestClient(app) as test_client:
        assert test_client.get("/models").status_code == 200
    clear_caches()


def test_a_missing_key_is_refused_without_echoing_other_settings(settings, monkeypatch):
    monkeypatch.delenv("PADDY_API_KEY", raising=False)
    monkeypatch.setenv("PADDY_MONGODB_URI", "mongodb://user:hunter2@127.0.0.1:1")
    clear_caches()
    with pytest.raises(SettingsError) as refused, TestClient(app):
        pass
    assert "PADDY_API_KEY" in str(refused.value) and "hunter2" not in str(refused.value)
    clear_caches()


def uvicorn(env: dict[str, str], port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "services.api.main:app", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_real_server_refuses_to_start_with_the_example_key_and_never_logs_keys(settings, api_env, monkeypatch):
    import os

    refused = uvicorn({**os.environ, "PADDY_API_KEY": "change-me", "PADDY_ENVIRONMENT": "production"}, free_port())
    output, _ = refused.communicate(timeout=60)
    assert refused.returncode != 0 and "example key" in output

    port = free_port()
    server = uvicorn({**os.environ, "PADDY_ENVIRONMENT": "production"}, port)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(url), 60, "uvicorn")
        with httpx.Client(base_url=url) as http:
            assert http.post("/jobs", json=job(), headers={"X-API-Key": "guess-1234"}).status_code == 401
            assert http.post("/jobs", json=job(), headers={"X-API-Key": API_KEY}).status_code == 422  # no dataset here
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert "POST /jobs" in output and API_KEY not in output and "guess-1234" not in output


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/models", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
