"""Checkpoints in the shared artifacts directory: `best.pt` and `last.pt` per run.

Each is one dict enough to resume: model, optimizer, epoch history, early-stopping state,
random streams, spec, the split it trained on, and the attempt that wrote it. Written to a
temporary file and renamed, so a crash mid-write never leaves a torn checkpoint; replaced only
while the attempt holds the run's lease (training.EpochReporter, lease.py).
"""

import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from services.trainer.engine import EarlyStopping, EpochMetrics, TrainingState
from services.trainer.events import Publisher
from shared import names
from shared.schemas.events import EpochFinished
from shared.schemas.jobs import JobSpec

BEST = names.BEST_CHECKPOINT
LAST = "last.pt"
log = logging.getLogger(__name__)


@dataclass
class RunRecord:
    """What a checkpoint keeps about its run besides the training state."""

    run_id: str
    spec: JobSpec
    split_hash: str
    class_names: list[str]
    start_time: datetime  # of the run's first attempt
    attempt: int = 1  # the attempt writing the checkpoint
    # When each epoch of the history finished: a resumed attempt restates them (restated_epochs).
    finished_at: list[datetime] = field(default_factory=list)


def run_dir(artifacts_root: Path, run_id: str) -> Path:
    return Path(artifacts_root) / names.RUNS_DIR / run_id


def checkpoint_of(record: RunRecord, state: TrainingState) -> dict[str, Any]:
    return {
        "format": 1,
        "run_id": record.run_id,
        "spec": record.spec.model_dump(),
        "class_names": record.class_names,
        "split_hash": record.split_hash,
        "start_time": record.start_time,
        "attempt": record.attempt,
        "epoch": len(state.history),
        "history": [vars(m) for m in state.history],
        "finished_at": list(record.finished_at),
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "early_stopping": state.early_stopping.state_dict(),
        "random": state.random.state_dict(),
    }


def restore(state: TrainingState, checkpoint: dict[str, Any]) -> None:
    """Put a job back where `checkpoint` left it: the next epoch is checkpoint["epoch"] + 1."""
    state.model.load_state_dict(checkpoint["model"])
    state.optimizer.load_state_dict(checkpoint["optimizer"])
    state.early_stopping = EarlyStopping.from_state_dict(checkpoint["early_stopping"])
    state.random.load_state_dict(checkpoint["random"])
    state.history = [EpochMetrics(**m) for m in checkpoint["history"]]


def resumable_checkpoint(checkpoint_dir: Path, spec: JobSpec, split_hash: str) -> dict[str, Any] | None:
    """The run's last checkpoint, when it was written for this very spec and split."""
    path = checkpoint_dir / LAST
    if not path.is_file():
        return None
    checkpoint = load_checkpoint(path)
    if _stored_spec(checkpoint) != spec.model_dump() or checkpoint["split_hash"] != split_hash:
        log.warning("ignoring %s: written for another spec or split", path)
        return None
    return checkpoint


def _stored_spec(checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint's spec as this version reads it: a field added since it was written takes
    its default, so a job queued before an upgrade still resumes after it."""
    try:
        return JobSpec.model_validate(checkpoint["spec"]).model_dump()
    except ValueError:  # pydantic's ValidationError: a spec this version refuses
        return None


def restated_epochs(publisher: Publisher, checkpoint: dict[str, Any]) -> None:
    """Publish again the finished epochs a resumed checkpoint holds, each with its first finish time.

    The attempt that wrote the checkpoint may have died, or stood down, before its events for
    them reached the stream; the recorder's seq-guarded writes make a repeat harmless.
    """
    finished_at = checkpoint.get("finished_at") or []
    for position, metrics in enumerate(checkpoint["history"]):
        when = {"time": finished_at[position]} if position < len(finished_at) else {}
        publisher.publish(EpochFinished, **metrics, **when)


def save_checkpoint(path: Path, checkpoint: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial(path, checkpoint.get("attempt", 0))
    torch.save(checkpoint, partial)
    os.replace(partial, path)


def copy_checkpoint(saved: Path, path: Path, attempt: int) -> None:
    """path holding the checkpoint that save_checkpoint just wrote to saved, by copying the file
    (a transfer model's frozen backbone makes serialising it the slow part of an epoch)."""
    partial = _partial(path, attempt)
    shutil.copyfile(saved, partial)
    os.replace(partial, path)


def _partial(path: Path, attempt: int) -> Path:
    # One temporary file per attempt: two attempts never write into the same one.
    return path.with_suffix(f".{attempt}.partial")


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """A checkpoint written by save_checkpoint (trusted: written by Paddy's own trainers)."""
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location=device, weights_only=False)
