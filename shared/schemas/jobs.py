"""What a job is: the spec a client posts, and what the API answers about a run."""

import re
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator, model_validator

from shared.images import Geometry, ResizeMode
from shared.models import ENSEMBLE, MODELS, EnsembleName
from shared.paths import MAX_PATH_LENGTH
from shared.schemas.events import GpuReading, ImagePrediction
from shared.schemas.splits import SplitMethod

# pruned: a sweep's pruner stopped the run early because it was clearly losing (its checkpoints stay).
RunState = Literal["queued", "in_progress", "completed", "failed", "cancelled", "pruned", "lost"]
FINISHED_STATES: frozenset[str] = frozenset({"completed", "failed", "cancelled", "pruned"})
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
MIN_IMAGE_SIDE, MAX_IMAGE_SIDE = 32, 1024
MAX_SEED = 2**32 - 1  # numpy's seeds
MAX_ENSEMBLE_MEMBERS = 20
MAX_GRID_VALUES = 1000
# Runs of one study: folds of a k-fold, or seeds of repeated training.
MAX_STUDY_RUNS = 20
MAX_PATTERN_LENGTH = 256
# Augmented views of each training image that a feature-extraction job computes once (feature_views):
# at most, and by default with a frozen backbone (measured: bench/head_sweep.py, docs/benchmarks.md).
MAX_FEATURE_VIEWS = 16
DEFAULT_FEATURE_VIEWS = 4
# JobSpec fields that make a study of several runs rather than set up one: no model's default.
STUDY_FIELDS = ("folds", "fold", "repeats")
# A default patience (JobSpec.patience null): this fraction of the epochs, at least this many.
PATIENCE_FRACTION_OF_EPOCHS = 4
MIN_DEFAULT_PATIENCE = 10
STRICT_INPUT = ConfigDict(extra="forbid", protected_namespaces=(), strict=True, allow_inf_nan=False)

