"""A completed run's model card, built from what MongoDB and the artifacts root already hold: the
run's `status` and `trainings` documents, its dataset's latest audit, its best checkpoint and the
ONNX export's record. One object (ModelCardPublic), shown as JSON or as Markdown (`card_markdown`).

Every figure is read or derived the way the run's own pages derive it (the test accuracy's
Wilson interval is presenting.test_uncertainty's), so a card never disagrees with its run.
"""

import hashlib
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from services.api.presenting import test_uncertainty
from shared import names
from shared.images import Geometry
from shared.models import ENSEMBLE
from shared.schemas.cards import (
    CardCheckpoint,
    CardData,
    CardExport,
    CardPreprocessing,
    CardProvenance,
    CardTest,
    CardTraining,
    ClassFigures,
    ModelCardPublic,
)
from shared.schemas.datasets import AuditSummary
from shared.stats import wilson_interval

# How the trainer prepares an image (shared/images.py decode_image, services/trainer/engine.py):
# RGB, fitted to the run's geometry (bilinear), scaled to [0, 1], then (x - 0.5) / 0.5 into [-1, 1].
RESIZE_WORDS = {
    "squash": "the aspect ratio is not kept",
    "letterbox": "the aspect ratio kept, padded with the median colour of the photo's border",
    "crop": "the aspect ratio kept, the centre cut out",
}
NORMALISATION_MEAN = [0.5, 0.5, 0.5]
NORMALISATION_STD = [0.5, 0.5, 0.5]
# Where the ONNX exporter records an export: <artifacts>/runs/<run_id>/export/export.json
# (shared/schemas/exports.py ExportReport).
EXPORT_RECORD = names.EXPORT_REPORT
# An export.json larger than this is not read (it is a few hundred bytes when well formed).
MAX_EXPORT_RECORD_BYTES = 1024 * 1024
# Below this many test images the card says how much one image moves the accuracy.
SMALL_TEST_SET = 100


def build_card(
    run: dict[str, Any],
    summary: dict[str, Any],
    audit: dict[str, Any] | None,
    aliases: list[str],
    checkpoint: Path | None,
    artifacts_root: Path,
) -> ModelCardPublic:
    """The card of a completed run: run is its `status` document, summary its `trainings` one,
    audit its dataset's latest audit summary, checkpoint its best checkpoint file (or None)."""
    spec = run.get("spec") or summary.get("spec") or {}
    class_names = list(summary.get("class_names") or run.get("class_names") or [])
    split = run.get("split") or summary.get("split")
    geometry = Geometry.of(summary.get("image_size") or spec["image_size"], spec.get("resize") or "squash")
    data = CardData(
        dataset=str(summary.get("dataset") or spec.get("dataset") or ""),
        class_names=class_names,
        dataset_files=summary.get("dataset_files"),
        skipped_files=summary.get("skipped_files") or 0,
        split=split,
        split_sizes=run.get("split_sizes"),
        may_leak=bool(summary.get("may_leak")) or (split or {}).get("method") == "random",
        audit=_audit(audit),
        audit_of_these_files=(
            audit.get("fingerprint") == summary.get("dataset_hash") if audit and summary.get("dataset_hash") else None
        ),
    )
    card = ModelCardPublic(
        run_id=run["run_id"],
        kind="ensemble" if run.get("model_name") == ENSEMBLE else "training",
        model_name=run["model_name"],
        version=run["version"],
        completed_at=run.get("end_time") or summary.get("end_time"),
        aliases=aliases,
        data=data,
        test=_test(run, summary, class_names),
        training=CardTraining(
            settings=spec,
            members=summary.get("members") or spec.get("members"),
            epochs_run=summary["epochs_run"],
            best_epoch=summary.get("best_epoch") or 0,
            early_stopped=summary["early_stopped"],
            train_accuracy=summary["train_accuracy"],
            val_accuracy=summary["val_accuracy"],
            best_val_loss=summary["best_val_loss"],
            duration_minutes=summary["duration_minutes"],
            attempts=summary.get("attempts") or 1,
            start_time=summary.get("start_time"),
            end_time=summary.get("end_time"),
        ),
        preprocessing=CardPreprocessing(
            height=geometry.height,
            width=geometry.width,
            resize=geometry.resize,
            tta=bool(spec.get("tta")),
            mean=NORMALISATION_MEAN,
            std=NORMALISATION_STD,
        ),
        provenance=CardProvenance(
            split_hash=summary.get("split_hash") or (split or {}).get("split_hash"),
            dataset_hash=summary.get("dataset_hash"),
            reproducibility=summary.get("reproducibility"),
            checkpoint=_checkpoint(run, checkpoint, artifacts_root),
        ),
        export=read_export(artifacts_root, run["run_id"]),
    )
    card.warnings = warnings(card)
    return card


