"""The training loop: plain functions with everything passed in."""

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Protocol

import torch
from torch import nn

from services.trainer.augment import make_augment, tta_views
from services.trainer.data import ImageTensors, SplitData, iterate_batches
from services.trainer.models import head_of, set_train_mode
from shared.schemas.jobs import JobSpec

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class TrainSetup:
    """How batches reach the model; each speed switch can be turned off in the spec."""

    device: torch.device
    channels_last: bool
    autocast_dtype: torch.dtype | None  # None: full fp32
    augment: Augment
    # The batches are the frozen backbone's features (feature_cache.py), not images: they go
    # through the model's head alone, and a training batch picks one of each image's views
    # instead of being augmented.
    features: bool = False
    # Test-time augmentation: predict_logits averages the probabilities over augment.tta_views.
    tta: bool = False

    def autocast(self):
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    # Without native bf16 instructions the CPU emulates it, slower than fp32.
    return device.type == "cpu" and bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())


def make_setup(spec: JobSpec, device: torch.device) -> TrainSetup:
    return TrainSetup(
        device=device,
        channels_last=spec.channels_last,
        autocast_dtype=torch.bfloat16 if spec.mixed_precision and bf16_supported(device) else None,
        augment=make_augment(spec.augment),
        tta=spec.tta,
    )