PathText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PATH_LENGTH, pattern=NO_CONTROL_CHARACTERS)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=MAX_LABEL_LENGTH, pattern=NO_CONTROL_CHARACTERS)]
RunId = Annotated[str, StringConstraints(pattern=RUN_ID_PATTERN)]
ImageSide = Annotated[int, Field(ge=MIN_IMAGE_SIDE, le=MAX_IMAGE_SIDE)]
ImageHeightWidth = Annotated[list[ImageSide], Field(min_length=2, max_length=2)]
AugmentKind = Literal["original", "crops", "flips", "none"]
GroupPattern = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_PATTERN_LENGTH, pattern=NO_CONTROL_CHARACTERS)
]


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
    patience: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="epochs without a lower smoothed validation loss before stopping; "
        f"default: epochs / {PATIENCE_FRACTION_OF_EPOCHS:g}, at least {MIN_DEFAULT_PATIENCE}",
    )
    val_smoothing: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="early stopping and the best epoch follow the validation loss smoothed as "
        "s = val_smoothing·s + (1 - val_smoothing)·loss; 0: the raw loss (measured best, bench/early_stopping.py)",
    )
    lr_schedule: Literal["constant", "cosine"] = Field(
        "cosine", description="learning rate over the epochs: constant, or a cosine decay to 0 at the last epoch"
    )
    optimizer: Literal["adam", "adamw"] = Field(
        "adamw", description="adam: weight decay added to the gradient (L2); adamw: decoupled weight decay"
    )
    batch_size: int = Field(
        16,
        ge=1,
        le=4096,
        description="images per training step; small sets want small batches: more steps per epoch "
        "(measured, bench/real_photos.py)",
    )
    learning_rate: float = Field(1e-3, gt=0, le=1, description="the optimizer's (initial) learning rate")
    weight_decay: float = Field(1e-2, ge=0, lt=1, description="the optimizer's weight decay")
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
    image_size: ImageSide | ImageHeightWidth | None = Field(
        None,
        description="the model's input: the side of a square, or [height, width] (e.g. [96, 320] for leaf strips); "
        "default: the model's (custom_cnn 128, the others 224)",
        examples=[224, [96, 320]],
    )
    resize: ResizeMode = Field(
        "squash",
        description="how a photo of another shape fits image_size: squash (stretch), letterbox (keep the aspect, "
        "pad with the border colour) or crop (keep the aspect, cut the centre); the same in training, evaluation, "
        "predictions and exports",
    )
    augment: AugmentKind = Field(
        "crops",
        description="training augmentation: the original study's, crops (random resized crops along the image, "
        "flips, small rotations, colour jitter), flips only, or none",
    )
    tta: bool = Field(
        False,
        description="test-time augmentation: test evaluation and predictions average the probabilities over "
        "the photo, its two flips and two crops",
    )
    cnn_blocks: int = Field(
        3,
        ge=2,
        le=5,
        description="custom_cnn: Conv-BN-ReLU-pool blocks (the original study's: 3; Grad-CAM reads the second)",
    )
    cnn_width: int = Field(
        32, ge=8, le=128, description="custom_cnn: the first block's channels; each next block doubles them"
    )
    feature_views: int | None = Field(
        None,
        ge=0,
        le=MAX_FEATURE_VIEWS,
        description="with a frozen backbone: augmented views of each training image whose features are computed "
        f"once and reused by every epoch and every run that shares them (0: none; default: {DEFAULT_FEATURE_VIEWS} "
        'with a frozen backbone, 1 with augment "none", else 0)',
    )
    seed: int = Field(
        42, ge=0, le=MAX_SEED, description="seeds the weights and the augmentation (not the split: split_seed)"
    )
    split: SplitMethod = Field(
        "grouped",
        description="grouped: copies of one photo stay in one split; random: image by image (copies may leak)",
    )
    split_seed: int = Field(
        0,
        ge=0,
        le=MAX_SEED,
        description="draws the split: runs on one dataset with the same split_seed are tested on the same images",
    )
    group_pattern: GroupPattern | None = Field(
        None,
        description="a regex with a named group `group` that picks the group out of each file's path "
        r"(relative to the class folders' parent), e.g. '(?P<group>IMG_\d+)'; used when the dataset has no "
        "groups.csv",
    )
    folds: int | None = Field(
        None, ge=2, le=MAX_STUDY_RUNS, description="k-fold cross-validation over groups: one run per fold (a study)"
    )
    fold: int | None = Field(
        None, ge=0, lt=MAX_STUDY_RUNS, description="the fold a study's run tests on (0-based; val is the next fold)"
    )
    repeats: int | None = Field(
        None,
        ge=2,
        le=MAX_STUDY_RUNS,
        description="train this many times, seeds seed, seed+1, …: one run per seed (a study)",
    )
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
        if self.image_size is None:
            self.image_size = info.image_size
        if self.patience is None:
            self.patience = max(MIN_DEFAULT_PATIENCE, self.epochs // PATIENCE_FRACTION_OF_EPOCHS)
        if self.feature_views is None:
            frozen = self.feature_extraction and self.trainable_layers == 0
            views = 1 if self.augment == "none" else DEFAULT_FEATURE_VIEWS
            self.feature_views = views if frozen else 0
        return self

    @property
    def geometry(self) -> Geometry:
        """What the model takes: image_size fitted by resize (shared/images.py)."""
        assert self.image_size is not None  # filled in by model_defaults
        return Geometry.of(self.image_size, self.resize)

    @property
    def stopping_patience(self) -> int:
        """patience, filled in by model_defaults."""
        assert self.patience is not None
        return self.patience

    @property
    def cached_views(self) -> int:
        """feature_views, filled in by model_defaults."""
        assert self.feature_views is not None
        return self.feature_views

    @field_validator("feature_views")
    @classmethod
    def views_of_a_frozen_backbone(cls, views: int | None, info: ValidationInfo) -> int | None:
        if not views:  # none, or the default (model_defaults)
            return views
        frozen = info.data.get("feature_extraction")
        if frozen is None and info.data.get("model_name") in MODELS:
            frozen = MODELS[info.data["model_name"]].feature_extraction
        if not frozen or info.data.get("trainable_layers", 0) > 0:
            raise ValueError(
                "needs a frozen backbone (feature_extraction true, trainable_layers 0): "
                "a backbone that trains changes its features every step"
            )
        if views > 1 and info.data.get("augment") == "none":
            raise ValueError('with augment "none" every view is the same image: use 1')
        return views

    @field_validator("group_pattern")
    @classmethod
    def pattern_names_its_group(cls, pattern: str | None, info: ValidationInfo) -> str | None:
        if pattern is None:
            return None
        if info.data.get("split") == "random":
            raise ValueError('groups images for split "grouped"; a random split ignores groups')
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            raise ValueError(f"not a regular expression: {error}") from None
        if "group" not in compiled.groupindex:
            raise ValueError(r"needs a named group `group`, e.g. '(?P<group>IMG_\d+)'")
        return pattern

    @field_validator("fold")
    @classmethod
    def fold_of_folds(cls, fold: int | None, info: ValidationInfo) -> int | None:
        folds = info.data.get("folds")
        if fold is not None and (folds is None or fold >= folds):
            raise ValueError("must be one of 0 … folds-1 of a job that sets folds")
        return fold

    @field_validator("repeats")
    @classmethod
    def one_kind_of_study(cls, repeats: int | None, info: ValidationInfo) -> int | None:
        if repeats is None:
            return None
        if info.data.get("folds") is not None:
            raise ValueError("choose folds or repeats: a study is either k-fold or several seeds")
        if info.data.get("seed", 0) + repeats - 1 > MAX_SEED:
            raise ValueError(f"seed + repeats - 1 must be at most {MAX_SEED}")
        return repeats

    @property
    def is_study(self) -> bool:
        """Several runs under one parent: every fold (folds without fold), or every seed (repeats)."""
        return (self.folds is not None and self.fold is None) or self.repeats is not None


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
    gpu: list[GpuReading] | None = Field(
        None, description="the trainer's GPUs at its newest heartbeat with figures (NVML); null without a GPU"
    )
    checkpoints: dict[str, Any] = Field(
        default_factory=dict, description='"best" / "last": {epoch, path under the artifacts root}'
    )
    evaluation: dict[str, Any] | None = Field(None, description="test-split evaluation, once done")
    test_images: int | None = Field(None, description="images in the test split, once evaluated")
    test_accuracy_interval: list[float] | None = Field(
        None,
        min_length=2,
        max_length=2,
        description="the test accuracy's Wilson 95 % interval [low, high], once evaluated",
    )
    metrics: dict[str, float | int | None] = Field(
        default_factory=dict, description="the summary's metrics once completed (SUMMARY_METRICS)"
    )
    split: dict[str, Any] | None = Field(
        None,
        description="how its images were split, once started: method, split_seed, group_source, groups, "
        "folds, fold, split_hash",
    )
    may_leak: bool = Field(
        False, description="split image by image (split: random): copies of a test photo may be in training"
    )
    sweep_id: str | None = None
    retry_of: str | None = Field(None, description="the run this one retries")
    archived: bool = False
    summary: dict[str, Any] | None = Field(None, description="the run's `trainings` document, once it has completed")
    aliases: list[str] = Field(
        default_factory=list, description="GET /jobs/{run_id}: the registry aliases (of its dataset) the run holds"
    )

    @model_validator(mode="after")
    def mark_leaks(self) -> "JobPublic":
        method = (self.split or {}).get("method") or self.spec.get("split")
        if method is None and "dataset" in self.spec:
            method = "random"  # a training job stored before grouped splits: split image by image
        self.may_leak = method == "random"
        return self


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int


RUN_SORT_FIELDS: tuple[str, ...] = ("created_at", "start_time", "end_time", *SUMMARY_METRICS)

# A sweep's base and grid name JobSpec fields and give them plain JSON values; each combination
# is then validated as a whole JobSpec.
SweepField = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,64}$")]
SweepValue = bool | int | float | PathText | None


