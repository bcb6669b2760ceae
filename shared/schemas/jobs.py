"""What a job is: the spec a client posts, and what the API answers about a run."""

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from shared.models import ENSEMBLE, MODELS, EnsembleName
from shared.paths import MAX_PATH_LENGTH

RunState = Literal["queued", "in_progress", "completed", "failed", "cancelled", "lost"]
FINISHED_STATES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
# Runs POST /jobs/{run_id}/retry starts again (a lost run's trainer may never come back).
RETRYABLE_STATES: frozenset[str] = FINISHED_STATES | {"lost"}
# The `trainings` metrics copied into a completed run's `status` document (`metrics`), where
# GET /jobs filters and sorts on them.
SummaryMetric = Literal[
    "train_accuracy",
    "val_accuracy",
    "test_accuracy",
    "test_loss",
    "test_f1_macro",
    "best_val_loss",
    "duration_minutes",
    "epochs_run",
]
SUMMARY_METRICS: tuple[str, ...] = get_args(SummaryMetric)
# Of those, the ones where lower is better (the best run has the lowest); higher wins for the rest.
LOWER_IS_BETTER = frozenset({"best_val_loss", "test_loss"})

# What a client may send, so that every value fits the store and the trainer: text is bounded
# and holds no control character (a NUL ends a path early in C, a newline forges log lines);
# numbers are finite and bounded (MongoDB holds 64-bit integers); types are strict (true is not
# 1, "3" is not 3, 3 is not "3") and objects such as {"$gt": 0} never stand for a value.
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f-\x9f]*$"
# Run ids: the API makes 12 hex digits; other tools' ids keep to these characters.
RUN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_LABEL_LENGTH = 64
MAX_SEED = 2**32 - 1  # numpy's seeds
MAX_ENSEMBLE_MEMBERS = 20
MAX_GRID_VALUES = 1000
STRICT_INPUT = ConfigDict(extra="forbid", protected_namespaces=(), strict=True, allow_inf_nan=False)

PathText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PATH_LENGTH, pattern=NO_CONTROL_CHARACTERS)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=MAX_LABEL_LENGTH, pattern=NO_CONTROL_CHARACTERS)]
RunId = Annotated[str, StringConstraints(pattern=RUN_ID_PATTERN)]


class JobSpec(BaseModel):
    """Everything a trainer needs to run one training job; sent whole with the Celery task.

    Fields left null take the model's default (shared/models.py); the API fills them in
    before storing the spec, so a stored spec says exactly what ran.
    """

    model_config = STRICT_INPUT

    model_name: str = Field(
        max_length=MAX_LABEL_LENGTH, description="a model from GET /models", examples=["custom_cnn"]
    )
    dataset: PathText = Field(
        description="ImageFolder directory (one folder per class) inside the data root "
        "(PADDY_DATA_ROOT); relative paths are resolved there",
        examples=["synth"],
    )
    epochs: int = Field(100, ge=1, le=1000, description="most epochs to train (early stopping may end sooner)")
    patience: int = Field(10, ge=1, le=1000, description="epochs without a lower validation loss before stopping")
    batch_size: int = Field(32, ge=1, le=4096, description="images per training step")
    learning_rate: float = Field(1e-3, gt=0, le=1, description="Adam learning rate")
    weight_decay: float = Field(1e-4, ge=0, lt=1, description="Adam weight decay")
    dropout: float | None = Field(0.5, ge=0, lt=1, description="head dropout; 0 or null for none")
    feature_extraction: bool | None = Field(None, description="freeze the pretrained backbone; default: the model's")
    trainable_layers: int = Field(
        0, ge=0, le=20, description="with feature_extraction, unfreeze this many last backbone blocks"
    )
    weights: PathText | None = Field(
        None,
        description='"imagenet", "none", or a state-dict file inside the weights root '
        "(PADDY_WEIGHTS_ROOT); default: the model's",
    )
    image_size: int = Field(224, ge=32, le=1024, description="images are resized to this square")
    augment: Literal["original", "flips", "none"] = Field(
        "original", description="training augmentation: the original study's, flips only, or none"
    )
    seed: int = Field(42, ge=0, le=MAX_SEED, description="seeds the split, the weights and the augmentation")
    channels_last: bool = Field(True, description="channels_last memory format")
    mixed_precision: bool = Field(True, description="bf16 autocast on CUDA and on CPUs with bf16")
    version: Label | None = Field(None, description='run label such as "v3"; assigned per model when omitted')

    @field_validator("model_name")
    @classmethod
    def known_model(cls, name: str) -> str:
        if name not in MODELS:
            raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
        return name

    @model_validator(mode="after")
    def model_defaults(self) -> "JobSpec":
        info = MODELS[self.model_name]
        if self.feature_extraction is None:
            self.feature_extraction = info.feature_extraction
        if self.weights is None:
            self.weights = info.weights
        return self


