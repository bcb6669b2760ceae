"""Sweeps: grid searches (one job per combination, all validated before any is queued), random
and tpe searches that Optuna samples and prunes (services/api/sweep_driver.py drives them), and
studies (folds, repeats) read back with their test metrics' intervals."""

import itertools
import math
from typing import Annotated, Any

import redis
from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import ValidationError

from services.api import search
from services.api.datasets import check_dataset
from services.api.deps import QueueDep, RedisDep, SettingsDep, StoreDep, SweepServicesDep
from services.api.errors import ALLOWED, field_error
from services.api.presenting import job_public
from services.api.queueing import cancel_run, new_run_id, queue_run
from services.api.settings import ApiSettings
from services.api.studies import study_intervals
from services.api.sweep_driver import SearchSettings, Services, advance, cancel, create_study
from services.api.weights import check_weights
from shared.datasets.imagefolder import DatasetError
from shared.paths import PathRefusedError
from shared.schemas.events import utc_now
from shared.schemas.jobs import (
    FINISHED_STATES,
    LOWER_IS_BETTER,
    RUN_ID_PATTERN,
    JobSpec,
    SearchPublic,
    SummaryMetric,
    SweepCreate,
    SweepCreated,
    SweepPublic,
    SweepsPublic,
    SweepSummaryPublic,
)

router = APIRouter(prefix="/sweeps", tags=["sweeps"])

GRID_FIELDS = frozenset(JobSpec.model_fields) - {"version"}
SweepIdPath = Annotated[str, Path(pattern=RUN_ID_PATTERN, examples=["5b0c2e7d91aa"])]
# Seconds POST /sweeps waits for a sweep driver's pass over the new sweep to end.
LOCK_WAIT_S = 10


def expand(sweep: SweepCreate, max_runs: int) -> list[dict[str, Any]]:
    """Every combination of the grid on top of base, each a valid JobSpec dump; else a 422."""
    unknown = sorted(set(sweep.grid) - GRID_FIELDS)
    if unknown:
        raise field_error(
            "grid", f"unknown grid field(s) {unknown}; choose from {sorted(GRID_FIELDS)}", "grid", unknown[0]
        )
    empty = sorted(name for name, values in sweep.grid.items() if not values)
    if empty:
        raise field_error("grid", f"grid field(s) {empty} have no values", "grid", empty[0])
    combinations = math.prod(len(values) for values in sweep.grid.values())
    if combinations > max_runs:
        raise field_error(
            "grid", f"the grid has {combinations} combinations; at most {max_runs} are allowed (PADDY_MAX_SWEEP_RUNS)"
        )
    fields = list(sweep.grid)
    specs = []
    for index, values in enumerate(itertools.product(*(sweep.grid[name] for name in fields))):
        combination = dict(zip(fields, values, strict=True))
        try:
            spec = JobSpec.model_validate({**sweep.base, **combination})
        except ValidationError as error:
            field, message = _first_error(error)
            where = ("grid", field) if field in combination else ("base", field)
            raise field_error(field, f"combination {index + 1} {combination}: {message}", *where) from None
        if spec.is_study:
            field = "repeats" if spec.repeats is not None else "folds"
            where = ("grid", field) if field in combination else ("base", field)
            raise field_error(
                field,
                f"combination {index + 1} {combination}: a sweep's runs are single runs; give each a fold, "
                "or queue a study with POST /jobs",
                *where,
            )
        specs.append(spec.model_dump())
    # Base values the grid replaces are in no combination, but they are stored with the sweep.
    try:
        JobSpec.model_validate({**specs[0], **sweep.base})
    except ValidationError as error:
        field, message = _first_error(error)
        raise field_error(field, f"base {field}: {message}", "base", field) from None
    return specs


def _first_error(error: ValidationError) -> tuple[str, str]:
    """The field of a JobSpec's first error, and its message with the allowed values."""
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "base"
    message = first["msg"]
    if field in ALLOWED and "allowed" not in message:
        message += f" (allowed: {ALLOWED[field]})"
    return field, message


