"""Training events: what trainers publish on the Redis Stream and the recorder stores.

Every event carries `event_id` (unique, for deduplication), `run_id`, `seq` (grows
monotonically within a run, across attempts) and `time` (UTC). Bump SCHEMA_VERSION when a
field changes meaning; the recorder dead-letters versions it does not know.
"""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, TypeAdapter, model_serializer

from shared.schemas.datasets import DatasetAudit
from shared.schemas.splits import SplitRecord

SCHEMA_VERSION: Literal[1] = 1
# seq = attempt * SEQ_PER_ATTEMPT + n: a retried attempt's events always sort after the last one's.
SEQ_PER_ATTEMPT = 1_000_000_000


def attempt_of(seq: int) -> int:
    """The attempt that published the event with this seq (0: the API's own, such as run_queued)."""
    return seq // SEQ_PER_ATTEMPT


def utc_now() -> datetime:
    # MongoDB stores milliseconds; truncating here keeps an event equal to its stored copy.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    run_id: str
    seq: int = Field(ge=0)
    time: datetime = Field(default_factory=utc_now)


class RunStarted(_Event):
    type: Literal["run_started"] = "run_started"
    spec: dict = Field(description="the JobSpec, so a run started without the API is complete")
    attempt: int = Field(ge=1)
    worker: str
    device: str
    epochs_planned: int
    class_names: list[str]
    split_sizes: dict[str, int] = Field(description="images in train / val / test")
    resumed_from_epoch: int = Field(0, description="the last epoch a checkpoint held; 0 for a fresh start")
    split: SplitRecord | None = Field(None, description="how the images were split; null from older trainers")


class RunQueued(_Event):
    """Published by the API after it stored the run as queued (seq 0: it never changes a stored
    status). It puts the queueing on the event log for anything that follows the stream."""

    type: Literal["run_queued"] = "run_queued"
    model_name: str
    version: str
    sweep_id: str | None = None


