"""A completed run's ONNX export: ask for it, follow it, download it.

The export is made by a trainer (services/trainer/onnx_export.py), which refuses it when
onnxruntime and PyTorch disagree on the run's test images; see services/api/exports.py.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Body, HTTPException, Query, status
from fastapi.responses import FileResponse
from kombu.exceptions import OperationalError

from services.api.deps import QueueDep, RedisDep, SettingsDep, StoreDep
from services.api.exports import ExportBusy, ask_export, export_state, model_file
from services.api.presenting import RunIdPath, run_or_404
from services.api.routes.jobs import NOT_FOUND
from shared.schemas.events import utc_now
from shared.schemas.exports import ExportAsk, ExportPublic

router = APIRouter(prefix="/jobs", tags=["exports"])


@router.post(
    "/{run_id}/export",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExportPublic,
    responses={**NOT_FOUND, 409: {"description": "the run has not completed, or an export of it is under way"}},
)
def create_export(
    run_id: RunIdPath,
    store: StoreDep,
    queue: QueueDep,
    client: RedisDep,
    settings: SettingsDep,
    ask: Annotated[ExportAsk | None, Body()] = None,
) -> ExportPublic:
    """Export a completed run or ensemble to ONNX on a trainer, with its parity check (and, with
    `quantize`, an int8 model and its accuracy change). Follow it at `GET /jobs/{id}/export/status`."""
    ask = ask or ExportAsk()
    run = run_or_404(store, run_id)
    if run["status"] != "completed":
        raise HTTPException(status.HTTP_409_CONFLICT, f"run {run_id} is {run['status']}; only completed runs export")
    try:
        return ask_export(queue, client, settings.artifacts_root, run_id, ask.quantize, utc_now())
    except ExportBusy as busy:
        raise HTTPException(status.HTTP_409_CONFLICT, str(busy)) from None
    except OperationalError:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the job queue (Redis) is unreachable") from None


@router.get("/{run_id}/export/status", response_model=ExportPublic, responses=NOT_FOUND)
def get_export_status(run_id: RunIdPath, store: StoreDep, client: RedisDep, settings: SettingsDep) -> ExportPublic:
    """Queued, running, completed (with the parity figure, files and hashes), refused (the parity
    check failed) or failed; 404 when the run was never exported."""
    run_or_404(store, run_id)
    state = export_state(client, settings.artifacts_root, run_id)
    if state is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} was never exported; POST /jobs/{run_id}/export")
    return state


@router.get(
    "/{run_id}/export",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the ONNX model file"},
        404: {"description": "no such run, or no completed export of it"},
    },
)
def download_export(
    run_id: RunIdPath,
    store: StoreDep,
    settings: SettingsDep,
    format: Annotated[Literal["onnx"], Query(description="the one format there is")] = "onnx",
    int8: Annotated[bool, Query(description="the int8 model, when the export made one")] = False,
) -> FileResponse:
    """The run's exported model, `{run_id}.onnx` (or `{run_id}.int8.onnx`); its card (inputs,
    preprocessing, classes) is inside it, in the file's metadata."""
    run_or_404(store, run_id)
    path = model_file(settings.artifacts_root, run_id, int8)
    if path is None:
        what = "int8 export" if int8 else "completed export"
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"run {run_id} has no {what}; see GET /jobs/{run_id}/export/status"
        )
    suffix = ".int8.onnx" if int8 else f".{format}"
    return FileResponse(path, media_type="application/octet-stream", filename=f"{run_id}{suffix}")