class SearchRange(BaseModel):
    """A range to sample from: floats for float fields, integers for integer fields."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    low: int | float
    high: int | float
    log: bool = Field(False, description="sample evenly on a log scale (learning rates); low must be > 0")
    step: int | float | None = Field(None, gt=0, description="sample only low, low+step, …; not with log")

    @model_validator(mode="after")
    def ordered(self) -> "SearchRange":
        if self.low > self.high:
            raise ValueError("low must be at most high")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("choose log or step, not both")
        return self


class SearchChoices(BaseModel):
    """Values to choose from, in no order (model names, augmentations, booleans)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    choices: list[SweepValue] = Field(min_length=1, max_length=MAX_GRID_VALUES)


SearchParam = SearchRange | SearchChoices
SweepStrategy = Literal["grid", "random", "tpe"]
PrunerName = Literal["none", "median", "asha", "hyperband"]
# What the sampler optimises and the pruner judges after each epoch; the run's summary
# metric (val_accuracy: the best epoch's) is the trial's final value.
SweepMetric = Literal["val_accuracy", "val_loss"]
MAX_SWEEP_PARALLEL = 64


class SweepCreate(BaseModel):
    """A search over JobSpec fields on top of `base`.

    grid: one job per combination of `grid`'s values, all queued at once (no pruning).
    random / tpe: Optuna samples `space` one trial at a time, `parallel` runs in flight, until
    `max_runs` runs or `budget_epochs` epochs are spent; `pruner` stops clearly losing runs.
    """

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "base": {"model_name": "custom_cnn", "dataset": "rice-leaf-real", "epochs": 20, "image_size": 96},
                    "grid": {"learning_rate": [0.001, 0.0003], "dropout": [0.3, 0.5]},
                },
                {
                    "strategy": "tpe",
                    "base": {"model_name": "custom_cnn", "dataset": "rice-leaf-real", "epochs": 20, "image_size": 96},
                    "space": {
                        "learning_rate": {"low": 0.0001, "high": 0.01, "log": True},
                        "dropout": {"low": 0.0, "high": 0.6},
                        "batch_size": {"choices": [16, 32, 64]},
                    },
                    "max_runs": 30,
                    "parallel": 2,
                    "budget_epochs": 200,
                    "pruner": "asha",
                },
            ]
        },
    )

    strategy: SweepStrategy = Field("grid", description="grid: every combination; random or tpe: Optuna samples")
    base: dict[SweepField, SweepValue] = Field(
        max_length=len(JobSpec.model_fields), description="JobSpec fields every run shares (a partial JobSpec)"
    )
    grid: dict[SweepField, Annotated[list[SweepValue], Field(max_length=MAX_GRID_VALUES)]] = Field(
        default_factory=dict,
        max_length=len(JobSpec.model_fields),
        description="strategy grid: JobSpec field → the values to try; the runs are their cartesian product",
    )
    space: dict[SweepField, SearchParam] = Field(
        default_factory=dict,
        max_length=len(JobSpec.model_fields),
        description="strategy random or tpe: JobSpec field → {low, high, log?, step?} or {choices}",
    )
    first_trials: list[dict[SweepField, SweepValue]] = Field(
        default_factory=list,
        max_length=MAX_GRID_VALUES,
        description="random or tpe: points of the space tried first, in order (a known good setting)",
    )
    max_runs: int | None = Field(None, ge=1, description="random or tpe: most runs (default 20)")
    parallel: int = Field(2, ge=1, le=MAX_SWEEP_PARALLEL, description="random or tpe: runs in flight at once")
    budget_epochs: int | None = Field(
        None, ge=1, description="random or tpe: most training epochs all runs together may spend (default: no limit)"
    )
    pruner: PrunerName = Field("none", description="random or tpe: stops runs that are clearly losing")
    metric: SweepMetric = Field("val_accuracy", description="random or tpe: what is optimised and pruned on")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="random or tpe: seeds the sampler")

    @model_validator(mode="after")
    def one_strategy(self) -> "SweepCreate":
        searched = self.strategy != "grid"
        if not searched and not self.grid:
            raise ValueError("strategy grid needs `grid`: JobSpec field → values")
        if searched and not self.space:
            raise ValueError(f"strategy {self.strategy} needs `space`: JobSpec field → a range or choices")
        if searched and self.grid:
            raise ValueError(f"strategy {self.strategy} samples `space`; `grid` is for strategy grid")
        if not searched:
            given = [name for name in ("space", "first_trials", "max_runs", "budget_epochs") if getattr(self, name)]
            if self.pruner != "none":
                given.append("pruner")
            if given:
                raise ValueError(f"{given} need strategy random or tpe; a grid queues every combination at once")
        return self


