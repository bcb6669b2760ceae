"""Where a job runs and what else its result depends on: device, package versions, code."""

import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from shared.schemas.jobs import JobSpec

REPO_ROOT = Path(__file__).resolve().parents[2]


def pick_device(setting: str) -> torch.device:
    """The device a setting names; "auto" is cuda when available, else cpu."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def device_name(device: torch.device) -> str:
    return (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({platform.processor() or platform.machine()})"
    )


def environment(seed: int, device: torch.device) -> dict[str, Any]:
    """What a result depends on besides its spec and data: seed, versions, code, device."""
    return {
        "seed": seed,
        "python": platform.python_version(),
        "torch": torch.__version__,
        # The installed distribution's version: importing torchvision costs a trainer 2 s at start.
        "torchvision": importlib.metadata.version("torchvision"),
        "git_commit": git_commit(),
        "device": device_name(device),
    }


def reproducibility(spec: JobSpec, device: torch.device, autocast_dtype: torch.dtype | None) -> dict[str, Any]:
    """A training run's environment and the speed switches that change its numbers."""
    return {
        **environment(spec.seed, device),
        "mixed_precision": str(autocast_dtype).removeprefix("torch.") if autocast_dtype else "fp32",
        "channels_last": spec.channels_last,
    }


def git_commit() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None
