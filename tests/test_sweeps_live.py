"""Random and tpe sweeps on a real stack: a losing run is pruned and ends `pruned`, tpe proposes
from its history, and a sweep survives the API, the recorder and a trainer being killed.

Real processes: redis-server, nx-27017, the recorder, the API (with its sweep driver) and two
Celery trainers.
"""

import pytest

from services.api import search
from shared.datasets.synth import synthesize_dataset
from tests.utils.stack import api_client, kill_service
from tests.utils.waiting import wait_for

pytestmark = pytest.mark.integration

# The same initial weights (seed) learn with GOOD and stay where they started with BAD, so after
# one epoch BAD's validation loss is clearly the higher one.
GOOD, BAD = 0.003, 1e-7
EPOCHS = 8  # long enough that the driver prunes the losing run before it ends, on a loaded machine too
DATASET = "sweep-leaves"


@pytest.fixture(scope="module")
def stack(crash_stack):
    """Two trainers, short liveness timings and a sweep driver passing every 0.3 s (conftest.py)."""
    synthesize_dataset(crash_stack.state_dir / "data" / DATASET, per_class=60, size=32, seed=2)
    return crash_stack


def base(epochs: int, image_size: int = 32) -> dict:
    return {
        "model_name": "custom_cnn",
        "dataset": DATASET,
        "epochs": epochs,
        "patience": epochs,
        "image_size": image_size,
        "batch_size": 8,
    }


def finished_search(api, sweep_id: str, timeout_s: float) -> dict:
    return wait_for(
        lambda: (s := api.get(f"/sweeps/{sweep_id}").json()["search"])["state"] == "finished" and s,
        timeout_s,
        f"sweep {sweep_id} to finish",
    )


def test_a_losing_run_is_pruned_and_tpe_then_proposes_from_its_history(stack):
    api = api_client(stack)
    body = {
        "strategy": "tpe",
        "base": base(EPOCHS),
        "space": {"learning_rate": {"choices": [BAD, GOOD]}},
        "first_trials": [{"learning_rate": GOOD}, {"learning_rate": BAD}],
        "max_runs": 3,
        "parallel": 1,
        "pruner": "asha",
        "metric": "val_loss",
    }
    response = api.post("/sweeps", json=body)
    assert response.status_code == 202, response.text
    sweep_id = response.json()["sweep_id"]
    found = finished_search(api, sweep_id, 300)

    states = [(t["number"], t["state"]) for t in found["trials"]]
    assert states[:2] == [(0, "completed"), (1, "pruned")], states
    # Trial 2 is TPE's own proposal (the first two were given): the setting that learned.
    assert [t["params"]["learning_rate"] for t in found["trials"]] == [GOOD, BAD, GOOD]
    # It trains as trial 0 did, so ASHA compares two equal curves: float noise between the two
    # runs may decide the tie either way at the first rung.
    assert states[2][1] in ("completed", "pruned"), states

    pruned = api.get(f"/jobs/{found['trials'][1]['run_id']}").json()
    assert pruned["status"] == "pruned" and "pruned" in [h["status"] for h in pruned["status_history"]]
    assert 1 <= pruned["epochs_done"] < EPOCHS  # stopped long before its last epoch
    assert pruned["checkpoints"].get("best"), "a pruned run keeps its checkpoint"
    listed = api.get("/jobs", params={"status": "pruned"}).json()["data"]
    pruned_trials = {t["run_id"] for t in found["trials"] if t["state"] == "pruned"}
    assert {run["run_id"] for run in listed} == pruned_trials and pruned["run_id"] in pruned_trials
    epochs = api.get(f"/jobs/{pruned['run_id']}/epochs").json()["data"]
    assert [e["epoch"] for e in epochs] == list(range(1, pruned["epochs_done"] + 1))

    shown = api.get(f"/sweeps/{sweep_id}").json()
    assert shown["best"]["run_id"] in (found["trials"][0]["run_id"], found["trials"][2]["run_id"])
    runs = [api.get(f"/jobs/{trial['run_id']}").json() for trial in found["trials"]]
    done = sum(run["epochs_done"] for run in runs)
    # A pruned run may finish the epoch it was in after the driver counted its epochs.
    assert done - len(pruned_trials) <= found["epochs_spent"] <= done
    assert runs[0]["epochs_done"] == EPOCHS


def test_a_sweep_killed_in_every_service_but_the_stores_loses_no_trial_and_runs_none_twice(stack):
    api = api_client(stack)
    epochs, budget = 4, 12  # three runs of 4 epochs; the budget never lets a fourth start
    body = {
        "strategy": "random",
        "base": base(epochs, image_size=48),  # epochs slow enough to kill a run's trainer mid-run
        "space": {"learning_rate": {"low": 0.001, "high": 0.005, "log": True}, "dropout": {"choices": [0.0, 0.3]}},
        "max_runs": 10,
        "parallel": 2,
        "budget_epochs": budget,
        "seed": 7,
    }
    response = api.post("/sweeps", json=body)
    assert response.status_code == 202, response.text
    sweep_id, first = response.json()["sweep_id"], response.json()["run_ids"]
    assert len(first) == 2
    running = wait_for(
        lambda: (r := api.get(f"/jobs/{first[0]}").json())["epochs_done"] >= 1 and r, 180, "the first run's epoch"
    )

    # Kill the trainer of the first run (first: the run must still be training), the API (and
    # its sweep driver) and the recorder; then start them again, as the supervisor would.
    victim = running["worker"].split("@")[0]
    for name in (victim, "api", "recorder"):
        kill_service(stack, name)
    for name in ("recorder", "api", victim):
        stack.restart(name)
    api = api_client(stack)

    found = finished_search(api, sweep_id, 420)
    run_ids = [search.trial_run_id(sweep_id, number) for number in range(3)]
    assert [(t["run_id"], t["state"]) for t in found["trials"]] == [(run_id, "completed") for run_id in run_ids]
    assert found["epochs_spent"] == budget
    runs = api.get("/jobs", params={"sweep_id": sweep_id}).json()
    assert runs["count"] == 3 and sorted(run["run_id"] for run in runs["data"]) == sorted(run_ids)
    for run_id in run_ids:
        run = api.get(f"/jobs/{run_id}").json()
        assert (run["status"], run["epochs_done"]) == ("completed", epochs), run_id
        epochs_seen = [e["epoch"] for e in api.get(f"/jobs/{run_id}/epochs").json()["data"]]
        assert epochs_seen == list(range(1, epochs + 1)), (run_id, epochs_seen)  # each epoch recorded once
    resumed = api.get(f"/jobs/{first[0]}").json()
    assert resumed["attempt"] == 2  # the killed trainer's run went on from its checkpoint, not again
