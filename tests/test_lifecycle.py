"""Runs that die and runs that are cancelled, on the whole local stack with real processes.

A trainer frozen with SIGSTOP goes silent: its run becomes `lost`, and `in_progress` again once
SIGCONT lets its heartbeats through. Cancelling a queued and a running job both end `cancelled`,
and the worker goes on to the next job.
"""

import os
import signal

import pytest

from shared.datasets.synth import synthesize_dataset
from tests.utils.stack import TRAINING_STACK, api_client, queue_job, running_stack
from tests.utils.waiting import wait_for, wait_for_run

pytestmark = pytest.mark.integration

# Long enough to still be training while a test freezes it or cancels it (about 0.3 s an epoch).
LONG_JOB = {
    "model_name": "custom_cnn",
    "dataset": "leaves",
    "epochs": 200,
    "patience": 200,
    "image_size": 64,
    "batch_size": 16,
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("paddy")
    env = {"PADDY_HEARTBEAT_INTERVAL_S": "1", "PADDY_HEARTBEAT_TIMEOUT_S": "4", "PADDY_REAP_INTERVAL_S": "1"}
    with running_stack(state_dir, TRAINING_STACK, env=env, predictors=False) as running:
        synthesize_dataset(state_dir / "data" / "leaves", per_class=30, size=64, seed=1)
        yield running


@pytest.fixture(scope="module")
def api(stack):
    with api_client(stack) as client:
        yield client


def post_job(api, **overrides) -> str:
    return queue_job(api, **(LONG_JOB | overrides))


def wait_for_an_epoch(api, run_id: str, timeout_s: float = 120) -> dict:
    def trained_an_epoch():
        run = api.get(f"/jobs/{run_id}").json()
        return run if run["status"] == "in_progress" and run["epochs_done"] >= 1 else None

    return wait_for(trained_an_epoch, timeout_s, f"run {run_id} to finish an epoch")


def cancel(api, run_id: str) -> dict:
    response = api.post(f"/jobs/{run_id}/cancel")
    assert response.status_code == 202, response.text
    return response.json()


def test_a_frozen_trainer_makes_its_run_lost_until_it_resumes(stack, api):
    run_id = post_job(api)
    wait_for_run(api, run_id, "in_progress", timeout_s=120)
    trainer = stack.process("trainer-1").pid
    os.killpg(trainer, signal.SIGSTOP)  # the whole group: the worker child does the training
    try:
        lost = wait_for_run(api, run_id, "lost", timeout_s=30)
    finally:
        os.killpg(trainer, signal.SIGCONT)
    back = wait_for_run(api, run_id, "in_progress", timeout_s=30)
    assert [h["status"] for h in back["status_history"]] == ["queued", "in_progress", "lost", "in_progress"]
    assert lost["status_history"][2]["time"] > lost["status_history"][1]["time"]

    cancel(api, run_id)
    assert wait_for_run(api, run_id, "cancelled")["end_time"] is not None


def test_cancelled_queued_and_running_jobs_end_cancelled_and_the_worker_goes_on(stack, api):
    running = post_job(api)
    queued = post_job(api)
    wait_for_an_epoch(api, running)

    assert cancel(api, queued)["status"] == "cancelled"  # at once: it never reached a trainer
    cancel(api, running)
    stopped = wait_for_run(api, running, "cancelled", timeout_s=30)
    assert stopped["epochs_done"] < LONG_JOB["epochs"]
    # The epoch it stopped in is gone: every stored epoch has its numbers (the original dashboard's).
    epochs = wait_for(
        lambda: (e := api.get(f"/jobs/{running}/epochs").json())["count"] == stopped["epochs_done"] and e,
        10,
        "the stopped epoch to be removed",
    )
    assert all(isinstance(e["val_acc"], float) for e in epochs["data"])
    # The best checkpoint so far is kept (artifacts/runs/<run_id>/best.pt, services/trainer/checkpoints.py).
    assert (stack.state_dir / "artifacts" / "runs" / running / "best.pt").is_file()
    assert [h["status"] for h in stopped["status_history"]] == ["queued", "in_progress", "cancelled"]

    after = post_job(api, epochs=1)
    assert wait_for_run(api, after, "completed", "failed", timeout_s=120)["status"] == "completed"
    skipped = api.get(f"/jobs/{queued}").json()
    assert [h["status"] for h in skipped["status_history"]] == ["queued", "cancelled"]
    assert skipped["start_time"] is None  # no trainer ever started it
    assert api.post(f"/jobs/{running}/cancel").status_code == 409
