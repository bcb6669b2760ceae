"""/health counts trainers while they train: two real Celery trainers keep both CPUs busy.

Real processes: redis-server, nx-27017, the recorder, the API and two Celery trainers. A
control ping had to be answered within a second by workers competing with training for the
CPU, and /health said 0 workers while two trained; the presence keys they refresh do not.
"""

import os
import signal
import time

import pytest

from shared.datasets.synth import synthesize_dataset
from tests.utils.stack import TRAINING_STACK, api_client, queue_job, running_stack
from tests.utils.waiting import wait_for, wait_for_run

pytestmark = pytest.mark.integration
# Far longer than the test waits for the count to drop: only the stopping worker deleting its
# key can make it drop in time.
PRESENCE_TTL_S = 300
POLLS_WHILE_BUSY = 10


@pytest.fixture
def stack(tmp_path):
    env = {"PADDY_WORKER_PRESENCE_REFRESH_S": "1", "PADDY_WORKER_PRESENCE_TTL_S": str(PRESENCE_TTL_S)}
    with running_stack(tmp_path, TRAINING_STACK, trainers=2, env=env, predictors=False) as running:
        synthesize_dataset(tmp_path / "data" / "leaves", per_class=40, size=128, seed=3)
        yield running


def post_job(api) -> str:
    # Outlasts the test on any machine; cancelled below.
    return queue_job(api, epochs=1000, patience=1000, image_size=128, batch_size=16)


def runs_by_trainer(health: dict) -> dict[str, str | None]:
    """{"trainer-1": the run it trains or None, …} from a /health answer (predictors left out)."""
    return {
        name: w["run_id"]
        for w in health["worker_details"]
        if (name := w["hostname"].split("@")[0]).startswith("trainer-")
    }


def test_busy_trainers_are_counted_and_a_stopped_one_drops_out(stack):
    api = api_client(stack)
    run_ids = [post_job(api), post_job(api)]
    runs = [wait_for_run(api, run_id, "in_progress", timeout_s=180) for run_id in run_ids]
    assert {run["worker"].split("@")[0] for run in runs} == {"trainer-1", "trainer-2"}

    for _ in range(POLLS_WHILE_BUSY):
        health = api.get("/health").json()
        assert health["workers"] == 2, health
        time.sleep(0.5)
    assert [api.get(f"/jobs/{run_id}").json()["status"] for run_id in run_ids] == ["in_progress"] * 2
    busy = wait_for(
        lambda: (
            (by := runs_by_trainer(api.get("/health").json()))
            and sorted(filter(None, by.values())) == sorted(run_ids)
            and by
        ),
        30,
        "both runs in /health",
    )
    assert {busy[run["worker"].split("@")[0]] for run in runs} == set(run_ids)

    # A graceful stop: trainer-2 takes no new job but finishes the one it runs, counted meanwhile.
    trainer_2 = stack.process("trainer-2")
    os.kill(trainer_2.pid, signal.SIGTERM)
    stopping = wait_for(
        lambda: (h := api.get("/health").json()) and any(w["stopping"] for w in h["worker_details"]) and h,
        30,
        "trainer-2 to report that it is stopping",
    )
    assert stopping["workers"] == 2
    assert [w["hostname"].split("@")[0] for w in stopping["worker_details"] if w["stopping"]] == ["trainer-2"]
    assert api.post(f"/jobs/{busy['trainer-2']}/cancel").status_code == 202
    wait_for(lambda: trainer_2.poll() is not None, 120, "trainer-2 to end its run and exit")
    assert trainer_2.returncode == 0

    health = api.get("/health").json()
    assert health["workers"] == 1, health
    assert runs_by_trainer(health) == {"trainer-1": busy["trainer-1"]}

    # An idle trainer still counts.
    assert api.post(f"/jobs/{busy['trainer-1']}/cancel").status_code == 202
    wait_for_run(api, busy["trainer-1"], "cancelled", timeout_s=120)
    wait_for(lambda: runs_by_trainer(api.get("/health").json()) == {"trainer-1": None}, 60, "trainer-1 to be idle")
    assert api.get("/health").json()["workers"] == 1
