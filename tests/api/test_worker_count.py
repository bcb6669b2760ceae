"""/health and /metrics count the trainers by the presence keys they keep in a real Redis."""

from shared.worker_presence import publish_worker, remove_worker
from tests.utils.api import clear_caches, metric_values
from tests.utils.documents import worker_presence


def test_health_counts_the_workers_and_shows_what_each_runs(client, redis_client):
    publish_worker(redis_client, worker_presence("trainer-2@box", task="paddy.train", run_id="7f3a"), ttl_s=60)
    publish_worker(redis_client, worker_presence("trainer-1@box"), ttl_s=60)
    body = client.get("/health").json()
    assert body["workers"] == 2
    assert body["worker_details"] == [
        worker_presence("trainer-1@box"),
        worker_presence("trainer-2@box", task="paddy.train", run_id="7f3a"),
    ]

    remove_worker(redis_client, "trainer-2@box")  # a clean shutdown
    body = client.get("/health").json()
    assert body["workers"] == 1 and [w["hostname"] for w in body["worker_details"]] == ["trainer-1@box"]


def test_metrics_count_the_same_workers(client, redis_client):
    for i in range(1, 4):
        publish_worker(redis_client, worker_presence(f"trainer-{i}@box"), ttl_s=60)
    assert metric_values(client.get("/metrics").text)["paddy_workers"] == 3
    assert client.get("/health").json()["workers"] == 3


def test_no_workers_while_redis_is_down_is_degraded_not_an_error(client, redis_client, monkeypatch):
    publish_worker(redis_client, worker_presence("trainer-1@box"), ttl_s=60)
    monkeypatch.setenv("PADDY_REDIS_URL", "redis://127.0.0.1:1/0")
    clear_caches()
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["redis"].startswith("unreachable") and body["workers"] == 0 and body["worker_details"] == []


def test_predictors_are_counted_apart_from_the_trainers(client, redis_client):
    publish_worker(redis_client, worker_presence("trainer-1@box", queues=["background", "training"]), ttl_s=60)
    publish_worker(redis_client, worker_presence("predictor-1@box", queues=["predict"]), ttl_s=60)
    body = client.get("/health").json()
    assert (body["workers"], body["predictors"]) == (1, 1)
    assert [w["hostname"] for w in body["worker_details"]] == ["predictor-1@box", "trainer-1@box"]
    values = metric_values(client.get("/metrics").text)
    assert (values["paddy_workers"], values["paddy_predictors"]) == (1, 1)
