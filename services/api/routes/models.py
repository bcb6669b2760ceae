from fastapi import APIRouter

from shared.models import MODELS
from shared.schemas.jobs import STUDY_FIELDS, JobSpec, ModelPublic, ModelsPublic

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelsPublic)
def list_models() -> ModelsPublic:
    """The models a job can name, each with the spec a job gets when it names only the model (less
    folds, fold and repeats: they make a study of several runs, no model has its own)."""
    data = []
    for info in MODELS.values():
        defaults = JobSpec(model_name=info.name, dataset="-").model_dump(
            exclude={"model_name", "dataset", "version", *STUDY_FIELDS}
        )
        data.append(ModelPublic(name=info.name, description=info.description, defaults=defaults))
    return ModelsPublic(data=data, count=len(data))
