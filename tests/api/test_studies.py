"""Studies: POST /jobs with folds or repeats queues one run per fold or seed under one parent;
GET /sweeps/{id} gives each test metric's mean and 95 % interval over the completed runs. The
split fields of a job and their 422s; may_leak on runs split image by image."""

import pytest
from scipy import stats

from shared import names
from shared.schemas.jobs import JobSpec
from tests.utils.api import detail, job, queued_tasks
from tests.utils.documents import stored_run


def test_folds_queue_one_run_per_fold_under_one_study(client, redis_client):
    response = client.post("/jobs", json=job(folds=3, split_seed=4))
    assert response.status_code == 202
    created = response.json()
    assert created["kind"] == "folds" and created["count"] == 3 and len(set(created["run_ids"])) == 3
    tasks = queued_tasks(redis_client)
    assert [run_id for _, (run_id, _spec) in tasks] == created["run_ids"]
    specs = [JobSpec.model_validate(spec) for _, (_run_id, spec) in tasks]  # what the trainer's task validates
    assert [(s.folds, s.fold, s.split_seed, s.seed) for s in specs] == [(3, fold, 4, 42) for fold in range(3)]
    assert not any(s.is_study for s in specs)  # each child is an ordinary run
    listed = client.get("/jobs", params={"sweep_id": created["sweep_id"]}).json()
    assert listed["count"] == 3 and {r["sweep_id"] for r in listed["data"]} == {created["sweep_id"]}
    shown = client.get(f"/sweeps/{created['sweep_id']}").json()
    assert shown["kind"] == "folds" and shown["count"] == 3 and shown["test_metrics"] == {}


def test_repeats_queue_one_run_per_seed_on_the_same_split(client, redis_client):
    created = client.post("/jobs", json=job(repeats=4, seed=10)).json()
    assert created["kind"] == "repeats" and created["count"] == 4
    specs = [spec for _, (_run_id, spec) in queued_tasks(redis_client)]
    assert [s["seed"] for s in specs] == [10, 11, 12, 13]
    assert {(s["repeats"], s["split"], s["split_seed"], s["folds"]) for s in specs} == {(None, "grouped", 0, None)}


def test_a_plain_job_still_answers_job_created(client, redis_client):
    created = client.post("/jobs", json=job()).json()
    assert set(created) == {"run_id", "status", "version"}
    [(_task, (_run_id, spec))] = queued_tasks(redis_client)
    assert (spec["split"], spec["split_seed"], spec["group_pattern"], spec["folds"], spec["fold"]) == (
        "grouped",
        0,
        None,
        None,
        None,
    )


def test_a_study_reports_each_test_metrics_mean_and_interval(client, db):
    sweep_id = client.post("/jobs", json=job(repeats=3)).json()["sweep_id"]
    accuracies = [0.80, 0.84, 0.90]
    for number, accuracy in enumerate(accuracies):
        stored_run(db, f"r{number}", sweep_id=sweep_id, metrics={"test_accuracy": accuracy, "test_loss": 0.3})
    stored_run(db, "running", status="in_progress", sweep_id=sweep_id)  # not counted

    shown = client.get(f"/sweeps/{sweep_id}").json()

    interval = shown["test_metrics"]["test_accuracy"]
    mean = sum(accuracies) / 3
    half = stats.t.ppf(0.975, 2) * stats.tstd(accuracies) / 3**0.5  # by hand: t with n - 1 degrees of freedom
    assert interval["runs"] == 3 and interval["mean"] == pytest.approx(mean)
    assert (interval["low"], interval["high"]) == pytest.approx((mean - half, mean + half))
    assert shown["test_metrics"]["test_loss"] == {"mean": pytest.approx(0.3), "low": 0.3, "high": 0.3, "runs": 3}
    assert set(shown["test_metrics"]) == {"test_accuracy", "test_loss", "test_f1_macro"}
    assert shown["count"] == 7  # three queued by the study, four stored here


