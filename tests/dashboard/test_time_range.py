"""Quick date ranges and the start-time bounds they send to GET /jobs."""

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from services.dashboard import time_range

TODAY = date(2026, 3, 18)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("today", (TODAY, TODAY)),
        ("last 7 days", (date(2026, 3, 12), TODAY)),
        ("this month", (date(2026, 3, 1), TODAY)),
    ],
)
def test_quick_ranges_end_today(choice, expected):
    assert time_range.date_range(choice, TODAY) == expected


def test_a_custom_range_is_put_in_order():
    assert time_range.date_range("custom", TODAY, (date(2026, 2, 9), date(2026, 2, 1))) == (
        date(2026, 2, 1),
        date(2026, 2, 9),
    )
    with pytest.raises(ValueError, match="custom range needs"):
        time_range.date_range("custom", TODAY)
    with pytest.raises(ValueError, match="unknown range 'yesterday'"):
        time_range.date_range("yesterday", TODAY)


def test_bounds_cover_whole_local_days_in_utc():
    after, before = time_range.start_time_bounds(date(2026, 3, 12), TODAY, ZoneInfo("Asia/Manila"))

    # Manila is UTC+8: its 12 March starts at 16:00 UTC on the 11th; the 19th's midnight ends the range.
    assert (after, before) == ("2026-03-11T16:00:00+00:00", "2026-03-18T16:00:00+00:00")
    assert time_range.start_time_bounds(TODAY, TODAY, ZoneInfo("UTC")) == (
        "2026-03-18T00:00:00+00:00",
        "2026-03-19T00:00:00+00:00",
    )
