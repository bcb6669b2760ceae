"""Run files: the best checkpoint, served from the artifacts root and nowhere else."""

from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

from services.api.deps import SettingsDep, StoreDep

router = APIRouter(prefix="/runs", tags=["runs"])

# The trainer's layout (services/trainer/checkpoints.py), for runs whose status document has no
# checkpoint path (trainers that predate checkpoint_saved events).
RUNS_DIR, BEST_FILE = "runs", "best.pt"


def best_checkpoint(run: dict, artifacts_root: Path) -> Path | None:
    root = artifacts_root.resolve()
    recorded = ((run.get("checkpoints") or {}).get("best") or {}).get("path")
    relative = recorded if isinstance(recorded, str) and recorded else f"{RUNS_DIR}/{run['run_id']}/{BEST_FILE}"
    path = (root / relative).resolve()
    # A recorded path is data: it must not lead outside the artifacts root (.., absolute, links).
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


@router.get("/{run_id}/checkpoint", response_class=FileResponse, responses={
    200: {"content": {"application/octet-stream": {}}, "description": "the run's best checkpoint (torch.save)"},
    404: {"description": "no such run, or it has no checkpoint"}})
def get_checkpoint(run_id: str, store: StoreDep, settings: SettingsDep) -> FileResponse:
    """The run's best checkpoint file, `{run_id}-best.pt`."""
    run = store.get_run(run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} not found")
    path = best_checkpoint(run, settings.artifacts_root)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} has no checkpoint")
    return FileResponse(path, media_type="application/octet-stream", filename=f"{run_id}-best.pt")
