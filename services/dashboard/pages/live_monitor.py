"""Live monitor: every queued, running and recently ended run, and the selected run's curves
growing epoch by epoch.

The live part is a fragment that reruns on its own every `refresh_s`: nothing to click, no
full-page rerun, and when the API comes back after an outage the page recovers by itself.
"""

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from services.dashboard import api_client, charts, run_views, ui
from services.dashboard.api_client import ApiError, ApiUnavailable
from services.dashboard.settings import get_settings

ACTIVE_SHOWN = 200
RECENT_SHOWN = 20
SELECTED_RUN = "live_monitor.run"
# Set once the viewer picks a run; until then the picker follows the newest running run.
PINNED = "live_monitor.pinned"
ALARM_STYLE = "background-color: rgba(255, 75, 75, 0.18)"

settings = get_settings()

COLUMNS = {
    "run_id": st.column_config.TextColumn("run id"),
    "model": st.column_config.TextColumn("model"),
    "version": st.column_config.TextColumn("version", width="small"),
    "status": st.column_config.TextColumn("status"),
    "progress": st.column_config.ProgressColumn(
        "progress",
        min_value=0.0,
        max_value=1.0,
        format="percent",
        width="small",
        help="epochs done (and the part of the running epoch done) / epochs planned; "
        "early stopping may end a run sooner",
    ),
    "epoch": st.column_config.TextColumn("epoch", help="epoch k of at most N, batch within the running epoch"),
    "eta": st.column_config.TextColumn("ETA", help="time left for every planned epoch at the last epoch's speed"),
    "images_per_sec": st.column_config.NumberColumn("images/s", format="%.0f"),
    "train_loss": st.column_config.NumberColumn("train loss", format="%.4f"),
    "val_loss": st.column_config.NumberColumn("val loss", format="%.4f"),
    "train_acc": st.column_config.NumberColumn("train acc", format="percent"),
    "val_acc": st.column_config.NumberColumn("val acc", format="percent"),
    "started": st.column_config.DatetimeColumn(
        "started",
        format="YYYY-MM-DD HH:mm:ss",
        timezone=st.context.timezone,
    ),
    "heartbeat": st.column_config.TextColumn(
        "heartbeat",
        help="time since the run's last event; a run silent too long becomes lost",
    ),
    "gpu": st.column_config.TextColumn(
        "GPU", help="the trainer's GPU at its last heartbeat: utilisation and memory in use (NVML)"
    ),
    "error": st.column_config.TextColumn("error", width="large"),
}


def highlight_alarms(frame: pd.DataFrame):
    """Failed and lost rows tinted red, so they stand out in a long table."""
    alarm = frame["status"].isin([run_views.status_label(state) for state in run_views.ALARM_STATES])
    return frame.style.apply(lambda row: [ALARM_STYLE if alarm[row.name] else ""] * len(row), axis=1)


def fetch_runs() -> tuple[list[dict], int]:
    """Queued, running and lost runs, then the most recently ended ones; and how many are active."""
    active = api_client.list_runs(settings.api_url, limit=ACTIVE_SHOWN, status=run_views.ACTIVE_STATES)
    ended = api_client.list_runs(settings.api_url, limit=RECENT_SHOWN, status=run_views.ENDED_STATES, sort="-end_time")
    return run_views.merge_runs(active["data"], ended["data"]), active["count"]


def show_runs_table(all_runs: list[dict], active_count: int) -> None:
    for run in run_views.alarms(all_runs):
        if run["status"] == "lost":
            st.warning(
                f"Run {run['run_id']} ({run['model_name']} {run['version']}) is lost: "
                f"no heartbeat for {run_views.format_age(run_views.heartbeat_age_s(run, datetime.now(UTC)))}.",
                icon="⚠️",
            )
    frame = run_views.runs_frame(all_runs, now=datetime.now(UTC))
    if frame["gpu"].isna().all():  # CPU trainers, or none running: no empty GPU column
        frame = frame.drop(columns="gpu")
    st.dataframe(
        highlight_alarms(frame),
        hide_index=True,
        column_config=COLUMNS,
        width="stretch",
        placeholder="",
        key="live_monitor.runs",
    )
    shown_active = sum(run["status"] in run_views.ACTIVE_STATES for run in all_runs)
    if active_count > shown_active:
        st.caption(f"The newest {shown_active} of {active_count} queued, running or lost runs.")


def pick_run(all_runs: list[dict]) -> str:
    by_id = {run["run_id"]: run for run in all_runs}
    if not st.session_state.get(PINNED) or st.session_state.get(SELECTED_RUN) not in by_id:
        st.session_state[SELECTED_RUN] = run_views.default_run(all_runs)
    return st.selectbox(
        "Run",
        options=list(by_id),
        key=SELECTED_RUN,
        format_func=lambda run_id: run_views.run_option_label(by_id[run_id]),
        on_change=lambda: st.session_state.update({PINNED: True}),
    )


def show_selected(run: dict) -> None:
    """The picked run at a glance; the epoch here is what grows while it trains."""
    status, epoch, progress, eta, speed, heartbeat = st.columns([2, 1, 1, 1.5, 1, 1])
    status.metric("status", run_views.status_label(run["status"]))
    epoch.metric("epoch", f"{run_views.shown_epoch(run)} / {run.get('epochs_planned') or 0}")
    progress.metric("progress", f"{run_views.progress(run):.0%}")
    eta.metric("ETA", run_views.format_duration(run_views.eta_s(run)) or "—")
    speed.metric(
        "images/s",
        f"{run['images_per_sec']:.0f}" if run.get("images_per_sec") and run["status"] == "in_progress" else "—",
    )
    heartbeat.metric("heartbeat", run_views.format_age(run_views.heartbeat_age_s(run, datetime.now(UTC))) or "—")
    if gpu := run_views.gpu_text(run):
        st.caption(gpu)


def show_run_curves(run: dict) -> None:
    epochs = api_client.run_epochs(settings.api_url, run["run_id"])
    finished = run_views.finished_epochs(epochs)
    running = run_views.running_epoch(epochs)
    if finished.empty:
        st.info(
            f"Epoch {running} is running; its curves appear when it finishes."
            if running
            else "No epoch has finished yet."
        )
        return
    loss, accuracy = st.columns(2)
    loss.plotly_chart(charts.curves_figure(finished, "loss"), key="live_monitor.loss")
    accuracy.plotly_chart(charts.curves_figure(finished, "accuracy"), key="live_monitor.accuracy")
    if running:
        st.caption(f"Epoch {running} is running.")


@st.fragment(run_every=settings.refresh_s)
def live_view() -> None:
    try:
        all_runs, active_count = fetch_runs()
        if not all_runs:
            ui.no_runs_yet()
            return
        show_runs_table(all_runs, active_count)
        run_id = pick_run(all_runs)
        selected = next(run for run in all_runs if run["run_id"] == run_id)
        show_selected(selected)
        show_run_curves(selected)
        ui.link_to_run(run_id, label=f"Details of run {run_id}")
    except (ApiUnavailable, ApiError) as error:
        ui.show_api_problem(error)


st.title("Live monitor")
st.caption(f"Runs from the API at {settings.api_url}, refreshed every {settings.refresh_s:g} s.")
live_view()
