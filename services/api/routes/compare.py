"""Several runs side by side, their epochs lined up by epoch number."""

import re
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from services.api.deps import StoreDep
from services.api.presenting import find_runs, job_public
from shared.schemas.events import utc_now
from shared.schemas.jobs import RUN_ID_PATTERN, ComparePublic, CompareRow, EpochPublic

router = APIRouter(tags=["compare"])
MIN_RUNS, MAX_RUNS = 2, 20
# MAX_RUNS ids of at most 64 characters, their commas, and some spaces.
MAX_RUN_IDS_LENGTH = 2048


@router.get("/compare", response_model=ComparePublic, responses={404: {"description": "unknown run ids"}})
def compare(
    store: StoreDep,
    run_ids: Annotated[
        str,
        Query(
            max_length=MAX_RUN_IDS_LENGTH,
            description=f"{MIN_RUNS}–{MAX_RUNS} comma-separated run ids",
            examples=["3f9a1c0b2d4e,7c21e5a09b13"],
        ),
    ],
) -> ComparePublic:
    """The runs, and one row per epoch number up to the longest run (null where a run has none)."""
    ids = list(dict.fromkeys(part.strip() for part in run_ids.split(",") if part.strip()))
    if not MIN_RUNS <= len(ids) <= MAX_RUNS or not all(re.fullmatch(RUN_ID_PATTERN, run_id) for run_id in ids):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [
                {
                    "loc": ["query", "run_ids"],
                    "type": "value_error",
                    "msg": f"give {MIN_RUNS} to {MAX_RUNS} distinct run ids (letters, digits, '-' and '_'), "
                    f"comma-separated; got {len(ids)}",
                }
            ],
        )
    runs, unknown = find_runs(store, ids)
    if unknown:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown run(s): {', '.join(unknown)}")
    epochs = {run_id: {e["epoch"]: EpochPublic.model_validate(e) for e in store.get_epochs(run_id)} for run_id in ids}
    longest = max((max(by_epoch, default=0) for by_epoch in epochs.values()), default=0)
    rows = [
        CompareRow(epoch=epoch, runs={run_id: epochs[run_id].get(epoch) for run_id in ids})
        for epoch in range(1, longest + 1)
    ]
    now = utc_now()
    return ComparePublic(runs=[job_public(runs[run_id], now=now) for run_id in ids], epochs=rows)
