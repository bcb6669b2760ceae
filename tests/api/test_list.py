"""GET /jobs: every filter, every sort, missing values last, pagination across that boundary."""

import pytest

from shared.schemas.jobs import SUMMARY_METRICS
from tests.utils.documents import T0, stored_run


@pytest.fixture
def runs(client, db):
    """Six runs, created ten minutes apart (a first), started one minute after creation."""
    stored_run(
        db,
        "a",
        status="completed",
        created_minute=0,
        start_minute=1,
        metrics={"val_accuracy": 0.9, "test_accuracy": 0.8, "test_loss": 0.3},
    )
    stored_run(
        db,
        "b",
        status="completed",
        model_name="resnet50",
        created_minute=10,
        start_minute=11,
        metrics={"val_accuracy": 0.7, "test_accuracy": 0.95, "test_loss": 0.2},
        sweep_id="s1",
    )
    stored_run(db, "c", status="failed", version="v2", created_minute=20, start_minute=21)
    stored_run(db, "d", status="queued", version="v3", created_minute=30, start_minute=None)
    stored_run(db, "e", status="in_progress", model_name="mobilenet_v2", created_minute=40, start_minute=41)
    stored_run(
        db,
        "f",
        status="completed",
        version="v4",
        created_minute=50,
        start_minute=51,
        metrics={"val_accuracy": 0.8},
        archived=True,
    )
    return client


def ids(client, **params) -> list[str]:
    response = client.get("/jobs", params=params)
    assert response.status_code == 200, response.text
    return [run["run_id"] for run in response.json()["data"]]


def test_newest_first_without_archived_runs(runs):
    listing = runs.get("/jobs").json()
    assert [r["run_id"] for r in listing["data"]] == ["e", "d", "c", "b", "a"] and listing["count"] == 5


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": ["completed", "failed"]}, ["c", "b", "a"]),
        ({"status": "queued"}, ["d"]),
        ({"model_name": "resnet50"}, ["b"]),
        ({"version": "v2"}, ["c"]),
        ({"sweep_id": "s1"}, ["b"]),
        ({"started_after": (T0.replace(minute=10)).isoformat()}, ["e", "c", "b"]),
        ({"started_before": "2026-03-01T00:21:00Z"}, ["b", "a"]),
        ({"started_after": "2026-03-01T00:05:00", "started_before": "2026-03-01T00:30:00+00:00"}, ["c", "b"]),
        ({"min_val_accuracy": 0.75}, ["a"]),
        ({"min_test_accuracy": 0.9}, ["b"]),
        ({"archived": True}, ["f"]),
        ({"archived": True, "min_val_accuracy": 0.75}, ["f"]),
        ({"status": "completed", "model_name": "custom_cnn"}, ["a"]),
        ({"model_name": "vgg16"}, []),
    ],
)
def test_each_filter_and_the_count(runs, params, expected):
    listing = runs.get("/jobs", params=params).json()
    assert [r["run_id"] for r in listing["data"]] == expected and listing["count"] == len(expected)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("created_at", ["a", "b", "c", "d", "e"]),
        ("-created_at", ["e", "d", "c", "b", "a"]),
        ("val_accuracy", ["b", "a", "e", "d", "c"]),  # runs without the metric last, newest first
        ("-val_accuracy", ["a", "b", "e", "d", "c"]),
        ("test_loss", ["b", "a", "e", "d", "c"]),
        ("start_time", ["a", "b", "c", "e", "d"]),  # d has not started: last either way
        ("-start_time", ["e", "c", "b", "a", "d"]),
        ("-end_time", ["c", "b", "a", "e", "d"]),
    ],
)
def test_sorting_puts_missing_values_last(runs, sort, expected):
    assert ids(runs, sort=sort) == expected


@pytest.mark.parametrize("metric", SUMMARY_METRICS)
def test_every_summary_metric_sorts(runs, metric):
    assert set(ids(runs, sort=f"-{metric}")[:2]) == {"a", "b"}


def test_pages_cross_from_runs_with_the_metric_to_runs_without(runs):
    assert ids(runs, sort="val_accuracy", limit=2, offset=1) == ["a", "e"]
    assert ids(runs, sort="val_accuracy", limit=2, offset=4) == ["c"]
    listing = runs.get("/jobs", params={"sort": "val_accuracy", "offset": 10}).json()
    assert listing == {"data": [], "count": 5}
    assert ids(runs, limit=2, offset=2) == ["c", "b"]


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"sort": "colour"}, "sort", "-val_accuracy"),
        ({"limit": 501}, "limit", "≤ 500"),
        ({"offset": -1}, "offset", "≥ 0"),
        ({"offset": 2**63}, "offset", "≤ 10000000"),
        ({"min_val_accuracy": 2}, "min_val_accuracy", "≤ 1"),
        ({"status": "sleeping"}, "status", "in_progress"),
        ({"started_after": "yesterday"}, "started_after", "datetime"),
    ],
)
def test_bad_query_parameters_name_the_parameter_and_the_allowed_values(runs, params, field, words):
    response = runs.get("/jobs", params=params)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert field in error["loc"] and words in error["msg"]
