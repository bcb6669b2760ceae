"""Redis killed and started again while a job trains: the job completes, every epoch recorded once.

Real processes: redis-server, nx-27017, the recorder and a Celery trainer. Redis runs as a
production Redis would: with its append-only file fsync'd on every write, so the queued job (its
broker message) and the event stream survive the restart. While Redis is away the trainer keeps
training, its events wait in memory and in the run's spill file (a tiny spill threshold here),
and reach the stream, in order, once Redis is back.
"""

import time
import uuid

import pytest
import redis

from infra.local_stack import LocalStack
from services.api.job_queue import JobQueue
from shared import names
from shared.datasets.synth import synthesize_dataset
from shared.schemas.jobs import JobSpec
from shared.settings import PaddySettings
from shared.store import connect
from tests.utils.stack import kill_service, running_stack
from tests.utils.waiting import wait_for

pytestmark = pytest.mark.integration

EPOCHS = 6
OUTAGE_S = 4


@pytest.fixture
def stack(tmp_path):
    env = {"PADDY_EVENT_SPILL_THRESHOLD": "3", "PADDY_PROGRESS_EVERY_BATCHES": "2", "PADDY_HEARTBEAT_INTERVAL_S": "1"}
    with running_stack(tmp_path, ("redis", "mongo", "recorder", "trainer"), env=env, predictors=False) as running:
        fsync_every_write(running)
        synthesize_dataset(tmp_path / "data" / "leaves", per_class=60, size=64, seed=4)
        yield running


def fsync_every_write(stack: LocalStack) -> None:
    client = redis.Redis.from_url(stack.env()["PADDY_REDIS_URL"])
    client.config_set("appendfsync", "always")
    client.close()


@pytest.fixture
def db(stack):
    env = stack.env()
    database = connect(PaddySettings(redis_url=env["PADDY_REDIS_URL"], mongodb_uri=env["PADDY_MONGODB_URI"]))
    yield database
    database.client.close()


def finished_status(stack: LocalStack, db, run_id: str) -> dict | None:
    """The run's status once it is over; fails at once should a process of the stack have died."""
    for name in ("recorder", "trainer-1"):
        proc = stack.process(name)
        assert proc.poll() is None, (
            f"the {name} exited ({proc.returncode}) with Redis away; see {stack.log_dir / name}.log"
        )
    status = db[names.STATUS].find_one({"run_id": run_id})
    return status if status and status["status"] in ("completed", "failed") else None


def test_a_job_survives_a_redis_restart_and_records_each_epoch_once(stack, db):
    run_id = uuid.uuid4().hex
    spec = JobSpec(
        model_name="custom_cnn",
        dataset="leaves",
        epochs=EPOCHS,
        patience=EPOCHS,
        image_size=64,
        batch_size=16,
        version="v1",
    )
    JobQueue(stack.env()["PADDY_REDIS_URL"], timeout_s=5).send_training(run_id, spec.model_dump())
    running = wait_for(
        lambda: db[names.STATUS].find_one({"run_id": run_id, "epochs_done": {"$gte": 1}}),
        120,
        "the first epoch to be recorded",
    )
    assert running["epochs_done"] < EPOCHS  # Redis goes away while the job trains
    kill_service(stack, "redis")
    time.sleep(OUTAGE_S)  # the trainer goes on training meanwhile
    spill_files = list((stack.state_dir / "artifacts" / "runs" / run_id).glob("unsent-events.*.jsonl"))
    stack.restart("redis")  # same port, same append-only file
    fsync_every_write(stack)

    status = wait_for(lambda: finished_status(stack, db, run_id), 120, "the run to finish")
    assert status["status"] == "completed", status.get("error")
    epochs = list(db[names.EPOCHS].find({"run_id": run_id}))
    assert sorted(e["epoch"] for e in epochs) == list(range(1, EPOCHS + 1))  # each once
    assert all(e["val_loss"] is not None for e in epochs)
    assert db[names.TRAININGS].count_documents({"run_id": run_id}) == 1
    assert status["attempt"] == 1  # the broker did not hand the job out again
    assert spill_files, "the outage was long enough for events to wait on disk"
    assert not list((stack.state_dir / "artifacts" / "runs" / run_id).glob("unsent-events.*"))  # sent, removed
