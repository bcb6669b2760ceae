"""How the dashboard words a test accuracy's uncertainty and the paired verdicts (plain functions)."""

import pytest

from services.dashboard import charts, uncertainty


def run(run_id: str, accuracy: float | None, images: int | None, interval: list[float] | None) -> dict:
    return {
        "run_id": run_id,
        "model_name": "custom_cnn",
        "version": f"v{run_id[-1]}",
        "evaluation": None if accuracy is None else {"accuracy": accuracy, "images": images},
        "test_images": images,
        "test_accuracy_interval": interval,
    }


# 23 of 24 (Wilson: 79.76–99.26 %), and 90 of 200.
SMALL = run("run-1", 23 / 24, 24, [0.79758, 0.99261])
LARGE = run("run-2", 0.45, 200, [0.38263, 0.51932])
PENDING = run("run-3", None, None, None)


def test_an_interval_reads_as_plus_minus_half_its_width_then_its_bounds():
    assert uncertainty.interval_text(SMALL) == "±9.8 pts (80–99 %)"
    assert uncertainty.interval_text(PENDING) is None


def test_one_image_is_worth_100_over_n_points():
    assert uncertainty.image_weight_text(24) == "1 image = 4.2 points"
    assert uncertainty.image_weight_text(200) == "1 image = 0.5 points"
    assert uncertainty.image_weight_text(None) is None and uncertainty.image_weight_text(0) is None


def test_the_run_detail_note_gives_interval_images_and_weight():
    assert uncertainty.test_accuracy_note(SMALL) == (
        "Test accuracy: 95 % interval 79.8%–99.3% (Wilson) over 24 test images; 1 image = 4.2 points."
    )
    assert uncertainty.test_accuracy_note(PENDING) is None


def test_a_run_split_image_by_image_says_it_may_leak_beside_its_accuracy():
    leaky = {**SMALL, "may_leak": True}
    assert uncertainty.interval_text(leaky) == "±9.8 pts (80–99 %) · may leak"
    assert "copies of a test photo may have been trained on" in (uncertainty.test_accuracy_note(leaky) or "")
    assert uncertainty.test_accuracy_frame([leaky])["run"].tolist() == ["run-1 · custom_cnn v1 · may leak"]
    assert "may leak" not in (uncertainty.test_accuracy_note(SMALL) or "")


def test_studies_read_as_mean_and_interval_or_none_without_one():
    compared = {
        "studies": [
            {
                "sweep_id": "s1",
                "kind": "folds",
                "test_metrics": {"test_accuracy": {"mean": 0.8, "low": 0.75, "high": 0.85, "runs": 5}},
            },
            {
                "sweep_id": "s2",
                "kind": "repeats",
                "test_metrics": {"test_accuracy": {"mean": 0.7, "low": None, "high": None, "runs": 1}},
            },
            {"sweep_id": "s3", "kind": "folds", "test_metrics": {}},
        ]
    }
    frame = uncertainty.studies_frame(compared)
    assert frame["interval"].tolist()[0] == "75.0–85.0 %" and frame["interval"][1:].isna().all()
    assert frame["runs"].tolist() == [5, 1, 0]


def test_only_test_splits_under_100_images_get_a_warning_note():
    assert uncertainty.few_images_notes([SMALL, LARGE, PENDING, SMALL]) == [
        "Test split of 24 images: 1 image = 4.2 points."
    ]


def test_the_frame_holds_evaluated_runs_and_draws_asymmetric_error_bars():
    frame = uncertainty.test_accuracy_frame([SMALL, PENDING, LARGE])

    assert frame["run_id"].tolist() == ["run-1", "run-2"]
    assert frame["test_images"].tolist() == [24, 200]
    figure = charts.test_accuracy_figure(frame)
    [trace] = figure.data
    assert list(trace.error_y.array) == pytest.approx([0.99261 - 23 / 24, 0.51932 - 0.45])
    assert list(trace.error_y.arrayminus) == pytest.approx([23 / 24 - 0.79758, 0.45 - 0.38263])
    assert trace.error_y.symmetric is False
    assert figure.layout.yaxis.tickformat == ".0%"


def test_pairs_are_named_by_both_runs_with_their_verdict():
    compared = {
        "runs": [SMALL, LARGE],
        "pairs": [
            {"run_a": "run-1", "run_b": "run-2", "paired": False, "significant": None, "sentence": "cannot be paired"}
        ],
    }
    assert uncertainty.pair_verdicts(compared) == [
        ("run-1 · custom_cnn v1 vs run-2 · custom_cnn v2", "cannot be paired", None)
    ]