class SweepCreated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"sweep_id": "5b0c2e7d91aa", "run_ids": ["3f9a1c0b2d4e", "7c21e5a09b13"], "count": 2}]
        }
    )

    sweep_id: str
    run_ids: list[str]
    count: int


StudyKind = Literal["folds", "repeats"]
SweepKind = Literal["grid", "random", "tpe", "folds", "repeats"]


class StudyCreated(SweepCreated):
    """A study queued by POST /jobs with folds or repeats: one run per fold or per seed."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"sweep_id": "5b0c2e7d91aa", "kind": "folds", "run_ids": ["3f9a1c0b2d4e", "7c21e5a09b13"], "count": 2}
            ]
        }
    )

    kind: StudyKind


class MetricInterval(BaseModel):
    """A test metric over a study's completed runs: its mean and the mean's 95 % t-interval."""

    mean: float
    low: float | None = Field(description="null with a single run: one value has no interval")
    high: float | None
    runs: int = Field(description="completed runs with this metric")


TrialState = Literal["running", "completed", "pruned", "failed"]
SearchState = Literal["running", "finished", "cancelled"]


class TrialPublic(BaseModel):
    """One trial of a random or tpe search: the point Optuna sampled and the run that tried it."""

    number: int = Field(description="0, 1, …: the order Optuna proposed the trials in")
    run_id: str
    state: TrialState
    params: dict[str, SweepValue] = Field(description="the sampled JobSpec fields")
    value: float | None = Field(
        None, description="the run's metric: its summary's when completed, else its last epoch's"
    )
    epochs: int = Field(0, description="epochs the run trained")
    intermediate: dict[int, float] = Field(default_factory=dict, description="epoch → the metric after it")


class SearchPublic(BaseModel):
    """A random or tpe search as its driver last left it (services/api/sweep_driver.py)."""

    strategy: SweepStrategy
    space: dict[str, Any]
    pruner: PrunerName
    metric: SweepMetric
    max_runs: int
    parallel: int
    budget_epochs: int | None
    seed: int
    state: SearchState = Field(
        description="finished once no trial runs and the budget or max_runs is spent; cancelled by "
        "POST /sweeps/{id}/cancel"
    )
    epochs_spent: int = Field(description="epochs trained by all its runs so far")
    best_value: float | None = None
    trials: list[TrialPublic]
    importance: dict[str, float] = Field(
        default_factory=dict, description="each sampled field's share of the metric's variance (Optuna's PED-ANOVA)"
    )
    finished_at: datetime | None = None


class SweepSummaryPublic(BaseModel):
    sweep_id: str
    kind: SweepKind
    created_at: datetime
    model_name: str | None = None
    dataset: str | None = None
    state: SearchState | None = Field(None, description="random and tpe searches only")


class SweepsPublic(BaseModel):
    data: list[SweepSummaryPublic]
    count: int


class SweepPublic(BaseModel):
    sweep_id: str
    kind: SweepKind = Field(
        "grid",
        description="grid, random, tpe: POST /sweeps; folds or repeats: a study queued by POST /jobs with "
        "folds or repeats",
    )
    search: SearchPublic | None = Field(None, description="random and tpe: the trials, budget and importance")
    metric: str = Field(description="the summary metric `best` is chosen by")
    count: int
    runs: list[JobPublic]
    best: JobPublic | None = Field(
        None, description="the completed run with the highest metric (lowest for best_val_loss and test_loss)"
    )
    test_metrics: dict[str, MetricInterval] | None = Field(
        None,
        description="studies: each test metric (test_accuracy, test_loss, test_f1_macro) over the completed runs; "
        "null for a grid sweep",
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
    served_by: Literal["onnx", "predictor"] = Field(
        "predictor",
        description="onnx: the API answered from the run's ONNX export (the production model); "
        "predictor: a predictor worker answered with PyTorch",
    )
    heatmap: str | None = Field(
        None,
        description="asked for with heatmap=true: a base64 JPEG of the photo at the model's input size with "
        "its Grad-CAM map over it (where the run looked for class_name; red the most)",
    )


class GalleryImage(ImagePrediction):
    """One test image as a gallery shows it: the prediction and how sure the run was."""

    confidence: float = Field(description="the probability of the predicted class")
    correct: bool = Field(description="predicted class = true class")
    heatmap: bool = Field(
        False, description="a Grad-CAM overlay was kept for this image: GET /jobs/{run_id}/heatmaps/{file}"
    )


GallerySort = Literal["file", "confidence", "-confidence"]


class TestPredictionsPublic(BaseModel):
    """A run's predictions for its test images (GET /jobs/{run_id}/predictions), filtered and paged."""

    __test__ = False  # a schema, not a pytest test class

    run_id: str
    dataset: str | None = Field(
        None, description="the run's dataset: thumbnails are GET /datasets/{dataset}/images/{file}"
    )
    split_hash: str = Field(description="runs with equal split hashes were tested on the same images")
    class_names: list[str] = Field(description="the order of each prediction's probabilities")
    total: int = Field(description="test images the run kept predictions for")
    count: int = Field(description="images that match the filters (data holds one page of them)")
    data: list[GalleryImage]


