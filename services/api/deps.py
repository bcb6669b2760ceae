"""Clients the handlers get injected; built once per process."""

from functools import lru_cache
from typing import Annotated

import redis
from fastapi import Depends

from services.api.job_queue import JobQueue
from services.api.settings import ApiSettings, get_settings
from shared.store import Store, connect, ensure_indexes


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
