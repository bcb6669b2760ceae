"""The trainers' Celery app. Importing it does not import torch; the task module does."""

from celery import Celery

from services.trainer.presence import track_workers

app = Celery("paddy", include=["services.trainer.tasks"])
app.config_from_object("services.trainer.celeryconfig")
# Each worker keeps a presence key in Redis while it runs: /health counts them.
track_workers(app)
