"""Paths a job names (its dataset, its weights file) lead to files inside their root and nowhere
else: no `..`, no absolute path elsewhere, no symlink out. The API checks them when the job is
posted and the trainer again when it reads them (the files may change in between).

Messages name the path as the client wrote it and the root by its setting, never a server path:
telling "missing" from "outside" must not map a host's files.
"""

import re
from pathlib import Path

# C0 and C1 controls and DEL: a NUL ends a path early in C, a newline forges log lines.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Longest path a job may name; Linux refuses longer ones anyway (PATH_MAX).
MAX_PATH_LENGTH = 1024
# How much of a refused path a message repeats.
SHOWN_CHARACTERS = 100


class PathRefusedError(ValueError):
    """A named path that is empty, malformed, missing or leads outside its root."""


class PathNotFoundError(PathRefusedError):
    """A well-formed path inside its root that names nothing there."""


def shown(given: str) -> str:
    """The path as a message repeats it: quoted, cut short."""
    return repr(given if len(given) <= SHOWN_CHARACTERS else given[:SHOWN_CHARACTERS] + "…")


def is_inside(path: Path, root: Path) -> bool:
    """Whether path, every link on its way followed, ends inside root (or is root)."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError, ValueError):  # link loops, names the OS refuses
        return False


def resolve_inside(given: str, root: Path, what: str, root_name: str) -> Path:
    """The existing path `given` names: relative to root, or absolute inside it; links resolved.

    Raises PathRefusedError naming `what` (e.g. "dataset") and the root by `root_name`
    (e.g. "the data root (PADDY_DATA_ROOT)").
    """
    if not given.strip():
        raise PathRefusedError(f"{what} is empty; name a path inside {root_name}")
    if CONTROL_CHARACTERS.search(given) or len(given) > MAX_PATH_LENGTH:
        raise PathRefusedError(f"{what} must be at most {MAX_PATH_LENGTH} characters without control characters")
    named = Path(given)
    if ".." in named.parts:
        raise PathRefusedError(f"{what} {shown(given)} must not contain '..'; name a path inside {root_name}")
    resolved_root = root.resolve()
    not_found = PathNotFoundError(f"{what} {shown(given)} not found in {root_name}")
    try:
        # Not strict: a path that leads out is "outside" whether or not its target exists.
        resolved = (named if named.is_absolute() else resolved_root / named).resolve()
    except (OSError, RuntimeError, ValueError):  # link loops, names the OS refuses
        raise not_found from None
    if not resolved.is_relative_to(resolved_root):
        raise PathRefusedError(
            f"{what} {shown(given)} is outside {root_name} (absolute paths and links must stay inside it)"
        )
    try:
        resolved.stat()
    except (OSError, ValueError):
        raise not_found from None
    return resolved


# `weights` a job may name besides a file: torchvision's ImageNet weights, or none.
WEIGHTS_KEYWORDS = frozenset({"imagenet", "none"})
WEIGHTS_ROOT_NAME = "the weights root (PADDY_WEIGHTS_ROOT)"


def resolve_weights_file(weights: str, weights_root: Path) -> Path:
    """The state-dict file a job's `weights` names inside weights_root; PathRefusedError otherwise."""
    path = resolve_inside(weights, weights_root, "weights", WEIGHTS_ROOT_NAME)
    if not path.is_file():
        raise PathRefusedError(f"weights {shown(weights)} is not a file in {WEIGHTS_ROOT_NAME}")
    return path
