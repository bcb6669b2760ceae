"""A job's `weights` names a state-dict file inside the weights root, like its dataset a folder
inside the data root (shared/paths.py); "imagenet" and "none" name no file."""

from pathlib import Path

from shared.paths import WEIGHTS_KEYWORDS, resolve_weights_file


def check_weights(weights: str | None, weights_root: Path) -> None:
    """Raises PathRefusedError saying what is wrong; the message shows no server path."""
    if weights is not None and weights not in WEIGHTS_KEYWORDS:
        resolve_weights_file(weights, weights_root)
