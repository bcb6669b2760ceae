"""A trainer SIGKILLed in the middle of a job: the job finishes on the other trainer.

Real processes: redis-server, nx-27017, the recorder, the API and two Celery trainers.
"""

import time

import pytest

from shared.datasets.synth import synthesize_dataset
from tests.conftest import CRASH_TIMINGS
from tests.utils.stack import api_client, kill_service, queue_job
from tests.utils.waiting import wait_for

pytestmark = pytest.mark.integration
VISIBILITY_TIMEOUT_S = int(CRASH_TIMINGS["PADDY_VISIBILITY_TIMEOUT_S"])


@pytest.fixture(scope="module")
def stack(crash_stack):
    """Two trainers whose dead worker's job comes back after VISIBILITY_TIMEOUT_S (conftest.py)."""
    synthesize_dataset(crash_stack.state_dir / "data" / "leaves", per_class=40, size=128, seed=2)
    return crash_stack


def post_job(api, epochs: int) -> str:
    return queue_job(api, epochs=epochs, image_size=128, batch_size=16, patience=50)


def test_a_live_job_longer_than_the_visibility_timeout_runs_once(stack):
    api = api_client(stack)
    run_id = post_job(api, epochs=1000)  # outlasts the test on any machine; cancelled below
    started = wait_for(
        lambda: (r := api.get(f"/jobs/{run_id}").json())["status"] == "in_progress" and r, 120, "the run to start"
    )

    # Unacknowledged, the task would be redelivered to the idle second trainer after the timeout.
    time.sleep(2 * VISIBILITY_TIMEOUT_S)
    running = api.get(f"/jobs/{run_id}").json()
    assert running["status"] == "in_progress", running["error"]
    assert running["attempt"] == 1 and running["worker"] == started["worker"]  # delivered once
    assert running["epochs_done"] > started["epochs_done"]  # and still training

    assert api.post(f"/jobs/{run_id}/cancel").status_code == 202
    done = wait_for(
        lambda: (r := api.get(f"/jobs/{run_id}").json())["status"] != "in_progress" and r, 120, "the run to stop"
    )
    assert done["status"] == "cancelled" and done["attempt"] == 1


def test_a_killed_trainers_job_resumes_on_the_other_and_completes(stack):
    api = api_client(stack)
    run_id = post_job(api, epochs=6)
    run = wait_for(
        lambda: (r := api.get(f"/jobs/{run_id}").json())["epochs_done"] >= 2 and r, 120, "two finished epochs"
    )
    assert run["status"] == "in_progress"
    victim = run["worker"].split("@")[0]  # "trainer-1" or "trainer-2"
    kill_service(stack, victim)  # the worker and its pool child

    done = wait_for(
        lambda: (r := api.get(f"/jobs/{run_id}").json())["status"] in ("completed", "failed") and r,
        240,
        "the run to finish on the surviving trainer",
    )
    assert done["status"] == "completed", done["error"]
    assert done["attempt"] == 2 and not done["worker"].startswith(victim)

    epochs = api.get(f"/jobs/{run_id}/epochs").json()["data"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4, 5, 6]
    assert all(e["val_loss"] is not None for e in epochs)

    assert done["resumed_from_epoch"] >= 2  # picked up after the last checkpointed epoch
    stack.restart(victim)  # the stack is shared (conftest.crash_stack)