def _audit(audit: dict[str, Any] | None) -> AuditSummary | None:
    try:
        return AuditSummary.model_validate(audit) if audit else None
    except ValidationError:
        return None  # an audit stored by an older recorder: the card goes without it


def _test(run: dict[str, Any], summary: dict[str, Any], class_names: list[str]) -> CardTest:
    uncertainty = test_uncertainty(run)
    images = uncertainty.get("test_images")
    accuracy = (run.get("evaluation") or {}).get("accuracy", summary["test_accuracy"])
    matrix = summary.get("confusion_matrix")
    return CardTest(
        images=images,
        correct=min(images, max(0, round(accuracy * images))) if images else None,
        accuracy=accuracy,
        accuracy_interval=uncertainty.get("test_accuracy_interval"),
        loss=summary.get("test_loss"),
        f1_macro=summary.get("test_f1_macro"),
        confusion_matrix=matrix,
        per_class=_per_class(summary.get("per_class") or {}, class_names, matrix),
    )


def _per_class(
    per_class: dict[str, dict[str, Any]], class_names: list[str], matrix: list[list[int]] | None
) -> list[ClassFigures]:
    """Each class's stored figures in class order, with its recall's interval (right of support:
    the confusion matrix's diagonal and row, or recall × support without a matrix)."""
    figures = []
    for index, name in enumerate(class_names or list(per_class)):
        stored = per_class.get(name) or {}
        support = stored.get("support")
        right = None
        if matrix and index < len(matrix) and index < len(matrix[index]):
            right, support = matrix[index][index], sum(matrix[index])
        elif isinstance(support, int) and isinstance(stored.get("recall"), int | float):
            right = round(stored["recall"] * support)
        interval = None
        if isinstance(support, int) and support > 0 and right is not None and 0 <= right <= support:
            interval = list(wilson_interval(right, support))
        figures.append(
            ClassFigures(
                name=name,
                precision=stored.get("precision"),
                recall=stored.get("recall"),
                f1=stored.get("f1"),
                support=support,
                recall_interval=interval,
            )
        )
    return figures


def _checkpoint(run: dict[str, Any], path: Path | None, artifacts_root: Path) -> CardCheckpoint | None:
    if path is None:
        return None
    stat = path.stat()
    best = (run.get("checkpoints") or {}).get("best") or {}
    return CardCheckpoint(
        path=str(path.relative_to(artifacts_root.resolve())),
        epoch=best.get("epoch"),
        bytes=stat.st_size,
        sha256=file_sha256(path, stat.st_size, stat.st_mtime_ns),
    )


@lru_cache(maxsize=256)
def file_sha256(path: Path, size: int, mtime_ns: int) -> str:
    """The file's sha256, computed once per (path, size, modification time): a checkpoint of
    hundreds of megabytes is hashed once, not at every look at its card."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def export_record(artifacts_root: Path, run_id: str) -> Path:
    return artifacts_root / names.RUNS_DIR / run_id / names.EXPORT_DIR / EXPORT_RECORD


def read_export(artifacts_root: Path, run_id: str) -> CardExport | None:
    """The export's status, parity figures and file hashes; None when the run has no export
    record. A record that cannot be read gives a CardExport naming the problem, never an error."""
    path = export_record(artifacts_root, run_id)
    try:
        if not path.is_file():
            return None
        if path.stat().st_size > MAX_EXPORT_RECORD_BYTES:
            return CardExport(problem=f"{EXPORT_RECORD} is larger than {MAX_EXPORT_RECORD_BYTES} bytes")
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as unreadable:
        return CardExport(problem=f"{EXPORT_RECORD} could not be read ({type(unreadable).__name__})")
    if not isinstance(record, dict):
        return CardExport(problem=f"{EXPORT_RECORD} is not a JSON object")
    status, error = record.get("status"), record.get("error")
    return CardExport(
        status=status if isinstance(status, str) else None,
        parity=_parity(record.get("parity")),
        files=_file_hashes(record.get("files")),
        error=error[:500] if isinstance(error, str) else None,
    )


def _parity(parity: Any) -> dict[str, float | int | str | bool | None]:
    """{name: figure} of the record's parity: an object of plain values, or one number."""
    if isinstance(parity, int | float) and not isinstance(parity, bool):
        return {"value": parity} if math.isfinite(parity) else {}
    if not isinstance(parity, dict):
        return {}
    return {
        str(name): value
        for name, value in parity.items()
        if value is None or isinstance(value, str | bool) or (isinstance(value, int | float) and math.isfinite(value))
    }


