"""Turning GET /sweeps and GET /sweeps/{id} into what the Sweeps page shows; plain functions, no
Streamlit.

A random or tpe search (a sweep with `search`) is read through its trials: a trial's value is its
run's summary metric once completed, else the metric after its last epoch. Only completed trials
count towards the best so far: a pruned trial's value is from an earlier epoch than the others'.
"""

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from services.dashboard.run_views import ACTIVE_STATES, STATUS_ICONS, parse_time, status_label

Sweep = dict[str, Any]  # a SweepPublic or a SweepSummaryPublic, as the API serves it
Search = dict[str, Any]  # a SweepPublic's `search` (SearchPublic)
Trial = dict[str, Any]  # one of a search's `trials` (TrialPublic)

KIND_LABELS = {
    "grid": "grid sweep",
    "random": "random search",
    "tpe": "tpe search",
    "folds": "study (folds)",
    "repeats": "study (repeats)",
}
STATE_ICONS = {"running": STATUS_ICONS["in_progress"], "finished": STATUS_ICONS["completed"]}
# A trial's state read like the run behind it: a running trial is a run in progress.
TRIAL_ICONS = {
    "running": STATUS_ICONS["in_progress"],
    "completed": STATUS_ICONS["completed"],
    "pruned": STATUS_ICONS["pruned"],
    "failed": STATUS_ICONS["failed"],
}
ENDED_TRIALS = ("completed", "pruned", "failed")
# The search metrics (SweepMetric): how charts name them and whether they read as percentages.
METRICS = {"val_accuracy": ("val accuracy", True), "val_loss": ("val loss", False)}
# The search metrics Optuna minimises (the API's search.direction); it maximises the others.
MINIMISED = frozenset({"val_loss"})
TRIAL_COLUMNS = ["number", "run_id", "state", "value", "epochs"]


def kind_label(kind: str | None) -> str:
    return KIND_LABELS.get(kind or "grid", kind or "grid")


def state_label(state: str | None) -> str | None:
    """'🔄 running' or '✅ finished' for a search; None for a grid or a study, which has no state."""
    return f"{STATE_ICONS.get(state, '❔')} {state}" if state else None


def sweep_option_label(sweep: Sweep) -> str:
    """How a sweep reads in the picker: '5b0c2e7d91aa · random search · custom_cnn on leaves ·
    🔄 running · 2026-03-01 10:00 UTC'."""
    parts = [sweep["sweep_id"], kind_label(sweep.get("kind"))]
    if sweep.get("model_name") or sweep.get("dataset"):
        parts.append(" on ".join(str(part) for part in (sweep.get("model_name"), sweep.get("dataset")) if part))
    if sweep.get("state"):
        parts.append(state_label(sweep["state"]) or "")
    created = parse_time(sweep.get("created_at"))
    if created is not None:
        parts.append(created.strftime("%Y-%m-%d %H:%M UTC"))
    return " · ".join(parts)


def summary_of(sweep: Sweep) -> Sweep:
    """A GET /sweeps/{id} answer as GET /sweeps lists a sweep (for the picker): its model and
    dataset from its first run."""
    first: dict[str, Any] = next(iter(sweep.get("runs") or []), {})
    return {
        "sweep_id": sweep["sweep_id"],
        "kind": sweep.get("kind"),
        "created_at": first.get("created_at"),
        "model_name": first.get("model_name"),
        "dataset": (first.get("spec") or {}).get("dataset"),
        "state": (sweep.get("search") or {}).get("state"),
    }


def trial_state_label(state: str) -> str:
    return f"{TRIAL_ICONS.get(state, '❔')} {state}"


def metric_label(metric: str) -> str:
    return METRICS.get(metric, (metric.replace("_", " "), False))[0]


def is_percent(metric: str) -> bool:
    return METRICS.get(metric, ("", False))[1]


def format_value(metric: str, value: float | None) -> str:
    """'87.5 %' for an accuracy, '0.4132' for a loss, '—' for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.1%}" if is_percent(metric) else f"{value:.4f}"


def format_param(value: Any) -> str:
    """A sampled value as a table or an axis shows it: 0.0005 rather than 0.00050000001."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def better(metric: str, value: float, than: float) -> bool:
    return value < than if metric in MINIMISED else value > than


def counts(search: Search) -> dict[str, int]:
    """Trials by state, every state present: {"running", "completed", "pruned", "failed"}."""
    found = dict.fromkeys(TRIAL_ICONS, 0)
    for trial in search.get("trials", []):
        found[trial["state"]] = found.get(trial["state"], 0) + 1
    return found


def trials_done(search: Search) -> int:
    """Trials that have ended, however they ended."""
    return sum(trial["state"] in ENDED_TRIALS for trial in search.get("trials", []))


