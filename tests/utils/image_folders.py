"""ImageFolder layouts for tests that only scan and split: files named like images, never decoded."""

from collections.abc import Callable
from pathlib import Path


def make_folder(root: Path, counts: dict[str, int], name: Callable[[int], str] = "{}.jpg".format) -> Path:
    """One folder per class with counts[class] files, the i-th named name(i)."""
    for class_name, count in counts.items():
        (root / class_name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (root / class_name / name(i)).write_bytes(b"not decoded here")
    return root
