"""Two runs compared image by image: McNemar's exact test on the test images they disagree on.

Two accuracies on 60 images can differ by 5 points by chance alone; but when both runs were
tested on the same images, the images one got right and the other wrong are what tell them
apart (the images both got right, or both wrong, say nothing). Runs pair only when they were
tested on the same split (equal split hashes) and both kept their per-image predictions.
"""

from itertools import combinations
from typing import Any

from services.api.gallery import gallery_image
from shared.schemas.jobs import ImageVerdicts, PairedComparison
from shared.stats import mcnemar_exact

# A difference with a two-sided p below this is called real ("A is better than B").
SIGNIFICANCE = 0.05


def run_label(run: dict[str, Any]) -> str:
    """How a sentence names a run: its model and version, as the dashboard lists it."""
    return f"{run.get('model_name', 'run')} {run.get('version', run['run_id'])}"


def paired_comparisons(
    runs: list[dict[str, Any]], predictions: dict[str, dict[str, Any] | None]
) -> list[PairedComparison]:
    """Every pair of runs, in the order given; predictions: run id → its test_predictions document."""
    labels = {run["run_id"]: run_label(run) for run in runs}
    if len(set(labels.values())) < len(labels):  # two runs of one name: their ids tell them apart
        labels = {run_id: f"run {run_id}" for run_id in labels}
    return [
        paired_comparison(a["run_id"], b["run_id"], predictions.get(a["run_id"]), predictions.get(b["run_id"]), labels)
        for a, b in combinations(runs, 2)
    ]


def paired_comparison(
    run_a: str,
    run_b: str,
    predictions_a: dict[str, Any] | None,
    predictions_b: dict[str, Any] | None,
    labels: dict[str, str],
) -> PairedComparison:
    """McNemar's exact test of run_a against run_b, or why the two cannot be paired."""
    missing = [run_id for run_id, kept in ((run_a, predictions_a), (run_b, predictions_b)) if kept is None]
    if missing:
        return _unpaired(
            run_a,
            run_b,
            f"cannot be paired: {' and '.join(f'run {run_id}' for run_id in missing)} "
            f"{'has' if len(missing) == 1 else 'have'} no per-image test predictions "
            "(not completed, or recorded before Paddy kept them)",
        )
    assert predictions_a is not None and predictions_b is not None
    if predictions_a["split_hash"] != predictions_b["split_hash"]:
        return _unpaired(
            run_a,
            run_b,
            f"cannot be paired: tested on different splits (split hash {predictions_a['split_hash']} vs "
            f"{predictions_b['split_hash']}), so on different images; compare their intervals instead",
        )
    right_a, right_b = _right_by_file(predictions_a), _right_by_file(predictions_b)
    shared = right_a.keys() & right_b.keys()
    if not shared:
        return _unpaired(run_a, run_b, "cannot be paired: the runs share no test image")
    both_right = sum(right_a[file] and right_b[file] for file in shared)
    only_a = sum(right_a[file] and not right_b[file] for file in shared)
    only_b = sum(right_b[file] and not right_a[file] for file in shared)
    p_value = mcnemar_exact(only_a, only_b)
    return PairedComparison(
        run_a=run_a,
        run_b=run_b,
        paired=True,
        images=len(shared),
        both_right=both_right,
        only_a_right=only_a,
        only_b_right=only_b,
        both_wrong=len(shared) - both_right - only_a - only_b,
        p_value=p_value,
        significant=p_value < SIGNIFICANCE,
        sentence=verdict(labels[run_a], labels[run_b], only_a, only_b, p_value),
    )


def verdict(label_a: str, label_b: str, only_a: int, only_b: int, p_value: float) -> str:
    """The test's result in words: which run is better on this test set, or that neither is."""
    if p_value < SIGNIFICANCE:
        better, worse = (label_a, label_b) if only_a > only_b else (label_b, label_a)
        return f"{better} is better than {worse} on this test set ({_p(p_value)})"
    differing = only_a + only_b
    if differing == 0:
        return "no difference: both runs got the same test images right"
    images = "1 image differs" if differing == 1 else f"{differing} images differ"
    return f"no significant difference: {images} ({_p(p_value)})"


def _p(p_value: float) -> str:
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3g}"


def _right_by_file(predictions: dict[str, Any]) -> dict[str, bool]:
    return {entry["file"]: entry["predicted_class"] == entry["true_class"] for entry in predictions["predictions"]}


def _unpaired(run_a: str, run_b: str, reason: str) -> PairedComparison:
    return PairedComparison(run_a=run_a, run_b=run_b, paired=False, sentence=reason)


def differing_images(
    predictions_a: dict[str, Any], predictions_b: dict[str, Any]
) -> tuple[int, list[ImageVerdicts], list[ImageVerdicts]]:
    """The images both runs were tested on (their count), those only a got right and those only
    b got right, each list with the wrong run's most confident mistakes first. The runs must
    share a split (equal split hashes)."""
    by_file_a = {e["file"]: gallery_image(e, predictions_a["class_names"]) for e in predictions_a["predictions"]}
    by_file_b = {e["file"]: gallery_image(e, predictions_b["class_names"]) for e in predictions_b["predictions"]}
    shared = sorted(by_file_a.keys() & by_file_b.keys())
    verdicts = [
        ImageVerdicts(
            file=file,
            group=by_file_a[file].group,
            true_class=by_file_a[file].true_class,
            predicted_a=by_file_a[file].predicted_class,
            confidence_a=by_file_a[file].confidence,
            predicted_b=by_file_b[file].predicted_class,
            confidence_b=by_file_b[file].confidence,
        )
        for file in shared
        if by_file_a[file].correct != by_file_b[file].correct
    ]
    only_a = [v for v in verdicts if v.predicted_a == v.true_class]
    only_b = [v for v in verdicts if v.predicted_b == v.true_class]
    only_a.sort(key=lambda v: v.confidence_b, reverse=True)
    only_b.sort(key=lambda v: v.confidence_a, reverse=True)
    return len(shared), only_a, only_b
