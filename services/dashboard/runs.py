"""Turning the API's runs and epochs into what the pages show; plain functions, no Streamlit."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd

Run = dict[str, Any]  # a JobPublic, as the API serves it

STATUS_ICONS = {
    "queued": "⏳",
    "in_progress": "🔄",
    "completed": "✅",
    "failed": "❌",
    "cancelled": "🚫",
    "lost": "⚠️",
}
# Runs whose silence means something: a heartbeat age is shown only for these.
WATCHED_STATES = frozenset({"in_progress", "lost"})
TABLE_COLUMNS = [
    "run_id", "model", "version", "status", "progress", "epoch", "train_loss", "val_loss",
    "train_acc", "val_acc", "started", "heartbeat", "error",
]
CURVE_METRICS = ["train_loss", "val_loss", "train_acc", "val_acc"]


def status_label(status: str) -> str:
    """'❌ failed': the icon makes failed and lost runs stand out in a long table."""
    return f"{STATUS_ICONS.get(status, '❔')} {status.replace('_', ' ')}"


def progress(run: Run) -> float:
    """Fraction of the planned epochs done, 0–1; a completed run is done even if it stopped early."""
    if run.get("status") == "completed":
        return 1.0
    planned = run.get("epochs_planned") or 0
    if planned <= 0:
        return 0.0
    return min(max((run.get("epochs_done") or 0) / planned, 0.0), 1.0)


def epoch_text(run: Run) -> str:
    """'epoch k / N': the epoch being trained while the run is in progress, else the last done."""
    planned = run.get("epochs_planned") or 0
    done = run.get("epochs_done") or 0
    current = run.get("current_epoch") if run.get("status") == "in_progress" else None
    return f"epoch {max(current or 0, done)} / {planned}"


def parse_time(value: str | datetime | None) -> pd.Timestamp | None:
    """A UTC timestamp; the API writes ISO 8601, and a time without an offset is UTC."""
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def heartbeat_age_s(run: Run, now: datetime) -> float | None:
    """Seconds since the run's last event, for runs where that age matters."""
    heartbeat = parse_time(run.get("heartbeat_at"))
    if heartbeat is None or run.get("status") not in WATCHED_STATES:
        return None
    return max((pd.Timestamp(now) - heartbeat).total_seconds(), 0.0)


def format_age(seconds: float | None) -> str | None:
    """'8 s ago', '3 min ago', '2 h 5 min ago', '3 d 4 h ago'."""
    if seconds is None:
        return None
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s ago"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86_400
    if seconds < 3600:
        return f"{minutes} min ago"
    if seconds < 86_400:
        return f"{hours} h {minutes % 60} min ago" if minutes % 60 else f"{hours} h ago"
    return f"{days} d {hours % 24} h ago" if hours % 24 else f"{days} d ago"


def runs_frame(runs: Sequence[Run], now: datetime) -> pd.DataFrame:
    """One row per run, in the API's order (newest first), with the live monitor's columns."""
    rows = []
    for run in runs:
        latest = run.get("latest") or {}
        rows.append({
            "run_id": run["run_id"],
            "model": run.get("model_name"),
            "version": run.get("version"),
            "status": status_label(run["status"]),
            "progress": progress(run),
            "epoch": epoch_text(run),
            **{metric: latest.get(metric) for metric in CURVE_METRICS},
            "started": parse_time(run.get("start_time")),
            "heartbeat": format_age(heartbeat_age_s(run, now)),
            "error": run.get("error"),
        })
    frame = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    frame["started"] = pd.to_datetime(frame["started"], utc=True)
    return frame.astype({metric: "float64" for metric in CURVE_METRICS})


def default_run(runs: Sequence[Run]) -> str | None:
    """The run to show first: the newest one in progress, else the newest one."""
    for run in runs:
        if run["status"] == "in_progress":
            return run["run_id"]
    return runs[0]["run_id"] if runs else None


def run_option_label(run: Run) -> str:
    """How a run reads in a picker: '3f9a1c0b2d4e · custom_cnn v3 · 🔄 in progress'."""
    return f"{run['run_id']} · {run.get('model_name')} {run.get('version')} · {status_label(run['status'])}"


def finished_epochs(epochs: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The epochs that have metrics, by epoch; an epoch still running has none yet."""
    frame = pd.DataFrame(list(epochs), columns=["epoch", *CURVE_METRICS])
    frame = frame.dropna(subset=CURVE_METRICS, how="all")
    frame = frame.astype({"epoch": "int64", **{metric: "float64" for metric in CURVE_METRICS}})
    return frame.sort_values("epoch").reset_index(drop=True)


def running_epoch(epochs: Sequence[dict[str, Any]]) -> int | None:
    """The epoch that has started but not finished, if any."""
    running = [e["epoch"] for e in epochs if e.get("finished_at") is None and e.get("val_loss") is None]
    return max(running) if running else None
