"""GET /compare's paired tests and GET /jobs/{run_id}/predictions, on runs the recorder's own
write path stored from trainer events (real nx-27017, the API in-process)."""

import json

import pytest
from statsmodels.stats.proportion import proportion_confint

from services.recorder.writer import BatchWriter
from shared import names
from shared.schemas.events import EvaluationFinished, ImagePrediction, TestPredictions
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
    response = client.get("/jobs/run-v1/predictions", params={"sort": "file", "limit": 100})

    assert response.status_code == 200
    body = response.json()
    assert (body["run_id"], body["dataset"], body["split_hash"], body["class_names"], body["total"], body["count"]) == (
        "run-v1",
        SPEC["dataset"],
        "split-1",
        ["a", "b"],
        52,
        52,
    )
    assert body["data"][0] == {
        "file": "a/img-000.png",
        "group": "photo-0",
        "true_class": "a",
        "predicted_class": "a",
        "probabilities": [0.9, 0.1],
        "confidence": 0.9,
        "correct": True,
        "heatmap": False,
    }
    assert [p["file"] for p in body["data"]] == sorted(p["file"] for p in body["data"])
    right = {p["file"]: p["correct"] for p in body["data"]}
    assert [right[f"{'ab'[i % 2]}/img-{i:03d}.png"] for i in range(52)] == runs["v1"]


