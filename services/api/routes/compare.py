"""Several runs side by side: their epochs lined up by epoch number, and every pair tested on the
same images compared image by image (pairing.py); the images two runs disagree on; studies
compared fold by fold (studies.py)."""

import re
from itertools import combinations
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from services.api.deps import StoreDep
from services.api.errors import query_error
from services.api.pairing import differing_images, paired_comparisons
from services.api.presenting import RunIdPath, find_runs, job_public, run_or_404
from services.api.studies import STUDY_KINDS, compare_studies, study_intervals
from shared.schemas.events import utc_now
from shared.schemas.jobs import (
    RUN_ID_PATTERN,
    ComparePublic,
    CompareRow,
    EpochPublic,
    RunAgainstRun,
    StudiesComparePublic,
    StudyMetric,
    StudySummary,
)

router = APIRouter(tags=["compare"])
MIN_RUNS, MAX_RUNS = 2, 20
# MAX_RUNS ids of at most 64 characters, their commas, and some spaces.
MAX_RUN_IDS_LENGTH = 2048


def distinct_ids(text: str, parameter: str, noun: str) -> list[str]:
    """The distinct ids of a comma-separated query parameter; a 422 unless MIN_RUNS to MAX_RUNS."""
    ids = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not MIN_RUNS <= len(ids) <= MAX_RUNS or not all(re.fullmatch(RUN_ID_PATTERN, one) for one in ids):
        raise query_error(
            parameter,
            f"give {MIN_RUNS} to {MAX_RUNS} distinct {noun} (letters, digits, '-' and '_'), "
            f"comma-separated; got {len(ids)}",
        )
    return ids


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
    """The runs (each test accuracy with its 95 % interval), one row per epoch number up to the
    longest run (null where a run has none), and McNemar's exact test for every pair of runs
    tested on the same split."""
    ids = distinct_ids(run_ids, "run_ids", "run ids")
    runs, unknown = find_runs(store, ids)
    if unknown:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown run(s): {', '.join(unknown)}")
    epochs = {run_id: {e["epoch"]: EpochPublic.model_validate(e) for e in store.get_epochs(run_id)} for run_id in ids}
    longest = max((max(by_epoch, default=0) for by_epoch in epochs.values()), default=0)
    rows = [
        CompareRow(epoch=epoch, runs={run_id: epochs[run_id].get(epoch) for run_id in ids})
        for epoch in range(1, longest + 1)
    ]
    predictions = {run_id: store.get_test_predictions(run_id) for run_id in ids}
    pairs = paired_comparisons([runs[run_id] for run_id in ids], predictions)
    now = utc_now()
    return ComparePublic(runs=[job_public(runs[run_id], now=now) for run_id in ids], epochs=rows, pairs=pairs)


@router.get(
    "/compare/studies",
    response_model=StudiesComparePublic,
    responses={404: {"description": "unknown study ids"}, 422: {"description": "a grid sweep is not a study"}},
)
def compare_studies_route(
    store: StoreDep,
    study_ids: Annotated[
        str,
        Query(
            max_length=MAX_RUN_IDS_LENGTH,
            description=f"{MIN_RUNS}–{MAX_RUNS} comma-separated study ids (the sweep_id POST /jobs answered for "
            "a job with folds or repeats)",
            examples=["5b0c2e7d91aa,9e4f0a6c3b12"],
        ),
    ],
    metric: Annotated[StudyMetric, Query(description="the test metric compared")] = "test_accuracy",
) -> StudiesComparePublic:
    """Studies (folds or repeats) side by side: each one's test metrics with their intervals, and
    for every pair of one kind the paired difference fold by fold (or seed by seed) with its
    95 % interval, in words."""
    ids = distinct_ids(study_ids, "study_ids", "study ids")
    found = {study_id: study for study_id in ids if (study := store.get_sweep(study_id)) is not None}
    unknown = [study_id for study_id in ids if study_id not in found]
    if unknown:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown study id(s): {', '.join(unknown)}")
    grids = [study_id for study_id in ids if found[study_id].get("kind") not in STUDY_KINDS]
    if grids:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"not a study of folds or repeats: {', '.join(grids)} (grid sweeps have no folds to pair)",
        )
    runs = {study_id: store.runs_of_sweep(study_id) for study_id in ids}
    return StudiesComparePublic(
        metric=metric,
        studies=[
            StudySummary(
                sweep_id=study_id,
                kind=found[study_id]["kind"],
                count=len(runs[study_id]),
                test_metrics=study_intervals(runs[study_id]),
            )
            for study_id in ids
        ],
        pairs=[compare_studies(found[a], runs[a], found[b], runs[b], metric) for a, b in combinations(ids, 2)],
    )


@router.get(
    "/compare/{run_a}/{run_b}/images",
    response_model=RunAgainstRun,
    responses={
        404: {"description": "no such run, or one kept no per-image test predictions"},
        409: {"description": "the runs were tested on different splits"},
    },
)
def run_against_run(run_a: RunIdPath, run_b: RunIdPath, store: StoreDep) -> RunAgainstRun:
    """Two runs tested on the same split, image by image: the images only a got right and those
    only b got right, each with both runs' predicted class and confidence (the wrong run's most
    confident mistakes first); thumbnails at GET /datasets/{dataset}/images/{file}."""
    if run_a == run_b:
        raise query_error("run_b", "compare a run with another run")
    kept = {}
    for run_id in (run_a, run_b):
        run = run_or_404(store, run_id)
        if (kept_run := store.get_test_predictions(run_id)) is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"run {run_id} has no per-image test predictions (it is {run['status']}, or ran before Paddy kept them)",
            )
        kept[run_id] = (run, kept_run)
    (first, predictions_a), (_second, predictions_b) = kept[run_a], kept[run_b]
    if predictions_a["split_hash"] != predictions_b["split_hash"]:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"runs {run_a} and {run_b} were tested on different splits (split hash {predictions_a['split_hash']} "
            f"vs {predictions_b['split_hash']}), so on different images",
        )
    images, only_a, only_b = differing_images(predictions_a, predictions_b)
    return RunAgainstRun(
        run_a=run_a,
        run_b=run_b,
        dataset=(first.get("spec") or {}).get("dataset"),
        split_hash=predictions_a["split_hash"],
        images=images,
        only_a_right=only_a,
        only_b_right=only_b,
    )