def test_a_grid_sweep_has_no_intervals_and_refuses_study_fields(client, redis_client):
    base = {"model_name": "custom_cnn", "dataset": "leaves", "epochs": 2}
    grid = client.post("/sweeps", json={"base": base, "grid": {"seed": [1, 2]}}).json()
    shown = client.get(f"/sweeps/{grid['sweep_id']}").json()
    assert shown["kind"] == "grid" and shown["test_metrics"] is None
    redis_client.delete(names.TRAINING_QUEUE)

    for body, loc in [
        ({"base": {**base, "folds": 3}, "grid": {"seed": [1, 2]}}, ["body", "base", "folds"]),
        ({"base": base, "grid": {"repeats": [2, 3]}}, ["body", "grid", "repeats"]),
    ]:
        response = client.post("/sweeps", json=body)
        assert response.status_code == 422 and "queue a study with POST /jobs" in detail(response), body
        assert response.json()["detail"][0]["loc"] == loc
    # A grid over folds with their fold set by hand is a plain sweep.
    folds = client.post("/sweeps", json={"base": {**base, "folds": 2}, "grid": {"fold": [0, 1]}})
    assert folds.status_code == 202 and folds.json()["count"] == 2
    assert redis_client.llen(names.TRAINING_QUEUE) == 2


@pytest.mark.parametrize(
    ("fields", "loc", "words"),
    [
        ({"folds": 1}, "folds", "greater than or equal to 2"),
        ({"folds": 21}, "folds", "less than or equal to 20"),
        ({"repeats": 21}, "repeats", "less than or equal to 20"),
        ({"folds": 3, "repeats": 2}, "repeats", "choose folds or repeats"),
        ({"fold": 1}, "fold", "of a job that sets folds"),
        ({"folds": 3, "fold": 3}, "fold", "of a job that sets folds"),
        ({"seed": 4294967295, "repeats": 2}, "repeats", "seed + repeats - 1 must be at most 4294967295"),
        ({"split": "shuffled"}, "split", "'grouped' or 'random'"),
        ({"split_seed": -1}, "split_seed", "greater than or equal to 0"),
        ({"group_pattern": "IMG_\\d+"}, "group_pattern", "needs a named group `group`"),
        ({"group_pattern": "(?P<group>"}, "group_pattern", "not a regular expression"),
        ({"group_pattern": "(?P<group>a)" * 30}, "group_pattern", "at most 256 characters"),
        ({"group_pattern": "(?P<group>a\nb)"}, "group_pattern", "without control characters"),
        ({"split": "random", "group_pattern": "(?P<group>a)"}, "group_pattern", "a random split ignores groups"),
    ],
)
def test_split_and_study_fields_are_checked_and_named(client, redis_client, fields, loc, words):
    response = client.post("/jobs", json=job(**fields))
    assert response.status_code == 422, fields
    [error] = response.json()["detail"]
    assert error["loc"][-1] == loc and words in error["msg"], error
    assert redis_client.llen(names.TRAINING_QUEUE) == 0


def test_runs_split_image_by_image_are_marked_may_leak(client, db):
    grouped = {"method": "grouped", "split_seed": 0, "group_source": "audit", "groups": 9, "folds": None, "fold": None}
    stored_run(db, "kept-apart", split={**grouped, "split_hash": "h1"})
    stored_run(db, "random", split={**grouped, "method": "random", "group_source": None, "split_hash": "h2"})
    # A spec without `split`: queued before splits kept groups together, so split image by image.
    stored_run(db, "before-groups", spec={"model_name": "custom_cnn", "dataset": "leaves", "epochs": 1})
    random_run = client.post("/jobs", json=job(split="random", split_seed=42)).json()["run_id"]

    marks = {run["run_id"]: run["may_leak"] for run in client.get("/jobs").json()["data"]}
    assert marks == {"kept-apart": False, "random": True, "before-groups": True, random_run: True}
    shown = client.get("/jobs/kept-apart").json()
    assert shown["split"]["group_source"] == "audit" and shown["split"]["split_hash"] == "h1"


def stored_study(db, client, kind: str, accuracies: list[float], split_hashes: list[str] | None = None) -> str:
    """A study of len(accuracies) completed runs: folds 0 … k-1, or seeds 10, 11, … in reverse
    order of creation (pairing is by fold, or by the rank of the seed, never by creation)."""
    k = len(accuracies)
    fields = {"folds": k} if kind == "folds" else {"repeats": k, "seed": 10}
    sweep_id = client.post("/jobs", json=job(**fields)).json()["sweep_id"]
    for number, accuracy in enumerate(accuracies):
        spec = {"model_name": "custom_cnn", "dataset": "leaves", "epochs": 1, "split": "grouped"}
        spec |= {"folds": k, "fold": number} if kind == "folds" else {"seed": 10 + number}
        split_hash = split_hashes[number] if split_hashes else f"fold-{number}" if kind == "folds" else "one-split"
        stored_run(
            db,
            f"{sweep_id}-{number}",
            created_minute=k - number,
            sweep_id=sweep_id,
            spec=spec,
            split={"method": "grouped", "split_seed": 0, "split_hash": split_hash},
            metrics={"test_accuracy": accuracy},
        )
    return sweep_id


