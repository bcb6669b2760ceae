"""A run's ONNX export as the API sees it: asked for, running, or done (the trainer's report).

The trainer writes the export and its report (`export.json`, shared/schemas/exports.py) into the
run's export folder under the artifacts root (services/trainer/onnx_export.py). Between
POST /jobs/{id}/export and the trainer starting, the request lives in Redis
(names.EXPORT_REQUEST_KEY), like an audit's: it counts only while it is newer than the report, and
expires, so a task lost for good does not look queued for ever. The API opens only the fixed file
names of the run's own export folder.
"""

from datetime import datetime, timedelta
from pathlib import Path

import redis
from pydantic import ValidationError

from services.api.job_queue import JobQueue
from shared import names
from shared.schemas.exports import ExportPublic, ExportReport, ExportRequest


def export_dir(artifacts_root: Path, run_id: str) -> Path:
    """run_id must be a validated run id (RUN_ID_PATTERN): it becomes a folder name."""
    return artifacts_root / names.RUNS_DIR / run_id / names.EXPORT_DIR


def read_report(artifacts_root: Path, run_id: str) -> ExportReport | None:
    """The trainer's report of the run's latest export; None when there is none (or it is unreadable)."""
    try:
        return ExportReport.model_validate_json((export_dir(artifacts_root, run_id) / names.EXPORT_REPORT).read_bytes())
    except (OSError, ValidationError):
        return None


def model_file(artifacts_root: Path, run_id: str, int8: bool = False) -> Path | None:
    """The exported model file, when the latest export completed and made it."""
    report = read_report(artifacts_root, run_id)
    if report is None or report.status != "completed":
        return None
    name = names.EXPORT_INT8_MODEL if int8 else names.EXPORT_MODEL
    if name not in {file.name for file in report.files}:
        return None
    path = export_dir(artifacts_root, run_id) / name
    return path if path.is_file() else None


# No export takes this long (a ResNet50 ensemble on a CPU takes minutes): a report still saying
# `running` after it died with its trainer, and a new export may be asked for.
EXPORT_DEAD_AFTER = timedelta(hours=1)


def _key(run_id: str) -> str:
    return names.EXPORT_REQUEST_KEY.format(run_id=run_id)


def record_request(client: redis.Redis, run_id: str, quantize: bool, now: datetime) -> ExportRequest:
    """An export of the run was just queued."""
    request = ExportRequest(requested_at=now, quantize=quantize)
    client.set(_key(run_id), request.model_dump_json(), ex=names.EXPORT_REQUEST_TTL_S)
    return request


def open_request(client: redis.Redis, run_id: str, report: ExportReport | None) -> ExportRequest | None:
    """The run's export request that no trainer has started on yet."""
    raw = client.get(_key(run_id))
    if not raw:
        return None
    request = ExportRequest.model_validate_json(raw)
    if report is not None and report.started_at >= request.requested_at:
        return None
    return request


def export_state(client: redis.Redis, artifacts_root: Path, run_id: str) -> ExportPublic | None:
    """Where the run's export stands; None when none was ever asked for."""
    report = read_report(artifacts_root, run_id)
    request = open_request(client, run_id, report)
    if request is not None:
        return ExportPublic(run_id=run_id, status="queued", requested_at=request.requested_at, report=report)
    if report is None:
        return None
    return ExportPublic(run_id=run_id, status=report.status, report=report)


def ask_export(
    queue: JobQueue, client: redis.Redis, artifacts_root: Path, run_id: str, quantize: bool, now: datetime
) -> ExportPublic:
    """Queue an export of a completed run, unless one is already queued or running: that one is
    returned instead (ExportBusy), so two asks make one export."""
    state = export_state(client, artifacts_root, run_id)
    if state is not None and (state.status == "queued" or (state.status == "running" and not _dead(state, now))):
        raise ExportBusy(state)
    queue.send_export(run_id, quantize)
    request = record_request(client, run_id, quantize, now)
    return ExportPublic(
        run_id=run_id, status="queued", requested_at=request.requested_at, report=read_report(artifacts_root, run_id)
    )


def _dead(state: ExportPublic, now: datetime) -> bool:
    return state.report is not None and now - state.report.started_at > EXPORT_DEAD_AFTER


class ExportBusy(RuntimeError):
    """An export of the run is already queued or running."""

    def __init__(self, state: ExportPublic):
        super().__init__(f"an export of run {state.run_id} is already {state.status}")
        self.state = state
