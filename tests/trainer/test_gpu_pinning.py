"""GPU claims against a real redis-server: each worker of a group gets a GPU no other one holds."""

import os
import time
from dataclasses import dataclass

import pytest
from celery import Celery
from celery.signals import worker_init, worker_shutdown

from services.trainer.gpu_pinning import CLAIM_KEY, GpuClaim, claim_first_free, pin_workers_to_gpus

UUIDS = ["GPU-aaaa", "GPU-bbbb"]


@dataclass(frozen=True)
class StartingWorker:
    """What worker_init is sent by: a worker (its WorkController), of one app."""

    app: Celery


def holder(redis_client, uuid: str, group: str = "trainer") -> str | None:
    value = redis_client.get(CLAIM_KEY.format(group=group, uuid=uuid))
    return value.decode() if value is not None else None


def test_workers_take_the_gpus_in_turn_and_a_third_finds_none(redis_client):
    assert claim_first_free(redis_client, "trainer", UUIDS, "host:1", ttl_s=10) == "GPU-aaaa"
    assert claim_first_free(redis_client, "trainer", UUIDS, "host:2", ttl_s=10) == "GPU-bbbb"
    assert claim_first_free(redis_client, "trainer", UUIDS, "host:3", ttl_s=10) is None
    # A worker asking again keeps its own GPU; predictors claim apart from trainers.
    assert claim_first_free(redis_client, "trainer", UUIDS, "host:2", ttl_s=10) == "GPU-bbbb"
    assert claim_first_free(redis_client, "predictor", UUIDS, "host:3", ttl_s=10) == "GPU-aaaa"
    assert (holder(redis_client, "GPU-aaaa"), holder(redis_client, "GPU-aaaa", "predictor")) == ("host:1", "host:3")


def test_a_claim_lives_while_renewed_and_is_free_again_after_stop(redis_client):
    assert claim_first_free(redis_client, "trainer", UUIDS, "host:1", ttl_s=0.6) == "GPU-aaaa"
    claim = GpuClaim(redis_client, "trainer", "GPU-aaaa", "host:1", refresh_s=0.1, ttl_s=0.6).start()
    try:
        time.sleep(1.2)  # two expiries
        assert holder(redis_client, "GPU-aaaa") == "host:1"
    finally:
        claim.stop()
    assert holder(redis_client, "GPU-aaaa") is None
    assert claim_first_free(redis_client, "trainer", UUIDS, "host:2", ttl_s=10) == "GPU-aaaa"


def test_a_dead_workers_claim_expires_and_a_waiting_worker_takes_the_gpu(redis_client):
    assert claim_first_free(redis_client, "trainer", UUIDS[:1], "dead:1", ttl_s=0.3) == "GPU-aaaa"
    assert claim_first_free(redis_client, "trainer", UUIDS[:1], "host:2", ttl_s=10) is None
    time.sleep(0.5)
    assert claim_first_free(redis_client, "trainer", UUIDS[:1], "host:2", ttl_s=10) == "GPU-aaaa"


def test_a_claim_taken_over_is_neither_renewed_nor_released_by_its_old_holder(redis_client):
    claim_first_free(redis_client, "trainer", UUIDS, "old:1", ttl_s=10)
    claim = GpuClaim(redis_client, "trainer", "GPU-aaaa", "old:1", refresh_s=0.1, ttl_s=10)
    redis_client.set(CLAIM_KEY.format(group="trainer", uuid="GPU-aaaa"), "new:2")
    claim.start()
    time.sleep(0.3)
    claim.stop()
    assert holder(redis_client, "GPU-aaaa") == "new:2"


def test_a_starting_worker_claims_a_gpu_and_pins_itself_to_it(settings, redis_client, monkeypatch):
    monkeypatch.setenv("PADDY_GPU_PINNING", "claim")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    app = Celery("pinning-test")
    pin_workers_to_gpus(app, gpu_uuids=lambda: UUIDS)
    redis_client.set(CLAIM_KEY.format(group="trainer", uuid="GPU-aaaa"), "another:1")  # a worker started before

    worker_init.send(sender=StartingWorker(app))
    try:
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "GPU-bbbb"
        assert holder(redis_client, "GPU-bbbb").endswith(f":{os.getpid()}")
    finally:
        worker_shutdown.send(sender=None)
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert holder(redis_client, "GPU-bbbb") is None  # released as the worker stops


@pytest.mark.parametrize(
    ("env", "uuids"),
    [
        ({"PADDY_GPU_PINNING": "off"}, UUIDS),
        ({"PADDY_GPU_PINNING": "claim", "CUDA_VISIBLE_DEVICES": "1"}, UUIDS),  # pinned by hand
        ({"PADDY_GPU_PINNING": "claim"}, []),  # a CPU host
    ],
)
def test_no_claim_when_pinning_is_off_set_by_hand_or_there_is_no_gpu(settings, redis_client, monkeypatch, env, uuids):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = Celery("pinning-test")
    pin_workers_to_gpus(app, gpu_uuids=lambda: uuids)

    worker_init.send(sender=StartingWorker(app))

    assert os.environ.get("CUDA_VISIBLE_DEVICES") == env.get("CUDA_VISIBLE_DEVICES")
    assert not list(redis_client.scan_iter(match="paddy:gpu-claim:*"))
