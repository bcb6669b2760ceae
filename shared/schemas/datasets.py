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
