"""The training loop: plain functions with everything passed in."""

import time
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from services.trainer.data import ImageTensors, SplitData, iterate_batches, random_flips, to_model_input
from shared.schemas.jobs import JobSpec


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    epoch_time_sec: float


@dataclass(frozen=True)
class FitResult:
    epochs: list[EpochMetrics]
    best_val_loss: float
    early_stopped: bool


class EpochEvents(Protocol):
    def epoch_started(self, epoch: int) -> None: ...
    def epoch_finished(self, metrics: EpochMetrics) -> None: ...


def train_one_epoch(
    model: nn.Module,
    data: ImageTensors,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    batch_size: int,
    generator: torch.Generator,
) -> tuple[float, float]:
    """One pass over the training images; returns (mean loss, accuracy)."""
    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    for images, labels in iterate_batches(data, batch_size, generator):
        inputs = to_model_input(random_flips(images, generator), device)
        labels = labels.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        logits = model(inputs)
        loss = nn.functional.cross_entropy(logits, labels)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
    return loss_sum / seen, correct / seen


def evaluate(model: nn.Module, data: ImageTensors, device: torch.device, batch_size: int) -> tuple[float, float]:
    """Mean loss and accuracy on data, in eval mode without gradients."""
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.inference_mode():
        for images, labels in iterate_batches(data, batch_size):
            labels = labels.to(device, non_blocking=True)
            logits = model(to_model_input(images, device))
            loss_sum += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(1) == labels).sum().item()
    return loss_sum / len(data), correct / len(data)


def fit(spec: JobSpec, model: nn.Module, data: SplitData, device: torch.device, events: EpochEvents) -> FitResult:
    """Adam + cross-entropy for spec.epochs epochs, reporting each epoch's start and end."""
    generator = torch.Generator().manual_seed(spec.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.learning_rate)
    history: list[EpochMetrics] = []
    for epoch in range(1, spec.epochs + 1):
        events.epoch_started(epoch)
        started = time.perf_counter()
        train_loss, train_acc = train_one_epoch(model, data.train, optimizer, device, spec.batch_size, generator)
        val_loss, val_acc = evaluate(model, data.val, device, spec.batch_size)
        metrics = EpochMetrics(epoch, train_loss, train_acc, val_loss, val_acc, time.perf_counter() - started)
        history.append(metrics)
        events.epoch_finished(metrics)
    return FitResult(history, min(m.val_loss for m in history), early_stopped=False)
