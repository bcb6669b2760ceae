"""The trainers' Celery app. Importing it does not import torch; the task module does."""

from celery import Celery

app = Celery("paddy", include=["services.trainer.tasks"])
app.config_from_object("services.trainer.celeryconfig")
