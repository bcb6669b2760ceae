"""Audits cached on disk, one per dataset fingerprint: artifacts/datasets/<fingerprint>/audit.json.

An audit reads every image of a dataset, which takes minutes on a large one; its copy groups
decide every grouped split of that dataset (shared/datasets/splits.py). Keyed by the fingerprint
of the file list, a cached audit is found again by every trainer that shares the artifacts root,
and one made of other files (added, removed, moved between classes) is never used by mistake.
"""

import os
import uuid
from pathlib import Path

from pydantic import ValidationError

from shared.schemas.datasets import DatasetAudit

AUDIT_FILE = "audit.json"


def audit_path(artifacts_root: Path, fingerprint: str) -> Path:
    """Where the audit of the dataset with this fingerprint is cached."""
    if not fingerprint.isalnum():  # a fingerprint is hex digits: never a path of its own
        raise ValueError(f"not a dataset fingerprint: {fingerprint!r}")
    return Path(artifacts_root) / "datasets" / fingerprint / AUDIT_FILE


def load_audit(artifacts_root: Path, fingerprint: str) -> DatasetAudit | None:
    """The cached audit of these files; None when there is none, or it cannot be read as one
    (written by another schema version, cut short): the dataset is then audited again."""
    try:
        text = audit_path(artifacts_root, fingerprint).read_text(encoding="utf-8")
        audit = DatasetAudit.model_validate_json(text)
    except (OSError, ValidationError):
        return None
    return audit if audit.fingerprint == fingerprint else None


def save_audit(artifacts_root: Path, audit: DatasetAudit) -> Path:
    """Cache the audit under its fingerprint. Written to a temporary file, then renamed: a reader
    sees the old audit or the new one, never half of one, even with two trainers writing."""
    path = audit_path(artifacts_root, audit.fingerprint)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{AUDIT_FILE}.{uuid.uuid4().hex}.partial")
    try:
        with partial.open("w", encoding="utf-8") as file:
            file.write(audit.model_dump_json(indent=1))
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