def _where(sweep: SweepCreate, field: str) -> tuple[str, str]:
    if field in sweep.space:
        return ("space", field)
    return ("grid", field) if field in sweep.grid else ("base", field)


def check_files(specs: list[dict[str, Any]], sweep: SweepCreate, settings: ApiSettings) -> None:
    """Every dataset and weights file the sweep's runs name must be found inside its root."""
    for dataset in sorted({spec["dataset"] for spec in specs}):
        try:
            check_dataset(dataset, settings.data_root)
        except DatasetError as error:
            raise field_error("dataset", str(error), *_where(sweep, "dataset")) from None
    for weights in sorted({spec["weights"] for spec in specs}):
        try:
            check_weights(weights, settings.weights_root)
        except PathRefusedError as error:
            raise field_error("weights", str(error), *_where(sweep, "weights")) from None


def create_search(sweep: SweepCreate, services: Services, settings: ApiSettings) -> SweepCreated:
    """A random or tpe search: its Optuna study, its sweep document, and its first runs."""
    max_runs = sweep.max_runs or search.DEFAULT_MAX_RUNS
    if max_runs > settings.max_sweep_runs:
        raise field_error(
            "max_runs", f"at most {settings.max_sweep_runs} runs are allowed (PADDY_MAX_SWEEP_RUNS)", "max_runs"
        )
    try:
        jobs = search.check_space(sweep.base, sweep.space, sweep.first_trials)
    except search.SpaceError as error:
        raise field_error(error.field, str(error), "space", error.field) from None
    check_files([job.model_dump() for job in jobs], sweep, settings)
    if sweep.budget_epochs is not None and sweep.budget_epochs < jobs[0].epochs:
        raise field_error(
            "budget_epochs",
            f"a budget of {sweep.budget_epochs} epochs is less than one run's {jobs[0].epochs} (base.epochs)",
            "budget_epochs",
        )
    sweep_id = new_run_id()
    space = {field: param.model_dump(exclude_defaults=True) for field, param in sweep.space.items()}
    document = {
        "sweep_id": sweep_id,
        "created_at": utc_now(),
        "kind": sweep.strategy,
        "base": sweep.base,
        "grid": None,
        "space": space,
        "first_trials": sweep.first_trials,
        "pruner": sweep.pruner,
        "metric": sweep.metric,
        "max_runs": max_runs,
        "parallel": sweep.parallel,
        "budget_epochs": sweep.budget_epochs,
        "seed": sweep.seed,
        "state": "running",
    }
    create_study(SearchSettings.of(document), services.storage, sweep.first_trials)
    services.store.insert_sweep(document)
    # Queues the first runs (waiting for the driver's pass, should it hold the sweep); the driver does the rest.
    state = advance(sweep_id, services, wait_s=LOCK_WAIT_S)
    run_ids = [trial["run_id"] for trial in (state or {}).get("trials", [])]
    return SweepCreated(sweep_id=sweep_id, run_ids=run_ids, count=len(run_ids))


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SweepCreated,
    responses={422: {"description": "an invalid combination, an unknown field or too many runs"}},
)
def create_sweep(
    sweep: SweepCreate,
    store: StoreDep,
    queue: QueueDep,
    events: RedisDep,
    settings: SettingsDep,
    services: SweepServicesDep,
) -> SweepCreated:
    """grid: queue one job per combination of the grid (a cartesian product) on top of `base`.

    random or tpe: Optuna samples `space` on top of `base`; the first `parallel` runs are queued
    now, each next one when a run ends, until `max_runs` runs or `budget_epochs` epochs are
    spent. With a pruner, a run that is clearly losing after an epoch stops and ends `pruned`.
    """
    if sweep.strategy != "grid":
        return create_search(sweep, services, settings)
    specs = expand(sweep, settings.max_sweep_runs)
    check_files(specs, sweep, settings)
    sweep_id = new_run_id()
    store.insert_sweep(
        {"sweep_id": sweep_id, "created_at": utc_now(), "kind": "grid", "base": sweep.base, "grid": sweep.grid}
    )
    run_ids = [queue_run(store, queue, events, spec, sweep_id=sweep_id).run_id for spec in specs]
    return SweepCreated(sweep_id=sweep_id, run_ids=run_ids, count=len(run_ids))


