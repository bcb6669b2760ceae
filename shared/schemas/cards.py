"""A completed run's model card: what it was trained and tested on, how well it did (with
intervals), how it was trained, how its inputs are prepared, and the hashes and versions that
pin it down. Built from the stored run (services/api/model_card.py), never stored itself."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.images import ResizeMode
from shared.schemas.datasets import AuditSummary

Interval = list[float]


class CardData(BaseModel):
    dataset: str = Field(description="the dataset folder under the data root")
    class_names: list[str]
    dataset_files: int | None = Field(None, description="image files the run indexed")
    skipped_files: int = Field(0, description="unreadable images the run left out")
    split: dict[str, Any] | None = Field(
        None, description="method, split_seed, group_source, groups, folds, fold, split_hash"
    )
    split_sizes: dict[str, int] | None = Field(None, description="images in train / val / test")
    may_leak: bool = Field(description="split image by image: copies of a test photo may be in training")
    audit: AuditSummary | None = Field(None, description="the dataset's latest audit, if any")
    audit_of_these_files: bool | None = Field(
        None, description="the audit's fingerprint equals the run's dataset hash; null without either"
    )


class ClassFigures(BaseModel):
    name: str
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    support: int | None = Field(None, description="test images of this class")
    recall_interval: Interval | None = Field(
        None, min_length=2, max_length=2, description="Wilson 95 % interval of the recall"
    )


class CardTest(BaseModel):
    images: int | None = Field(None, description="test images evaluated")
    correct: int | None = None
    accuracy: float
    accuracy_interval: Interval | None = Field(
        None, min_length=2, max_length=2, description="Wilson 95 % interval [low, high]"
    )
    loss: float | None = None
    f1_macro: float | None = None
    confusion_matrix: list[list[int]] | None = Field(None, description="rows: true class, columns: predicted")
    per_class: list[ClassFigures] = Field(default_factory=list)


class CardTraining(BaseModel):
    settings: dict[str, Any] = Field(description="the run's spec as stored: exactly what ran")
    members: list[str] | None = Field(None, description="ensembles: the member runs")
    epochs_run: int
    best_epoch: int = 0
    early_stopped: bool
    train_accuracy: float
    val_accuracy: float
    best_val_loss: float
    duration_minutes: float
    attempts: int = 1
    start_time: datetime | None = None
    end_time: datetime | None = None


class CardPreprocessing(BaseModel):
    """What an image goes through before the model sees it, for anyone running the model elsewhere."""

    height: int = Field(description="pixels")
    width: int = Field(description="pixels")
    resize: ResizeMode = Field(
        "squash",
        description="squash: stretched to height × width, aspect not kept; letterbox: scaled to fit, aspect kept, "
        "padded with the median colour of the photo's border; crop: scaled to cover, aspect kept, the centre cut out",
    )
    tta: bool = Field(False, description="test metrics and predictions average over the photo, its flips and crops")
    interpolation: str = "bilinear"
    channels: str = "RGB"
    scale: float = Field(1 / 255, description="pixel values are first scaled to [0, 1]")
    mean: list[float] = Field(description="per channel, subtracted after scaling")
    std: list[float] = Field(description="per channel, divided by after subtracting the mean: values in [-1, 1]")


class CardCheckpoint(BaseModel):
    path: str = Field(description="relative to the artifacts root")
    epoch: int | None = None
    bytes: int
    sha256: str


class CardProvenance(BaseModel):
    split_hash: str | None = Field(None, description="equal hashes: equal train / val / test images")
    dataset_hash: str | None = Field(None, description="hash of the dataset's file list and labels")
    reproducibility: dict[str, Any] | None = Field(
        None, description="seed, python / torch / torchvision versions, git commit, device, precision"
    )
    checkpoint: CardCheckpoint | None = Field(None, description="the best checkpoint, when its file is there")


class CardExport(BaseModel):
    """What the ONNX export reported in <artifacts>/runs/<run_id>/export/export.json
    (shared/schemas/exports.py ExportReport), read defensively: any JSON object will do."""

    status: str | None = None
    parity: dict[str, float | int | str | bool | None] = Field(
        default_factory=dict, description="how closely the exported model's outputs match the checkpoint's"
    )
    files: dict[str, str] = Field(default_factory=dict, description="file name → sha256")
    error: str | None = Field(None, description="why the export failed or was refused")
    problem: str | None = Field(None, description="why export.json could not be read, if it could not")


class ModelCardPublic(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    run_id: str
    kind: Literal["training", "ensemble"]
    model_name: str
    version: str
    completed_at: datetime | None = None
    aliases: list[str] = Field(default_factory=list, description="registry aliases the run holds now")
    data: CardData
    test: CardTest
    training: CardTraining
    preprocessing: CardPreprocessing
    provenance: CardProvenance
    export: CardExport | None = Field(None, description="the ONNX export, once one was made")
    warnings: list[str] = Field(default_factory=list, description="what a reader must know before trusting it")
