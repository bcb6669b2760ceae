"""Celery tasks: thin wrappers that validate their input and call plain functions."""

import base64
from collections.abc import Callable
from typing import TypeVar

from celery.signals import worker_process_init
from celery.utils.log import get_task_logger

from services.trainer.audit_job import run_audit
from services.trainer.batch_job import run_batch_chunk
from services.trainer.celery_app import app
from services.trainer.ensemble import run_ensemble
from services.trainer.lease import StoodDown
from services.trainer.lifecycle import Outcome, StoppedRun
from services.trainer.memory import keep_freed_memory
from services.trainer.onnx_export import export_run
from services.trainer.predict import predict_images
from services.trainer.settings import TrainerSettings, get_settings
from services.trainer.training import run_training
from services.trainer.visibility import VisibilityKeeper
from shared import names
from shared.schemas.jobs import EnsembleSpec, JobSpec

log = get_task_logger(__name__)


@worker_process_init.connect
def tune_memory(**_kwargs) -> None:
    if get_settings().keep_freed_memory:
        keep_freed_memory()


@app.task(name=names.TRAIN_TASK, bind=True)
def train(self, run_id: str, spec: dict) -> dict:
    """Train one run; its progress and result travel as events, the return value is for Flower."""
    return run_delivery(self, run_id, run_training, JobSpec.model_validate(spec))


@app.task(name=names.ENSEMBLE_TASK, bind=True)
def ensemble(self, run_id: str, spec: dict) -> dict:
    """Evaluate an ensemble as run run_id; recorded through events like a training run."""
    return run_delivery(self, run_id, run_ensemble, EnsembleSpec.model_validate(spec))


Spec = TypeVar("Spec", JobSpec, EnsembleSpec)


def run_delivery(task, run_id: str, run: Callable[[str, Spec, TrainerSettings, str], Outcome], spec: Spec) -> dict:
    """One delivery of a run's job (run_training or run_ensemble), its broker message kept fresh
    while it runs; the result is for Flower.

    An attempt that stood down (a newer one holds the run) ends quietly: the newer attempt
    owns the run and its result.
    """
    settings = get_settings()
    try:
        with VisibilityKeeper(settings.redis_url, task.request.id, settings.heartbeat_interval_s):
            outcome = run(run_id, spec, settings, task.request.hostname or "local")
    except StoodDown as stood_down:
        log.warning("%s", stood_down)
        return {"run_id": run_id, "stood_down": True}
    if isinstance(outcome, StoppedRun):
        return {"run_id": run_id, outcome.reason: True, "epochs_run": outcome.epochs_run}
    return {"run_id": run_id, "test_accuracy": outcome.test_accuracy}


# The caller waits for this result: the one task whose result is stored (see celeryconfig).
@app.task(name=names.PREDICT_TASK, ignore_result=False)
def predict(run_id: str, images: list[str], heatmaps: bool = False) -> list[dict]:
    """Base64-encoded image files in; [{"class", "probabilities"}] out, one per image, in order;
    with heatmaps, each answer also has "heatmap": a base64 JPEG of its Grad-CAM overlay."""
    raw = [base64.b64decode(image, validate=True) for image in images]
    return [prediction.as_dict() for prediction in predict_images(run_id, raw, get_settings(), heatmaps)]


@app.task(name=names.BATCH_PREDICT_TASK)
def predict_batch(batch_id: str, chunk: int) -> dict:
    """One chunk of a batch prediction (services/trainer/batch_job.py). The next chunk goes to the
    back of the predict queue as a new message, so a single prediction sent meanwhile waits for
    one chunk at most, never for the whole batch."""

    def send_chunk(next_chunk: int) -> None:
        predict_batch.apply_async(args=[batch_id, next_chunk], queue=names.PREDICT_QUEUE)

    done = run_batch_chunk(batch_id, chunk, get_settings(), send_chunk)
    return {"batch_id": batch_id, "chunk": chunk, "done": done}


@app.task(name=names.AUDIT_TASK)
def audit(dataset: str) -> dict:
    """Audit a dataset of the data root; the report travels as a dataset_audited event, the
    return value is for Flower."""
    report = run_audit(dataset, get_settings())
    return {"dataset": dataset, "fingerprint": report.fingerprint, "images": report.images}


@app.task(name=names.EXPORT_TASK)
def export(run_id: str, quantize: bool = False) -> dict:
    """Export a completed run to ONNX (services/trainer/onnx_export.py); the report is the run's
    export/export.json, the return value is for Flower."""
    report = export_run(run_id, get_settings(), quantize)
    difference = report.parity.max_abs_diff if report.parity else None
    return {"run_id": run_id, "status": report.status, "max_abs_diff": difference}
