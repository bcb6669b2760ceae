"""Random and tpe sweeps through the API: validation, the first runs, and the driver's passes.

No trainer runs here: each test writes what the recorder would store of a run (its status,
its epochs) straight into MongoDB, then lets the driver make one pass (sweep_driver.advance).
"""

from datetime import timedelta

import optuna
import pytest

from services.api import deps, search
from services.api.sweep_driver import advance
from services.recorder.handlers import epoch_document_id
from shared import names
from shared.schemas.events import utc_now
from shared.schemas.jobs import SearchChoices
from tests.utils.api import detail, queued_tasks

BASE = {"model_name": "custom_cnn", "dataset": "leaves", "epochs": 3, "image_size": 32}
SPACE = {"learning_rate": {"low": 0.0001, "high": 0.01, "log": True}, "dropout": {"choices": [0.0, 0.3, 0.5]}}


def search_body(**fields) -> dict:
    return {"strategy": "tpe", "base": BASE, "space": SPACE, **fields}


def start(client, **fields) -> str:
    response = client.post("/sweeps", json=search_body(**fields))
    assert response.status_code == 202, response.text
    return response.json()["sweep_id"]


def drive(sweep_id: str) -> dict:
    state = advance(sweep_id, deps.get_sweep_services(), wait_s=10)
    assert state is not None
    return state


def finish_run(db, run_id: str, curve: list[float], status: str = "completed") -> None:
    """What the recorder stores of a run that trained len(curve) epochs and ended `status`."""
    store_epochs(db, run_id, curve)
    fields = {"status": status, "epochs_done": len(curve)}
    if status == "completed":
        fields["metrics"] = {"val_accuracy": max(curve)}
    db[names.STATUS].update_one({"run_id": run_id}, {"$set": fields})


def store_epochs(db, run_id: str, curve: list[float]) -> None:
    db[names.STATUS].update_one({"run_id": run_id}, {"$set": {"status": "in_progress", "epochs_done": len(curve)}})
    finished = utc_now() - timedelta(minutes=1)
    db[names.EPOCHS].delete_many({"run_id": run_id})
    db[names.EPOCHS].insert_many(
        [
            {
                "_id": epoch_document_id(run_id, epoch),
                "run_id": run_id,
                "epoch": epoch,
                "val_acc": value,
                "val_loss": 1 - value,
                "finished_at": finished,
            }
            for epoch, value in enumerate(curve, start=1)
        ]
    )


def trials(state: dict) -> list[tuple[int, str]]:
    return [(trial["number"], trial["state"]) for trial in state["trials"]]


def test_a_tpe_search_queues_its_first_parallel_runs_under_their_trials_ids(client, redis_client):
    response = client.post("/sweeps", json=search_body(parallel=2, max_runs=4, pruner="asha"))
    assert response.status_code == 202
    created = response.json()
    sweep_id = created["sweep_id"]
    expected = [search.trial_run_id(sweep_id, number) for number in (0, 1)]
    assert created["run_ids"] == expected and created["count"] == 2
    tasks = queued_tasks(redis_client)
    assert [args[0] for _, args in tasks] == expected
    for _name, (_run_id, spec) in tasks:
        assert 0.0001 <= spec["learning_rate"] <= 0.01 and spec["dropout"] in (0.0, 0.3, 0.5)
        assert (spec["epochs"], spec["image_size"]) == (3, 32)
    shown = client.get(f"/sweeps/{sweep_id}").json()
    assert shown["kind"] == "tpe" and shown["count"] == 2
    found = shown["search"]
    assert (found["state"], found["pruner"], found["max_runs"], found["parallel"]) == ("running", "asha", 4, 2)
    assert trials(found) == [(0, "running"), (1, "running")] and found["epochs_spent"] == 0
    listed = client.get("/sweeps").json()["data"]
    assert [(s["sweep_id"], s["kind"], s["state"]) for s in listed] == [(sweep_id, "tpe", "running")]


