"""The model registry: each dataset's `candidate` and `production` aliases, promoted and demoted
with a reason, every change kept with the label of the key that made it."""

import logging
from typing import Annotated, Any

import redis
from fastapi import APIRouter, HTTPException, Query, status
from kombu.exceptions import OperationalError

from services.api.deps import KeyLabelDep, QueueDep, RedisDep, SettingsDep, StoreDep
from services.api.exports import ExportBusy, ask_export, export_state
from services.api.job_queue import JobQueue
from services.api.presenting import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, run_or_404, test_uncertainty
from services.api.settings import ApiSettings
from shared.models import ENSEMBLE
from shared.paths import MAX_PATH_LENGTH
from shared.schemas.events import utc_now
from shared.schemas.jobs import NO_CONTROL_CHARACTERS, RUN_ID_PATTERN
from shared.schemas.registry import (
    Alias,
    DemotionCreate,
    PromotionCreate,
    PromotionPublic,
    RegistryEntryPublic,
    RegistryEventPublic,
    RegistryHistoryPublic,
    RegistryPublic,
)
from shared.store import Store

router = APIRouter(prefix="/registry", tags=["registry"])
log = logging.getLogger(__name__)

DatasetQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_PATH_LENGTH,
        pattern=NO_CONTROL_CHARACTERS,
        description="only this dataset's aliases",
        examples=["rice-leaf-real"],
    ),
]


@router.get("", response_model=RegistryPublic)
def list_registry(store: StoreDep, dataset: DatasetQuery = None) -> RegistryPublic:
    """Every alias held now, by dataset and alias, each with its run's model, version and test
    accuracy (with its Wilson 95 % interval)."""
    entries = [
        registry_entry_public(entry, store.get_run(entry["run_id"])) for entry in store.registry_entries(dataset)
    ]
    return RegistryPublic(data=entries, count=len(entries))


@router.get("/history", response_model=RegistryHistoryPublic)
def registry_history(
    store: StoreDep,
    dataset: DatasetQuery = None,
    run_id: Annotated[
        str | None, Query(pattern=RUN_ID_PATTERN, description="changes that moved this run, or replaced it")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> RegistryHistoryPublic:
    """Every promotion and demotion, newest first: who (the key's label), when, why, and the run
    a promotion replaced."""
    entries, count = store.registry_history(dataset, run_id, offset, limit)
    return RegistryHistoryPublic(data=[RegistryEventPublic.model_validate(entry) for entry in entries], count=count)


@router.post(
    "/promote",
    response_model=PromotionPublic,
    responses={
        404: {"description": "no such run"},
        409: {"description": "the run has not completed, is archived, has no dataset, or holds the alias already"},
    },
)
def promote(
    body: PromotionCreate,
    store: StoreDep,
    queue: QueueDep,
    events: RedisDep,
    settings: SettingsDep,
    by: KeyLabelDep,
) -> PromotionPublic:
    """Give a completed run or ensemble an alias of its dataset. The run that held the alias
    loses it in the same write; the history keeps both (`previous_run_id`). A run promoted to
    `production` without an ONNX export gets one queued (`export_queued`)."""
    run = run_or_404(store, body.run_id)
    if run["status"] != "completed":
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"run {body.run_id} is {run['status']}; only completed runs can be promoted"
        )
    if run.get("archived"):
        raise HTTPException(status.HTTP_409_CONFLICT, f"run {body.run_id} is archived; it cannot be promoted")
    dataset = run_dataset(store, run)
    if dataset is None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"run {body.run_id} records no dataset")
    held = store.registry_entry(dataset, body.alias)
    if held is not None and held["run_id"] == body.run_id:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"run {body.run_id} is already {body.alias} of dataset {dataset!r}"
        )
    change = store.promote(dataset, body.alias, body.run_id, by or "unknown", body.reason, utc_now())
    log.info("%s promoted run %s to %s of %r", change["by"], body.run_id, body.alias, dataset)
    export_queued = on_promoted(run, body.alias, queue=queue, events=events, settings=settings)
    return PromotionPublic.model_validate({**change, "export_queued": export_queued})


@router.post(
    "/demote",
    response_model=RegistryEventPublic,
    responses={409: {"description": "no run holds the alias of that dataset"}},
)
def demote(body: DemotionCreate, store: StoreDep, by: KeyLabelDep) -> RegistryEventPublic:
    """Empty an alias of a dataset: the run that held it keeps everything else."""
    change = store.demote(body.dataset, body.alias, by or "unknown", body.reason, utc_now())
    if change is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"no run is {body.alias} of dataset {body.dataset!r}; nothing to demote"
        )
    log.info("%s demoted run %s from %s of %r", change["by"], change["run_id"], body.alias, body.dataset)
    return RegistryEventPublic.model_validate(change)


def on_promoted(
    run: dict[str, Any], alias: Alias, *, queue: JobQueue, events: redis.Redis, settings: ApiSettings
) -> bool:
    """After a run got an alias: a run promoted to `production` with no ONNX export (none asked
    for, or the last one failed) gets one queued; True when one was. The promotion stands
    whatever happens here: an export can always be asked for (POST /jobs/{run_id}/export)."""
    if alias != "production":
        return False
    run_id = run["run_id"]
    try:
        state = export_state(events, settings.artifacts_root, run_id)
        if state is not None and state.status != "failed":
            return False  # queued, running, completed, or refused by its parity check
        ask_export(queue, events, settings.artifacts_root, run_id, False, utc_now())
    except ExportBusy:
        return False
    except (OperationalError, redis.RedisError) as error:
        log.warning("run %s was promoted to production, but its ONNX export could not be queued: %s", run_id, error)
        return False
    return True


def run_dataset(store: Store, run: dict[str, Any]) -> str | None:
    """The dataset a run was trained (an ensemble: its members were trained) on: its spec's,
    else its `trainings` summary's, else an ensemble's first member's."""
    dataset = (run.get("spec") or {}).get("dataset")
    if isinstance(dataset, str) and dataset:
        return dataset
    summary = store.get_training(run["run_id"]) or {}
    if isinstance(summary.get("dataset"), str) and summary["dataset"]:
        return summary["dataset"]
    members = (run.get("spec") or {}).get("members") or []
    if run.get("model_name") == ENSEMBLE and members and (first := store.get_run(members[0])) is not None:
        return run_dataset(store, first)
    return None


def registry_entry_public(entry: dict[str, Any], run: dict[str, Any] | None) -> RegistryEntryPublic:
    """An alias as GET /registry shows it: with its run's model, version and test accuracy."""
    run = run or {}
    return RegistryEntryPublic.model_validate(
        {
            **entry,
            "model_name": run.get("model_name"),
            "version": run.get("version"),
            "test_accuracy": (run.get("metrics") or {}).get("test_accuracy"),
            "test_accuracy_interval": test_uncertainty(run).get("test_accuracy_interval"),
        }
    )