def budget_progress(search: Search) -> tuple[float, str]:
    """How far the search is, 0–1, and in words: against `budget_epochs` when it has one, else
    against `max_runs`. A finished search is done even if its budget has room left: the room
    was less than one more run."""
    budget, spent = search.get("budget_epochs"), search.get("epochs_spent") or 0
    if budget:
        fraction, text = spent / budget, f"{spent} of {budget} epochs of the budget spent"
    else:
        done, planned = trials_done(search), search.get("max_runs") or 0
        fraction, text = (done / planned if planned else 0.0), f"{done} of {planned} runs done"
    if search.get("state") == "finished":
        return 1.0, f"finished: {text}"
    return min(max(fraction, 0.0), 1.0), text


def best_trial(search: Search) -> Trial | None:
    """The completed trial with the best value (lowest for val_loss); the earlier one on a tie."""
    metric = search.get("metric", "val_accuracy")
    best = None
    for trial in sorted(search.get("trials", []), key=lambda trial: trial["number"]):
        if trial["state"] != "completed" or trial.get("value") is None:
            continue
        if best is None or better(metric, trial["value"], best["value"]):
            best = trial
    return best


def history_frame(search: Search) -> pd.DataFrame:
    """One row per trial by number: its run, state, value, epochs, and the best value among the
    completed trials up to it (NaN before the first completed one)."""
    metric = search.get("metric", "val_accuracy")
    rows, best = [], None
    for trial in sorted(search.get("trials", []), key=lambda trial: trial["number"]):
        value = trial.get("value")
        if trial["state"] == "completed" and value is not None and (best is None or better(metric, value, best)):
            best = value
        rows.append(
            {
                "number": trial["number"],
                "run_id": trial["run_id"],
                "state": trial["state"],
                "value": value,
                "epochs": trial.get("epochs") or 0,
                "best": best,
            }
        )
    frame = pd.DataFrame(rows, columns=[*TRIAL_COLUMNS, "best"])
    return frame.astype({"number": "int64", "epochs": "int64", "value": "float64", "best": "float64"})


def search_fields(search: Search) -> list[str]:
    """The fields the search samples, in the order its space names them."""
    return list(search.get("space") or {})


def trials_table(search: Search) -> pd.DataFrame:
    """The trials by number: number, run, state with its icon, one column per sampled field,
    value and epochs trained."""
    fields = search_fields(search)
    rows = [
        {
            "number": trial["number"],
            "run_id": trial["run_id"],
            "state": trial_state_label(trial["state"]),
            **{field: (trial.get("params") or {}).get(field) for field in fields},
            "value": trial.get("value"),
            "epochs": trial.get("epochs") or 0,
        }
        for trial in sorted(search.get("trials", []), key=lambda trial: trial["number"])
    ]
    frame = pd.DataFrame(rows, columns=["number", "run_id", "state", *fields, "value", "epochs"])
    return frame.astype({"number": "int64", "epochs": "int64", "value": "float64"})


def log_ticks(low: float, high: float) -> list[float]:
    """Round values (1, 2, 5 times a power of ten) between low and high, for a log axis; low and
    high themselves when fewer than two round ones fall between them."""
    ticks = [
        mantissa * 10.0**exponent
        for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
        for mantissa in (1, 2, 5)
    ]
    inside = [tick for tick in ticks if low * (1 - 1e-9) <= tick <= high * (1 + 1e-9)]
    return inside if len(inside) >= 2 else [low, high]


def parallel_dimensions(search: Search) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """What a parallel-coordinates chart of the search needs: the trials that have a value (by
    number, with `state` and `value`), and one axis per sampled field over its whole range.

    Each axis is {"field", "label", "values" (a position per trial), "range", and for choices and
    log ranges "tickvals" and "ticktext"}: choices sit at 0, 1, … in the space's order, named; a
    log range is drawn on log10 of its values, ticked at round values.
    """
    scored = [trial for trial in search.get("trials", []) if trial.get("value") is not None]
    scored.sort(key=lambda trial: trial["number"])
    frame = pd.DataFrame(
        [{"number": t["number"], "run_id": t["run_id"], "state": t["state"], "value": t["value"]} for t in scored],
        columns=["number", "run_id", "state", "value"],
    ).astype({"value": "float64"})
    axes = []
    for field, param in (search.get("space") or {}).items():
        values = [(trial.get("params") or {}).get(field) for trial in scored]
        axis: dict[str, Any] = {"field": field, "label": field.replace("_", " ")}
        if "choices" in param:
            names = [format_param(choice) for choice in param["choices"]]
            for value in values:  # a value outside the space (edited by hand): still shown
                if format_param(value) not in names:
                    names.append(format_param(value))
            axis |= {
                "values": [names.index(format_param(value)) for value in values],
                "range": [0, max(len(names) - 1, 1)],
                "tickvals": list(range(len(names))),
                "ticktext": names,
            }
        elif param.get("log"):
            ticks = log_ticks(param["low"], param["high"])
            axis |= {
                "values": [math.log10(value) if value else None for value in values],
                "range": [math.log10(param["low"]), math.log10(param["high"])],
                "tickvals": [math.log10(tick) for tick in ticks],
                "ticktext": [format_param(tick) for tick in ticks],
            }
        else:
            axis |= {"values": values, "range": [param["low"], param["high"]]}
        axes.append(axis)
    return frame, axes


