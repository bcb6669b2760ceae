"""POST /sweeps and GET /sweeps/{sweep_id}: grid expansion, validation before queueing, best run."""

from shared import names
from tests.utils.api import detail, queued_tasks
from tests.utils.documents import stored_run


def sweep(**grid) -> dict:
    return {"base": {"model_name": "custom_cnn", "dataset": "leaves", "epochs": 2, "image_size": 64}, "grid": grid}


def test_a_grid_becomes_one_queued_run_per_combination(client, redis_client):
    response = client.post("/sweeps", json=sweep(learning_rate=[0.01, 0.001], dropout=[0.2, 0.5, None]))
    assert response.status_code == 202
    created = response.json()
    assert created["count"] == 6 and len(set(created["run_ids"])) == 6
    tasks = queued_tasks(redis_client)
    assert [args[0] for _, args in tasks] == created["run_ids"]
    assert {(args[1]["learning_rate"], args[1]["dropout"]) for _, args in tasks} == {
        (lr, d) for lr in (0.01, 0.001) for d in (0.2, 0.5, None)
    }
    assert {name for name, _ in tasks} == {names.TRAIN_TASK}
    listed = client.get("/jobs", params={"sweep_id": created["sweep_id"]}).json()
    assert listed["count"] == 6 and {r["version"] for r in listed["data"]} == {f"v{i}" for i in range(1, 7)}
    shown = client.get(f"/sweeps/{created['sweep_id']}").json()
    assert shown["count"] == 6 and shown["best"] is None and shown["metric"] == "val_accuracy"
    assert [r["run_id"] for r in shown["runs"]] == created["run_ids"]


def test_one_invalid_combination_queues_nothing(client, redis_client):
    response = client.post("/sweeps", json=sweep(learning_rate=[0.01, 5.0]))
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "grid", "learning_rate"] and "combination 2" in error["msg"]
    assert "less than or equal to 1" in error["msg"]
    assert redis_client.llen(names.TRAINING_QUEUE) == 0 and client.get("/jobs").json()["count"] == 0


def test_bad_grids_and_bases_are_422_naming_the_field(client, redis_client):
    for body, words in [
        (sweep(colour=["red"]), "unknown grid field"),
        (sweep(version=["v9"]), "unknown grid field"),
        (sweep(epochs=[]), "no values"),
        ({"base": {"model_name": "custom_cnn", "dataset": "leaves", "speed": 1}, "grid": {"epochs": [1]}}, "speed"),
        ({"base": {"model_name": "custom_cnn", "dataset": "nowhere"}, "grid": {"epochs": [1]}}, "nowhere"),
        ({"base": {"model_name": "custom_cnn", "dataset": "leaves"}, "grid": {}}, "needs `grid`"),
        (sweep(model_name=["custom_cnn", "resnet9000"]), "resnet9000"),
    ]:
        response = client.post("/sweeps", json=body)
        assert response.status_code == 422, body
        assert words in detail(response), (body, detail(response))
    assert redis_client.llen(names.TRAINING_QUEUE) == 0


def test_more_combinations_than_allowed_is_422(client, monkeypatch, redis_client):
    response = client.post("/sweeps", json=sweep(epochs=list(range(1, 11)), seed=list(range(11))))
    assert response.status_code == 422 and "110 combinations" in detail(response) and "at most 100" in detail(response)
    assert redis_client.llen(names.TRAINING_QUEUE) == 0


def test_the_best_run_is_the_completed_one_with_the_best_metric(client, db):
    sweep_id = client.post("/sweeps", json=sweep(seed=[1])).json()["sweep_id"]
    stored_run(db, "hi", sweep_id=sweep_id, metrics={"val_accuracy": 0.9, "test_loss": 0.4})
    stored_run(db, "lo", sweep_id=sweep_id, metrics={"val_accuracy": 0.6, "test_loss": 0.1})
    stored_run(db, "fail", status="failed", sweep_id=sweep_id)
    assert client.get(f"/sweeps/{sweep_id}").json()["best"]["run_id"] == "hi"
    shown = client.get(f"/sweeps/{sweep_id}", params={"metric": "test_loss"}).json()
    assert shown["best"]["run_id"] == "lo" and shown["count"] == 4
    bad = client.get(f"/sweeps/{sweep_id}", params={"metric": "speed"})
    assert bad.status_code == 422 and "val_accuracy" in detail(bad)
    assert client.get("/sweeps/nope").status_code == 404