def _file_hashes(files: Any) -> dict[str, str]:
    """file → sha256 of the record's files: {name: sha256}, {name: {sha256}} or [{name|path, sha256}]."""
    if isinstance(files, dict):
        items = list(files.items())
    elif isinstance(files, list):
        items = [
            (entry.get("name") or entry.get("path") or entry.get("file"), entry)
            for entry in files
            if isinstance(entry, dict)
        ]
    else:
        return {}
    hashes = {}
    for name, value in items:
        digest = value.get("sha256") if isinstance(value, dict) else value
        if isinstance(name, str) and isinstance(digest, str):
            hashes[name] = digest
    return hashes


def warnings(card: ModelCardPublic) -> list[str]:
    """What a reader must know before trusting the card's figures."""
    found = []
    if card.data.may_leak:
        found.append(
            "Split image by image (random): copies of a test photo may also be in training, so the test "
            "figures may be optimistic."
        )
    audit = card.data.audit
    if audit is None:
        found.append("The dataset has not been audited: copies, label conflicts and shortcuts are unchecked.")
    else:
        if card.data.audit_of_these_files is False:
            found.append("The dataset's latest audit is of other files than the run trained on.")
        if audit.label_conflicts:
            found.append(f"The audit found {audit.label_conflicts} copy group(s) spanning classes.")
        if audit.shortcuts:
            found.append(f"The audit found {audit.shortcuts} shortcut warning(s) (e.g. image size giving the class).")
    images = card.test.images
    if images and images < SMALL_TEST_SET:
        found.append(f"Only {images} test images: one image moves the accuracy by {100 / images:.1f} points.")
    if card.export is not None and card.export.problem:
        found.append(f"The ONNX export's record is unusable: {card.export.problem}.")
    return found


# --- Markdown ----------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _interval(interval: list[float] | None) -> str:
    return "—" if not interval else f"{interval[0]:.1%}–{interval[1]:.1%}"


