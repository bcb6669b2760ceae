"""One trainer per GPU under `docker compose up --scale trainer=N`: each worker claims a GPU.

Compose gives every replica of a service the same device request, and with `count: 1` the
NVIDIA runtime hands every replica the same first GPU (NVIDIA/nvidia-container-toolkit#521,
docker/compose#11863): replicas cannot be told apart in the compose file. So the trainer
service sees every GPU of its host (`count: all`) and each worker, as it starts, claims one
in Redis: `SET paddy:gpu-claim:{group}:{uuid} NX` with an expiry, over the GPUs NVML lists, in
order, by UUID (the same in every container of a host, and unique across hosts). It then pins
itself with CUDA_VISIBLE_DEVICES=<uuid> before any CUDA call, so its pool processes see that
GPU alone as cuda:0.

A thread in the worker's main process renews the claim every worker_presence_refresh_s; a
worker that stops deletes it, one that dies loses it when it expires (worker_presence_ttl_s),
and a worker waiting for a free GPU (more replicas than GPUs) takes it then. Trainers and the
predictors beside them claim in separate groups: one of each per GPU.
"""

import logging
import os
import socket
import time
from collections.abc import Callable

import redis
from celery import Celery
from celery.signals import worker_init, worker_shutdown

from services.trainer.gpu_stats import GpuReader
from services.trainer.settings import TrainerSettings, get_settings
from shared.periodic import Periodic

log = logging.getLogger(__name__)
CLAIM_KEY = "paddy:gpu-claim:{group}:{uuid}"
# Renew only a claim this worker still holds: after an outage longer than the expiry another
# worker may hold the GPU now.
RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def claim_first_free(client: redis.Redis, group: str, uuids: list[str], owner: str, ttl_s: float) -> str | None:
    """The first of uuids no other worker of group holds, now held by owner; None if all are held."""
    for uuid in uuids:
        key = CLAIM_KEY.format(group=group, uuid=uuid)
        if client.set(key, owner, nx=True, px=_ms(ttl_s)) or client.get(key) == owner.encode():
            return uuid
    return None


class GpuClaim(Periodic):
    """One worker's claim on one GPU, renewed from a thread until stop(), which releases it."""

    def __init__(self, client: redis.Redis, group: str, uuid: str, owner: str, refresh_s: float, ttl_s: float):
        super().__init__(self._renew, refresh_s, name="gpu-claim")
        self._client = client
        self.key = CLAIM_KEY.format(group=group, uuid=uuid)
        self.uuid = uuid
        self._owner = owner
        self._ttl_s = ttl_s
        self._renew_script = client.register_script(RENEW_SCRIPT)
        self._release_script = client.register_script(RELEASE_SCRIPT)
        self._lost = False

    def _renew(self) -> None:
        try:
            held = self._renew_script(keys=[self.key], args=[self._owner, _ms(self._ttl_s)])
        except redis.RedisError as error:
            log.warning("could not renew the claim on GPU %s: %s", self.uuid, error)
            return
        if not held and not self._lost:  # said once: the worker keeps its GPU, now shared
            log.error("the claim on GPU %s expired and another worker may hold it: they share the GPU", self.uuid)
        self._lost = not held

    def stop(self) -> None:
        super().stop()
        try:
            self._release_script(keys=[self.key], args=[self._owner])
        except redis.RedisError as error:
            log.warning("could not release GPU %s (the claim expires within %g s): %s", self.uuid, self._ttl_s, error)


def claim_gpu(settings: TrainerSettings, uuids: list[str], owner: str, wait_s: float = 5.0) -> GpuClaim:
    """Wait until one of uuids is free and claim it (Redis away: retried); the claim is renewed."""
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    said = False
    while True:
        try:
            uuid = claim_first_free(client, settings.gpu_claim_group, uuids, owner, settings.worker_presence_ttl_s)
        except redis.RedisError as error:
            uuid, why = None, f"Redis unreachable ({error})"
        else:
            why = f"all {len(uuids)} GPUs are held by other {settings.gpu_claim_group} workers"
        if uuid is not None:
            claim = GpuClaim(
                client,
                settings.gpu_claim_group,
                uuid,
                owner,
                settings.worker_presence_refresh_s,
                settings.worker_presence_ttl_s,
            )
            return claim.start()
        if not said:
            log.warning("waiting for a GPU to claim: %s", why)
            said = True
        time.sleep(wait_s)


def host_gpu_uuids() -> list[str]:
    """The UUIDs of every GPU NVML sees here, in NVML's order; [] without NVML or GPUs."""
    reader = GpuReader(None)
    uuids = [reading.uuid for reading in reader.read() or []]
    reader.close()  # the pool processes, forked next, start NVML themselves
    return uuids


def pin_workers_to_gpus(app: Celery, gpu_uuids: Callable[[], list[str]] = host_gpu_uuids) -> None:
    """With gpu_pinning "claim", each worker of app claims a GPU as it starts and pins itself to it."""
    claims: list[GpuClaim] = []

    def on_init(sender, **_kwargs) -> None:  # the worker's main process, before its pool starts
        settings = get_settings()
        if getattr(sender, "app", app) is not app or settings.gpu_pinning != "claim":
            return
        if settings.cuda_visible_devices is not None:
            log.info("GPU pinning: CUDA_VISIBLE_DEVICES=%r is set, no claim", settings.cuda_visible_devices)
            return
        uuids = gpu_uuids()
        if not uuids:
            log.info("GPU pinning: no GPU to claim, the worker runs on the CPU")
            return
        claim = claim_gpu(settings, uuids, owner=f"{socket.gethostname()}:{os.getpid()}")
        # CUDA reads its variable once, at its first call: the pool processes, forked after this,
        # see the claimed GPU alone. Not a setting: it is CUDA's, written for CUDA.
        os.environ["CUDA_VISIBLE_DEVICES"] = claim.uuid
        claims.append(claim)
        log.info("GPU pinning: %s worker on GPU %s", settings.gpu_claim_group, claim.uuid)

    def on_shutdown(**_kwargs) -> None:
        while claims:
            claims.pop().stop()

    worker_init.connect(on_init, weak=False)
    worker_shutdown.connect(on_shutdown, weak=False)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
