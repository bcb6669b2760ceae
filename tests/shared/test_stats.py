"""Intervals and paired tests against statsmodels and values worked out by hand."""

import math

import pytest
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

from shared.stats import image_weight, mcnemar_exact, mean_interval, wilson_interval

COUNTS = [(0, 1), (1, 1), (0, 24), (23, 24), (24, 24), (12, 24), (39, 45), (1, 300), (937, 937), (700, 937)]


@pytest.mark.parametrize(("correct", "n"), COUNTS)
@pytest.mark.parametrize("confidence", [0.95, 0.9, 0.99])
def test_wilson_matches_statsmodels(correct, n, confidence):
    expected = proportion_confint(correct, n, alpha=1 - confidence, method="wilson")
    assert wilson_interval(correct, n, confidence) == pytest.approx(expected, abs=1e-12)


def test_wilson_of_23_in_24_is_80_to_99_percent():
    # By hand: p = 23/24, z = 1.959964; centre (p + z²/48) / (1 + z²/24) = 0.89509,
    # half width z·√(p(1−p)/24 + z²/2304) / (1 + z²/24) = 0.09751.
    low, high = wilson_interval(23, 24)
    assert (round(low, 4), round(high, 4)) == (0.7976, 0.9926)


def test_wilson_bounds_are_exact_at_the_ends():
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(10, 10)[0] == pytest.approx(10 / (10 + 1.959964**2), abs=1e-6)


def test_wilson_refuses_what_is_not_a_count():
    for correct, n in ((0, 0), (5, 4), (-1, 4)):
        with pytest.raises(ValueError):
            wilson_interval(correct, n)
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 2, confidence=1)


@pytest.mark.parametrize(("only_a", "only_b"), [(0, 1), (1, 0), (3, 0), (0, 7), (2, 9), (10, 10), (25, 40), (0, 200)])
def test_mcnemar_matches_statsmodels(only_a, only_b):
    table = [[50, only_a], [only_b, 5]]
    expected = mcnemar(table, exact=True).pvalue
    assert mcnemar_exact(only_a, only_b) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_by_hand():
    # 3 against 0: 2 · (1/2)³ = 0.25; 0 against 7: 2 · (1/2)⁷ = 1/64.
    assert mcnemar_exact(3, 0) == pytest.approx(0.25)
    assert mcnemar_exact(0, 7) == pytest.approx(1 / 64)
    # 1 against 9: 2 · (1 + 10) / 2¹⁰ = 22/1024.
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024)
    # Symmetric, and even counts on both sides are no evidence at all.
    assert mcnemar_exact(2, 9) == mcnemar_exact(9, 2)
    assert mcnemar_exact(5, 5) == 1.0


def test_mcnemar_without_discordant_images_is_1():
    assert mcnemar_exact(0, 0) == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_mean_interval_by_hand():
    # Mean 0.9, sample sd 0.1, t(0.975, 2) = 4.302653: half width 4.302653 · 0.1 / √3.
    mean, low, high = mean_interval([0.8, 0.9, 1.0])
    half = 4.302652729911275 * 0.1 / math.sqrt(3)
    assert (mean, low, high) == pytest.approx((0.9, 0.9 - half, 0.9 + half))


def test_mean_interval_matches_statsmodels():
    from statsmodels.stats.weightstats import DescrStatsW

    values = [0.91, 0.87, 0.95, 0.89, 0.93]
    mean, low, high = mean_interval(values, confidence=0.9)
    assert mean == pytest.approx(0.91)
    assert (low, high) == pytest.approx(DescrStatsW(values).tconfint_mean(alpha=0.1))


def test_one_value_has_no_interval_and_equal_values_no_width():
    assert mean_interval([0.8]) == (0.8, None, None)
    assert mean_interval([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)
    with pytest.raises(ValueError):
        mean_interval([])


def test_image_weight_in_points():
    assert image_weight(24) == pytest.approx(4.1667, abs=1e-4)
    assert image_weight(100) == 1.0
    with pytest.raises(ValueError):
        image_weight(0)
