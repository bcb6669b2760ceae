"""Turning the API's datasets and their audits into what the pages show; plain functions, no
Streamlit. A dataset is a DatasetPublic as GET /datasets serves it; its audit a DatasetAudit."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import pandas as pd

Dataset = dict[str, Any]
# The copy groups the Datasets page shows with thumbnails, and the thumbnails shown a group.
GROUPS_SHOWN = 12
FILES_SHOWN = 6


@dataclass(frozen=True)
class Notice:
    kind: Literal["warning", "info"]
    text: str


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}{'es' if word.endswith('s') else 's'}"


def option_label(dataset: Dataset | None, name: str) -> str:
    """'leaves — 3 classes, 300 images · ⚠️ 2 label conflicts': how a picker lists a dataset."""
    if dataset is None:
        return name  # typed by hand: the API checks it when the job is queued
    label = f"{name} — {_plural(len(dataset['classes']), 'class')}, {_plural(dataset['images'], 'image')}"
    audit = dataset.get("audit")
    if audit is None:
        return f"{label} · not audited"
    problems = []
    if audit["label_conflicts"]:
        problems.append(_plural(audit["label_conflicts"], "label conflict"))
    if audit["shortcuts"]:
        problems.append(_plural(audit["shortcuts"], "shortcut"))
    return f"{label} · ⚠️ {', '.join(problems)}" if problems else label


def notices(dataset: Dataset) -> list[Notice]:
    """What someone about to train on the dataset should know, worst first. Shortcut messages
    are quoted when the whole audit is there (GET /datasets/{name}), counted otherwise."""
    audit, whole = dataset.get("audit"), dataset.get("latest_audit")
    request = dataset.get("audit_request")
    found: list[Notice] = []
    if request and request.get("error"):
        found.append(Notice("warning", f"The last audit failed: {request['error']}"))
    elif request:
        found.append(Notice("info", f"An audit was queued at {_time(request['requested_at'])}; it is not stored yet."))
    if audit is None:
        found.append(
            Notice(
                "info",
                "Not audited yet: copies of one photo and shortcuts in this dataset are unknown. "
                "Audit it on the Datasets page.",
            )
        )
        return found
    if audit["label_conflicts"]:
        found.append(
            Notice(
                "warning",
                f"Label conflicts in {_plural(audit['label_conflicts'], 'copy group')}: one photo filed "
                "under two classes, at least one label wrong.",
            )
        )
    if whole is not None:
        found += [Notice("warning", f"Shortcut: {shortcut['message']}") for shortcut in whole["shortcuts"]]
    elif audit["shortcuts"]:
        found.append(
            Notice(
                "warning",
                f"{_plural(audit['shortcuts'], 'shortcut warning')}: a trivial property of the files "
                "(size, shape, format…) predicts the class.",
            )
        )
    if audit["unreadable"]:
        found.append(Notice("warning", f"{_plural(audit['unreadable'], 'file')} could not be decoded as an image."))
    if dataset.get("audit_outdated"):
        found.append(
            Notice("warning", f"The files changed since the latest audit ({_time(audit['audited_at'])}): audit again.")
        )
    copies = audit["copy_groups"] - audit["label_conflicts"]
    if copies:
        found.append(
            Notice(
                "info",
                f"{_plural(copies, 'group')} of copies of one photo within a class: a grouped split keeps "
                "each group in one split.",
            )
        )
    return found


def _time(value: str | datetime) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def datasets_table(datasets: list[Dataset]) -> pd.DataFrame:
    """One row per dataset: its size and its latest audit's findings (empty when never audited)."""
    rows = []
    for dataset in datasets:
        audit = dataset.get("audit") or {}
        rows.append(
            {
                "dataset": dataset["name"],
                "images": dataset["images"],
                "classes": " · ".join(f"{name} {count}" for name, count in dataset["classes"].items()),
                "audited": pd.Timestamp(audit["audited_at"]) if audit else pd.NaT,
                "copy_groups": audit.get("copy_groups"),
                "label_conflicts": audit.get("label_conflicts"),
                "shortcuts": audit.get("shortcuts"),
                "unreadable": audit.get("unreadable"),
                "state": audit_state(dataset),
            }
        )
    return pd.DataFrame(rows)


def audit_state(dataset: Dataset) -> str:
    request = dataset.get("audit_request")
    if request and request.get("error"):
        return "❌ audit failed"
    if request:
        return "⏳ audit queued"
    if dataset.get("audit") is None:
        return "not audited"
    return "⚠️ outdated" if dataset.get("audit_outdated") else "✅ audited"


def class_table(audit: dict[str, Any]) -> pd.DataFrame:
    """One row per class of the audit's ClassProfiles: counts, sizes and shapes."""

    def span(spread: dict[str, float], digits: int = 0) -> str:
        return f"{spread['min']:.{digits}f}–{spread['max']:.{digits}f}"

    rows = []
    for profile in audit["class_profiles"]:
        rows.append(
            {
                "class": profile["name"],
                "images": profile["images"],
                "width": profile["width"]["median"],
                "width_range": span(profile["width"]),
                "height": profile["height"]["median"],
                "height_range": span(profile["height"]),
                "aspect_ratio": profile["aspect_ratio"]["median"],
                "aspect_ratio_range": span(profile["aspect_ratio"], 2),
                "kilobytes": profile["file_bytes"]["median"] / 1000,
                "formats": ", ".join(f"{name} {count}" for name, count in sorted(profile["formats"].items())),
            }
        )
    return pd.DataFrame(rows)


def ordered_groups(audit: dict[str, Any]) -> list[dict[str, Any]]:
    """The copy groups, label conflicts first, then the largest."""
    return sorted(audit["copy_groups"], key=lambda group: (len(group["classes"]) < 2, -len(group["files"])))


def group_title(group: dict[str, Any]) -> str:
    kind = "identical files" if group["kind"] == "exact" else "one photo, transformed"
    title = f"{_plural(len(group['files']), 'file')} · {kind} · {', '.join(group['classes'])}"
    return f"⚠️ label conflict · {title}" if len(group["classes"]) > 1 else title
