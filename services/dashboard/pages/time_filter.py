"""Time filter: the runs started in a date range (today, last 7 days, this month or custom),
with their metrics."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st

from services.dashboard import api_client, charts, comparison, time_range, ui
from services.dashboard.settings import get_settings

RUNS_SHOWN = 500
settings = get_settings()


def viewer_zone() -> ZoneInfo:
    """The browser's time zone, so 'today' is the viewer's day; UTC when unknown."""
    try:
        return ZoneInfo(st.context.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def chosen_range(zone: ZoneInfo) -> tuple[date, date]:
    today = datetime.now(zone).date()
    choice = (
        st.segmented_control("Started", time_range.QUICK_RANGES, default="last 7 days", key="time_filter.choice")
        or "last 7 days"
    )
    custom = None
    if choice == "custom":
        picked = st.date_input(
            "From – to (both days included)",
            value=(today - timedelta(days=30), today),
            max_value=today,
            key="time_filter.custom",
        )
        if len(picked) < 2:
            st.info("Pick the last day of the range too.")
            st.stop()
        custom = (picked[0], picked[1])
    return time_range.date_range(choice, today, custom)


def body() -> None:
    zone = viewer_zone()
    first, last = chosen_range(zone)
    after, before = time_range.start_time_bounds(first, last, zone)
    listing = api_client.list_runs(
        settings.api_url, limit=RUNS_SHOWN, started_after=after, started_before=before, sort="-start_time"
    )
    span = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
    if not listing["data"]:
        st.info(f"No run started {span} ({zone.key}) — choose a wider range, or queue a job on the New job page.")
        return
    frame = comparison.runs_table(listing["data"])
    completed = frame[frame["val_accuracy"].notna()]
    count, done, best, mean = st.columns(4)
    count.metric("runs started", listing["count"])
    done.metric("completed", len(completed))
    best.metric("best val accuracy", "—" if completed.empty else f"{completed['val_accuracy'].max():.1%}")
    mean.metric("mean val accuracy", "—" if completed.empty else f"{completed['val_accuracy'].mean():.1%}")
    st.caption(
        f"Runs started {span} ({zone.key})"
        + (f"; the newest {len(frame)} shown." if listing["count"] > len(frame) else ".")
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config=ui.run_columns(),
        column_order=ui.RUN_COLUMN_ORDER,
        key="time_filter.table",
    )
    if not completed.empty:
        st.plotly_chart(
            charts.runs_over_time_figure(completed, "val_accuracy", "val accuracy"), key="time_filter.chart"
        )


st.title("Time filter")
ui.api_page(body)