@pytest.mark.parametrize(
    ("fields", "where", "words"),
    [
        ({"space": {"epochs": {"low": 1, "high": 5}}}, ["space", "epochs"], "set epochs in base"),
        ({"space": {"colour": {"choices": ["red"]}}}, ["space", "colour"], "searchable fields"),
        ({"space": {"model_name": {"low": 1, "high": 2}}}, ["space", "model_name"], "not a number"),
        ({"space": {"batch_size": {"low": 8.5, "high": 64}}}, ["space", "batch_size"], "integers"),
        ({"space": {"learning_rate": {"low": 0.0, "high": 0.1, "log": True}}}, None, "log range needs low > 0"),
        ({"space": {"learning_rate": {"low": 0.1, "high": 5.0}}}, ["space", "learning_rate"], "less than or equal"),
        ({"space": {"model_name": {"choices": ["custom_cnn", "resnet9000"]}}}, ["space", "model_name"], "resnet9000"),
        ({"first_trials": [{"dropout": 0.9}]}, ["space", "dropout"], "outside the space"),
        ({"first_trials": [{"seed": 1}]}, ["space", "seed"], "does not search"),
        ({"max_runs": 500}, ["max_runs"], "at most 100"),
        ({"budget_epochs": 2}, ["budget_epochs"], "less than one run's 3"),
        ({"space": {}}, None, "needs `space`"),
        ({"strategy": "grid", "grid": {"seed": [1, 2]}, "space": {}, "pruner": "asha"}, None, "need strategy random"),
    ],
)
def test_bad_searches_are_422_naming_the_field(client, redis_client, fields, where, words):
    response = client.post("/sweeps", json=search_body(**fields))
    assert response.status_code == 422, response.text
    assert words in detail(response), detail(response)
    if where is not None:
        assert response.json()["detail"][0]["loc"] == ["body", *where]
    assert redis_client.llen(names.TRAINING_QUEUE) == 0 and client.get("/sweeps").json()["count"] == 0


def test_each_ended_run_is_told_to_optuna_and_replaced_until_max_runs(client, db, redis_client):
    sweep_id = start(client, parallel=1, max_runs=2, first_trials=[{"learning_rate": 0.001, "dropout": 0.3}])
    first = search.trial_run_id(sweep_id, 0)
    assert [args[1]["learning_rate"] for _, args in queued_tasks(redis_client)] == [0.001]
    finish_run(db, first, [0.5, 0.7, 0.8])
    state = drive(sweep_id)
    assert trials(state) == [(0, "completed"), (1, "running")]
    assert state["trials"][0]["value"] == 0.8 and state["trials"][0]["intermediate"] == {"1": 0.5, "2": 0.7, "3": 0.8}
    assert state["epochs_spent"] == 3 and state["best_value"] == 0.8 and state["state"] == "running"
    finish_run(db, search.trial_run_id(sweep_id, 1), [0.4, 0.6, 0.9])
    state = drive(sweep_id)
    assert trials(state) == [(0, "completed"), (1, "completed")]
    assert (state["state"], state["best_value"], state["epochs_spent"]) == ("finished", 0.9, 6)
    assert state["finished_at"] is not None
    assert len(queued_tasks(redis_client)) == 2  # nothing queued past max_runs
    assert client.get(f"/sweeps/{sweep_id}").json()["best"]["run_id"] == search.trial_run_id(sweep_id, 1)


def test_a_clearly_losing_run_is_pruned_through_its_stop_flag(client, db, redis_client):
    sweep_id = start(client, parallel=1, max_runs=4, pruner="median")
    for number, curve in enumerate([[0.5, 0.8, 0.9], [0.6, 0.8, 0.85]]):
        finish_run(db, search.trial_run_id(sweep_id, number), curve)
        drive(sweep_id)
    losing = search.trial_run_id(sweep_id, 2)
    store_epochs(db, losing, [0.1])
    state = drive(sweep_id)
    assert redis_client.get(names.CANCEL_KEY.format(run_id=losing)) == names.PRUNE_FLAG_VALUE.encode()
    assert trials(state)[2] == (2, "running")  # until its trainer stops it and the run ends `pruned`
    finish_run(db, losing, [0.1], status="pruned")
    state = drive(sweep_id)
    assert trials(state) == [(0, "completed"), (1, "completed"), (2, "pruned"), (3, "running")]
    assert state["trials"][2]["value"] == 0.1 and state["trials"][2]["epochs"] == 1
    # A run as good as the others at the same epoch goes on.
    store_epochs(db, search.trial_run_id(sweep_id, 3), [0.55])
    drive(sweep_id)
    assert redis_client.get(names.CANCEL_KEY.format(run_id=search.trial_run_id(sweep_id, 3))) is None


