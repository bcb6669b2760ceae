"""Service state: /health for people and orchestrators, /metrics for Prometheus."""

import logging
from datetime import UTC, datetime
from typing import Any, get_args

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse
from pymongo.errors import PyMongoError
from redis import RedisError

from services.api.deps import RedisDep, StoreDep, check_api_key
from shared import names
from shared.recorder_state import read_recorder_states, recorder_lag
from shared.schemas.jobs import HealthPublic, RunState
from shared.worker_presence import read_workers, trainers

router = APIRouter(tags=["service"])
log = logging.getLogger(__name__)

QUEUES = (names.TRAINING_QUEUE, names.PREDICT_QUEUE, names.BACKGROUND_QUEUE)
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def _unreachable(error: Exception) -> str:
    return f"unreachable: {type(error).__name__}"


@router.get("/health", response_model=HealthPublic, responses={503: {"model": HealthPublic, "description": "degraded"}})
def health(redis_client: RedisDep, store: StoreDep) -> JSONResponse:
    """200 when Redis and MongoDB answer and no recorder reports MongoDB down, else 503.

    Open without the API key, so that health checks need no secret.
    """
    checks: dict[str, str] = {}
    try:
        redis_client.ping()
        checks["redis"] = "ok"
    except RedisError as error:
        checks["redis"] = _unreachable(error)
    try:
        store.ping()
        checks["mongodb"] = "ok"
    except PyMongoError as error:
        checks["mongodb"] = _unreachable(error)
    recorders, lag, workers = [], None, []
    if checks["redis"] == "ok":
        try:
            recorders = read_recorder_states(redis_client)
            lag = recorder_lag(redis_client)
            workers = read_workers(redis_client)
        except RedisError as error:
            log.warning("health: could not read the recorders or workers: %s", error)
    recorders_ok = all(state.get("mongodb") == "ok" for state in recorders)
    healthy = checks["redis"] == "ok" and checks["mongodb"] == "ok" and recorders_ok
    body = HealthPublic(
        status="ok" if healthy else "degraded",
        **checks,
        workers=len(trainers(workers)),
        predictors=len(workers) - len(trainers(workers)),
        worker_details=workers,
        recorder={"recorders": recorders, "lag": lag},
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if healthy else 503)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    dependencies=[Depends(check_api_key)],
    responses={
        200: {
            "content": {PROMETHEUS_TEXT: {"example": 'paddy_runs{status="completed"} 12\npaddy_workers 2\n'}},
            "description": "Prometheus text format",
        }
    },
)
def metrics(redis_client: RedisDep, store: StoreDep) -> PlainTextResponse:
    """Runs per status, Celery queue lengths, recorder lag, live workers and visibility refresh misses."""
    counts = store.status_counts()
    lines = ["# HELP paddy_runs Runs by status (archived ones included).", "# TYPE paddy_runs gauge"]
    lines += [f'paddy_runs{{status="{state}"}} {counts.get(state, 0)}' for state in get_args(RunState)]
    lines += ["# HELP paddy_queue_length Celery messages waiting in each queue.", "# TYPE paddy_queue_length gauge"]
    lines += [f'paddy_queue_length{{queue="{name}"}} {redis_client.llen(name)}' for name in QUEUES]
    lag = recorder_lag(redis_client)
    lines += [
        "# HELP paddy_recorder_lag_events Events on the stream not stored yet.",
        "# TYPE paddy_recorder_lag_events gauge",
        f"paddy_recorder_lag_events {lag if lag is not None else 0}",
    ]
    workers = read_workers(redis_client)
    lines += [
        "# HELP paddy_workers Trainer workers alive, busy or idle (their presence keys in Redis).",
        "# TYPE paddy_workers gauge",
        f"paddy_workers {len(trainers(workers))}",
        "# HELP paddy_predictors Predictor workers alive (the predict queue's own workers beside the trainers).",
        "# TYPE paddy_predictors gauge",
        f"paddy_predictors {len(workers) - len(trainers(workers))}",
    ]
    lines += gpu_metric_lines(store.running_gpus())
    lines += [
        "# HELP paddy_visibility_refresh_misses_total Refreshes of a running job's broker message that found "
        "none: the job is delivered again while it runs.",
        "# TYPE paddy_visibility_refresh_misses_total counter",
        f"paddy_visibility_refresh_misses_total {int(redis_client.get(names.VISIBILITY_MISSES_KEY) or 0)}",
    ]
    return PlainTextResponse("\n".join(lines) + "\n", media_type=PROMETHEUS_TEXT)


MIB = 1024 * 1024
# (metric, help, the reading's field, factor to the metric's unit)
GPU_METRICS = (
    ("paddy_gpu_utilization_percent", "Share of NVML's last sample period a kernel ran", "utilization_pct", 1),
    ("paddy_gpu_memory_used_bytes", "GPU memory in use, every process's", "memory_used_mib", MIB),
    ("paddy_gpu_memory_total_bytes", "GPU memory in all", "memory_total_mib", MIB),
)


def gpu_metric_lines(runs: list[dict[str, Any]]) -> list[str]:
    """The GPUs of the trainers running runs, from each run's newest heartbeat with GPU figures:
    one series per worker and GPU (runs packed on one GPU report it once). No runs with GPU
    figures (CPU trainers, or none running): no lines at all, not zeros."""
    newest: dict[tuple[str, str], tuple[datetime, dict[str, Any]]] = {}
    for run in runs:
        at = run.get("heartbeat_at")
        at = at if isinstance(at, datetime) else datetime.min.replace(tzinfo=UTC)
        for reading in run.get("gpu") or []:
            key = (run.get("worker") or "", reading["uuid"])
            if key not in newest or at > newest[key][0]:
                newest[key] = (at, reading)
    if not newest:
        return []
    lines = []
    for metric, help_text, field, factor in GPU_METRICS:
        lines += [f"# HELP {metric} {help_text} (NVML), per trainer GPU of a running run.", f"# TYPE {metric} gauge"]
        for (worker, uuid), (_, reading) in sorted(newest.items()):
            labels = (
                f'worker="{_label(worker)}",gpu="{reading["index"]}",'
                f'uuid="{_label(uuid)}",name="{_label(reading["name"])}"'
            )
            value = reading[field] * factor
            lines.append(f"{metric}{{{labels}}} {round(value) if factor != 1 else format(value, 'g')}")
    return lines


def _label(value: str) -> str:
    """A Prometheus label value: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
