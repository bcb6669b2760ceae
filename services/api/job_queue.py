"""Sends jobs to the trainers by task name: the API never imports the trainer (or torch)."""

import base64
from typing import Any

from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeout

from shared import names


class PredictTimeout(RuntimeError):
    """No trainer answered the prediction in time."""


class PredictFailed(RuntimeError):
    """The trainer could not predict (a run without a checkpoint, an image it cannot read)."""


class JobQueue:
    def __init__(self, broker_url: str, timeout_s: float):
        # The result backend serves predictions only: every other task ignores its result.
        self._celery = Celery("paddy-api", broker=broker_url, backend=broker_url, set_as_current=False)
        self._celery.conf.update(
            broker_connection_timeout=timeout_s,
            broker_connection_retry_on_startup=False,
            task_serializer="json",
            result_serializer="json",
            accept_content=["json"],
        )
        # Fail fast (the API answers 503) instead of hanging on a broker that is down.
        self._retry_policy = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": timeout_s}

    def send_training(self, run_id: str, spec: dict[str, Any]) -> None:
        self._send(names.TRAIN_TASK, run_id, spec)

    def send_ensemble(self, run_id: str, spec: dict[str, Any]) -> None:
        """Ensembles evaluate on a trainer like a training job, from the same queue."""
        self._send(names.ENSEMBLE_TASK, run_id, spec)

    def send_audit(self, dataset: str) -> None:
        """A dataset's audit, on the background queue: minutes of work a trainer does between
        training jobs, never in the way of a prediction. Its report comes back as an event;
        nobody waits for the result."""
        self._celery.send_task(
            names.AUDIT_TASK,
            args=[dataset],
            queue=names.BACKGROUND_QUEUE,
            retry=True,
            retry_policy=self._retry_policy,
            ignore_result=True,
        )

    def send_export(self, run_id: str, quantize: bool) -> None:
        """A run's ONNX export, on the background queue like an audit: seconds to a minute of a
        trainer's time between training jobs. Its report is written beside the model file."""
        self._celery.send_task(
            names.EXPORT_TASK,
            args=[run_id, quantize],
            queue=names.BACKGROUND_QUEUE,
            retry=True,
            retry_policy=self._retry_policy,
            ignore_result=True,
        )

    def send_batch(self, batch_id: str) -> None:
        """A batch's first chunk, on the predict queue. Each chunk queues the next behind whatever
        arrived meanwhile, so a single prediction waits for at most one chunk of a batch."""
        self._celery.send_task(
            names.BATCH_PREDICT_TASK,
            args=[batch_id, 0],
            queue=names.PREDICT_QUEUE,
            retry=True,
            retry_policy=self._retry_policy,
            ignore_result=True,
        )

    def _send(self, task: str, run_id: str, spec: dict[str, Any]) -> None:
        # task_id = run_id: a message seen twice is the same run, and revoke finds it by run id.
        # ignore_result: nobody waits for it, so the result backend is not even subscribed to.
        self._celery.send_task(
            task,
            args=[run_id, spec],
            task_id=run_id,
            queue=names.TRAINING_QUEUE,
            retry=True,
            retry_policy=self._retry_policy,
            ignore_result=True,
        )

    def predict(self, run_id: str, image: bytes, timeout_s: float, heatmap: bool = False) -> dict[str, Any]:
        """{"class", "probabilities"} for one image (and "heatmap", a base64 JPEG, when asked),
        from whichever predictor takes the task."""
        result = self._celery.send_task(
            names.PREDICT_TASK,
            args=[run_id, [base64.b64encode(image).decode()], heatmap],
            queue=names.PREDICT_QUEUE,
            retry=True,
            retry_policy=self._retry_policy,
            expires=timeout_s,
        )
        try:
            answer = result.get(timeout=timeout_s, propagate=False)
        except CeleryTimeout:
            result.revoke()  # nobody needs the answer any more; a trainer that gets it skips it
            raise PredictTimeout(f"no trainer answered within {timeout_s:g} s") from None
        finally:
            result.forget()
        if isinstance(answer, BaseException):
            raise PredictFailed(f"{type(answer).__name__}: {answer}")
        return answer[0]

    def revoke(self, run_id: str) -> None:
        """Tell the workers to skip the run's queued task. Never terminate=True: that kills a
        worker process mid-job (DESIGN.md); a running job stops through its cancel flag."""
        self._celery.control.revoke(run_id)
