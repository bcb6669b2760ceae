from fastapi import APIRouter

from shared.models import MODELS
from shared.schemas.jobs import JobSpec

router = APIRouter(tags=["models"])


@router.get("/models")
def list_models() -> dict:
    """The models a job can name, each with the spec a job gets when it names only the model."""
    data = []
    for info in MODELS.values():
        defaults = JobSpec(model_name=info.name, dataset="-").model_dump(exclude={"model_name", "dataset", "version"})
        data.append({"name": info.name, "description": info.description, "defaults": defaults})
    return {"data": data, "count": len(data)}
