"""How the audit spreads its per-image and per-pair work over threads, and reports progress.

Threads, not processes: the heavy calls (Pillow's decoder, OpenCV's detector, matcher and
warps) release the GIL, and an audit also runs inside a Celery worker process, which as a
daemon may not start processes of its own.
"""

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Progress = Callable[[str, int, int], None]
"""progress(phase, done, total): called as a long audit moves on (phases: see audit.py)."""

DEFAULT_WORKERS = 2

In = TypeVar("In")
Out = TypeVar("Out")


class Workers:
    """A pool of threads whose map keeps the order of its items, so that an audit is the same
    whatever finishes first. One worker: everything runs in the calling thread."""

    def __init__(self, count: int = DEFAULT_WORKERS):
        if count < 1:
            raise ValueError(f"workers must be at least 1, got {count}")
        self._pool = ThreadPoolExecutor(count, thread_name_prefix="audit") if count > 1 else None

    def map(self, function: Callable[[In], Out], items: Iterable[In]) -> Iterator[Out]:
        return self._pool.map(function, items) if self._pool else map(function, items)

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._pool:
            self._pool.shutdown()


def quiet(phase: str, done: int, total: int) -> None:
    """The progress callback of an audit nobody watches."""
