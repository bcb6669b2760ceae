"""What a job is: the spec a client posts, and what the API answers about a run."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.models import MODELS

RunState = Literal["queued", "in_progress", "completed", "failed", "cancelled", "lost"]
FINISHED_STATES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


class JobSpec(BaseModel):
    """Everything a trainer needs to run one training job; sent whole with the Celery task."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_name: str = Field(description="a model from GET /models", examples=["custom_cnn"])
    dataset: str = Field(
        description="ImageFolder directory (one folder per class); relative paths are "
        "resolved inside the data root",
        examples=["synth"],
    )
    epochs: int = Field(10, ge=1, le=1000, description="number of epochs to train")
    batch_size: int = Field(32, ge=1, le=4096)
    learning_rate: float = Field(1e-3, gt=0, le=1)
    dropout: float | None = Field(0.5, ge=0, lt=1, description="head dropout, null for none")
    feature_extraction: bool = Field(False, description="freeze the backbone")
    image_size: int = Field(224, ge=32, le=1024, description="images are resized to this square")
    seed: int = Field(42, ge=0, description="seeds the split, the weights and the augmentation")
    version: str | None = Field(
        None, description='run label such as "v3"; assigned per model when omitted'
    )

    @field_validator("model_name")
    @classmethod
    def known_model(cls, name: str) -> str:
        if name not in MODELS:
            raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
        return name


class JobCreated(BaseModel):
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
    worker: str | None = None
    heartbeat_at: datetime | None = None
    summary: dict[str, Any] | None = Field(
        None, description="the run's `trainings` document, once it has completed"
    )


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int