class EnsembleSpec(BaseModel):
    """A soft-voting ensemble of completed training runs, evaluated on their shared split."""

    model_config = STRICT_INPUT

    model_name: EnsembleName = ENSEMBLE
    members: list[RunId] = Field(
        min_length=2,
        max_length=MAX_ENSEMBLE_MEMBERS,
        description="run ids of completed training runs with the same classes and split",
        examples=[["3f9a1c0b2d4e", "7c21e5a09b13"]],
    )
    voting: Literal["logits", "softmax"] = Field(
        "logits", description="average the members' logits (as the original did) or their probabilities"
    )
    batch_size: int = Field(64, ge=1, le=4096, description="images per forward pass")
    version: Label | None = Field(None, description='run label such as "v3"; assigned per model when omitted')

    @field_validator("members")
    @classmethod
    def unique_members(cls, members: list[str]) -> list[str]:
        repeated = sorted({run_id for run_id in members if members.count(run_id) > 1})
        if repeated:
            raise ValueError(f"members must be distinct runs; repeated: {repeated}")
        return members


class JobCreated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"run_id": "3f9a1c0b2d4e", "status": "queued", "version": "v3"}]}
    )

    run_id: str
    status: RunState
    version: str


class EpochPublic(BaseModel):
    run_id: str
    epoch: int
    train_loss: float | None = None
    train_acc: float | None = None
    val_loss: float | None = None
    val_acc: float | None = None
    epoch_time_sec: float | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class EpochsPublic(BaseModel):
    data: list[EpochPublic]
    count: int


class JobPublic(BaseModel):
    """A run as the API shows it: its status document, plus the training summary once done."""

    model_config = ConfigDict(protected_namespaces=())

    run_id: str
    status: RunState
    status_history: list[dict[str, Any]] = Field(default_factory=list)
    model_name: str
    version: str
    spec: dict[str, Any]
    created_at: datetime
    start_time: datetime | None = None
    end_time: datetime | None = None
    epochs_planned: int
    epochs_done: int = 0
    current_epoch: int | None = None
    latest: dict[str, float | None] = Field(default_factory=dict)
    error: str | None = None
    attempt: int = 0
    resumed_from_epoch: int = 0
    worker: str | None = None
    heartbeat_at: datetime | None = None
    heartbeat_age_s: float | None = Field(None, description="seconds since the run's newest event")
    progress: dict[str, Any] | None = Field(
        None, description="within the current epoch: epoch, batch, batches, running_loss, running_acc"
    )
    images_per_sec: float | None = None
    checkpoints: dict[str, Any] = Field(
        default_factory=dict, description='"best" / "last": {epoch, path under the artifacts root}'
    )
    evaluation: dict[str, Any] | None = Field(None, description="test-split evaluation, once done")
    metrics: dict[str, float | int | None] = Field(
        default_factory=dict, description="the summary's metrics once completed (SUMMARY_METRICS)"
    )
    sweep_id: str | None = None
    retry_of: str | None = Field(None, description="the run this one retries")
    archived: bool = False
    summary: dict[str, Any] | None = Field(None, description="the run's `trainings` document, once it has completed")


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int


RUN_SORT_FIELDS: tuple[str, ...] = ("created_at", "start_time", "end_time", *SUMMARY_METRICS)

# A sweep's base and grid name JobSpec fields and give them plain JSON values; each combination
# is then validated as a whole JobSpec.
SweepField = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,64}$")]
SweepValue = bool | int | float | PathText | None


