"""Audits asked for and not stored yet: what the API shows between POST /datasets/{name}/audit
and the recorder storing the audit, and why an audit failed.

One Redis key per dataset (names.AUDIT_REQUEST_KEY) holds the latest request, written by the API
when it queues the task and by the trainer when the audit fails. A request counts only while it
is newer than the dataset's latest stored audit: once the audit arrives the request is simply
older, so nothing has to delete it. It expires after names.AUDIT_REQUEST_TTL_S seconds, so a task
lost for good does not look queued for ever.
"""

from datetime import datetime

import redis

from shared import names
from shared.schemas.datasets import AuditRequest


def _key(dataset: str) -> str:
    return names.AUDIT_REQUEST_KEY.format(dataset=dataset)


def _stored(client: redis.Redis, dataset: str) -> AuditRequest | None:
    raw = client.get(_key(dataset))
    return AuditRequest.model_validate_json(raw) if raw else None


def _store(client: redis.Redis, dataset: str, request: AuditRequest) -> None:
    client.set(_key(dataset), request.model_dump_json(), ex=names.AUDIT_REQUEST_TTL_S)


def open_requests(client: redis.Redis, latest_audit_at: dict[str, datetime | None]) -> dict[str, AuditRequest]:
    """Dataset → its request made after its latest stored audit (waiting, or failed), for the
    datasets given with their latest audit's time (None: never audited); one round trip."""
    datasets = list(latest_audit_at)
    raws = client.mget([_key(dataset) for dataset in datasets]) if datasets else []
    requests = {}
    for dataset, raw in zip(datasets, raws, strict=True):
        request = AuditRequest.model_validate_json(raw) if raw else None
        latest = latest_audit_at[dataset]
        if request is not None and (latest is None or request.requested_at > latest):
            requests[dataset] = request
    return requests


def open_request(client: redis.Redis, dataset: str, latest_audit_at: datetime | None) -> AuditRequest | None:
    return open_requests(client, {dataset: latest_audit_at}).get(dataset)


def record_request(client: redis.Redis, dataset: str, now: datetime) -> AuditRequest:
    """An audit of the dataset was just queued."""
    request = AuditRequest(requested_at=now)
    _store(client, dataset, request)
    return request


def audit_failed(client: redis.Redis, dataset: str, error: str, now: datetime) -> None:
    """Say why the dataset's audit failed; the request keeps the time it was made."""
    request = _stored(client, dataset) or AuditRequest(requested_at=now)
    _store(client, dataset, request.model_copy(update={"error": error}))
