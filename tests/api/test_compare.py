"""GET /compare's paired tests and GET /jobs/{run_id}/predictions, on runs the recorder's own
write path stored from trainer events (real nx-27017, the API in-process)."""

import pytest
from statsmodels.stats.proportion import proportion_confint

from services.recorder.writer import BatchWriter
from shared.schemas.events import EvaluationFinished
from tests.utils.api import detail
from tests.utils.documents import stored_run
from tests.utils.events import SPEC, paired_rights, predictions_event, run_events


def record(db, run_id: str, right: list[bool], *, version: str, split_hash: str = "split-1") -> None:
    """A completed run as a trainer reports it: evaluated on len(right) test images, and each
    image's prediction kept."""
    accuracy = sum(right) / len(right)
    events = run_events(run_id, epochs=1, spec=SPEC | {"version": version}, test_accuracy=accuracy)
    last = events[-1].seq
    evaluated = EvaluationFinished(run_id=run_id, seq=last + 1, accuracy=accuracy, loss=0.5, images=len(right))
    BatchWriter(db).write([*events, evaluated, predictions_event(run_id, last + 2, right, split_hash=split_hash)])


@pytest.fixture
def runs(db) -> dict[str, list[bool]]:
    """On one split of 52 images: v1 and v2 differ on 10 images (1 against 9), v2 and v3 on 3;
    v4 was tested on another split; v5 is still queued."""
    v1, v2 = paired_rights(both_right=40, only_a=1, only_b=9, both_wrong=2)
    v3 = v2[:]
    for image in (0, 1, 50):  # v2 got 0 and 1 right and 50 wrong; v3 the other way round
        v3[image] = not v3[image]
    rights = {"v1": v1, "v2": v2, "v3": v3, "v4": v1}
    for version, right in rights.items():
        record(db, f"run-{version}", right, version=version, split_hash="split-9" if version == "v4" else "split-1")
    stored_run(db, "run-v5", status="queued", version="v5")
    return rights


def pair(body: dict, run_a: str, run_b: str) -> dict:
    [found] = [p for p in body["pairs"] if (p["run_a"], p["run_b"]) == (run_a, run_b)]
    return found


def test_runs_on_one_split_are_compared_image_by_image(client, runs):
    body = client.get("/compare", params={"run_ids": "run-v1,run-v2,run-v3"}).json()

    assert [(p["run_a"], p["run_b"]) for p in body["pairs"]] == [
        ("run-v1", "run-v2"),
        ("run-v1", "run-v3"),
        ("run-v2", "run-v3"),
    ]
    v1_v2 = pair(body, "run-v1", "run-v2")
    assert v1_v2["paired"] and v1_v2["images"] == 52
    counts = [v1_v2[name] for name in ("both_right", "only_a_right", "only_b_right", "both_wrong")]
    assert counts == [40, 1, 9, 2]
    # By hand: two-sided exact binomial of 1 in 10 at 1/2: 2 · (1 + 10) / 2¹⁰.
    assert v1_v2["p_value"] == pytest.approx(22 / 1024) and v1_v2["significant"]
    assert v1_v2["sentence"] == "custom_cnn v2 is better than custom_cnn v1 on this test set (p = 0.0215)"

    v2_v3 = pair(body, "run-v2", "run-v3")
    assert [v2_v3[name] for name in ("only_a_right", "only_b_right")] == [2, 1]
    assert (
        v2_v3["p_value"] == pytest.approx(1.0) and v2_v3["significant"] is False
    )  # 2 against 1: 2 · (1 + 3 + 3 + 1) / 8, capped at 1
    assert v2_v3["sentence"] == "no significant difference: 3 images differ (p = 1)"


def test_runs_that_cannot_be_paired_say_why(client, runs):
    body = client.get("/compare", params={"run_ids": "run-v1,run-v4,run-v5"}).json()

    other_split = pair(body, "run-v1", "run-v4")
    assert not other_split["paired"] and other_split["p_value"] is None and other_split["only_a_right"] is None
    assert other_split["significant"] is None
    assert other_split["sentence"].startswith("cannot be paired: tested on different splits (split hash split-1 vs ")
    not_kept = pair(body, "run-v4", "run-v5")
    assert not not_kept["paired"]
    assert not_kept["sentence"].startswith("cannot be paired: run run-v5 has no per-image test predictions")


def test_identical_answers_are_no_difference(client, db):
    right = [True, False, True, True]
    record(db, "same-1", right, version="v1")
    record(db, "same-2", right, version="v2")
    [same] = client.get("/compare", params={"run_ids": "same-1,same-2"}).json()["pairs"]
    assert (same["only_a_right"], same["only_b_right"], same["p_value"]) == (0, 0, 1.0)
    assert same["sentence"] == "no difference: both runs got the same test images right"


def test_every_test_accuracy_carries_its_interval_and_image_count(client, runs):
    expected = proportion_confint(41, 52, alpha=0.05, method="wilson")
    shown = [
        client.get("/jobs/run-v1").json(),
        next(r for r in client.get("/jobs").json()["data"] if r["run_id"] == "run-v1"),
        client.get("/compare", params={"run_ids": "run-v1,run-v5"}).json()["runs"][0],
    ]
    for run in shown:
        assert run["test_images"] == 52
        assert run["test_accuracy_interval"] == pytest.approx(expected, abs=1e-12)
    queued = client.get("/jobs/run-v5").json()
    assert queued["test_images"] is None and queued["test_accuracy_interval"] is None


def test_a_runs_predictions_are_served_whole(client, runs):
    response = client.get("/jobs/run-v1/predictions")

    assert response.status_code == 200
    body = response.json()
    assert (body["run_id"], body["split_hash"], body["class_names"], body["count"]) == (
        "run-v1",
        "split-1",
        ["a", "b"],
        52,
    )
    assert body["data"][0] == {
        "file": "a/img-000.png",
        "group": "photo-0",
        "true_class": "a",
        "predicted_class": "a",
        "probabilities": [0.9, 0.1],
    }
    assert [p["predicted_class"] == p["true_class"] for p in body["data"]] == runs["v1"]


def test_predictions_of_an_unknown_run_or_a_run_without_them_are_404s(client, runs):
    unknown = client.get("/jobs/ghost/predictions")
    assert unknown.status_code == 404 and detail(unknown) == "run ghost not found"
    queued = client.get("/jobs/run-v5/predictions")
    assert queued.status_code == 404
    assert detail(queued) == (
        "run run-v5 has no per-image test predictions: it is queued; "
        "they are kept once it has been evaluated on its test split"
    )


def test_a_sweeps_runs_carry_their_intervals_too(client, db):
    created = client.post(
        "/sweeps",
        json={"base": {"model_name": "custom_cnn", "dataset": "leaves", "epochs": 1}, "grid": {"dropout": [0.1, 0.2]}},
    ).json()
    done, waiting = created["run_ids"]
    record(db, done, [True] * 23 + [False], version="v7")

    sweep = client.get(f"/sweeps/{created['sweep_id']}", params={"metric": "test_accuracy"}).json()

    shown = {run["run_id"]: run for run in sweep["runs"]}
    assert shown[done]["test_images"] == 24
    assert shown[done]["test_accuracy_interval"] == pytest.approx([0.7976, 0.9926], abs=1e-4)
    assert shown[waiting]["test_accuracy_interval"] is None
    assert sweep["best"]["test_accuracy_interval"] == shown[done]["test_accuracy_interval"]
