"""A run's kept Grad-CAM overlays (written by its trainer when the run completed,
services/trainer/run_heatmaps.py): which test images have one, and the file of each.

The index is the trainer's; the API opens only names of the trainer's form inside the run's own
heatmaps folder, whatever the index says.
"""

import json
import re
from pathlib import Path

from shared import names

OVERLAY_NAME = re.compile(r"[0-9a-f]{20}\.jpg")


def heatmaps_dir(artifacts_root: Path, run_id: str) -> Path:
    """run_id must be a validated run id (RUN_ID_PATTERN): it becomes a folder name."""
    return artifacts_root / names.RUNS_DIR / run_id / names.HEATMAPS_DIR


def kept_heatmaps(artifacts_root: Path, run_id: str) -> dict[str, str]:
    """{dataset-relative file: overlay name} of the run; empty when it kept none (or its index is unreadable)."""
    try:
        files = json.loads((heatmaps_dir(artifacts_root, run_id) / names.HEATMAPS_INDEX).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if not isinstance(files, dict):
        return {}
    return {file: name for file, name in files.items() if isinstance(name, str) and OVERLAY_NAME.fullmatch(name)}


def heatmap_file(artifacts_root: Path, run_id: str, file: str) -> Path | None:
    """The overlay of one test image of the run, or None when none was kept."""
    name = kept_heatmaps(artifacts_root, run_id).get(file)
    if name is None:
        return None
    path = heatmaps_dir(artifacts_root, run_id) / name
    return path if path.is_file() else None
