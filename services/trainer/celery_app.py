"""The trainers' Celery app. Importing it does not import torch; the task module does."""

from celery import Celery

from services.trainer.gpu_pinning import pin_workers_to_gpus
from services.trainer.presence import track_workers

app = Celery("paddy", include=["services.trainer.tasks"])
app.config_from_object("services.trainer.celeryconfig")
# Each worker keeps a presence key in Redis while it runs: /health counts them.
track_workers(app)
# With PADDY_GPU_PINNING=claim each worker takes a GPU of its own as it starts (gpu_pinning.py).
pin_workers_to_gpus(app)
