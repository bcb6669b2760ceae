"""Celery settings for the trainers (lowercase names from Celery's docs); see DESIGN.md."""

from shared import names
from services.trainer.settings import get_settings

_settings = get_settings()

broker_url = _settings.redis_url
# Results are not used: runs live in MongoDB. Flower reads task states from events.
result_backend = None
task_ignore_result = True

# A job is acknowledged when it ends, and delivered again if its worker dies mid-job.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
worker_concurrency = 1
# One job per process keeps GPU memory from leaking across jobs.
worker_max_tasks_per_child = 1

task_default_queue = names.TRAINING_QUEUE
task_routes = {names.TRAIN_TASK: {"queue": names.TRAINING_QUEUE}}
task_serializer = "json"
accept_content = ["json"]

# With the Redis broker an unacked job is delivered again after visibility_timeout: keep it
# above the longest job (a day).
broker_transport_options = {"visibility_timeout": 24 * 3600}
broker_connection_retry_on_startup = True

# Flower and `celery events` show the workers and their tasks.
worker_send_task_events = True
task_send_sent_event = True
