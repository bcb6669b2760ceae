"""Finding runs and showing them: a run id in a path, a run or a 404, a run as JobPublic (with its
test accuracy's interval), pages."""

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

from fastapi import HTTPException, Path, status

from shared.schemas.events import utc_now
from shared.schemas.jobs import RUN_ID_PATTERN, JobPublic
from shared.stats import wilson_interval
from shared.store import Store

# Pages of runs: at most MAX_LIMIT a page. Deeper pages than MAX_OFFSET are refused: a skip must
# fit MongoDB's 64-bit integers, and no list is that long.
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_OFFSET = 10_000_000

# A run id in a path: letters, digits, '-' and '_' (a NUL or a kilobyte of text is a 422, never a query).
RunIdPath = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="a run id", examples=["3f9a1c0b2d4e"])]


def job_public(run: dict[str, Any], summary: dict[str, Any] | None = None, now: datetime | None = None) -> JobPublic:
    """A stored run as the API shows it, with its heartbeat's age at `now`."""
    heartbeat_at = run.get("heartbeat_at")
    age = None
    if isinstance(heartbeat_at, datetime):
        age = round(max(0.0, ((now or utc_now()) - heartbeat_at).total_seconds()), 3)
    return JobPublic.model_validate({**run, "summary": summary, "heartbeat_age_s": age, **test_uncertainty(run)})


def test_uncertainty(run: dict[str, Any]) -> dict[str, Any]:
    """`test_images` and `test_accuracy_interval` (Wilson, 95 %) from the run's stored evaluation.

    Derived whenever a run is shown, never stored: the evaluation's accuracy and image count stay
    the one truth.
    """
    evaluation = run.get("evaluation") or {}
    images, accuracy = evaluation.get("images"), evaluation.get("accuracy")
    if not isinstance(images, int) or images <= 0 or not isinstance(accuracy, int | float):
        return {}
    correct = min(images, max(0, round(accuracy * images)))
    return {"test_images": images, "test_accuracy_interval": wilson_interval(correct, images)}


def run_or_404(store: Store, run_id: str) -> dict[str, Any]:
    run = store.get_run(run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} not found")
    return run


def find_runs(store: Store, run_ids: Iterable[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The runs found, by id in the order given, and the ids not found."""
    # One query per run: nx-27017 scans for `$in` over run ids but uses the run_id index for one.
    found, unknown = {}, []
    for run_id in run_ids:
        if (run := store.get_run(run_id)) is None:
            unknown.append(run_id)
        else:
            found[run_id] = run
    return found, unknown
