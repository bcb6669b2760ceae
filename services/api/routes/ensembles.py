"""Soft-voting ensembles of completed training runs: a run like any other, evaluated on a trainer."""

from typing import Any

from fastapi import APIRouter, status

from services.api.deps import QueueDep, RedisDep, StoreDep
from services.api.errors import field_error
from services.api.presenting import find_runs
from services.api.queueing import queue_run
from shared.models import ENSEMBLE
from shared.schemas.jobs import EnsembleSpec, JobCreated
from shared.store import Store

router = APIRouter(prefix="/ensembles", tags=["ensembles"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobCreated,
    responses={
        422: {"description": "members unknown, not completed, ensembles themselves, or tested on different splits"}
    },
)
def create_ensemble(spec: EnsembleSpec, store: StoreDep, queue: QueueDep, events: RedisDep) -> JobCreated:
    """Queue an ensemble of completed training runs (`model_name: "ensemble"`) tested on one split:
    members whose split hashes differ are refused at once, each named with its hash."""
    runs, unknown = find_runs(store, spec.members)
    if unknown:
        raise field_error("members", f"unknown run(s): {', '.join(unknown)}")
    unfinished = [f"{run_id} ({run['status']})" for run_id, run in runs.items() if run["status"] != "completed"]
    if unfinished:
        raise field_error("members", f"members must be completed runs; not completed: {', '.join(unfinished)}")
    ensembles = [run_id for run_id, run in runs.items() if run["model_name"] == ENSEMBLE]
    if ensembles:
        raise field_error("members", f"members must be training runs; ensembles: {', '.join(ensembles)}")
    hashes = {run_id: split_hash(store, run) for run_id, run in runs.items()}
    if len({value for value in hashes.values() if value is not None}) > 1:
        listed = ", ".join(f"{run_id} (split {value or 'unknown'})" for run_id, value in hashes.items())
        raise field_error(
            "members",
            f"members were tested on different splits: {listed}; an ensemble's members must share one split "
            "(same dataset, split, split_seed, groups and fold)",
        )
    return queue_run(store, queue, events, spec.model_dump(), ensemble=True)


def split_hash(store: Store, run: dict[str, Any]) -> str | None:
    """The run's split hash: recorded when it started, else in its `trainings` summary (runs
    recorded before status documents kept their split); None when neither says."""
    recorded = (run.get("split") or {}).get("split_hash")
    if isinstance(recorded, str):
        return recorded
    summary = store.get_training(run["run_id"]) or {}
    return summary.get("split_hash") if isinstance(summary.get("split_hash"), str) else None