@router.get("", response_model=SweepsPublic)
def list_sweeps(
    store: StoreDep, limit: Annotated[int, Query(ge=1, le=500, description="most sweeps, newest first")] = 100
) -> SweepsPublic:
    """Sweeps and studies, newest first."""
    found = [
        SweepSummaryPublic(
            sweep_id=sweep["sweep_id"],
            kind=sweep.get("kind") or "grid",
            created_at=sweep["created_at"],
            model_name=(sweep.get("base") or {}).get("model_name"),
            dataset=(sweep.get("base") or {}).get("dataset"),
            state=sweep.get("state"),
        )
        for sweep in store.list_sweeps(limit)
    ]
    return SweepsPublic(data=found, count=len(found))


@router.get("/{sweep_id}", response_model=SweepPublic, responses={404: {"description": "no such sweep"}})
def get_sweep(
    sweep_id: SweepIdPath,
    store: StoreDep,
    metric: Annotated[SummaryMetric, Query(description="the summary metric that picks `best`")] = "val_accuracy",
) -> SweepPublic:
    """The sweep's runs in the order they were queued, and its best completed run by metric; for a
    study (folds or repeats), each test metric's mean and 95 % interval over its completed runs."""
    if (sweep := store.get_sweep(sweep_id)) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"sweep {sweep_id} not found")
    kind = sweep.get("kind") or "grid"  # sweeps stored before studies were all grids
    runs = store.runs_of_sweep(sweep_id)
    scored = [
        run
        for run in runs
        if run["status"] == "completed" and isinstance((run.get("metrics") or {}).get(metric), int | float)
    ]
    best = None
    if scored:
        pick = min if metric in LOWER_IS_BETTER else max
        best = pick(scored, key=lambda run: run["metrics"][metric])
    now = utc_now()
    return SweepPublic(
        sweep_id=sweep_id,
        kind=kind,
        metric=metric,
        count=len(runs),
        runs=[job_public(run, now=now) for run in runs],
        best=job_public(best, now=now) if best else None,
        test_metrics=study_intervals(runs) if kind in ("folds", "repeats") else None,
        search=SearchPublic.model_validate(sweep["search"]) if sweep.get("search") else None,
    )


@router.post(
    "/{sweep_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SweepPublic,
    responses={404: {"description": "no such sweep"}, 409: {"description": "nothing of it is left to cancel"}},
)
def cancel_sweep(
    sweep_id: SweepIdPath,
    store: StoreDep,
    queue: QueueDep,
    flags: RedisDep,
    services: SweepServicesDep,
) -> SweepPublic:
    """Cancel every queued or running run of a sweep or study; a random or tpe search also stops
    for good (`search.state` cancelled: no new run is queued, its running trials fail)."""
    if store.get_sweep(sweep_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"sweep {sweep_id} not found")
    try:
        stopped = cancel(sweep_id, services, wait_s=LOCK_WAIT_S)
    except redis.exceptions.LockError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(error)) from None
    unfinished = [run for run in store.runs_of_sweep(sweep_id) if run["status"] not in FINISHED_STATES]
    if stopped is None and not unfinished:
        raise HTTPException(status.HTTP_409_CONFLICT, f"sweep {sweep_id} has finished: nothing to cancel")
    for run in unfinished:
        cancel_run(run["run_id"], run["status"], store, queue, flags)
    return get_sweep(sweep_id, store)
