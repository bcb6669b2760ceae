"""Celery tasks: thin wrappers that validate their input and call plain functions."""

from celery.utils.log import get_task_logger

from services.trainer.celery_app import app
from services.trainer.runner import run_training
from services.trainer.settings import get_settings
from shared import names
from shared.schemas.jobs import JobSpec

log = get_task_logger(__name__)


@app.task(name=names.TRAIN_TASK, bind=True)
def train(self, run_id: str, spec: dict) -> dict:
    """Train one run; its progress and result travel as events, the return value is for Flower."""
    job = JobSpec.model_validate(spec)
    summary = run_training(run_id, job, get_settings(), worker=self.request.hostname or "local")
    return {"run_id": run_id, "test_accuracy": summary.test_accuracy}
