"""Clients the handlers get injected, built once per process, and the API key check."""

import hmac
import logging
import threading
import time
from functools import lru_cache
from typing import Annotated

import redis
from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader
from kombu.exceptions import OperationalError

from services.api.job_queue import JobQueue
from services.api.settings import ApiSettings, get_settings
from shared.store import Store, connect, ensure_indexes

log = logging.getLogger(__name__)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="APIKey",
    description="PADDY_API_KEY: needed for POST and DELETE, and for reads when PADDY_API_READ_OPEN=false",
)


@lru_cache
def get_store() -> Store:
    db = connect(get_settings())
    ensure_indexes(db)
    return Store(db)


@lru_cache
def get_queue() -> JobQueue:
    settings = get_settings()
    return JobQueue(settings.redis_url, settings.broker_timeout_s)


@lru_cache
def get_redis() -> redis.Redis:
    settings = get_settings()
    return redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
QueueDep = Annotated[JobQueue, Depends(get_queue)]
RedisDep = Annotated[redis.Redis, Depends(get_redis)]


def check_api_key(request: Request, settings: SettingsDep,
                  key: Annotated[str | None, Security(api_key_header)] = None) -> None:
    """Writes always need the key; reads only while PADDY_API_READ_OPEN is false."""
    if request.method not in WRITE_METHODS and settings.api_read_open:
        return
    expected = settings.api_key.get_secret_value().encode()
    if key is None or not hmac.compare_digest(key.encode(), expected):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong X-API-Key header",
                            headers={"WWW-Authenticate": "APIKey"})


class WorkerCount:
    """Live Celery workers, by control ping. The ping costs its whole timeout, so requests get
    the last answer while a stale one is refreshed in the background; only the first waits.
    An answer of 0 is always refreshed: right after start-up the workers are still coming."""

    def __init__(self, ttl_s: float):
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._value: int | None = None
        self._at = 0.0
        self._refreshing = False

    def get(self, queue: JobQueue, timeout_s: float) -> int:
        with self._lock:
            value, fresh = self._value, bool(self._value) and time.monotonic() - self._at <= self._ttl_s
            start = value is not None and not fresh and not self._refreshing
            if start:
                self._refreshing = True
        if value is None:
            return self._refresh(queue, timeout_s)
        if start:
            threading.Thread(target=self._refresh_quietly, args=(queue, timeout_s), daemon=True).start()
        return value

    def _refresh(self, queue: JobQueue, timeout_s: float) -> int:
        try:
            value = queue.live_workers(timeout_s)
        finally:
            with self._lock:
                self._refreshing = False
        with self._lock:
            self._value, self._at = value, time.monotonic()
        return value

    def _refresh_quietly(self, queue: JobQueue, timeout_s: float) -> None:
        try:
            self._refresh(queue, timeout_s)
        except (OperationalError, OSError, redis.RedisError) as error:  # broker down: keep the last answer
            log.warning("could not ping the workers: %s", error)


@lru_cache
def get_worker_count() -> WorkerCount:
    return WorkerCount(get_settings().worker_count_ttl_s)


WorkersDep = Annotated[WorkerCount, Depends(get_worker_count)]
