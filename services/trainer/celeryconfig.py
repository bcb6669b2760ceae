"""Celery settings for the trainers (lowercase names from Celery's docs); see DESIGN.md."""

from services.trainer.packing import jobs_per_gpu
from services.trainer.settings import get_settings
from shared import names

_settings = get_settings()

broker_url = _settings.redis_url
# Runs live in MongoDB and Flower reads task states from events, so results are not stored;
# predictions are the exception (their task sets ignore_result=False): the caller waits for them.
result_backend = _settings.redis_url
task_ignore_result = True
result_expires = 3600

# A job is acknowledged when it ends, and delivered again if its worker dies mid-job.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
# One job at a time, or several small ones packed on the GPU under its memory budget (packing.py).
worker_concurrency = jobs_per_gpu(_settings.gpu_memory_budget_mib, _settings.gpu_job_memory_mib)
# A fresh process now and then bounds what fragmentation or a leak can hold on to; between
# tasks the lifecycle hands cached GPU memory back (torch.cuda.empty_cache). Not after every
# task: predictions keep their loaded models in a per-process cache.
worker_max_tasks_per_child = 50

# Predictions have their own queue so they never wait behind a backlog of training jobs. A
# trainer worker must consume both queues: `celery ... worker -Q training,predict`.
task_default_queue = names.TRAINING_QUEUE
task_routes = {
    names.TRAIN_TASK: {"queue": names.TRAINING_QUEUE},
    names.ENSEMBLE_TASK: {"queue": names.TRAINING_QUEUE},
    names.PREDICT_TASK: {"queue": names.PREDICT_QUEUE},
    names.BATCH_PREDICT_TASK: {"queue": names.PREDICT_QUEUE},
    names.AUDIT_TASK: {"queue": names.BACKGROUND_QUEUE},
    names.EXPORT_TASK: {"queue": names.BACKGROUND_QUEUE},
}
task_serializer = "json"
accept_content = ["json"]

# With the Redis broker an unacked job is delivered again after visibility_timeout. Running
# jobs refresh their message (services/trainer/visibility.py), so the timeout only has to
# outlast a refresh interval and the run's lease; a job whose worker died is delivered again
# within about visibility_timeout + unacked_restore_interval seconds. How these timings relate
# to the lease and to `lost`: shared.settings.LivenessSettings.
broker_transport_options = {
    "visibility_timeout": _settings.visibility_timeout_s,
    "unacked_restore_interval": 5,
    "unacked_restore_throttle": 1,
}
broker_connection_retry_on_startup = True

# A Redis restart (or outage) must end neither the worker nor the job it runs
# (tests/test_redis_restart.py). The worker reconnects for as long as it takes: Celery's default
# of 100 tries (kombu waits 2, 4, ... up to 30 s between them) gives up after about 50 minutes
# and the worker shuts down. The running job keeps running meanwhile: its events wait in the
# publisher (events.py), its broker message stays unacknowledged in Redis (the append-only file
# keeps it), VisibilityKeeper refreshes it once Redis is back, and the job is acknowledged when it
# ends. Cancelling long-running acks_late tasks on connection loss (Celery 6's coming default)
# would throw away the epoch in progress at every broker hiccup and wait for a redelivery.
broker_connection_retry = True
broker_connection_max_retries = None
worker_cancel_long_running_tasks_on_connection_loss = False

# Flower and `celery events` show the workers and their tasks.
worker_send_task_events = True
task_send_sent_event = True
