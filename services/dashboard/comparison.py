"""Tables for comparing runs: the runs table, best run per model, sweeps, overlaid curves.

Plain functions over what GET /jobs, GET /compare and GET /sweeps answer; no Streamlit.
"""

from collections.abc import Sequence
from typing import Any

import pandas as pd

from services.dashboard.run_views import Run, parse_time, status_label
from services.dashboard.uncertainty import interval_text
from shared.images import format_image_size
from shared.schemas.jobs import LOWER_IS_BETTER

# GET /jobs `sort` keys (docs/api.md) and how the page names them.
SORT_KEYS = {
    "created_at": "queued at",
    "start_time": "start time",
    "end_time": "end time",
    "val_accuracy": "val accuracy",
    "test_accuracy": "test accuracy",
    "test_f1_macro": "test F1",
    "train_accuracy": "train accuracy",
    "best_val_loss": "best val loss",
    "test_loss": "test loss",
    "duration_minutes": "duration",
    "epochs_run": "epochs run",
}
# Metrics a chart can put on its y axis: name → (label, is a fraction shown as %).
METRICS = {
    "val_accuracy": ("val accuracy", True),
    "test_accuracy": ("test accuracy", True),
    "train_accuracy": ("train accuracy", True),
    "test_f1_macro": ("test F1 (macro)", True),
    "best_val_loss": ("best val loss", False),
    "test_loss": ("test loss", False),
}
# Spec fields a sweep's grid usually varies, and the compare charts plot against.
HYPERPARAMETERS = (
    "learning_rate",
    "batch_size",
    "dropout",
    "weight_decay",
    "image_size",
    "epochs",
    "patience",
    "feature_extraction",
    "model_name",
)
SUMMARY_COLUMNS = [
    "train_accuracy",
    "val_accuracy",
    "test_accuracy",
    "test_f1_macro",
    "best_val_loss",
    "duration_minutes",
]
TABLE_COLUMNS = [
    "run_id",
    "model",
    "version",
    "status",
    "dropout",
    "feature_extraction",
    "batch_size",
    "learning_rate",
    "early_stopped",
    "epochs_run",
    *SUMMARY_COLUMNS,
    "test_interval",
    "test_images",
    "start_time",
    "end_time",
    "sweep_id",
]
FLOAT_COLUMNS = ["dropout", "learning_rate", *SUMMARY_COLUMNS]


