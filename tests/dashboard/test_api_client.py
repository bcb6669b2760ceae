"""The dashboard's API client against the real API, and against nothing at all."""

import time

import pytest

from services.dashboard import api_client
from services.dashboard.api_client import ApiError, ApiUnavailable
from tests.utils.dashboard import RunPublisher, wait_until_shown
from tests.utils.stack import free_port

pytestmark = pytest.mark.integration


def test_lists_runs_newest_first_and_reads_a_runs_epochs(recorded_runs, api_url, dashboard_env):
    dashboard_env(api_url)

    listing = api_client.list_runs(api_url, limit=500)
    epochs = api_client.run_epochs(api_url, recorded_runs.running)

    ids = [run["run_id"] for run in listing["data"]]
    assert ids.index(recorded_runs.running) < ids.index(recorded_runs.completed)
    assert listing["count"] == len(ids)
    assert [(e["epoch"], e["val_loss"] is None) for e in epochs] == [(1, False), (2, False), (3, True)]


def test_completed_runs_lists_only_completed_ones_and_is_cached_longer_than_live_queries(
    recorded_runs, api, events, api_url, dashboard_env
):
    dashboard_env(api_url)
    assert api_client.SLOW_TTL_S > api_client.LIVE_TTL_S

    first = api_client.completed_runs(api_url, 500)
    RunPublisher(events, epochs=1).start().epoch(1).complete(epochs_run=1)
    wait_until_shown(
        api, lambda client: client.get("/jobs", params={"status": "completed"}).json()["count"] > first["count"]
    )

    assert {run["status"] for run in first["data"]} == {"completed"}
    assert recorded_runs.completed in [run["run_id"] for run in first["data"]]
    time.sleep(api_client.LIVE_TTL_S)  # a live query's cache has expired by now; this one has not
    assert api_client.completed_runs(api_url, 500) == first
    api_client.completed_runs.clear()
    assert api_client.completed_runs(api_url, 500)["count"] == first["count"] + 1


def test_an_unknown_run_is_an_api_error_with_the_apis_reason(recorded_runs, api_url, dashboard_env):
    dashboard_env(api_url)

    with pytest.raises(ApiError) as error:
        api_client.run_epochs(api_url, "nosuchrun")

    assert error.value.status_code == 404
    assert error.value.detail == "run nosuchrun not found"


def test_a_closed_port_is_unavailable_not_a_crash(dashboard_env):
    url = f"http://127.0.0.1:{free_port()}"
    dashboard_env(url)

    with pytest.raises(ApiUnavailable, match=f"the API at {url} is unreachable \\(ConnectError\\)"):
        api_client.list_runs(url)
    with pytest.raises(ApiUnavailable):
        api_client.health(url)


def test_a_checkpoint_downloads_as_bytes(recorded_runs, stack, api_url, dashboard_env):
    dashboard_env(api_url)
    best = stack.state_dir / "artifacts" / recorded_runs.completed / "best.pt"
    best.parent.mkdir(parents=True, exist_ok=True)
    best.write_bytes(b"checkpoint bytes")

    assert api_client.checkpoint(api_url, recorded_runs.completed) == b"checkpoint bytes"
    with pytest.raises(ApiError) as error:
        api_client.checkpoint(api_url, recorded_runs.failed)
    assert error.value.status_code == 404


def test_writes_carry_the_api_key_and_a_missing_key_is_a_401(api_url, dashboard_env):
    spec = {"model_name": "custom_cnn", "dataset": "tiny", "epochs": 1}
    dashboard_env(api_url)
    assert api_client.create_job(api_url, spec)["status"] == "queued"

    dashboard_env(api_url, api_key=None)
    with pytest.raises(ApiError) as error:
        api_client.create_job(api_url, spec)
    assert error.value.status_code == 401


def test_a_422_names_the_field_and_the_reason(api_url, dashboard_env):
    dashboard_env(api_url)

    with pytest.raises(ApiError) as error:
        api_client.create_job(api_url, {"model_name": "alexnet", "dataset": "tiny"})

    assert error.value.status_code == 422
    assert error.value.detail.startswith("model_name: ")
    assert "alexnet" in error.value.detail
