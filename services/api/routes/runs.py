"""Run files: the best checkpoint, served from the artifacts root and nowhere else."""

from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

from services.api.deps import SettingsDep, StoreDep
from services.api.runs import RunIdPath, run_or_404
from shared import names

router = APIRouter(prefix="/runs", tags=["runs"])


def best_checkpoint(run: dict, artifacts_root: Path) -> Path | None:
    root = artifacts_root.resolve()
    recorded = ((run.get("checkpoints") or {}).get("best") or {}).get("path")
    # Runs whose status has no recorded path (trainers that predate checkpoint_saved events):
    # where trainers put it.
    relative = (
        recorded
        if isinstance(recorded, str) and recorded
        else f"{names.RUNS_DIR}/{run['run_id']}/{names.BEST_CHECKPOINT}"
    )
    path = (root / relative).resolve()
    # A recorded path is data: it must not lead outside the artifacts root (.., absolute, links).
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


@router.get(
    "/{run_id}/checkpoint",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the run's best checkpoint (torch.save)"},
        404: {"description": "no such run, or it has no checkpoint"},
    },
)
def get_checkpoint(run_id: RunIdPath, store: StoreDep, settings: SettingsDep) -> FileResponse:
    """The run's best checkpoint file, `{run_id}-best.pt`."""
    run = run_or_404(store, run_id)
    path = best_checkpoint(run, settings.artifacts_root)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} has no checkpoint")
    return FileResponse(path, media_type="application/octet-stream", filename=f"{run_id}-best.pt")