class ImageVerdicts(BaseModel):
    """One test image two runs disagree on: what each said, and how sure it was."""

    file: str
    group: str
    true_class: str
    predicted_a: str
    confidence_a: float
    predicted_b: str
    confidence_b: float


class RunAgainstRun(BaseModel):
    """The test images one of two runs got right and the other wrong (GET /compare/{a}/{b}/images)."""

    run_a: str
    run_b: str
    dataset: str | None = Field(None, description="thumbnails are GET /datasets/{dataset}/images/{file}")
    split_hash: str
    images: int = Field(description="test images both runs were evaluated on")
    only_a_right: list[ImageVerdicts] = Field(description="a right, b wrong; b's most confident mistakes first")
    only_b_right: list[ImageVerdicts] = Field(description="b right, a wrong; a's most confident mistakes first")


class PairedComparison(BaseModel):
    """Two runs tested on the same images, compared image by image (McNemar's exact test)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "run_a": "3f9a1c0b2d4e",
                    "run_b": "7c21e5a09b13",
                    "paired": True,
                    "images": 60,
                    "both_right": 48,
                    "only_a_right": 1,
                    "only_b_right": 9,
                    "both_wrong": 2,
                    "p_value": 0.0215,
                    "significant": True,
                    "sentence": "custom_cnn v2 is better than custom_cnn v1 on this test set (p = 0.021)",
                }
            ]
        }
    )

    run_a: str
    run_b: str
    paired: bool = Field(description="false when the runs cannot be compared image by image; `sentence` says why")
    images: int | None = Field(None, description="test images both runs were evaluated on")
    both_right: int | None = None
    only_a_right: int | None = None
    only_b_right: int | None = None
    both_wrong: int | None = None
    p_value: float | None = Field(None, description="two-sided, exact (binomial on the images only one got right)")
    significant: bool | None = Field(None, description="p_value below 0.05: one run is better on this test set")
    sentence: str = Field(description="the result in words, or why the runs cannot be paired")


class CompareRow(BaseModel):
    epoch: int
    runs: dict[str, EpochPublic | None] = Field(description="run id → its epoch, null when it has none")


class ComparePublic(BaseModel):
    runs: list[JobPublic]
    epochs: list[CompareRow] = Field(description="one row per epoch number up to the longest run")
    pairs: list[PairedComparison] = Field(
        default_factory=list, description="every pair of the runs, in the order given: McNemar's test where it applies"
    )


StudyMetric = Literal["test_accuracy", "test_f1_macro"]


class StudyComparison(BaseModel):
    """Two studies of one kind compared fold by fold (or seed by seed): the paired differences."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "study_a": "5b0c2e7d91aa",
                    "study_b": "9e4f0a6c3b12",
                    "kind": "folds",
                    "metric": "test_accuracy",
                    "paired": True,
                    "keys": [0, 1, 2, 3, 4],
                    "differences": [0.05, 0.0167, 0.0333, 0.0, 0.05],
                    "mean_difference": 0.03,
                    "low": 0.0083,
                    "high": 0.0517,
                    "significant": True,
                    "sentence": "study 5b0c2e7d91aa is better than study 9e4f0a6c3b12 by 3.0 points on average "
                    "over 5 folds (95 % interval 0.8 to 5.2)",
                }
            ]
        }
    )

    study_a: str
    study_b: str
    kind: str | None = Field(description="folds or repeats")
    metric: str
    paired: bool = Field(description="false when the studies cannot be paired; `sentence` says why")
    keys: list[int] = Field(default_factory=list, description="the folds (or seed ranks) both completed")
    differences: list[float] = Field(default_factory=list, description="a − b, one per key")
    mean_difference: float | None = None
    low: float | None = Field(None, description="the mean difference's 95 % t-interval")
    high: float | None = None
    significant: bool | None = Field(None, description="the interval excludes 0")
    sentence: str = Field(description="the result in words, or why the studies cannot be paired")


class StudySummary(BaseModel):
    sweep_id: str
    kind: str
    count: int = Field(description="runs of the study")
    test_metrics: dict[str, MetricInterval] = Field(description="each test metric over the completed runs")


class StudiesComparePublic(BaseModel):
    metric: StudyMetric
    studies: list[StudySummary]
    pairs: list[StudyComparison] = Field(description="every pair of the studies, in the order given")


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
    predictors: int = Field(
        0, description="live predictor workers: each serves the predict queue alone, beside a trainer"
    )
    worker_details: list[dict[str, Any]] = Field(
        default_factory=list,
        description="each live worker's own report, by hostname: hostname, pid, queues, started_at, seen_at "
        "(its last refresh), task and run_id (what it runs; null when idle, run_id null for a prediction), "
        "stopping (in a warm shutdown: finishing its task, taking no other)",
    )
    recorder: RecorderHealth
