"""A dataset audit as `paddy data audit` prints it: what to fix first comes first.

Label conflicts (one photo under two classes) lead the copy groups: each is a wrong label.
Long groups are cut to a few files; `--json` has them all.
"""

import sys
from collections.abc import Callable
from contextlib import ExitStack
from typing import TextIO

import typer

from shared.schemas.datasets import CopyGroup, DatasetAudit, Spread

FILES_SHOWN = 6  # per copy group


class AuditProgress:
    """progress(phase, done, total) for audit_dataset: one progress bar per phase, on stderr."""

    def __init__(self, file: TextIO | None = None):
        self.file = file or sys.stderr
        self._phase: str | None = None
        self._bar = ExitStack()
        self._advance: Callable[[int], None] = lambda steps: None
        self._done = 0

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase != self._phase:
            self.close()
            self._phase, self._done = phase, 0
            bar = typer.progressbar(length=max(total, 1), label=f"{phase:<10}", file=self.file, width=30)
            self._advance = self._bar.enter_context(bar).update
        if done > self._done:
            self._advance(done - self._done)
            self._done = done

    def close(self) -> None:
        """Ends the current bar (its line); call once the audit is over."""
        self._bar.close()


def audit_lines(audit: DatasetAudit) -> list[str]:
    lines = [
        f"dataset {audit.dataset} (fingerprint {audit.fingerprint}): {audit.images} images, "
        f"audited in {audit.seconds:.1f} s",
        "",
    ]
    rows = [["class", "images", "width px", "height px", "aspect ratio", "file size", "formats"]]
    for profile in audit.class_profiles:
        rows.append(
            [
                profile.name,
                str(profile.images),
                _spread(profile.width, "{:.0f}"),
                _spread(profile.height, "{:.0f}"),
                _spread(profile.aspect_ratio, "{:.2f}"),
                _spread(profile.file_bytes, "{:.0f}", scale=1 / 1000, unit=" kB"),
                ", ".join(f"{name} {count}" for name, count in profile.formats.items()),
            ]
        )
    lines += _table(rows)
    lines += ["", f"unreadable files: {len(audit.unreadable) or 'none'}"]
    lines += [f"  {file}" for file in audit.unreadable]
    conflicts = len(audit.label_conflicts)
    lines += [
        "",
        f"copy groups: {len(audit.copy_groups) or 'none'}" + (f" ({conflicts} label conflicts)" if conflicts else ""),
    ]
    for group in sorted(audit.copy_groups, key=lambda g: not g.label_conflict):
        lines += _group_lines(group)
    lines += ["", f"shortcut warnings: {len(audit.shortcuts) or 'none'}"]
    lines += [f"  {warning.feature}: {warning.message}" for warning in audit.shortcuts]
    return lines


def _group_lines(group: CopyGroup) -> list[str]:
    what = "LABEL CONFLICT" if group.label_conflict else "same photo"
    copies = "identical files" if group.kind == "exact" else "near copies"
    head = f"  {what}: {len(group.files)} {copies} in {', '.join(group.classes)}"
    shown = [f"    {file}" for file in group.files[:FILES_SHOWN]]
    if len(group.files) > FILES_SHOWN:
        shown.append(f"    … and {len(group.files) - FILES_SHOWN} more")
    return [head, *shown]


def _spread(spread: Spread, number: str, scale: float = 1.0, unit: str = "") -> str:
    low, mid, high = (number.format(v * scale) for v in (spread.min, spread.median, spread.max))
    return f"{mid}{unit}" if low == high else f"{mid}{unit} ({low}–{high}{unit})"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(w) if 0 < i < 2 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))
        ).rstrip()
        for row in rows
    ]
