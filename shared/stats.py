"""How sure a test accuracy is, and whether two runs really differ: intervals and paired tests.

A test split is small (24 images is common), so an accuracy alone says little: one image of 24
is worth 4 points and the 95 % interval of 23/24 runs from 80 % to 99 %. Every accuracy Paddy
shows carries its Wilson interval, and two runs tested on the same images are compared image by
image (McNemar's exact test), which is far more sensitive than comparing two intervals.

The Wilson interval needs only the normal quantile, which the standard library has: the API
computes one for every run it lists and does not load scipy.stats (a second to import) for it.
The paired test and the t-interval import scipy.stats when first used.
"""

import math
from collections.abc import Sequence
from statistics import NormalDist


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1; got {confidence}")


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of correct/n: (low, high), fractions within [0, 1].

    Unlike the normal approximation it stays inside [0, 1] and keeps its coverage for small n and
    accuracies near 1, which is where test accuracies live.
    """
    if n <= 0:
        raise ValueError(f"an interval needs at least one image; got n={n}")
    if not 0 <= correct <= n:
        raise ValueError(f"correct must lie between 0 and n={n}; got {correct}")
    _check_confidence(confidence)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half_width = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At 0/n and n/n one bound is exactly 0 or 1; floating point leaves it a hair off.
    return (
        0.0 if correct == 0 else max(0.0, centre - half_width),
        1.0 if correct == n else min(1.0, centre + half_width),
    )


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided p-value of McNemar's exact test on the discordant pairs of two paired runs.

    only_a: images run A got right and run B wrong; only_b: the other way round. Images both got
    right (or both wrong) say nothing about which run is better. Under "no difference" each
    discordant image is a fair coin, so the test is an exact binomial test of only_a out of
    only_a + only_b at p = 1/2. No discordant image at all: p = 1.
    """
    if only_a < 0 or only_b < 0:
        raise ValueError(f"image counts cannot be negative; got {only_a} and {only_b}")
    if only_a + only_b == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float | None, float | None]:
    """The mean of values and its t-interval: (mean, low, high).

    For the few runs of a fold or seed study (Student's t, n - 1 degrees of freedom). A single
    value has no interval: (value, None, None). Equal values give a zero-width interval.
    """
    if not values:
        raise ValueError("the mean of no values is undefined")
    _check_confidence(confidence)
    n = len(values)
    mean = math.fsum(values) / n
    if n == 1:
        return mean, None, None
    deviation = math.sqrt(math.fsum((value - mean) ** 2 for value in values) / (n - 1))
    if deviation == 0:
        return mean, mean, mean
    from scipy.stats import t

    half_width = float(t.ppf(0.5 + confidence / 2, n - 1)) * deviation / math.sqrt(n)
    return mean, mean - half_width, mean + half_width


def image_weight(n: int) -> float:
    """What one image of an n-image test split is worth, in points of accuracy (100/n)."""
    if n <= 0:
        raise ValueError(f"a test split has at least one image; got n={n}")
    return 100 / n