def importance_frame(search: Search) -> pd.DataFrame:
    """Each sampled field's importance, the most important first."""
    frame = pd.DataFrame(
        [{"field": field, "importance": share} for field, share in (search.get("importance") or {}).items()],
        columns=["field", "importance"],
    ).astype({"importance": "float64"})
    return frame.sort_values(["importance", "field"], ascending=[False, True], ignore_index=True)


def intermediate_frame(search: Search) -> pd.DataFrame:
    """Each trial's metric after each of its epochs: one row per trial and epoch."""
    rows = [
        {"number": trial["number"], "run_id": trial["run_id"], "state": trial["state"], "epoch": int(epoch), "value": v}
        for trial in sorted(search.get("trials", []), key=lambda trial: trial["number"])
        for epoch, v in (trial.get("intermediate") or {}).items()
    ]
    frame = pd.DataFrame(rows, columns=["number", "run_id", "state", "epoch", "value"])
    frame = frame.astype({"number": "int64", "epoch": "int64", "value": "float64"})
    return frame.sort_values(["number", "epoch"], ignore_index=True)


def space_text(search: Search) -> str:
    """The space in a line: 'learning_rate 0.0005–0.005 (log) · dropout one of 0, 0.3'."""
    parts = []
    for field, param in (search.get("space") or {}).items():
        if "choices" in param:
            parts.append(f"{field} one of {', '.join(format_param(choice) for choice in param['choices'])}")
        else:
            how = (
                " (log)" if param.get("log") else f" (step {format_param(param['step'])})" if param.get("step") else ""
            )
            parts.append(f"{field} {format_param(param['low'])}–{format_param(param['high'])}{how}")
    return " · ".join(parts)


def search_header(sweep: Sweep) -> str:
    """'random search · median pruner · ✅ finished'."""
    search = sweep.get("search") or {}
    parts = [kind_label(search.get("strategy") or sweep.get("kind"))]
    pruner = search.get("pruner")
    parts.append("no pruner" if pruner in (None, "none") else f"{pruner} pruner")
    if search.get("state"):
        parts.append(state_label(search["state"]) or "")
    return " · ".join(parts)


def search_settings_text(search: Search) -> str:
    """The rest of what the search was asked: metric and direction, runs, parallel, budget, seed."""
    metric = search.get("metric", "val_accuracy")
    direction = "lower" if metric in MINIMISED else "higher"
    budget = search.get("budget_epochs")
    return (
        f"Optimises {metric_label(metric)} ({direction} is better); at most {search.get('max_runs')} runs, "
        f"{search.get('parallel')} at a time, "
        + (f"within {budget} epochs" if budget else "no epoch budget")
        + f"; seed {search.get('seed')}."
    )


def sweep_is_live(sweep: Sweep) -> bool:
    """Whether the sweep can still change: a running search, or any of its runs not ended."""
    search = sweep.get("search")
    if search and search.get("state") == "running":
        return True
    return any(run.get("status") in ACTIVE_STATES for run in sweep.get("runs", []))


def study_metrics_frame(test_metrics: dict[str, dict[str, Any]] | None) -> pd.DataFrame:
    """A study's test metrics as text: the mean, its 95 % interval, and the runs they are over;
    accuracy and F1 as percentages."""

    def shown(name: str, value: float) -> str:
        return f"{value:.4f}" if "loss" in name else f"{value:.1%}"

    rows = []
    for name, summary in (test_metrics or {}).items():
        low, high = summary.get("low"), summary.get("high")
        rows.append(
            {
                "metric": name.replace("_", " "),
                "mean": shown(name, summary["mean"]),
                "interval": "—" if low is None or high is None else f"{shown(name, low)}–{shown(name, high)}",
                "runs": summary.get("runs"),
            }
        )
    return pd.DataFrame(rows, columns=["metric", "mean", "interval", "runs"])


def runs_label(runs: Sequence[dict[str, Any]]) -> str:
    """'4 runs: 3 ✅ completed, 1 🔄 in progress'."""
    by_status: dict[str, int] = {}
    for run in runs:
        by_status[run["status"]] = by_status.get(run["status"], 0) + 1
    shown = ", ".join(f"{count} {status_label(status)}" for status, count in by_status.items())
    return f"{len(runs)} run{'s' if len(runs) != 1 else ''}" + (f": {shown}" if shown else "")
