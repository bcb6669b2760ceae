"""Clients the handlers get injected, built once per process, and the API key check."""

import hmac
from functools import lru_cache
from typing import Annotated

import redis
from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader
from optuna.storages.journal import JournalStorage

from services.api import search
from services.api.job_queue import JobQueue
from services.api.settings import ApiSettings, get_settings
from services.api.sweep_driver import Services
from shared.store import Store, connect, ensure_indexes

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="APIKey",
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


@lru_cache
def get_search_storage() -> JournalStorage:
    return search.storage(get_settings().redis_url)


def get_sweep_services() -> Services:
    """What the sweep driver works with: the same clients the handlers get."""
    return Services(get_store(), get_queue(), get_redis(), get_search_storage())


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
QueueDep = Annotated[JobQueue, Depends(get_queue)]
RedisDep = Annotated[redis.Redis, Depends(get_redis)]
SweepServicesDep = Annotated[Services, Depends(get_sweep_services)]


def check_api_key(
    request: Request, settings: SettingsDep, key: Annotated[str | None, Security(api_key_header)] = None
) -> str | None:
    """Writes always need a key; reads only while PADDY_API_READ_OPEN is false. The label of the
    key that matched (None for an open read), also kept as `request.state.key_label`."""
    if request.method not in WRITE_METHODS and settings.api_read_open:
        return None
    label = matching_label(key, settings.labelled_keys)
    if label is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing or wrong X-API-Key header", headers={"WWW-Authenticate": "APIKey"}
        )
    request.state.key_label = label
    return label


def matching_label(key: str | None, keys: dict[str, bytes]) -> str | None:
    """The label whose key equals key. Every key is compared, in constant time, whichever matches."""
    sent = (key or "").encode()
    matched = None
    for label, expected in keys.items():
        if hmac.compare_digest(sent, expected) and key is not None:
            matched = label
    return matched


# Who sent a write: the label of its key (check_api_key, run once per request and cached).
KeyLabelDep = Annotated[str | None, Depends(check_api_key)]
