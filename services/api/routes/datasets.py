"""The datasets under the data root with their latest audits; audits on demand; thumbnails of
their images for the dashboard's copy groups.

A dataset here is a folder directly under the data root that scans as an ImageFolder, by the
rules jobs follow (services/api/datasets.py): nothing outside the data root is listed, read or
served. Audits run on a trainer (`paddy.audit`) and reach MongoDB through the recorder.
"""

import logging
from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from kombu.exceptions import OperationalError

from services.api.datasets import (
    UnknownDatasetError,
    dataset_image,
    datasets_under,
    find_dataset,
)
from services.api.deps import QueueDep, RedisDep, SettingsDep, StoreDep
from services.api.settings import ApiSettings
from services.api.thumbnails import DEFAULT_SIZE, MAX_SIZE, MIN_SIZE, thumbnail_response
from shared.audit_requests import open_request, open_requests, record_request
from shared.datasets.imagefolder import DatasetError, ImageFolderIndex
from shared.paths import shown
from shared.schemas.datasets import (
    AuditQueued,
    AuditRequest,
    AuditSummary,
    DatasetAudit,
    DatasetPublic,
    DatasetsPublic,
)
from shared.schemas.events import utc_now
from shared.schemas.jobs import NO_CONTROL_CHARACTERS

router = APIRouter(prefix="/datasets", tags=["datasets"])
log = logging.getLogger(__name__)

DatasetName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=255,
        pattern=NO_CONTROL_CHARACTERS,
        description="a folder directly under the data root",
        examples=["rice-leaf-real"],
    ),
]
NAME_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such folder under the data root"},
    422: {"description": "the name is no folder's name, leads outside the data root, or the folder is no dataset"},
}


def _refused(error: DatasetError) -> HTTPException:
    if isinstance(error, UnknownDatasetError):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(error))
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error))


def _dataset(name: str, settings: ApiSettings) -> ImageFolderIndex:
    try:
        return find_dataset(name, settings.data_root)[1]
    except DatasetError as error:
        raise _refused(error) from None


def dataset_public(
    name: str,
    index: ImageFolderIndex,
    summary: AuditSummary | None,
    request: AuditRequest | None,
    latest_audit: DatasetAudit | None = None,
) -> DatasetPublic:
    counts = Counter(index.labels)
    fingerprint = index.fingerprint()
    return DatasetPublic(
        name=name,
        images=len(index.paths),
        classes={class_name: counts[label] for label, class_name in enumerate(index.class_names)},
        fingerprint=fingerprint,
        audit=summary,
        audit_outdated=summary is not None and summary.fingerprint != fingerprint,
        audit_request=request,
        latest_audit=latest_audit,
    )


@router.get("", response_model=DatasetsPublic)
def list_datasets(store: StoreDep, redis_client: RedisDep, settings: SettingsDep) -> DatasetsPublic:
    """The datasets under the data root: classes with their image counts (file names only, no
    image decoded), and the summary of each one's latest audit."""
    found = datasets_under(settings.data_root)
    stored = store.audit_summaries()
    summaries = {name: AuditSummary.model_validate(stored[name]) for name, _ in found if name in stored}
    requests = open_requests(
        redis_client, {name: summaries[name].audited_at if name in summaries else None for name, _ in found}
    )
    data = [dataset_public(name, index, summaries.get(name), requests.get(name)) for name, index in found]
    return DatasetsPublic(data=data, count=len(data))


@router.get("/{name}", response_model=DatasetPublic, responses=NAME_ERRORS)
def get_dataset(name: DatasetName, store: StoreDep, redis_client: RedisDep, settings: SettingsDep) -> DatasetPublic:
    """One dataset, with its latest audit whole in `latest_audit`."""
    index = _dataset(name, settings)
    stored = store.get_audit(name)
    audit = DatasetAudit.model_validate(stored) if stored is not None else None
    summary = AuditSummary.of(audit) if audit is not None else None
    request = open_request(redis_client, name, summary.audited_at if summary else None)
    return dataset_public(name, index, summary, request, latest_audit=audit)


@router.post(
    "/{name}/audit",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AuditQueued,
    responses={**NAME_ERRORS, 503: {"description": "the job queue (Redis) is unreachable"}},
)
def queue_audit(
    name: DatasetName, store: StoreDep, queue: QueueDep, redis_client: RedisDep, settings: SettingsDep
) -> AuditQueued:
    """Queue an audit of the dataset on a trainer; GET /datasets/{name} shows it once stored.
    While one is waiting, asking again queues nothing more."""
    _dataset(name, settings)
    stored = store.audit_summaries().get(name)
    latest_at = AuditSummary.model_validate(stored).audited_at if stored else None
    waiting = open_request(redis_client, name, latest_at)
    if waiting is not None and waiting.error is None:
        return AuditQueued(dataset=name, requested_at=waiting.requested_at, queued=False)
    try:
        queue.send_audit(name)
    except (OperationalError, OSError) as error:
        log.error("could not queue the audit of %r: %s", name, error)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the job queue (Redis) is unreachable") from None
    request = record_request(redis_client, name, utc_now())
    return AuditQueued(dataset=name, requested_at=request.requested_at, queued=True)


@router.get(
    "/{name}/images/{path:path}",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "a JPEG thumbnail"},
        304: {"description": "unchanged since the ETag sent in If-None-Match"},
        404: {"description": "no such dataset, or no such image in it"},
        422: {"description": "a path that leads outside the dataset, or a file that is no readable image"},
    },
)
def get_image_thumbnail(
    name: DatasetName,
    path: str,
    request: Request,
    settings: SettingsDep,
    size: Annotated[int, Query(ge=MIN_SIZE, le=MAX_SIZE, description="longest side, pixels")] = DEFAULT_SIZE,
) -> Response:
    """A thumbnail of one image of the dataset; `path` is relative to the folder holding the class
    folders (the dataset's, or the lone folder in it), as an audit's copy groups name files. It
    must lie inside the dataset, links resolved."""
    try:
        image = dataset_image(name, path, settings.data_root)
    except DatasetError as error:
        raise _refused(error) from None
    return thumbnail_response(
        image, size, request.headers.get("if-none-match"), settings.max_image_pixels, f"image path {shown(path)}"
    )
