"""Sends jobs to the trainers by task name: the API never imports the trainer (or torch)."""

from typing import Any

from celery import Celery

from shared import names


class JobQueue:
    def __init__(self, broker_url: str, timeout_s: float):
        self._celery = Celery("paddy-api", broker=broker_url, set_as_current=False)
        self._celery.conf.update(
            broker_connection_timeout=timeout_s,
            broker_connection_retry_on_startup=False,
            task_serializer="json",
        )
        # Fail fast (the API answers 503) instead of hanging on a broker that is down.
        self._retry_policy = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5,
                              "interval_max": timeout_s}

    def send_training(self, run_id: str, spec: dict[str, Any]) -> None:
        self._celery.send_task(
            names.TRAIN_TASK, args=[run_id, spec], task_id=run_id, queue=names.TRAINING_QUEUE,
            retry=True, retry_policy=self._retry_policy,
        )

    def revoke(self, run_id: str) -> None:
        """Tell the workers to skip the run's queued task. Never terminate=True: that kills a
        worker process mid-job (DESIGN.md); a running job stops through its cancel flag."""
        self._celery.control.revoke(run_id)
