"""Studies (folds, repeats) read back: each test metric's mean and 95 % interval over the runs,
and two studies compared run against run.

Two studies of five folds each give five accuracies apiece; their means differ, but so do the
folds: some are harder for every model. Paired fold by fold (fold i of one against fold i of the
other, the same test images when both used the same split seed), the differences cancel what the
folds share, and their mean's t-interval says whether one study's model is better. Studies of
seeds (repeats) pair seed by seed, in the order of their seeds, on their dataset's one split.
"""

import math
from typing import Any

from shared.schemas.jobs import SUMMARY_METRICS, MetricInterval, StudyComparison
from shared.stats import mean_interval

# What a study summarises over its runs.
TEST_METRICS = tuple(metric for metric in SUMMARY_METRICS if metric.startswith("test_"))
STUDY_KINDS = ("folds", "repeats")


def _metric(run: dict[str, Any], metric: str) -> float | None:
    value = (run.get("metrics") or {}).get(metric) if run.get("status") == "completed" else None
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def study_intervals(runs: list[dict[str, Any]]) -> dict[str, MetricInterval]:
    """Each test metric's mean and 95 % t-interval over the completed runs that have it."""
    intervals = {}
    for metric in TEST_METRICS:
        values = [value for run in runs if (value := _metric(run, metric)) is not None]
        if values:
            mean, low, high = mean_interval(values)
            intervals[metric] = MetricInterval(mean=mean, low=low, high=high, runs=len(values))
    return intervals


def pairing_keys(study: dict[str, Any], runs: list[dict[str, Any]], metric: str) -> dict[int, dict[str, Any]]:
    """Each completed run of a study that has metric, under the key it pairs by: its fold, or
    its seed's number in the study (seed − the study's first seed). Of two runs under one key
    (a retried fold) the later counts; runs come in the order they were queued."""
    keyed = {}
    first_seed = (study.get("base") or {}).get("seed")
    for run in runs:
        spec = run.get("spec") or {}
        key = spec.get("fold") if study.get("kind") == "folds" else _difference(spec.get("seed"), first_seed)
        if isinstance(key, int) and _metric(run, metric) is not None:
            keyed[key] = run
    return keyed


def _difference(seed: Any, first_seed: Any) -> int | None:
    return seed - first_seed if isinstance(seed, int) and isinstance(first_seed, int) else None


def _split_hash(run: dict[str, Any]) -> str | None:
    return (run.get("split") or {}).get("split_hash")


def compare_studies(
    study_a: dict[str, Any],
    runs_a: list[dict[str, Any]],
    study_b: dict[str, Any],
    runs_b: list[dict[str, Any]],
    metric: str = "test_accuracy",
) -> StudyComparison:
    """Study a against study b on metric (one where higher is better): the paired differences
    (a − b) over the folds or seeds both completed on the same test images, their mean and its
    95 % t-interval, in words."""
    a, b, kind = study_a["sweep_id"], study_b["sweep_id"], str(study_a.get("kind"))

    def unpaired(reason: str) -> StudyComparison:
        return StudyComparison(study_a=a, study_b=b, kind=kind, metric=metric, paired=False, sentence=reason)

    if kind != study_b.get("kind"):
        return unpaired(f"cannot be paired: a study of {kind} and one of {study_b.get('kind')}")
    keyed_a, keyed_b = pairing_keys(study_a, runs_a, metric), pairing_keys(study_b, runs_b, metric)
    unit = "fold" if kind == "folds" else "seed"
    keys, differences, other_images = [], [], []
    for key in sorted(keyed_a.keys() & keyed_b.keys()):
        run_a, run_b = keyed_a[key], keyed_b[key]
        value_a, value_b = _metric(run_a, metric), _metric(run_b, metric)
        assert value_a is not None and value_b is not None  # pairing_keys keeps runs with the metric
        if _split_hash(run_a) is None or _split_hash(run_a) != _split_hash(run_b):
            other_images.append(key)
            continue
        keys.append(key)
        differences.append(value_a - value_b)
    if other_images:
        return unpaired(
            f"cannot be paired: {unit}(s) {', '.join(map(str, other_images))} were tested on different images "
            "(different split hashes: another dataset, split seed or number of folds)"
        )
    if len(differences) < 2:
        return unpaired(f"cannot be paired yet: {len(differences)} {unit}(s) completed in both studies; 2 are needed")
    mean, low, high = mean_interval(differences)
    assert low is not None and high is not None  # two or more differences
    significant = low > 0 or high < 0
    return StudyComparison(
        study_a=a,
        study_b=b,
        kind=kind,
        metric=metric,
        paired=True,
        keys=keys,
        differences=differences,
        mean_difference=mean,
        low=low,
        high=high,
        significant=significant,
        sentence=study_verdict(a, b, unit, mean, low, high, len(differences), significant),
    )


def study_verdict(
    a: str, b: str, unit: str, mean: float, low: float, high: float, count: int, significant: bool
) -> str:
    """The paired difference in words, in points of the metric (higher is better)."""
    over = f"over {count} {unit}s"
    if not significant:
        return (
            f"no significant difference between study {a} and study {b}: a − b = {_points(mean)} points on "
            f"average {over} (95 % interval {_points(low)} to {_points(high)})"
        )
    better, worse, lead, lead_low, lead_high = (a, b, mean, low, high) if mean > 0 else (b, a, -mean, -high, -low)
    return (
        f"study {better} is better than study {worse} by {lead * 100:.1f} points on average {over} "
        f"(95 % interval {lead_low * 100:.1f} to {lead_high * 100:.1f})"
    )


def _points(difference: float) -> str:
    return f"{difference * 100:+.1f}"
