"""A completed run's model card, as JSON and as Markdown (services/api/model_card.py)."""

from fastapi import APIRouter, HTTPException, Response, status

from services.api.deps import SettingsDep, StoreDep
from services.api.model_card import build_card, card_markdown
from services.api.presenting import RunIdPath, run_or_404
from services.api.routes.jobs import best_checkpoint
from services.api.routes.registry import run_dataset
from shared.schemas.cards import ModelCardPublic

router = APIRouter(prefix="/jobs", tags=["jobs"])

RESPONSES: dict[int | str, dict] = {
    404: {"description": "no such run"},
    409: {"description": "the run has not completed (or its summary is missing)"},
}


@router.get("/{run_id}/card", response_model=ModelCardPublic, responses=RESPONSES)
def get_card(run_id: RunIdPath, store: StoreDep, settings: SettingsDep) -> ModelCardPublic:
    """The run's model card: data and audit, split, test metrics with intervals, confusion matrix
    and per-class figures, training settings, preprocessing, hashes and versions, ONNX export."""
    return card_of(run_id, store, settings)


@router.get(
    "/{run_id}/card.md",
    response_class=Response,
    responses={**RESPONSES, 200: {"content": {"text/markdown": {}}, "description": "the model card as Markdown"}},
)
def get_card_markdown(run_id: RunIdPath, store: StoreDep, settings: SettingsDep) -> Response:
    """The same model card as Markdown."""
    return Response(card_markdown(card_of(run_id, store, settings)), media_type="text/markdown; charset=utf-8")


def card_of(run_id: str, store: StoreDep, settings: SettingsDep) -> ModelCardPublic:
    run = run_or_404(store, run_id)
    if run["status"] != "completed":
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"run {run_id} is {run['status']}; a model card is made once it has completed"
        )
    summary = store.get_training(run_id)
    if summary is None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"run {run_id} has completed but its summary is not stored")
    dataset = run_dataset(store, run)
    audit = store.audit_summary(dataset) if dataset else None
    return build_card(
        run,
        summary,
        audit,
        store.aliases_of(run_id),
        best_checkpoint(run, settings.artifacts_root),
        settings.artifacts_root,
    )
