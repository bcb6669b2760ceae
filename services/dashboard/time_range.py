"""The time filter's date ranges: quick choices and custom dates, as start-time bounds."""

from datetime import UTC, date, datetime, time, timedelta, tzinfo

QUICK_RANGES = ("today", "last 7 days", "this month", "custom")


def day_start(day: date, zone: tzinfo) -> datetime:
    """Midnight of a local day, in UTC."""
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def date_range(choice: str, today: date, custom: tuple[date, date] | None = None) -> tuple[date, date]:
    """The first and last day (inclusive) a quick choice stands for."""
    if choice == "today":
        return today, today
    if choice == "last 7 days":
        return today - timedelta(days=6), today
    if choice == "this month":
        return today.replace(day=1), today
    if choice == "custom":
        if not custom:
            raise ValueError("a custom range needs a first and a last day")
        first, last = custom
        return (first, last) if first <= last else (last, first)
    raise ValueError(f"unknown range {choice!r}; choose one of {list(QUICK_RANGES)}")


def start_time_bounds(first: date, last: date, zone: tzinfo) -> tuple[str, str]:
    """`started_after` / `started_before` (ISO 8601, UTC) covering whole local days first..last."""
    return day_start(first, zone).isoformat(), day_start(last + timedelta(days=1), zone).isoformat()
