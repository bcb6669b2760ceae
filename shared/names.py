"""Every name two services must agree on: streams, queues, tasks, collections."""

# Redis Stream that carries training events from trainers to the recorder.
EVENTS_STREAM = "paddy:events"
# Consumer group the recorders read EVENTS_STREAM with.
RECORDER_GROUP = "recorders"
# Events the recorder could not parse or apply, with the reason.
DEAD_LETTER_STREAM = "paddy:events:dead"
# Per-run attempt counter (INCR at every task start), so event seq numbers grow across attempts.
ATTEMPT_KEY = "paddy:attempt:{run_id}"
# The run's lease: the attempt number allowed to train it, renewed with every heartbeat
# (services/trainer/lease.py).
LEASE_KEY = "paddy:lease:{run_id}"
# Set by the API to cancel a run; the trainer looks for it before and while training. It
# expires after CANCEL_FLAG_TTL_S seconds, long after any redelivery of the job could start.
CANCEL_KEY = "paddy:cancel:{run_id}"
# The cancel flag's value when a sweep's pruner stops the run (services/api/sweep_driver.py): the
# run then ends `pruned`, not `cancelled`. Any other value is a person's cancel.
PRUNE_FLAG_VALUE = "pruned"
CANCEL_FLAG_TTL_S = 86_400

# Celery queues and the task names the API sends (by name: the API never imports the trainer).
# Each trainer worker consumes TRAINING_QUEUE and BACKGROUND_QUEUE (dataset audits: minutes of
# work, between training jobs); beside it a predictor worker consumes PREDICT_QUEUE alone, so a
# photo is never queued behind a training job or an audit (PREDICTOR_QUEUES, TRAINER_QUEUES).
TRAINING_QUEUE = "training"
PREDICT_QUEUE = "predict"
BACKGROUND_QUEUE = "background"
TRAINER_QUEUES = f"{TRAINING_QUEUE},{BACKGROUND_QUEUE}"
PREDICTOR_QUEUES = PREDICT_QUEUE
TRAIN_TASK = "paddy.train"
ENSEMBLE_TASK = "paddy.ensemble"
PREDICT_TASK = "paddy.predict"

# Artifacts: each run's files live in RUNS_DIR/<run_id>/ under the artifacts root, shared by
# trainers (which write them and record their paths in checkpoint_saved events) and the API.
RUNS_DIR = "runs"
BEST_CHECKPOINT = "best.pt"
# Grad-CAM overlays of some of a run's test images, written by the trainer when the run
# completes (services/trainer/run_heatmaps.py) into RUNS_DIR/<run_id>/HEATMAPS_DIR/, listed by
# HEATMAPS_INDEX there ({"files": {dataset-relative file: JPEG name}}), served by the API.
HEATMAPS_DIR = "heatmaps"
HEATMAPS_INDEX = "index.json"
# A run's ONNX export (services/trainer/onnx_export.py, the EXPORT_TASK on BACKGROUND_QUEUE): in
# RUNS_DIR/<run_id>/EXPORT_DIR/, the fp32 model EXPORT_MODEL, with a quantised export also
# EXPORT_INT8_MODEL, and the report EXPORT_REPORT (shared/schemas/exports.py), which says
# `running` while the export works and lists the model files once it has completed.
EXPORT_TASK = "paddy.export"
EXPORT_DIR = "export"
EXPORT_MODEL = "model.onnx"
EXPORT_INT8_MODEL = "model.int8.onnx"
EXPORT_REPORT = "export.json"
# An export asked for through the API that no trainer has started yet (services/api/exports.py),
# kept EXPORT_REQUEST_TTL_S seconds so a task lost for good does not look queued for ever.
EXPORT_REQUEST_KEY = "paddy:export:{run_id}"
EXPORT_REQUEST_TTL_S = 86_400

# MongoDB: database and collection names are those of the original system.
DATABASE = "model_logs_db"
TRAININGS = "trainings"
EPOCHS = "epochs"
STATUS = "status"
COUNTERS = "counters"

# Each trainer worker's presence, refreshed by its main process with an expiry
# (services/trainer/presence.py) and counted by the API's /health and /metrics
# (shared/worker_presence.py): a worker that stops deletes its key, one that dies drops out
# when the key expires.
WORKER_PRESENCE_KEY = "paddy:worker:{hostname}"

# Refreshes of a running job's broker message that found no message to refresh
# (services/trainer/visibility.py): each means a job delivered again while it runs. A counter
# the API's /metrics exposes.
VISIBILITY_MISSES_KEY = "paddy:visibility:refresh_misses"

# Dataset audits (services/trainer/audit/): the task the API sends by name, on BACKGROUND_QUEUE
# (minutes of work a trainer takes between training jobs); the recorder keeps the latest audit
# of each dataset in AUDITS (one document per dataset name). AUDIT_REQUEST_KEY holds an audit
# asked for and not stored yet, or why it failed (shared/audit_requests.py), for
# AUDIT_REQUEST_TTL_S seconds.
AUDIT_TASK = "paddy.audit"
AUDITS = "audits"
AUDIT_REQUEST_KEY = "paddy:audit:{dataset}"
AUDIT_REQUEST_TTL_S = 86_400

# One document per run (`_id` the run id): every test image's prediction (a test_predictions
# event), for paired comparisons of runs tested on the same split (GET /compare).
TEST_PREDICTIONS = "test_predictions"

# Batch predictions (POST /batches): a folder of the data root or an uploaded zip, classified on
# the predict queue a chunk of images per message; each chunk queues the next behind whatever
# arrived meanwhile, so a single prediction never waits for more than one chunk. Their files
# live in BATCHES_DIR/<batch_id>/ under the artifacts root; BATCH_KEY holds a batch's progress
# (shared/batches.py) for BATCH_TTL_S seconds after its last change.
BATCH_PREDICT_TASK = "paddy.predict_batch"
BATCHES_DIR = "batches"
BATCH_KEY = "paddy:batch:{batch_id}"
BATCH_TTL_S = 7 * 86_400

# Optuna's journal of every random or tpe sweep (services/api/search.py), and the lock one
# sweep driver holds while it advances a sweep (services/api/sweep_driver.py).
OPTUNA_PREFIX = "paddy:optuna"
SWEEP_LOCK_KEY = "paddy:sweep-lock:{sweep_id}"
