"""What a dataset audit finds: the report a trainer (or `paddy data audit`) writes and the API serves.

An audit looks at every image of an ImageFolder dataset once: how many per class, their sizes
and shapes, which cannot be read, which are the same photo (exact copies by content hash; near
copies under flips, rotation, crops, rescaling, colour changes and re-encoding), and whether a
trivial property of the files (size, shape, format, border colour...) predicts the class on its
own: a shortcut a model would learn instead of the disease.

Copies of one photo form a group; groups keep every copy of a photo in one split
(shared/datasets/splits.py), so no test image has its twin in training.
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

AUDIT_SCHEMA_VERSION: Literal[1] = 1


class Spread(BaseModel):
    """A number's range over a class's images."""

    min: float
    median: float
    max: float


class ClassProfile(BaseModel):
    name: str
    images: int = Field(description="readable images in the class folder")
    width: Spread = Field(description="pixels")
    height: Spread = Field(description="pixels")
    aspect_ratio: Spread = Field(description="width / height")
    file_bytes: Spread
    formats: dict[str, int] = Field(description="image format (JPEG, PNG, ...) → images")


class CopyGroup(BaseModel):
    """Images that are one photo: identical bytes, or the same picture transformed."""

    kind: Literal["exact", "near"]
    files: list[str] = Field(description="paths relative to the dataset folder, sorted")
    classes: list[str] = Field(description="the class folders its files are in, sorted")

    @property
    def label_conflict(self) -> bool:
        """One photo filed under two classes: at least one label is wrong."""
        return len(self.classes) > 1


class ShortcutWarning(BaseModel):
    """A property of the files that predicts the class far above chance (cross-validated)."""

    feature: str = Field(description='e.g. "width", "aspect_ratio", "file_bytes", "format", "border_colour"')
    accuracy: float = Field(description="cross-validated accuracy of predicting the class from this feature alone")
    chance: float = Field(description="accuracy of always answering the largest class")
    message: str


class DatasetAudit(BaseModel):
    schema_version: Literal[1] = AUDIT_SCHEMA_VERSION
    dataset: str = Field(description="the dataset as jobs name it, relative to the data root")
    fingerprint: str = Field(description="hash of the dataset's file list and labels (ImageFolderIndex.fingerprint)")
    audited_at: datetime
    seconds: float = Field(description="how long the audit took")
    images: int = Field(description="image files found, unreadable ones included")
    class_profiles: list[ClassProfile]
    unreadable: list[str] = Field(default_factory=list, description="files that could not be decoded")
    copy_groups: list[CopyGroup] = Field(
        default_factory=list, description="exact and near copies of one photo, two files or more each"
    )
    shortcuts: list[ShortcutWarning] = Field(default_factory=list)

    @property
    def label_conflicts(self) -> list[CopyGroup]:
        return [group for group in self.copy_groups if group.label_conflict]

    def groups(self) -> dict[str, str]:
        """file → group name for every file in a copy group (exact and near copies merged)."""
        parent: dict[str, str] = {}

        def root(file: str) -> str:
            while parent.setdefault(file, file) != file:
                file = parent[file]
            return file

        for group in self.copy_groups:
            first = root(group.files[0])
            for file in group.files[1:]:
                parent[root(file)] = first
        return {file: f"copies-of:{root(file)}" for file in parent}


# --- the API's view of the datasets under the data root (services/api/routes/datasets.py) ---


class AuditSummary(BaseModel):
    """An audit in a few numbers: what a list of datasets shows without the whole report."""

    audited_at: datetime
    fingerprint: str = Field(description="the dataset's fingerprint when it was audited")
    images: int
    unreadable: int
    copy_groups: int
    label_conflicts: int = Field(description="copy groups that span classes")
    shortcuts: int = Field(description="shortcut warnings")

    @classmethod
    def of(cls, audit: DatasetAudit) -> "AuditSummary":
        return cls(
            audited_at=audit.audited_at,
            fingerprint=audit.fingerprint,
            images=audit.images,
            unreadable=len(audit.unreadable),
            copy_groups=len(audit.copy_groups),
            label_conflicts=len(audit.label_conflicts),
            shortcuts=len(audit.shortcuts),
        )


class AuditRequest(BaseModel):
    """An audit asked for (POST /datasets/{name}/audit) and not stored yet, or one that failed."""

    requested_at: datetime
    error: str | None = Field(None, description="why the audit failed; null while it is queued or running")


class DatasetPublic(BaseModel):
    name: str = Field(description="the folder under the data root; what a job's `dataset` names")
    images: int = Field(description="image files, by extension (none is decoded to list them)")
    classes: dict[str, int] = Field(description="class folder → image files, in label order")
    fingerprint: str = Field(description="hash of the file list and labels; an audit of other files is outdated")
    audit: AuditSummary | None = Field(None, description="the latest audit stored, if any")
    audit_outdated: bool = Field(False, description="the files changed since the latest audit")
    audit_request: AuditRequest | None = Field(
        None, description="an audit queued after the latest one (or failed): it is not stored yet"
    )
    latest_audit: DatasetAudit | None = Field(None, description="the whole latest audit: GET /datasets/{name} only")


class DatasetsPublic(BaseModel):
    data: list[DatasetPublic]
    count: int


class AuditQueued(BaseModel):
    dataset: str
    requested_at: datetime
    queued: bool = Field(description="false: an audit of this dataset was already waiting, none was added")
