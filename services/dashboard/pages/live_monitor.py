"""Live monitor: every run's state, and the selected run's curves growing epoch by epoch.

The live part is a fragment that reruns on its own every `refresh_s`: nothing to click, and
when the API comes back after an outage the page recovers by itself.
"""

from datetime import UTC, datetime

import streamlit as st

from services.dashboard import api_client, charts, runs
from services.dashboard.api_client import ApiError, ApiUnavailable
from services.dashboard.settings import get_settings

RUNS_SHOWN = 100
SELECTED_RUN = "live_monitor.run"
# Set once the viewer picks a run; until then the picker follows the newest running run.
PINNED = "live_monitor.pinned"

settings = get_settings()

COLUMNS = {
    "run_id": st.column_config.TextColumn("run id"),
    "model": st.column_config.TextColumn("model"),
    "version": st.column_config.TextColumn("version", width="small"),
    "status": st.column_config.TextColumn("status"),
    "progress": st.column_config.ProgressColumn(
        "progress", min_value=0.0, max_value=1.0, format="percent", width="small",
        help="epochs done / epochs planned (early stopping may end a run sooner)",
    ),
    "epoch": st.column_config.TextColumn("epoch", help="epoch k of at most N"),
    "train_loss": st.column_config.NumberColumn("train loss", format="%.4f"),
    "val_loss": st.column_config.NumberColumn("val loss", format="%.4f"),
    "train_acc": st.column_config.NumberColumn("train acc", format="percent"),
    "val_acc": st.column_config.NumberColumn("val acc", format="percent"),
    "started": st.column_config.DatetimeColumn(
        "started", format="YYYY-MM-DD HH:mm:ss", timezone=st.context.timezone,
    ),
    "heartbeat": st.column_config.TextColumn(
        "heartbeat", help="time since the run's last event; a run silent too long becomes lost",
    ),
    "error": st.column_config.TextColumn("error", width="large"),
}


def show_runs_table(listing: dict) -> None:
    frame = runs.runs_frame(listing["data"], now=datetime.now(UTC))
    st.dataframe(frame, hide_index=True, column_config=COLUMNS, width="stretch", placeholder="",
                 key="live_monitor.runs")
    if listing["count"] > len(listing["data"]):
        st.caption(f"The newest {len(listing['data'])} of {listing['count']} runs.")


def pick_run(all_runs: list[dict]) -> str:
    by_id = {run["run_id"]: run for run in all_runs}
    if not st.session_state.get(PINNED) or st.session_state.get(SELECTED_RUN) not in by_id:
        st.session_state[SELECTED_RUN] = runs.default_run(all_runs)
    return st.selectbox(
        "Run", options=list(by_id), key=SELECTED_RUN,
        format_func=lambda run_id: runs.run_option_label(by_id[run_id]),
        on_change=lambda: st.session_state.update({PINNED: True}),
    )


def show_run_curves(run_id: str) -> None:
    epochs = api_client.run_epochs(settings.api_url, run_id)
    finished = runs.finished_epochs(epochs)
    running = runs.running_epoch(epochs)
    if finished.empty:
        st.info(f"Epoch {running} is running; its curves appear when it finishes."
                if running else "No epoch has finished yet.")
        return
    loss, accuracy = st.columns(2)
    loss.plotly_chart(charts.curves_figure(finished, "loss"), key="live_monitor.loss")
    accuracy.plotly_chart(charts.curves_figure(finished, "accuracy"), key="live_monitor.accuracy")
    if running:
        st.caption(f"Epoch {running} is running.")


def show_api_problem(error: ApiUnavailable | ApiError) -> None:
    retry = f"This page retries by itself every {settings.refresh_s:g} s."
    if isinstance(error, ApiUnavailable):
        st.error(f"The API at {settings.api_url} is unreachable ({error.reason}). {retry}", icon="🔌")
        return
    st.error(f"The API at {settings.api_url} answered {error.status_code}: {error.detail}. {retry}")
    if error.status_code >= 500:
        try:
            st.caption(f"API health: {api_client.health(settings.api_url)}")
        except ApiUnavailable:
            pass  # it went away meanwhile: the next refresh says so


@st.fragment(run_every=settings.refresh_s)
def live_view() -> None:
    try:
        listing = api_client.list_runs(settings.api_url, limit=RUNS_SHOWN)
        if not listing["data"]:
            st.info("No runs yet — queue one with `POST /jobs` or `paddy demo`.")
            return
        show_runs_table(listing)
        show_run_curves(pick_run(listing["data"]))
    except (ApiUnavailable, ApiError) as error:
        show_api_problem(error)


st.title("Live monitor")
st.caption(f"Runs from the API at {settings.api_url}, refreshed every {settings.refresh_s:g} s.")
live_view()