class GpuReading(BaseModel):
    """One GPU a trainer sees, read from NVML (services/trainer/gpu_stats.py)."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0, description="the device's index inside the trainer: cuda:<index>")
    uuid: str = Field(description="NVML's UUID of the GPU, the same on every host and container")
    name: str = Field(description='the card, e.g. "NVIDIA H200"')
    utilization_pct: float = Field(ge=0, le=100, description="share of NVML's last sample period a kernel ran")
    memory_used_mib: float = Field(ge=0, description="memory in use on the GPU, every process's, in MiB")
    memory_total_mib: float = Field(ge=0)


class Heartbeat(_Event):
    type: Literal["heartbeat"] = "heartbeat"
    gpu: list[GpuReading] | None = Field(None, description="the trainer's GPUs; absent without NVML or a GPU")

    @model_serializer(mode="wrap")
    def _omit_absent_gpu(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Without a GPU the entry is what it was before GPU figures existed: recorders of that
        # time (extra="forbid") still take the heartbeats of CPU trainers. They dead-letter those
        # with figures, so recorders are updated before GPU trainers.
        data = handler(self)
        if data.get("gpu") is None:
            data.pop("gpu", None)
        return data


class EpochStarted(_Event):
    type: Literal["epoch_started"] = "epoch_started"
    epoch: int = Field(ge=1)


class EpochFinished(_Event):
    type: Literal["epoch_finished"] = "epoch_finished"
    epoch: int = Field(ge=1)
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    epoch_time_sec: float


class EpochProgress(_Event):
    """Sent every N batches while an epoch trains (trainer setting `progress_every_batches`)."""

    type: Literal["epoch_progress"] = "epoch_progress"
    epoch: int = Field(ge=1)
    batch: int = Field(ge=1, description="batches done in this epoch")
    batches: int = Field(ge=1, description="batches in this epoch")
    running_loss: float = Field(description="mean training loss over the epoch's batches so far")
    running_acc: float = Field(description="training accuracy over the epoch's batches so far")
    images_per_sec: float = Field(ge=0, description="training images per second so far this epoch")


class CheckpointSaved(_Event):
    type: Literal["checkpoint_saved"] = "checkpoint_saved"
    epoch: int = Field(ge=1)
    kind: Literal["best", "last"]
    path: str = Field(description="relative to the artifacts root")


class EvaluationFinished(_Event):
    """The test split was evaluated (before run_completed, which carries the whole summary)."""

    type: Literal["evaluation_finished"] = "evaluation_finished"
    split: Literal["test"] = "test"
    accuracy: float
    loss: float
    f1_macro: float | None = None
    images: int = Field(ge=0)


class ImagePrediction(BaseModel):
    """What a run said about one test image."""

    model_config = ConfigDict(extra="forbid")

    file: str = Field(description="relative to the dataset folder, '/'-separated")
    group: str = Field(description="the split group of the image: copies of one photo share one")
    true_class: str
    predicted_class: str
    probabilities: list[float] = Field(description="one per class, in class_names order, rounded to 4 decimals")


class TestPredictions(_Event):
    """Every test image's prediction, published after evaluation_finished (ensembles too): runs
    tested on the same split are then compared image by image (McNemar's test, GET /compare)."""

    __test__ = False  # a schema, not a pytest test class

    type: Literal["test_predictions"] = "test_predictions"
    split_hash: str = Field(description="the split the images come from: equal hashes, equal test images")
    class_names: list[str]
    predictions: list[ImagePrediction]


class TrainingSummary(BaseModel):
    """The `trainings` document: the original system's fields (same names, same types) first."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    run_id: str
    model_name: str
    version: str
    num_classes: int
    dropout: float | None
    feature_extraction: bool
    batch_size: int
    learning_rate: float
    early_stopped: bool
    epochs_run: int
    train_accuracy: float
    val_accuracy: float
    test_accuracy: float
    best_val_loss: float
    duration_minutes: float
    start_time: datetime
    end_time: datetime
    # Paddy's additions.
    test_loss: float
    class_names: list[str]
    dataset: str
    image_size: int | list[int] = Field(description="the side of a square, or [height, width]; spec.resize fits photos")
    seed: int
    best_epoch: int = 0
    test_f1_macro: float | None = None
    confusion_matrix: list[list[int]] | None = Field(None, description="rows: true class, columns: predicted")
    per_class: dict[str, dict[str, float | int]] | None = Field(None, description="precision, recall, f1, support")
    split_hash: str | None = Field(None, description="hash of the train/val/test file lists")
    dataset_files: int | None = None
    dataset_hash: str | None = Field(None, description="hash of the dataset's file list")
    skipped_files: int = 0
    attempts: int = 1
    spec: dict | None = None
    reproducibility: dict | None = Field(None, description="seed, package versions, git commit, device")
    members: list[str] | None = Field(None, description="ensembles: the member run ids")
    split: SplitRecord | None = Field(None, description="how the images were split (method, seed, groups, fold)")
    may_leak: bool = Field(False, description="split image by image: copies of a test photo may be in training")


class RunCompleted(_Event):
    type: Literal["run_completed"] = "run_completed"
    summary: TrainingSummary


class RunFailed(_Event):
    type: Literal["run_failed"] = "run_failed"
    error_type: str
    message: str
    traceback_tail: str = ""


class RunCancelled(_Event):
    """The run stopped because someone asked (POST /jobs/{run_id}/cancel), before or while training."""

    type: Literal["run_cancelled"] = "run_cancelled"
    epochs_done: int = Field(0, ge=0, description="epochs finished before it stopped; their checkpoints are kept")


class RunPruned(_Event):
    """A sweep's pruner stopped the run after an epoch: it was clearly losing to the sweep's other runs."""

    type: Literal["run_pruned"] = "run_pruned"
    epochs_done: int = Field(0, ge=0, description="epochs finished before it stopped; their checkpoints are kept")


class DatasetAudited(_Event):
    """A dataset was audited: by the `paddy.audit` task, or by a training run that had to find
    its copy groups. It concerns a dataset, not a run: `run_id` only names the publisher (the
    run, or "dataset:<fingerprint>" for the task: a colon no run id has), and the recorder keeps
    the newest audit of each dataset (by `audited_at`) in `audits`, never a `status` document."""

    type: Literal["dataset_audited"] = "dataset_audited"
    audit: DatasetAudit


Event = Annotated[
    RunQueued
    | RunStarted
    | Heartbeat
    | EpochStarted
    | EpochProgress
    | EpochFinished
    | CheckpointSaved
    | EvaluationFinished
    | TestPredictions
    | RunCompleted
    | RunFailed
    | RunCancelled
    | RunPruned
    | DatasetAudited,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


# The one field of a stream entry: the event as JSON.
EVENT_FIELD = "event"


def encode_event(event: _Event) -> dict[str, str]:
    """The fields of one stream entry."""
    return encoded_entry(event.model_dump_json())


def encoded_entry(event_json: str) -> dict[str, str]:
    """The fields of one stream entry for an event already in JSON (a spill file's line)."""
    return {EVENT_FIELD: event_json}


def decode_event(fields: dict[bytes | str, bytes | str]) -> Event:
    """Parse one stream entry; raises ValueError (pydantic's ValidationError) when malformed."""
    raw = fields.get(EVENT_FIELD.encode(), fields.get(EVENT_FIELD))
    if raw is None:
        raise ValueError(f"stream entry has no {EVENT_FIELD!r} field")
    return EVENT_ADAPTER.validate_json(raw)
