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
    "pruned": "✂️",
    "lost": "⚠️",
}
# Runs whose silence means something: a heartbeat age is shown only for these.
WATCHED_STATES = frozenset({"in_progress", "lost"})
# Runs that have ended: the live monitor shows the most recent of them under the active ones.
ENDED_STATES = ("completed", "failed", "cancelled", "pruned")
ACTIVE_STATES = ("queued", "in_progress", "lost")
# Rows that need someone's attention.
ALARM_STATES = frozenset({"failed", "lost"})
TABLE_COLUMNS = [
    "run_id",
    "model",
    "version",
    "status",
    "progress",
    "epoch",
    "eta",
    "images_per_sec",
    "train_loss",
    "val_loss",
    "train_acc",
    "val_acc",
    "started",
    "heartbeat",
    "gpu",
    "error",
]
CURVE_METRICS = ["train_loss", "val_loss", "train_acc", "val_acc"]


def status_label(status: str) -> str:
    """'❌ failed': the icon makes failed and lost runs stand out in a long table."""
    return f"{STATUS_ICONS.get(status, '❔')} {status.replace('_', ' ')}"


def epoch_fraction(run: Run) -> float:
    """How far the running epoch is, 0–1, from the trainer's batch progress (0 when unknown)."""
    progress_now = run.get("progress") or {}
    batches = progress_now.get("batches") or 0
    if run.get("status") != "in_progress" or batches <= 0:
        return 0.0
    if progress_now.get("epoch") not in (None, run.get("current_epoch")):
        return 0.0  # progress of an epoch that has finished since
    return min(max((progress_now.get("batch") or 0) / batches, 0.0), 1.0)


def progress(run: Run) -> float:
    """Fraction of the planned epochs done, 0–1, counting the part of the running epoch done;
    a completed run is done even if it stopped early."""
    if run.get("status") == "completed":
        return 1.0
    planned = run.get("epochs_planned") or 0
    if planned <= 0:
        return 0.0
    done = (run.get("epochs_done") or 0) + epoch_fraction(run)
    return min(max(done / planned, 0.0), 1.0)


def eta_s(run: Run) -> float | None:
    """Seconds until the run has trained every planned epoch, from its last epoch's time.

    Early stopping can end it sooner; None when the run is not training or no epoch has a time.
    """
    epoch_time = (run.get("latest") or {}).get("epoch_time_sec")
    if run.get("status") != "in_progress" or not epoch_time:
        return None
    remaining = (run.get("epochs_planned") or 0) - (run.get("epochs_done") or 0) - epoch_fraction(run)
    return max(remaining, 0.0) * epoch_time


def format_duration(seconds: float | None) -> str | None:
    """'45 s', '3 min 5 s', '2 h 10 min'."""
    if seconds is None:
        return None
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s" if seconds % 60 else f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def shown_epoch(run: Run) -> int:
    """The epoch being trained while the run is in progress, else the last one done."""
    done = run.get("epochs_done") or 0
    current = run.get("current_epoch") if run.get("status") == "in_progress" else None
    return max(current or 0, done)


def epoch_text(run: Run) -> str:
    """'epoch k / N' (k: `shown_epoch`), and the batch within the running epoch when known."""
    text = f"epoch {shown_epoch(run)} / {run.get('epochs_planned') or 0}"
    batches = (run.get("progress") or {}).get("batches")
    if epoch_fraction(run) > 0 and batches:
        text += f" · batch {run['progress'].get('batch')} / {batches}"
    return text


def parse_time(value: str | datetime | None) -> pd.Timestamp | None:
    """A UTC timestamp; the API writes ISO 8601, and a time without an offset is UTC."""
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def heartbeat_age_s(run: Run, now: datetime) -> float | None:
    """Seconds since the run's last event, for runs where that age matters: the API's
    `heartbeat_age_s` when it sends one, else from `heartbeat_at`."""
    if run.get("status") not in WATCHED_STATES:
        return None
    if run.get("heartbeat_age_s") is not None:
        return max(float(run["heartbeat_age_s"]), 0.0)
    heartbeat = parse_time(run.get("heartbeat_at"))
    if heartbeat is None:
        return None
    return max((pd.Timestamp(now) - heartbeat).total_seconds(), 0.0)


def gpu_text(run: Run) -> str | None:
    """'GPU 0 NVIDIA H200: 87 % busy, 30.2 / 140.0 GiB' for each GPU of a run in progress, from
    its trainer's newest heartbeat; None for other runs and on a CPU trainer (no line at all)."""
    if run.get("status") != "in_progress" or not run.get("gpu"):
        return None
    return "; ".join(
        f"GPU {gpu['index']} {gpu['name']}: {gpu['utilization_pct']:.0f} % busy, "
        f"{gpu['memory_used_mib'] / 1024:.1f} / {gpu['memory_total_mib'] / 1024:.1f} GiB"
        for gpu in run["gpu"]
    )


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
        rows.append(
            {
                "run_id": run["run_id"],
                "model": run.get("model_name"),
                "version": run.get("version"),
                "status": status_label(run["status"]),
                "progress": progress(run),
                "epoch": epoch_text(run),
                "eta": format_duration(eta_s(run)),
                "images_per_sec": run.get("images_per_sec") if run.get("status") == "in_progress" else None,
                **{metric: latest.get(metric) for metric in CURVE_METRICS},
                "started": parse_time(run.get("start_time")),
                "heartbeat": format_age(heartbeat_age_s(run, now)),
                "gpu": gpu_text(run),
                "error": run.get("error"),
            }
        )
    frame = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    frame["started"] = pd.to_datetime(frame["started"], utc=True)
    return frame.astype({metric: "float64" for metric in [*CURVE_METRICS, "images_per_sec"]})


def merge_runs(*listings: Sequence[Run]) -> list[Run]:
    """The runs of several listings in order, each once (a run may change state in between)."""
    seen: set[str] = set()
    merged = []
    for listing in listings:
        for run in listing:
            if run["run_id"] not in seen:
                seen.add(run["run_id"])
                merged.append(run)
    return merged


def alarms(runs: Sequence[Run]) -> list[Run]:
    """The failed and lost runs among these, to name above the table."""
    return [run for run in runs if run["status"] in ALARM_STATES]


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