def _cell(value: Any) -> str:
    """A table cell: pipes and line breaks would break the table."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def card_markdown(card: ModelCardPublic) -> str:
    """The card as Markdown: the same figures as its JSON, for people."""
    data, test, training = card.data, card.test, card.training
    lines = [f"# Model card: {card.model_name} {card.version} (run {card.run_id})", ""]
    facts = [
        f"- Kind: {card.kind}" + (f" of {', '.join(training.members)}" if training.members else ""),
        f"- Completed: {card.completed_at:%Y-%m-%d %H:%M} UTC" if card.completed_at else "- Completed: —",
        f"- Registry aliases: {', '.join(card.aliases) if card.aliases else 'none'}",
    ]
    lines += [*facts, ""]
    if card.warnings:
        lines += ["## Warnings", "", *[f"- ⚠️ {warning}" for warning in card.warnings], ""]

    lines += ["## Data", "", f"- Dataset: `{data.dataset}`", f"- Classes: {', '.join(data.class_names)}"]
    if data.dataset_files is not None:
        lines.append(f"- Image files: {data.dataset_files} ({data.skipped_files} unreadable, left out)")
    if data.split_sizes:
        lines.append("- Split sizes: " + ", ".join(f"{name} {size}" for name, size in data.split_sizes.items()))
    split = data.split or {}
    if split:
        described = f"- Split: {split.get('method')}, split_seed {split.get('split_seed')}"
        if split.get("method") == "grouped":
            described += f", {split.get('groups')} groups from {split.get('group_source')}"
        if split.get("folds"):
            described += f", fold {split.get('fold')} of {split.get('folds')}"
        lines.append(described)
    lines.append(f"- May leak (copies of a test photo in training): {'yes' if data.may_leak else 'no'}")
    if data.audit:
        audit = data.audit
        lines.append(
            f"- Audit ({audit.audited_at:%Y-%m-%d %H:%M} UTC, fingerprint `{audit.fingerprint}`"
            + ("" if data.audit_of_these_files is not False else ", of other files")
            + f"): {audit.images} images, {audit.unreadable} unreadable, {audit.copy_groups} copy groups, "
            f"{audit.label_conflicts} label conflicts, {audit.shortcuts} shortcut warnings"
        )
    else:
        lines.append("- Audit: none")
    lines.append("")

    lines += ["## Test results", ""]
    counted = f" ({test.correct} of {test.images} images)" if test.images else ""
    lines.append(
        f"- Accuracy: {_percent(test.accuracy)}{counted}, 95 % interval {_interval(test.accuracy_interval)} (Wilson)"
    )
    if test.f1_macro is not None:
        lines.append(f"- F1 (macro): {_percent(test.f1_macro)}")
    if test.loss is not None:
        lines.append(f"- Loss: {test.loss:.4f}")
    lines.append("")
    if test.per_class:
        lines += [
            "| class | precision | recall | recall 95 % interval | F1 | support |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {_cell(row.name)} | {_percent(row.precision)} | {_percent(row.recall)} | "
            f"{_interval(row.recall_interval)} | {_percent(row.f1)} | {row.support if row.support is not None else '—'} |"
            for row in test.per_class
        ]
        lines.append("")
    if test.confusion_matrix:
        names_ = data.class_names
        lines += [
            "Confusion matrix (rows: true class, columns: predicted):",
            "",
            "| true \\ predicted | " + " | ".join(_cell(name) for name in names_) + " |",
            "|---" * (len(names_) + 1) + "|",
        ]
        lines += [
            f"| {_cell(names_[i]) if i < len(names_) else i} | " + " | ".join(str(count) for count in row) + " |"
            for i, row in enumerate(test.confusion_matrix)
        ]
        lines.append("")

    lines += [
        "## Training",
        "",
        f"- Epochs run: {training.epochs_run} (best epoch {training.best_epoch}"
        + (", stopped early" if training.early_stopped else "")
        + ")",
        f"- Train accuracy {_percent(training.train_accuracy)}, val accuracy {_percent(training.val_accuracy)}, "
        f"best val loss {training.best_val_loss:.4f}",
        f"- Duration: {training.duration_minutes:.1f} min over {training.attempts} attempt(s)",
        "",
        "| setting | value |",
        "|---|---|",
        *[f"| {_cell(name)} | {_cell(json.dumps(value))} |" for name, value in training.settings.items()],
        "",
    ]

    pre = card.preprocessing
    lines += [
        "## Preprocessing",
        "",
        f"- {pre.channels}, fitted to {pre.height}×{pre.width} (height × width) by {pre.resize} "
        f"({pre.interpolation}; {RESIZE_WORDS[pre.resize]})",
        *(
            ["- Test-time augmentation: probabilities averaged over the photo, its two flips and two crops"]
            if pre.tta
            else []
        ),
        f"- Scaled to [0, 1], then normalised with mean {pre.mean} and std {pre.std} (values in [-1, 1])",
        "",
    ]

    provenance = card.provenance
    lines += ["## Hashes and versions", ""]
    lines.append(f"- Split hash: `{provenance.split_hash or '—'}`")
    lines.append(f"- Dataset hash: `{provenance.dataset_hash or '—'}`")
    if provenance.checkpoint:
        checkpoint = provenance.checkpoint
        lines.append(
            f"- Best checkpoint: `{checkpoint.path}` (epoch {checkpoint.epoch}, {checkpoint.bytes} bytes), "
            f"sha256 `{checkpoint.sha256}`"
        )
    for name, value in (provenance.reproducibility or {}).items():
        lines.append(f"- {_cell(name)}: {_cell(json.dumps(value) if isinstance(value, dict | list) else value)}")
    lines.append("")

    if card.export is not None:
        export = card.export
        lines += ["## ONNX export", ""]
        if export.problem:
            lines.append(f"- Problem: {export.problem}")
        lines.append(f"- Status: {export.status or '—'}")
        if export.error:
            lines.append(f"- Error: {_cell(export.error)}")
        lines += [f"- Parity {_cell(name)}: {value}" for name, value in export.parity.items()]
        lines += [f"- `{_cell(name)}` sha256 `{digest}`" for name, digest in export.files.items()]
        lines.append("")
    return "\n".join(lines)
