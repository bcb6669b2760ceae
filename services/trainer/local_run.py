"""One training job in the foreground, without Redis or MongoDB (`paddy train`).

It runs exactly as a queued job does (training.train), writing its checkpoints to the run
directory as usual, its events to `<run dir>/events.jsonl` instead of the Redis Stream, and its
summary to `<run dir>/summary.json`.
"""

import socket
import threading
from collections.abc import Callable
from pathlib import Path

from services.trainer import checkpoints
from services.trainer.lifecycle import Attempt, reporting_failure
from services.trainer.memory import keep_freed_memory
from services.trainer.settings import TrainerSettings
from services.trainer.training import train
from shared.schemas.events import SEQ_PER_ATTEMPT, TrainingSummary
from shared.schemas.jobs import JobSpec

EVENTS_FILE = "events.jsonl"
SUMMARY_FILE = "summary.json"


class LocalPublisher:
    """A Publisher (events.py) without Redis, appending each event as a line of JSON."""

    def __init__(self, path: Path, run_id: str, attempt: int = 1, on_event: Callable | None = None):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.run_id = run_id
        self.path = path
        self._next_seq = attempt * SEQ_PER_ATTEMPT + 1
        self._on_event = on_event
        self._lock = threading.Lock()
        self._file = path.open("a", encoding="utf-8")

    def publish(self, event_type: type, **fields) -> None:
        with self._lock:
            event = event_type(run_id=self.run_id, seq=self._next_seq, **fields)
            self._next_seq += 1
            self._file.write(event.model_dump_json() + "\n")
            self._file.flush()
        if self._on_event is not None:
            self._on_event(event)

    def close(self) -> bool:
        with self._lock:
            self._file.close()
        return True


def train_locally(
    run_id: str, spec: JobSpec, settings: TrainerSettings, on_event: Callable | None = None
) -> TrainingSummary:
    """Train spec as run run_id in this process; on_event sees every event as it is written."""
    if settings.keep_freed_memory:
        keep_freed_memory()
    run_dir = checkpoints.run_dir(settings.artifacts_root, run_id)
    publisher = LocalPublisher(run_dir / EVENTS_FILE, run_id, on_event=on_event)
    try:
        with reporting_failure(publisher):
            summary = train(spec, settings, Attempt(run_id, 1, f"local@{socket.gethostname()}", publisher))
    finally:
        publisher.close()
    assert isinstance(summary, TrainingSummary)  # nothing asks a local run to stop
    (run_dir / SUMMARY_FILE).write_text(summary.model_dump_json(indent=2))
    return summary
