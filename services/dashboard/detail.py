"""What the run detail page shows of one run; plain functions, no Streamlit."""

from collections.abc import Sequence
from typing import Any

import pandas as pd

from services.dashboard.run_views import ACTIVE_STATES, Run, format_duration, parse_time
from shared.images import Geometry
from shared.schemas.jobs import RETRYABLE_STATES

# Runs that a cancel can still stop (docs/api.md); RETRYABLE_STATES: those a retry starts again.
CANCELLABLE_STATES = frozenset(ACTIVE_STATES)
EPOCH_COLUMNS = [
    "epoch",
    "train_loss",
    "val_loss",
    "train_acc",
    "val_acc",
    "epoch_time_sec",
    "started_at",
    "finished_at",
]


def _spec_or_summary(run: Run, name: str) -> Any:
    """A setting as the run used it: the completed run's summary, else its spec."""
    summary = run.get("summary") or {}
    return summary[name] if summary.get(name) is not None else (run.get("spec") or {}).get(name)


def _number(value: Any, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)


def _geometry(spec: dict[str, Any]) -> str:
    """ "224×224 px, squash": the input geometry of a spec, '—' when it has none."""
    if spec.get("image_size") is None:
        return "—"
    geometry = Geometry.of(spec["image_size"], spec.get("resize") or "squash")
    return f"{geometry.height}×{geometry.width} px, {geometry.resize}"


def settings_table(run: Run) -> pd.DataFrame:
    """The run's model and training settings, one row each (the original's fields first)."""
    summary = run.get("summary") or {}
    spec = run.get("spec") or {}
    early_stopped = summary.get("early_stopped")
    dropout = _spec_or_summary(run, "dropout")
    rows = [
        ("model", run.get("model_name")),
        ("version", run.get("version")),
        ("number of classes", summary.get("num_classes") or len(summary.get("class_names") or []) or "—"),
        ("feature extraction", "yes (backbone frozen)" if _spec_or_summary(run, "feature_extraction") else "no"),
        ("dropout", "none" if dropout is None else f"{dropout:g}"),
        ("batch size", _number(_spec_or_summary(run, "batch_size"), "{:d}")),
        ("learning rate", _number(_spec_or_summary(run, "learning_rate"), "{:g}")),
        (
            "early stopping",
            " · ".join(
                filter(
                    None,
                    [
                        f"patience {spec['patience']} epochs" if spec.get("patience") else None,
                        None if early_stopped is None else ("stopped early" if early_stopped else "ran every epoch"),
                    ],
                )
            )
            or "—",
        ),
        ("epochs", f"{run.get('epochs_done', 0)} of at most {run.get('epochs_planned', 0)}"),
        ("image size", _geometry(spec)),
        ("dataset", spec.get("dataset", "—")),
    ]
    return pd.DataFrame(rows, columns=["setting", "value"]).astype({"value": "string"})


def result_metrics(run: Run) -> dict[str, str]:
    """Accuracies, best val loss, duration, start and end, formatted; '—' for what is not known."""
    summary = run.get("summary") or {}
    metrics = {**(run.get("metrics") or {}), **{k: v for k, v in summary.items() if v is not None}}
    start, end = parse_time(run.get("start_time")), parse_time(run.get("end_time"))
    minutes = metrics.get("duration_minutes")
    if minutes is None and start is not None and end is not None:
        minutes = (end - start).total_seconds() / 60
    percent = "{:.1%}"
    return {
        "train accuracy": _number(metrics.get("train_accuracy"), percent),
        "val accuracy": _number(metrics.get("val_accuracy"), percent),
        "test accuracy": _number(metrics.get("test_accuracy"), percent),
        "test F1 (macro)": _number(metrics.get("test_f1_macro"), percent),
        "best val loss": _number(metrics.get("best_val_loss"), "{:.4f}"),
        "duration": format_duration(None if minutes is None else minutes * 60) or "—",
        "start (UTC)": "—" if start is None else start.strftime("%Y-%m-%d %H:%M:%S"),
        "end (UTC)": "—" if end is None else end.strftime("%Y-%m-%d %H:%M:%S"),
    }


def per_class_frame(summary: dict[str, Any] | None) -> pd.DataFrame:
    """Precision, recall, F1 and support per class, in the summary's class order."""
    per_class = (summary or {}).get("per_class") or {}
    order = [name for name in (summary or {}).get("class_names") or [] if name in per_class]
    order += [name for name in per_class if name not in order]
    rows = [
        {"class": name, **{key: per_class[name].get(key) for key in ("precision", "recall", "f1", "support")}}
        for name in order
    ]
    return pd.DataFrame(rows, columns=["class", "precision", "recall", "f1", "support"])


def epochs_frame(epochs: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The raw epoch documents, one row per epoch, times as UTC timestamps."""
    frame = pd.DataFrame(list(epochs), columns=EPOCH_COLUMNS)
    for column in ("started_at", "finished_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame.astype({column: "float64" for column in EPOCH_COLUMNS[1:6]})


def can_cancel(run: Run) -> bool:
    return run.get("status") in CANCELLABLE_STATES


def can_retry(run: Run) -> bool:
    return run.get("status") in RETRYABLE_STATES


def has_checkpoint(run: Run) -> bool:
    return bool((run.get("checkpoints") or {}).get("best"))


# The run detail's gallery: what "Predictions" and "Order" offer, and what they ask the API for.
GALLERY_WHICH = {"all": None, "wrong": False, "right": True}
GALLERY_ORDER = {"-confidence": "most confident first", "confidence": "least confident first", "file": "by file"}
ANY_CLASS = "any"


def gallery_filters(true_class: str, predicted_class: str, which: str, sort: str) -> dict[str, Any]:
    """The gallery's choices as GET /jobs/{id}/predictions' query parameters."""
    return {
        "true_class": None if true_class == ANY_CLASS else true_class,
        "predicted_class": None if predicted_class == ANY_CLASS else predicted_class,
        "correct": GALLERY_WHICH[which],
        "sort": sort,
    }


def gallery_caption(image: dict[str, Any]) -> str:
    """'✅ Brownspot · 97 %' for a right answer; '❌ Brownspot → Leafsmut · 95 %' for a wrong one."""
    confidence = f"{image['confidence']:.0%}"
    if image["correct"]:
        return f"✅ {image['true_class']} · {confidence}"
    return f"❌ {image['true_class']} → {image['predicted_class']} · {confidence}"


def verdicts_caption(image: dict[str, Any], label_a: str, label_b: str) -> str:
    """'true Brownspot · A: Brownspot 97 % · B: Leafsmut 88 %' for an image two runs disagree on."""
    return (
        f"true {image['true_class']} · {label_a}: {image['predicted_a']} {image['confidence_a']:.0%} · "
        f"{label_b}: {image['predicted_b']} {image['confidence_b']:.0%}"
    )