def test_kept_grad_cam_overlays_are_marked_in_the_gallery_and_served(client, runs, settings):
    kept = settings.artifacts_root / names.RUNS_DIR / "run-v1" / names.HEATMAPS_DIR
    kept.mkdir(parents=True)
    (kept / "0123456789abcdef0123.jpg").write_bytes(b"\xff\xd8 an overlay")
    (kept.parent / "secret.jpg").write_bytes(b"not for the API")
    files = {"a/img-000.png": "0123456789abcdef0123.jpg", "b/img-001.png": "../secret.jpg"}
    (kept / names.HEATMAPS_INDEX).write_text(json.dumps({"files": files}))

    page = client.get("/jobs/run-v1/predictions", params={"sort": "file", "limit": 3}).json()["data"]
    # Only names of the trainer's own form count: the index cannot lead the API elsewhere.
    assert [(p["file"], p["heatmap"]) for p in page] == [
        ("a/img-000.png", True),
        ("a/img-002.png", False),
        ("a/img-004.png", False),
    ]
    response = client.get("/jobs/run-v1/heatmaps/a/img-000.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert response.content == b"\xff\xd8 an overlay"
    for run_id, file in [("run-v1", "b/img-001.png"), ("run-v1", "a/img-002.png"), ("run-v2", "a/img-000.png")]:
        response = client.get(f"/jobs/{run_id}/heatmaps/{file}")
        assert response.status_code == 404 and "kept no Grad-CAM overlay" in detail(response)
    assert client.get("/jobs/ghost/heatmaps/a/img-000.png").status_code == 404


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


def gallery_event(run_id: str, seq: int, rows: list[tuple[str, str, list[float]]]) -> TestPredictions:
    """test_predictions with chosen probabilities over classes a, b, c: (true class, file, probabilities)."""
    return TestPredictions(
        run_id=run_id,
        seq=seq,
        split_hash="split-g",
        class_names=["a", "b", "c"],
        predictions=[
            ImagePrediction(
                file=file,
                group=file,
                true_class=true_class,
                predicted_class="abc"[probabilities.index(max(probabilities))],
                probabilities=probabilities,
            )
            for true_class, file, probabilities in rows
        ],
    )


@pytest.fixture
def gallery_runs(db) -> None:
    """Two runs on one split of six images: g1 wrong on a/2 (as b, 0.7), b/1 (as c, 0.95) and
    c/1 (as a, 0.5); g2 wrong on a/1 (as c, 0.8) and c/1 (as b, 0.6)."""
    rows = {
        "g1": [
            ("a", "a/1.png", [0.6, 0.3, 0.1]),
            ("a", "a/2.png", [0.2, 0.7, 0.1]),
            ("b", "b/1.png", [0.0, 0.05, 0.95]),
            ("b", "b/2.png", [0.1, 0.8, 0.1]),
            ("c", "c/1.png", [0.5, 0.2, 0.3]),
            ("c", "c/2.png", [0.0, 0.01, 0.99]),
        ],
        "g2": [
            ("a", "a/1.png", [0.1, 0.1, 0.8]),
            ("a", "a/2.png", [0.9, 0.05, 0.05]),
            ("b", "b/1.png", [0.2, 0.7, 0.1]),
            ("b", "b/2.png", [0.1, 0.85, 0.05]),
            ("c", "c/1.png", [0.1, 0.6, 0.3]),
            ("c", "c/2.png", [0.0, 0.0, 1.0]),
        ],
    }
    for run_id, kept in rows.items():
        events = run_events(run_id, epochs=1, spec=SPEC | {"version": run_id})
        BatchWriter(db).write([*events, gallery_event(run_id, events[-1].seq + 1, kept)])


def files(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [image["file"] for image in response.json()["data"]]


def test_the_gallery_filters_by_cell_and_sorts_by_confidence(client, gallery_runs):
    url = "/jobs/g1/predictions"
    # Most confident first by default; ties by file.
    assert files(client.get(url)) == ["c/2.png", "b/1.png", "b/2.png", "a/2.png", "a/1.png", "c/1.png"]
    assert files(client.get(url, params={"sort": "confidence"}))[0] == "c/1.png"
    # A cell of the confusion matrix: true b, predicted c.
    cell = client.get(url, params={"true_class": "b", "predicted_class": "c"}).json()
    assert [(i["file"], i["confidence"], i["correct"]) for i in cell["data"]] == [("b/1.png", 0.95, False)]
    assert (cell["count"], cell["total"]) == (1, 6)
    # The mistakes, most confident first; the right answers of class a.
    assert files(client.get(url, params={"correct": "false"})) == ["b/1.png", "a/2.png", "c/1.png"]
    assert files(client.get(url, params={"correct": "true", "true_class": "a"})) == ["a/1.png"]
    # Pages.
    assert files(client.get(url, params={"limit": 2, "offset": 1})) == ["b/1.png", "b/2.png"]


def test_the_gallery_refuses_a_class_the_run_does_not_have(client, gallery_runs):
    response = client.get("/jobs/g1/predictions", params={"true_class": "Blast"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "true_class"]
    assert "run g1 has no class 'Blast'; its classes: ['a', 'b', 'c']" in detail(response)
    assert client.get("/jobs/g1/predictions", params={"sort": "size"}).status_code == 422


def test_two_runs_differing_images_both_ways_with_each_runs_confidence(client, gallery_runs):
    response = client.get("/compare/g1/g2/images")

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["images"], body["split_hash"], body["dataset"]) == (6, "split-g", SPEC["dataset"])
    # g1 right, g2 wrong: a/1 (g2 said c at 0.8).
    assert body["only_a_right"] == [
        {
            "file": "a/1.png",
            "group": "a/1.png",
            "true_class": "a",
            "predicted_a": "a",
            "confidence_a": 0.6,
            "predicted_b": "c",
            "confidence_b": 0.8,
        }
    ]
    # g2 right, g1 wrong: b/1 (g1 said c at 0.95) before a/2 (g1 said b at 0.7); c/1 both wrong.
    assert [(i["file"], i["predicted_a"], i["confidence_a"]) for i in body["only_b_right"]] == [
        ("b/1.png", "c", 0.95),
        ("a/2.png", "b", 0.7),
    ]


def test_run_against_run_needs_two_runs_on_one_split_with_predictions(client, gallery_runs, runs):
    other_split = client.get("/compare/g1/run-v1/images")
    assert other_split.status_code == 409 and "tested on different splits" in detail(other_split)
    queued = client.get("/compare/g1/run-v5/images")
    assert queued.status_code == 404 and "run run-v5 has no per-image test predictions" in detail(queued)
    assert client.get("/compare/g1/ghost/images").status_code == 404
    assert client.get("/compare/g1/g1/images").status_code == 422