def runs_table(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run with the original's columns plus test F1, the test accuracy's interval
    and image count, epochs run and sweep."""
    rows = []
    for run in runs:
        spec, metrics = run.get("spec") or {}, run.get("metrics") or {}
        epochs_run = metrics.get("epochs_run")
        if epochs_run is None and run.get("status") != "queued":
            epochs_run = run.get("epochs_done")
        early_stopped = None
        if run.get("status") == "completed" and epochs_run is not None:
            early_stopped = epochs_run < (run.get("epochs_planned") or 0)
        rows.append(
            {
                "run_id": run["run_id"],
                "model": run.get("model_name"),
                "version": run.get("version"),
                "status": status_label(run["status"]),
                "dropout": spec.get("dropout"),
                "feature_extraction": spec.get("feature_extraction"),
                "batch_size": spec.get("batch_size"),
                "learning_rate": spec.get("learning_rate"),
                "early_stopped": early_stopped,
                "epochs_run": epochs_run,
                **{name: metrics.get(name) for name in SUMMARY_COLUMNS},
                "test_interval": interval_text(run),
                "test_images": run.get("test_images"),
                "start_time": parse_time(run.get("start_time")),
                "end_time": parse_time(run.get("end_time")),
                "sweep_id": run.get("sweep_id"),
            }
        )
    frame = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    for column in ("start_time", "end_time"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame.astype(
        {
            **{c: "float64" for c in FLOAT_COLUMNS},
            "batch_size": "Int64",
            "epochs_run": "Int64",
            "test_images": "Int64",
            "feature_extraction": "boolean",
            "early_stopped": "boolean",
        }
    )


def best_per_model(best_runs: dict[str, Run | None], metric: str) -> pd.DataFrame:
    """The best completed run of each model (from GET /jobs?model_name=…&sort=-metric&limit=1),
    with its metric, its test accuracy and its epochs; models without a completed run are left out."""
    columns = list(dict.fromkeys(["model", "run_id", "version", metric, "test_accuracy", "epochs_run"]))
    rows = []
    for model, run in best_runs.items():
        if run is None:
            continue
        metrics = run.get("metrics") or {}
        rows.append(
            {
                "model": model,
                "run_id": run["run_id"],
                "version": run.get("version"),
                **{name: metrics.get(name) for name in columns[3:]},
            }
        )
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(metric, ascending=metric in LOWER_IS_BETTER, ignore_index=True)


def sort_param(key: str, descending: bool) -> str:
    return f"-{key}" if descending else key


def hyperparameter_frame(runs: Sequence[Run], parameter: str, metric: str) -> pd.DataFrame:
    """(run_id, model, parameter value, metric) for the runs that have the metric."""
    rows = []
    for run in runs:
        value = run.get("model_name") if parameter == "model_name" else (run.get("spec") or {}).get(parameter)
        score = (run.get("metrics") or {}).get(metric)
        if value is not None and score is not None:
            rows.append(
                {
                    "run_id": run["run_id"],
                    "model": run.get("model_name"),
                    "version": run.get("version"),
                    parameter: value,
                    metric: score,
                }
            )
    return pd.DataFrame(rows, columns=["run_id", "model", "version", parameter, metric])


def sweep_frame(sweep: dict[str, Any]) -> tuple[pd.DataFrame, list[str]]:
    """A sweep's runs with the hyperparameters that vary among them and its metric.

    Returns the frame (one row per run, the metric NaN until a run completes) and the names of
    the varying hyperparameters, in HYPERPARAMETERS order.
    """
    metric = sweep.get("metric", "val_accuracy")
    rows = []
    for run in sweep.get("runs", []):
        spec = run.get("spec") or {}
        rows.append(
            {
                "run_id": run["run_id"],
                "status": run["status"],
                **{name: _hyperparameter(run, spec, name) for name in HYPERPARAMETERS},
                metric: (run.get("metrics") or {}).get(metric),
            }
        )
    frame = pd.DataFrame(rows, columns=["run_id", "status", *HYPERPARAMETERS, metric])
    varying = [name for name in HYPERPARAMETERS if frame[name].astype("string").nunique(dropna=False) > 1]
    return frame.astype({metric: "float64"}), varying


def _hyperparameter(run: Run, spec: dict[str, Any], name: str) -> Any:
    """A run's value of a compared hyperparameter; [height, width] image sizes as text ("96x320")."""
    if name == "model_name":
        return run.get("model_name")
    value = spec.get(name)
    return format_image_size(value) if name == "image_size" and isinstance(value, list) else value


def overlay_frame(compared: dict[str, Any]) -> pd.DataFrame:
    """GET /compare's epochs as a long frame: one row per run and finished epoch."""
    labels = {
        run["run_id"]: f"{run['run_id']} · {run.get('model_name')} {run.get('version')}"
        for run in compared.get("runs", [])
    }
    rows = []
    for row in compared.get("epochs", []):
        for run_id, epoch in (row.get("runs") or {}).items():
            if epoch and epoch.get("val_loss") is not None:
                rows.append(
                    {
                        "run": labels.get(run_id, run_id),
                        "run_id": run_id,
                        "epoch": row["epoch"],
                        **{name: epoch.get(name) for name in ("train_loss", "val_loss", "train_acc", "val_acc")},
                    }
                )
    return pd.DataFrame(rows, columns=["run", "run_id", "epoch", "train_loss", "val_loss", "train_acc", "val_acc"])


def sweep_ids(runs: Sequence[Run]) -> list[str]:
    """The sweeps these runs belong to, in the order first seen."""
    return list(dict.fromkeys(run["sweep_id"] for run in runs if run.get("sweep_id")))
