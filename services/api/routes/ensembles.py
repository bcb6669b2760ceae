"""Soft-voting ensembles of completed training runs: a run like any other, evaluated on a trainer."""

from fastapi import APIRouter, status

from services.api.deps import QueueDep, RedisDep, StoreDep
from services.api.errors import field_error
from services.api.presenting import find_runs
from services.api.queueing import queue_run
from shared.models import ENSEMBLE
from shared.schemas.jobs import EnsembleSpec, JobCreated

router = APIRouter(prefix="/ensembles", tags=["ensembles"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobCreated,
    responses={422: {"description": "members unknown, not completed, or ensembles themselves"}},
)
def create_ensemble(spec: EnsembleSpec, store: StoreDep, queue: QueueDep, events: RedisDep) -> JobCreated:
    """Queue an ensemble of completed training runs (`model_name: "ensemble"`)."""
    runs, unknown = find_runs(store, spec.members)
    if unknown:
        raise field_error("members", f"unknown run(s): {', '.join(unknown)}")
    unfinished = [f"{run_id} ({run['status']})" for run_id, run in runs.items() if run["status"] != "completed"]
    if unfinished:
        raise field_error("members", f"members must be completed runs; not completed: {', '.join(unfinished)}")
    ensembles = [run_id for run_id, run in runs.items() if run["model_name"] == ENSEMBLE]
    if ensembles:
        raise field_error("members", f"members must be training runs; ensembles: {', '.join(ensembles)}")
    return queue_run(store, queue, events, spec.model_dump(), ensemble=True)
