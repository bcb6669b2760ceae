"""Predictions: one uploaded image, classified by a completed run: in the API's own process when
the run is in production with an ONNX export (services/api/onnx_predictions.py), else on a
predictor."""

import logging
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, UploadFile, status
from kombu.exceptions import OperationalError

from services.api.deps import QueueDep, SettingsDep, StoreDep
from services.api.job_queue import PredictFailed, PredictTimeout
from services.api.onnx_predictions import LoadedModels, production_export
from services.api.presenting import run_or_404
from services.api.settings import get_settings
from services.api.uploads import check_image, read_limited
from shared.onnx_model import OnnxPredictionError
from shared.schemas.jobs import RUN_ID_PATTERN, PredictionPublic

router = APIRouter(tags=["predict"])
log = logging.getLogger(__name__)


@router.post(
    "/predict",
    response_model=PredictionPublic,
    responses={
        404: {"description": "no such run"},
        409: {"description": "the run has not completed"},
        413: {"description": "the file or the image is too large"},
        415: {"description": "not a JPEG, PNG or WebP"},
        422: {"description": "the trainer could not predict with this run or image"},
        504: {"description": "no trainer answered in time"},
    },
)
def predict(
    file: Annotated[UploadFile, File(description="a JPEG, PNG or WebP image of a rice leaf")],
    run_id: Annotated[
        str, Form(pattern=RUN_ID_PATTERN, description="a completed training or ensemble run", examples=["3f9a1c0b2d4e"])
    ],
    store: StoreDep,
    queue: QueueDep,
    settings: SettingsDep,
    heatmap: Annotated[
        bool, Form(description="also return where the run looked (a Grad-CAM overlay, base64 JPEG)")
    ] = False,
) -> PredictionPublic:
    """Classify one image with a completed run. A run in production with an ONNX export answers
    in the API's process (`served_by: onnx`); any other run, or a heatmap, is computed by a
    predictor worker (Celery `predict` queue, `served_by: predictor`). With heatmap, the answer
    also shows where the run looked for the class it gave."""
    data = read_limited(file, settings.max_upload_bytes)
    check_image(data, settings.max_image_pixels)
    run = run_or_404(store, run_id)
    if run["status"] != "completed":
        raise HTTPException(status.HTTP_409_CONFLICT, f"run {run_id} is {run['status']}; only completed runs predict")
    exported = None if heatmap else production_export(store, settings.artifacts_root, run_id)
    if exported is not None:
        return predict_here(run_id, exported, data)
    try:
        answer = queue.predict(run_id, data, settings.predict_timeout_s, heatmap)
    except PredictTimeout as error:
        raise HTTPException(status.HTTP_504_GATEWAY_TIMEOUT, f"{error} (PADDY_PREDICT_TIMEOUT_S)") from None
    except PredictFailed as error:
        log.warning("prediction with run %s failed: %s", run_id, error)
        message = str(error).replace(str(settings.artifacts_root.resolve()), "<artifacts>")
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"the trainer could not predict: {message}"
        ) from None
    except (OperationalError, OSError) as error:
        log.error("could not send the prediction of run %s: %s", run_id, error)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the job queue (Redis) is unreachable") from None
    return PredictionPublic(
        run_id=run_id,
        class_name=answer["class"],
        probabilities=answer["probabilities"],
        heatmap=answer.get("heatmap"),
        served_by="predictor",
    )


@lru_cache
def loaded_models() -> LoadedModels:
    settings = get_settings()
    return LoadedModels(settings.onnx_threads, settings.max_image_pixels)


def predict_here(run_id: str, model_path: Path, data: bytes) -> PredictionPublic:
    try:
        [(class_name, probabilities)] = loaded_models().get(model_path).predict([data])
    except OnnxPredictionError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"could not predict: {error}") from None
    return PredictionPublic(run_id=run_id, class_name=class_name, probabilities=probabilities, served_by="onnx")