def prepare_inputs(images: torch.Tensor, setup: TrainSetup, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 N×3×H×W → augmented (when a generator is given), normalized to [-1, 1] as the original."""
    inputs = images.to(setup.device, non_blocking=True).float().div_(255)
    if generator is not None:
        inputs = setup.augment(inputs, generator)
    inputs = inputs.sub_(0.5).div_(0.5)
    if setup.channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    return inputs


def batch_inputs(batch: torch.Tensor, setup: TrainSetup, generator: torch.Generator | None = None) -> torch.Tensor:
    """A batch as the network takes it: images through prepare_inputs, or with setup.features
    the features themselves — N×D, or N×V×D on training batches: one view per image, drawn from
    generator (the run's augmentation stream)."""
    if not setup.features:
        return prepare_inputs(batch, setup, generator)
    features = batch.to(setup.device, non_blocking=True)
    if features.ndim == 2:
        return features
    if generator is None:
        raise ValueError("features with several views per image need a generator to pick one")
    views = torch.randint(features.shape[1], (len(features),), generator=generator, device=generator.device)
    return features[torch.arange(len(features), device=features.device), views.to(features.device)]


def network(model: nn.Module, setup: TrainSetup) -> nn.Module:
    """What the batches go through: the model, or its head when they are features already."""
    return head_of(model) if setup.features else model


@dataclass
class RandomStreams:
    """The job's random numbers: batch order (drawn on the CPU) and augmentation (on the device).

    Dropout draws from torch's global generators, so their states are saved with these.
    """

    shuffle: torch.Generator
    augment: torch.Generator

    @classmethod
    def seeded(cls, seed: int, device: torch.device) -> "RandomStreams":
        return cls(torch.Generator().manual_seed(seed), torch.Generator(device=device).manual_seed(seed + 1))

    def state_dict(self) -> dict[str, Any]:
        return {
            "shuffle": self.shuffle.get_state(),
            "augment": self.augment.get_state(),
            "torch_cpu": torch.get_rng_state(),
            "torch_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.shuffle.set_state(state["shuffle"])
        self.augment.set_state(state["augment"])
        torch.set_rng_state(state["torch_cpu"])
        if state["torch_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["torch_cuda"])


@dataclass(frozen=True)
class BatchProgress:
    """Where an epoch stands after `batch` of its `batches` batches."""

    batch: int
    batches: int
    running_loss: float  # mean over the epoch's images so far
    running_acc: float
    images_per_sec: float  # since the epoch's first batch


def train_one_epoch(
    model: nn.Module,
    data: ImageTensors,
    optimizer: torch.optim.Optimizer,
    setup: TrainSetup,
    batch_size: int,
    random: RandomStreams,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[BatchProgress], None] | None = None,
    progress_every: int = 0,
) -> tuple[float, float]:
    """One pass over the training images (or their features: setup.features); returns (mean
    loss, accuracy) over the batches run.

    Every progress_every batches (when above 0) on_progress gets the running figures: the one
    host sync of the loop besides its end.
    """
    set_train_mode(model)
    net = network(model, setup)
    loss_sum = torch.zeros((), device=setup.device)
    correct = torch.zeros((), device=setup.device, dtype=torch.long)
    seen = 0
    batches = math.ceil(len(data) / batch_size)
    started = time.perf_counter()
    for batch, (images, labels) in enumerate(iterate_batches(data, batch_size, random.shuffle), start=1):
        inputs = batch_inputs(images, setup, random.augment)
        labels = labels.to(setup.device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with setup.autocast():
            logits = net(inputs)
            loss = nn.functional.cross_entropy(logits, labels)
        loss.backward()
        optimizer.step()
        # Summed on the device: no host sync per batch.
        loss_sum += loss.detach() * len(labels)
        correct += (logits.argmax(1) == labels).sum()
        seen += len(labels)
        # Asked before anything is reported: a stopped attempt publishes nothing more.
        if should_stop():
            break
        if on_progress is not None and progress_every > 0 and batch % progress_every == 0:
            running_loss, running_correct = loss_sum.item(), correct.item()  # waits for the device
            on_progress(
                BatchProgress(
                    batch,
                    batches,
                    running_loss / seen,
                    running_correct / seen,
                    seen / max(time.perf_counter() - started, 1e-9),
                )
            )
    return loss_sum.item() / seen, correct.item() / seen


def predict_logits(
    model: nn.Module,
    data: ImageTensors,
    setup: TrainSetup,
    batch_size: int,
    should_stop: Callable[[], bool] = lambda: False,
) -> torch.Tensor:
    """Logits (float32, on the CPU) for every image, in order, in eval mode without gradients.

    With setup.tta (images only) they are the logarithms of the probabilities averaged over the
    test-time views: softmax gives back those mean probabilities.
    should_stop is asked after every batch; when it says so, the logits so far come back.
    """
    model.eval()
    net = network(model, setup)
    outputs = []
    with torch.inference_mode():
        for images, _labels in iterate_batches(data, batch_size):
            inputs = batch_inputs(images, setup)
            with setup.autocast():
                logits = tta_logits(net, inputs) if setup.tta and not setup.features else net(inputs)
            outputs.append(logits.float().cpu())
            if should_stop():
                break
    return torch.cat(outputs) if outputs else torch.empty(0)


def tta_logits(net: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The logarithms of net's probabilities averaged over the test-time views of inputs (float32)."""
    views = [net(view).float().softmax(1) for view in tta_views(inputs)]
    return torch.stack(views).mean(0).clamp_min(torch.finfo(torch.float32).tiny).log()


def loss_and_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    labels = labels.cpu()
    return nn.functional.cross_entropy(logits, labels).item(), (logits.argmax(1) == labels).float().mean().item()


def evaluate(model: nn.Module, data: ImageTensors, setup: TrainSetup, batch_size: int) -> tuple[float, float]:
    """Mean loss and accuracy on data."""
    return loss_and_accuracy(predict_logits(model, data, setup, batch_size), data.labels)


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    epoch_time_sec: float


@dataclass
class EarlyStopping:
    """Stops after `patience` epochs without a lower smoothed validation loss; remembers the
    weights of the epoch with the lowest.

    The smoothed loss is an exponential moving average, s = smoothing·s + (1 - smoothing)·loss
    (smoothing 0: the raw loss): on a few dozen validation images one lucky or unlucky epoch
    moves the raw loss by more than a real improvement does, tripping the stop or picking a
    fluke as the best epoch.
    """

    patience: int
    smoothing: float = 0.0
    best_val_loss: float = float("inf")  # the raw validation loss of the best epoch
    best_smoothed: float = float("inf")
    smoothed: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    best_state: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    def update(self, epoch: int, val_loss: float, model: nn.Module) -> bool:
        """Record an epoch; True when it is the best so far."""
        if self.smoothed is None or not math.isfinite(self.smoothed):
            self.smoothed = val_loss
        else:
            self.smoothed = self.smoothing * self.smoothed + (1 - self.smoothing) * val_loss
        if self.smoothed < self.best_smoothed:
            self.best_smoothed, self.best_val_loss = self.smoothed, val_loss
            self.best_epoch, self.bad_epochs = epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {
            "patience": self.patience,
            "smoothing": self.smoothing,
            "best_val_loss": self.best_val_loss,
            "best_smoothed": self.best_smoothed,
            "smoothed": self.smoothed,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "best_state": self.best_state,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "EarlyStopping":
        """From state_dict; a checkpoint from before smoothing stopped on the raw loss and goes on so."""
        state = dict(state)
        state.setdefault("best_smoothed", state.get("best_val_loss", float("inf")))
        return cls(**state)

    @classmethod
    def of(cls, spec: JobSpec) -> "EarlyStopping":
        return cls(spec.stopping_patience, spec.val_smoothing)


@dataclass
class TrainingState:
    """Everything a resumed job needs besides the data: the checkpoint's content."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    early_stopping: EarlyStopping
    random: RandomStreams
    history: list[EpochMetrics] = field(default_factory=list)

    @property
    def next_epoch(self) -> int:
        return len(self.history) + 1


@dataclass(frozen=True)
class FitResult:
    history: list[EpochMetrics]
    best_epoch: int
    best_val_loss: float
    early_stopped: bool
    stopped_by_request: bool = False


class FitEvents(Protocol):
    def epoch_started(self, epoch: int) -> None: ...
    def epoch_finished(self, metrics: EpochMetrics, state: TrainingState, is_best: bool) -> None: ...
    # Called only when fit is given progress_every above 0.
    def epoch_progress(self, epoch: int, progress: BatchProgress) -> None: ...


def make_optimizer(spec: JobSpec, model: nn.Module) -> torch.optim.Optimizer:
    trainable = [p for p in model.parameters() if p.requires_grad]
    kind = torch.optim.AdamW if spec.optimizer == "adamw" else torch.optim.Adam
    return kind(trainable, lr=spec.learning_rate, weight_decay=spec.weight_decay)


def learning_rate_at(spec: JobSpec, epoch: int) -> float:
    """The learning rate of epoch (1-based) under spec.lr_schedule: a function of the epoch
    alone, so a resumed job needs no scheduler state."""
    if spec.lr_schedule == "constant":
        return spec.learning_rate
    return spec.learning_rate * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / spec.epochs))


def set_learning_rate(optimizer: torch.optim.Optimizer, learning_rate: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = learning_rate


def fit(
    spec: JobSpec,
    state: TrainingState,
    data: SplitData,
    setup: TrainSetup,
    events: FitEvents,
    should_stop: Callable[[], bool] = lambda: False,
    progress_every: int = 0,
) -> FitResult:
    """Train from state.next_epoch up to spec.epochs with early stopping; restores the best weights.

    events.epoch_progress hears every progress_every training batches (0: never).
    """
    stopping = state.early_stopping
    early_stopped = stopped_by_request = False
    for epoch in range(state.next_epoch, spec.epochs + 1):
        events.epoch_started(epoch)
        set_learning_rate(state.optimizer, learning_rate_at(spec, epoch))
        started = time.perf_counter()
        on_progress = partial(events.epoch_progress, epoch) if progress_every > 0 else None
        train_loss, train_acc = train_one_epoch(
            state.model,
            data.train,
            state.optimizer,
            setup,
            spec.batch_size,
            state.random,
            should_stop,
            on_progress,
            progress_every,
        )
        if should_stop():
            stopped_by_request = True
            break
        # Without test-time views: they would cost several passes per epoch to pick the best one.
        val_loss, val_acc = evaluate(state.model, data.val, replace(setup, tta=False), spec.batch_size)
        metrics = EpochMetrics(epoch, train_loss, train_acc, val_loss, val_acc, time.perf_counter() - started)
        state.history.append(metrics)
        is_best = stopping.update(epoch, val_loss, state.model)
        events.epoch_finished(metrics, state, is_best)
        if stopping.should_stop:
            early_stopped = epoch < spec.epochs
            break
    if stopping.best_state is not None:
        state.model.load_state_dict(stopping.best_state)
    return FitResult(
        list(state.history), stopping.best_epoch, stopping.best_val_loss, early_stopped, stopped_by_request
    )
