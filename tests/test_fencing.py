"""A trainer paused past its lease while its job moves on: exactly one attempt trains the run.

Real processes: redis-server, nx-27017, the recorder, the API and two Celery trainers. The
trainer running the job is frozen with SIGSTOP (a GC stall, a frozen VM) until the job has
gone to the other trainer, then let go with SIGCONT. The new attempt holds the run's lease;
the old one finds that before its next batch and stands down: it writes no checkpoint and
publishes nothing more, and the run completes once, every epoch stored once.
"""

import os
import re
import signal

import pytest
import redis
import torch

from shared import names
from shared.datasets.synth import synthesize_dataset
from shared.schemas.events import attempt_of, decode_event, utc_now
from tests.utils.stack import TRAINING_STACK, api_client, queue_job, running_stack
from tests.utils.waiting import wait_for, wait_for_run

pytestmark = pytest.mark.integration

EPOCHS = 12
# Short liveness timings that agree (shared.settings.LivenessSettings): the lease is gone 3 s
# after the trainer froze, the run is lost after about 4.5 s, the job comes back after 7 s or more.
TIMINGS = {
    "PADDY_HEARTBEAT_INTERVAL_S": "1",
    "PADDY_LEASE_TTL_S": "3",
    "PADDY_VISIBILITY_TIMEOUT_S": "8",
    "PADDY_HEARTBEAT_TIMEOUT_S": "4",
    "PADDY_REAP_INTERVAL_S": "0.5",
}
TEST_GROUP = "fencing-test"  # reads nothing: the recorder's trimming keeps every entry for it


@pytest.fixture
def stack(tmp_path):
    # A progress event after every batch: an old attempt that trained on would show it at once.
    env = {**TIMINGS, "PADDY_PROGRESS_EVERY_BATCHES": "1"}
    with running_stack(tmp_path, TRAINING_STACK, trainers=2, env=env, predictors=False) as running:
        synthesize_dataset(tmp_path / "data" / "leaves", per_class=60, size=96, seed=5)
        yield running


def test_a_paused_trainer_stands_down_when_it_wakes_after_its_job_moved_on(stack):
    events = redis.Redis.from_url(stack.env()["PADDY_REDIS_URL"])
    events.xgroup_create(names.EVENTS_STREAM, TEST_GROUP, id="0", mkstream=True)
    api = api_client(stack)
    run_id = queue_job(api, epochs=EPOCHS, patience=EPOCHS, image_size=96, batch_size=16)
    first = wait_for(
        lambda: (r := api.get(f"/jobs/{run_id}").json())["epochs_done"] >= 2 and r,
        120,
        "the first attempt to finish two epochs",
    )
    assert first["status"] == "in_progress" and first["attempt"] == 1
    paused = re.match(r"(trainer-\d+)@", first["worker"]).group(1)
    pid = stack.process(paused).pid

    os.killpg(pid, signal.SIGSTOP)  # the whole group: the pool child does the training
    try:
        taken = wait_for(
            lambda: (r := api.get(f"/jobs/{run_id}").json())["attempt"] == 2 and r,
            90,
            "the job to go to the other trainer",
        )
    finally:
        resumed_at = utc_now()
        os.killpg(pid, signal.SIGCONT)

    # The run showed lost before the job was delivered again, and the other trainer took it.
    assert [h["status"] for h in taken["status_history"]] == ["queued", "in_progress", "lost", "in_progress"]
    assert taken["worker"] != first["worker"]
    done = wait_for_run(api, run_id, "completed", "failed", timeout_s=180)
    assert done["status"] == "completed", done["error"]
    assert done["attempt"] == 2 and done["epochs_done"] == EPOCHS
    # Every epoch once, each with its numbers.
    epochs = api.get(f"/jobs/{run_id}/epochs").json()
    assert [e["epoch"] for e in epochs["data"]] == list(range(1, EPOCHS + 1))
    assert all(isinstance(e[name], float) for e in epochs["data"] for name in ("train_loss", "val_acc"))
    assert done["summary"]["epochs_run"] == EPOCHS

    # The old attempt published nothing once it woke; the new one trained every epoch after the
    # checkpoint it resumed from.
    stream = [decode_event(fields) for _id, fields in events.xrange(names.EVENTS_STREAM)]
    mine = [e for e in stream if e.run_id == run_id]
    late = [e for e in mine if attempt_of(e.seq) == 1 and e.time >= resumed_at]
    assert late == [], f"the paused attempt published after waking: {[e.type for e in late]}"
    resumed_from = next(e.resumed_from_epoch for e in mine if e.type == "run_started" and e.attempt == 2)
    trained_by_second = {e.epoch for e in mine if e.type == "epoch_started" and attempt_of(e.seq) == 2}
    assert trained_by_second == set(range(resumed_from + 1, EPOCHS + 1))

    wait_for(
        lambda: "stood down" in (stack.log_dir / f"{paused}.log").read_text(), 30, f"{paused} to log that it stood down"
    )
    assert stack.process(paused).poll() is None  # the worker itself lives on

    # The checkpoints load, and the last one is the new attempt's, after the last epoch.
    run_dir = stack.state_dir / "artifacts" / "runs" / run_id
    last = torch.load(run_dir / "last.pt", weights_only=False)
    assert (last["attempt"], last["epoch"]) == (2, EPOCHS)
    assert torch.load(run_dir / "best.pt", weights_only=False)["epoch"] >= 1
    assert not list(run_dir.glob("*.partial"))
