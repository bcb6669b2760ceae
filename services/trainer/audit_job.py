"""One dataset audit as the `paddy.audit` task runs it: the dataset found inside the data root,
audited (services/trainer/audit/), cached beside the artifacts (shared/datasets/audits.py) and
published as a `dataset_audited` event, which the recorder keeps in MongoDB for the API.

A failed audit says why in the dataset's audit request (shared/audit_requests.py), which the
API shows, with the data root's path taken out of the message.
"""

import logging
from datetime import UTC, datetime

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.trainer.events import EventPublisher
from services.trainer.settings import TrainerSettings
from shared.audit_requests import audit_failed
from shared.datasets.audits import save_audit
from shared.datasets.imagefolder import DATA_ROOT_NAME, resolve_dataset, scan_image_folder
from shared.schemas.datasets import DatasetAudit
from shared.schemas.events import DatasetAudited

log = logging.getLogger(__name__)
# Seconds to wait for Redis to take the event before the audit counts as unpublished.
PUBLISH_TIMEOUT_S = 30.0


class AuditNotPublished(RuntimeError):
    """The audit was made and cached, but Redis did not take its event."""


def run_audit(dataset: str, settings: TrainerSettings) -> DatasetAudit:
    """Audit the dataset the API named; raises (after recording why) when it cannot."""
    client = redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.event_socket_timeout_s,
        socket_connect_timeout=settings.event_socket_timeout_s,
        retry=Retry(NoBackoff(), retries=1),
    )
    try:
        audit = _audit(dataset, settings)
        if not publish_audit(client, audit):
            raise AuditNotPublished(f"the audit of {dataset!r} is cached, but Redis did not take its event")
        return audit
    except Exception as error:
        _record_failure(client, dataset, error, settings)
        raise
    finally:
        client.close()


def _audit(dataset: str, settings: TrainerSettings) -> DatasetAudit:
    folder = resolve_dataset(dataset, settings.data_root)
    scan_image_folder(folder, within=settings.data_root)  # a link out anywhere below: refused first
    # Imported here: OpenCV and scikit-learn load only in a worker that audits, not in every
    # worker process that trains or predicts.
    from services.trainer.audit import audit_dataset

    audit = audit_dataset(folder, dataset)
    save_audit(settings.artifacts_root, audit)
    return audit


def publish_audit(client: redis.Redis, audit: DatasetAudit) -> bool:
    """Send the audit's event; False when Redis did not take it in PUBLISH_TIMEOUT_S.

    Its publisher is named after the dataset's fingerprint (no run publishes it): attempt 0."""
    publisher = EventPublisher(client, f"dataset:{audit.fingerprint}", attempt=0)
    publisher.publish(DatasetAudited, audit=audit)
    return publisher.close(PUBLISH_TIMEOUT_S)


def _record_failure(client: redis.Redis, dataset: str, error: Exception, settings: TrainerSettings) -> None:
    message = f"{type(error).__name__}: {error}".replace(str(settings.data_root.resolve()), DATA_ROOT_NAME)
    try:
        audit_failed(client, dataset, message[:2000], datetime.now(UTC))
    except redis.RedisError as redis_error:
        log.warning("could not record that the audit of %r failed: %s", dataset, redis_error)