def test_the_budget_is_never_overspent(client, db, redis_client):
    sweep_id = start(client, parallel=2, max_runs=10, budget_epochs=8, pruner="median")
    assert len(queued_tasks(redis_client)) == 2  # 3 + 3 epochs reserved, a third run would need 9
    finish_run(db, search.trial_run_id(sweep_id, 0), [0.5, 0.6, 0.7])
    store_epochs(db, search.trial_run_id(sweep_id, 1), [0.5])
    state = drive(sweep_id)
    assert len(state["trials"]) == 2  # spent 4, reserved 2: a new run's 3 would make 9
    finish_run(db, search.trial_run_id(sweep_id, 1), [0.5], status="pruned")
    state = drive(sweep_id)
    assert trials(state)[-1] == (2, "running") and state["epochs_spent"] == 4
    finish_run(db, search.trial_run_id(sweep_id, 2), [0.4, 0.5, 0.6])
    state = drive(sweep_id)
    assert state["state"] == "finished" and state["epochs_spent"] == 7 and len(queued_tasks(redis_client)) == 3


def test_a_trial_proposed_by_a_driver_that_died_is_queued_once(client, db, redis_client):
    sweep_id = start(client, parallel=2, max_runs=3)
    finish_run(db, search.trial_run_id(sweep_id, 0), [0.5, 0.6, 0.7])
    # A driver asked Optuna for trial 2 and died before it queued the trial's run.
    study = optuna.load_study(study_name=search.study_name(sweep_id), storage=deps.get_search_storage())
    orphan = study.ask(search.distributions({"dropout": SearchChoices(choices=[0.0, 0.3, 0.5])}))
    assert orphan.number == 2
    for _ in range(2):
        state = drive(sweep_id)
    run_ids = [args[0] for _, args in queued_tasks(redis_client)]
    assert run_ids == [search.trial_run_id(sweep_id, number) for number in (0, 1, 2)]
    assert trials(state) == [(0, "completed"), (1, "running"), (2, "running")]


def test_a_cancelled_search_queues_nothing_more_and_cancels_its_runs(client, db, redis_client):
    sweep_id = start(client, parallel=2, max_runs=6)
    running = search.trial_run_id(sweep_id, 0)
    store_epochs(db, running, [0.5])
    response = client.post(f"/sweeps/{sweep_id}/cancel")
    assert response.status_code == 202
    found = response.json()["search"]
    assert found["state"] == "cancelled" and trials(found) == [(0, "failed"), (1, "failed")]
    assert redis_client.get(names.CANCEL_KEY.format(run_id=running)) == b"1"  # a person's cancel, not a prune
    queued = client.get(f"/jobs/{search.trial_run_id(sweep_id, 1)}").json()
    assert queued["status"] == "cancelled"
    finish_run(db, running, [0.5, 0.6], status="cancelled")
    assert advance(sweep_id, deps.get_sweep_services()) is None  # no driver advances it again
    assert len(queued_tasks(redis_client)) == 2
    assert client.post(f"/sweeps/{sweep_id}/cancel").status_code == 409
    assert client.post("/sweeps/nope/cancel").status_code == 404
    assert client.get("/sweeps").json()["data"][0]["state"] == "cancelled"


def test_each_trial_samples_its_own_point_though_the_driver_builds_its_study_each_pass(client, db, redis_client):
    sweep_id = start(client, strategy="random", parallel=1, max_runs=4, seed=3)
    for number in range(3):
        finish_run(db, search.trial_run_id(sweep_id, number), [0.5])
        drive(sweep_id)
    rates = [args[1]["learning_rate"] for _, args in queued_tasks(redis_client)]
    assert len(rates) == 4 and len(set(rates)) == 4
    again = start(client, strategy="random", parallel=4, max_runs=4, seed=3)  # same seed, same points
    assert [args[1]["learning_rate"] for _, args in queued_tasks(redis_client)][4:] == rates
    assert again != sweep_id
