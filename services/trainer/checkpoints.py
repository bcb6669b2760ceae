"""Checkpoints in the shared artifacts directory: `best.pt` and `last.pt` per run.

Each is one dict enough to resume: model, optimizer, epoch history, early-stopping state,
random streams, spec, the split it trained on, and the attempt that wrote it. Written to a
temporary file and renamed, so a crash mid-write never leaves a torn checkpoint; replaced only
while the attempt holds the run's lease (runner.CheckpointingEvents, lease.py).
"""

import os
from pathlib import Path
from typing import Any

import torch

from shared import names

BEST = names.BEST_CHECKPOINT
LAST = "last.pt"


def run_dir(artifacts_root: Path, run_id: str) -> Path:
    return Path(artifacts_root) / names.RUNS_DIR / run_id


def save_checkpoint(path: Path, checkpoint: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # One temporary file per attempt: two attempts never write into the same one.
    partial = path.with_suffix(f".{checkpoint.get('attempt', 0)}.partial")
    torch.save(checkpoint, partial)
    os.replace(partial, path)


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """A checkpoint written by save_checkpoint (trusted: written by Paddy's own trainers)."""
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location=device, weights_only=False)
