"""How much a test accuracy says: its interval, what one image is worth, the paired verdicts.

Plain functions over what the API serves (JobPublic's `test_images` and
`test_accuracy_interval`, GET /compare's `pairs`); no Streamlit. The API computes every interval
and test; the dashboard only words them.
"""

from collections.abc import Sequence
from typing import Any

import pandas as pd

from services.dashboard.run_views import Run
from shared.stats import image_weight

# Under this many test images the page says what one image is worth: a point or more.
FEW_IMAGES = 100
TEST_ACCURACY_COLUMNS = ["run_id", "run", "test_accuracy", "low", "high", "test_images", "interval"]
# Beside the accuracy of a run split image by image (JobPublic's may_leak).
MAY_LEAK = "may leak"


def _interval(run: Run) -> tuple[float, float] | None:
    interval = run.get("test_accuracy_interval")
    return (interval[0], interval[1]) if interval else None


def interval_text(run: Run) -> str | None:
    """'±9.8 pts (80–99 %)': half the Wilson interval's width, then the interval itself; and
    '· may leak' when copies of its test photos may have been trained on."""
    interval = _interval(run)
    if interval is None:
        return None
    low, high = interval
    return f"±{(high - low) * 50:.1f} pts ({low * 100:.0f}–{high * 100:.0f} %){_leak_mark(run)}"


def _leak_mark(run: Run) -> str:
    return f" · {MAY_LEAK}" if run.get("may_leak") else ""


def image_weight_text(images: int | None) -> str | None:
    """'1 image = 4.2 points', for any test split of at least one image."""
    if not images:
        return None
    return f"1 image = {image_weight(images):.1f} points"


def test_accuracy_note(run: Run) -> str | None:
    """The run detail's line under its test accuracy: interval, image count, image weight."""
    interval, images = _interval(run), run.get("test_images")
    if interval is None or not images:
        return None
    low, high = interval
    note = (
        f"Test accuracy: 95 % interval {low:.1%}–{high:.1%} (Wilson) over {images} test images; "
        f"{image_weight_text(images)}."
    )
    if run.get("may_leak"):
        note += (
            " It may leak: split image by image (split: random), so copies of a test photo may have been "
            "trained on and this accuracy may be too high."
        )
    return note


def test_accuracy_frame(runs: Sequence[Run]) -> pd.DataFrame:
    """The evaluated runs' test accuracy with its interval and image count, one row per run."""
    rows = []
    for run in runs:
        accuracy = (run.get("evaluation") or {}).get("accuracy")
        interval = _interval(run)
        if accuracy is None or interval is None:
            continue
        rows.append(
            {
                "run_id": run["run_id"],
                "run": f"{run['run_id']} · {run.get('model_name')} {run.get('version')}{_leak_mark(run)}",
                "test_accuracy": accuracy,
                "low": interval[0],
                "high": interval[1],
                "test_images": run.get("test_images"),
                "interval": interval_text(run),
            }
        )
    return pd.DataFrame(rows, columns=TEST_ACCURACY_COLUMNS).astype(
        {"test_accuracy": "float64", "low": "float64", "high": "float64", "test_images": "Int64"}
    )


def few_images_notes(runs: Sequence[Run]) -> list[str]:
    """'Test split of 24 images: 1 image = 4.2 points.' for each test size under FEW_IMAGES."""
    sizes = sorted({run["test_images"] for run in runs if run.get("test_images") and run["test_images"] < FEW_IMAGES})
    return [f"Test split of {size} images: {image_weight_text(size)}." for size in sizes]


def pair_verdicts(compared: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """GET /compare's pairs in words: (the two runs, the verdict, whether one is significantly
    better: None when they could not be paired)."""
    labels = {
        run["run_id"]: f"{run['run_id']} · {run.get('model_name')} {run.get('version')}"
        for run in compared.get("runs", [])
    }
    return [
        (
            f"{labels.get(pair['run_a'], pair['run_a'])} vs {labels.get(pair['run_b'], pair['run_b'])}",
            pair["sentence"],
            pair.get("significant"),
        )
        for pair in compared.get("pairs", [])
    ]


STUDY_COLUMNS = ["study", "kind", "runs", "test_accuracy", "interval"]


def studies_frame(compared: dict[str, Any]) -> pd.DataFrame:
    """GET /compare/studies' studies: each one's mean test accuracy and its 95 % t-interval."""
    rows = []
    for study in compared.get("studies", []):
        accuracy = (study.get("test_metrics") or {}).get("test_accuracy") or {}
        low, high = accuracy.get("low"), accuracy.get("high")
        rows.append(
            {
                "study": study["sweep_id"],
                "kind": study["kind"],
                "runs": accuracy.get("runs", 0),
                "test_accuracy": accuracy.get("mean"),
                "interval": None if low is None or high is None else f"{low * 100:.1f}–{high * 100:.1f} %",
            }
        )
    return pd.DataFrame(rows, columns=STUDY_COLUMNS).astype({"runs": "Int64", "test_accuracy": "float64"})