class SweepCreate(BaseModel):
    """A grid search: one job per combination of the grid's values, on top of `base`."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "base": {"model_name": "custom_cnn", "dataset": "rice-leaf-real", "epochs": 20, "image_size": 96},
                    "grid": {"learning_rate": [0.001, 0.0003], "dropout": [0.3, 0.5]},
                }
            ]
        },
    )

    base: dict[SweepField, SweepValue] = Field(
        max_length=len(JobSpec.model_fields), description="JobSpec fields every run shares (a partial JobSpec)"
    )
    grid: dict[SweepField, Annotated[list[SweepValue], Field(max_length=MAX_GRID_VALUES)]] = Field(
        min_length=1,
        max_length=len(JobSpec.model_fields),
        description="JobSpec field → the values to try; the runs are their cartesian product",
    )


class SweepCreated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"sweep_id": "5b0c2e7d91aa", "run_ids": ["3f9a1c0b2d4e", "7c21e5a09b13"], "count": 2}]
        }
    )

    sweep_id: str
    run_ids: list[str]
    count: int


class SweepPublic(BaseModel):
    sweep_id: str
    metric: str = Field(description="the summary metric `best` is chosen by")
    count: int
    runs: list[JobPublic]
    best: JobPublic | None = Field(
        None, description="the completed run with the highest metric (lowest for best_val_loss and test_loss)"
    )


class PredictionPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "run_id": "3f9a1c0b2d4e",
                    "class_name": "Brownspot",
                    "probabilities": {"Bacterialblight": 0.03, "Brownspot": 0.94, "Leafsmut": 0.03},
                }
            ]
        }
    )

    run_id: str
    class_name: str
    probabilities: dict[str, float] = Field(description="every class of the run, summing to 1")


class CompareRow(BaseModel):
    epoch: int
    runs: dict[str, EpochPublic | None] = Field(description="run id → its epoch, null when it has none")


class ComparePublic(BaseModel):
    runs: list[JobPublic]
    epochs: list[CompareRow] = Field(description="one row per epoch number up to the longest run")


class ModelPublic(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    name: str
    description: str
    defaults: dict[str, Any] = Field(description="the JobSpec a job gets when it names only the model")


class ModelsPublic(BaseModel):
    data: list[ModelPublic]
    count: int


class RecorderHealth(BaseModel):
    recorders: list[dict[str, Any]] = Field(
        description="each live recorder's own report: consumer, mongodb, events_stored, dead_lettered, "
        "last_write_at, error"
    )
    lag: int | None = Field(description="events on the stream not stored yet; null before the first event")


class HealthPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "redis": "ok",
                    "mongodb": "ok",
                    "workers": 2,
                    "worker_details": [
                        {
                            "hostname": "trainer-1@gpu-a",
                            "pid": 311,
                            "queues": ["predict", "training"],
                            "started_at": "2026-05-01T08:00:00+00:00",
                            "seen_at": "2026-05-01T10:00:00+00:00",
                            "task": "paddy.train",
                            "run_id": "7f3a1c0b2d4e",
                            "stopping": False,
                        },
                        {
                            "hostname": "trainer-2@gpu-b",
                            "pid": 298,
                            "queues": ["predict", "training"],
                            "started_at": "2026-05-01T08:00:00+00:00",
                            "seen_at": "2026-05-01T10:00:02+00:00",
                            "task": None,
                            "run_id": None,
                            "stopping": False,
                        },
                    ],
                    "recorder": {
                        "recorders": [
                            {
                                "consumer": "recorder-1",
                                "mongodb": "ok",
                                "events_stored": 1200,
                                "dead_lettered": 0,
                                "last_write_at": "2026-05-01T10:00:00+00:00",
                                "error": None,
                            }
                        ],
                        "lag": 0,
                    },
                }
            ]
        }
    )

    status: Literal["ok", "degraded"]
    redis: str = Field(description='"ok" or "unreachable: …"')
    mongodb: str = Field(description='"ok" or "unreachable: …" (as the API sees it)')
    workers: int = Field(
        description="live trainer workers, busy or idle: those whose presence key in Redis "
        "is fresh (each refreshes it every few seconds and deletes it when it stops)"
    )
    worker_details: list[dict[str, Any]] = Field(
        default_factory=list,
        description="each live worker's own report, by hostname: hostname, pid, queues, started_at, seen_at "
        "(its last refresh), task and run_id (what it runs; null when idle, run_id null for a prediction), "
        "stopping (in a warm shutdown: finishing its task, taking no other)",
    )
    recorder: RecorderHealth