def test_two_fold_studies_are_compared_fold_by_fold(client, db, redis_client):
    a = stored_study(db, client, "folds", [0.90, 0.80, 0.85, 0.95, 0.70])
    b = stored_study(db, client, "folds", [0.85, 0.78, 0.80, 0.90, 0.69])

    compared = client.get("/compare/studies", params={"study_ids": f"{a},{b}"}).json()

    [pair] = compared["pairs"]
    differences = [0.05, 0.02, 0.05, 0.05, 0.01]
    mean = sum(differences) / 5
    half = stats.t.ppf(0.975, 4) * stats.tstd(differences) / 5**0.5  # by hand: paired t, 4 degrees of freedom
    assert pair["paired"] and pair["keys"] == [0, 1, 2, 3, 4]
    assert pair["differences"] == pytest.approx(differences)
    assert (pair["mean_difference"], pair["low"], pair["high"]) == pytest.approx((mean, mean - half, mean + half))
    assert pair["significant"] is True and mean - half > 0
    assert pair["sentence"] == (
        f"study {a} is better than study {b} by {mean * 100:.1f} points on average over 5 folds "
        f"(95 % interval {(mean - half) * 100:.1f} to {(mean + half) * 100:.1f})"
    )
    assert [s["test_metrics"]["test_accuracy"]["runs"] for s in compared["studies"]] == [5, 5]

    # The other way round: the same difference, negated, and the same study named better.
    [reverse] = client.get("/compare/studies", params={"study_ids": f"{b},{a}"}).json()["pairs"]
    assert reverse["mean_difference"] == pytest.approx(-mean) and reverse["sentence"] == pair["sentence"]


def test_seed_studies_pair_by_seed_and_say_when_no_difference_is_shown(client, db, redis_client):
    a = stored_study(db, client, "repeats", [0.80, 0.84, 0.90])
    b = stored_study(db, client, "repeats", [0.82, 0.83, 0.88])

    [pair] = client.get("/compare/studies", params={"study_ids": f"{a},{b}"}).json()["pairs"]

    assert pair["paired"] and pair["differences"] == pytest.approx([-0.02, 0.01, 0.02])  # seed 10, 11, 12
    assert pair["significant"] is False and pair["low"] < 0 < pair["high"]
    assert pair["sentence"].startswith(f"no significant difference between study {a} and study {b}: a − b = +0.3")


def test_studies_on_other_images_or_of_other_kinds_are_not_paired(client, db, redis_client):
    folds = stored_study(db, client, "folds", [0.9, 0.8, 0.85])
    other_split = stored_study(db, client, "folds", [0.9, 0.8, 0.85], split_hashes=["x", "fold-1", "y"])
    seeds = stored_study(db, client, "repeats", [0.9, 0.8, 0.85])

    pairs = client.get("/compare/studies", params={"study_ids": f"{folds},{other_split},{seeds}"}).json()["pairs"]

    assert [p["paired"] for p in pairs] == [False, False, False]
    assert "fold(s) 0, 2 were tested on different images" in pairs[0]["sentence"]
    assert pairs[1]["sentence"] == "cannot be paired: a study of folds and one of repeats"


def test_compare_studies_refuses_grids_and_unknown_ids(client, db, redis_client):
    study = stored_study(db, client, "folds", [0.9, 0.8])
    grid = client.post(
        "/sweeps", json={"base": {"model_name": "custom_cnn", "dataset": "leaves", "epochs": 2}, "grid": {"seed": [1]}}
    ).json()["sweep_id"]

    refused = client.get("/compare/studies", params={"study_ids": f"{study},{grid}"})
    assert refused.status_code == 422 and f"not a study of folds or repeats: {grid}" in detail(refused)
    unknown = client.get("/compare/studies", params={"study_ids": f"{study},nosuch"})
    assert unknown.status_code == 404 and "nosuch" in detail(unknown)
    alone = client.get("/compare/studies", params={"study_ids": study})
    assert alone.status_code == 422 and alone.json()["detail"][0]["loc"] == ["query", "study_ids"]
