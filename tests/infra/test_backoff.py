"""The supervisor's restart delays, as pure logic (infra.supervisor.Backoff)."""

import pytest

from infra.supervisor import Backoff


def delays(backoff: Backoff, uptimes_s: list[float]) -> list[float]:
    """The delay chosen after each crash, for services that had been up this long."""
    chosen, previous = [], None
    for uptime_s in uptimes_s:
        previous = backoff.delay_s(previous, uptime_s)
        chosen.append(previous)
    return chosen


def test_quick_crashes_double_the_delay_up_to_the_cap():
    assert delays(Backoff(), [0.1] * 9) == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]


def test_the_first_crash_waits_the_first_delay_whatever_the_uptime():
    assert Backoff().delay_s(None, 0) == Backoff().delay_s(None, 3600) == 0.5


def test_a_service_that_stayed_up_long_enough_starts_over():
    backoff = Backoff(first_s=0.5, factor=2, max_s=30, reset_after_s=30)
    assert delays(backoff, [1, 1, 1, 30, 1, 29.9]) == [0.5, 1, 2, 0.5, 1, 2]


def test_other_settings():
    assert delays(Backoff(first_s=1, factor=3, max_s=10, reset_after_s=5), [0, 0, 0, 0, 6]) == [1, 3, 9, 10, 1]
    assert delays(Backoff(first_s=2, factor=1, max_s=2), [0, 0, 0]) == [2, 2, 2]


@pytest.mark.parametrize(
    "settings",
    [
        {"first_s": 0},
        {"first_s": -1},
        {"first_s": 40, "max_s": 30},
        {"factor": 0.5},
        {"reset_after_s": -1},
    ],
)
def test_nonsense_settings_are_refused(settings):
    with pytest.raises(ValueError, match="invalid Backoff"):
        Backoff(**settings)
