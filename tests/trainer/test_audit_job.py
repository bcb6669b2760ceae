"""One `paddy.audit` job against a real redis-server: the report cached and published as a
dataset_audited event; a dataset it must not read fails with the reason recorded for the API,
server paths taken out."""

from pathlib import Path

import pytest

from services.trainer.audit_job import run_audit
from services.trainer.settings import TrainerSettings
from shared import names
from shared.audit_requests import open_request, record_request
from shared.datasets.audits import load_audit
from shared.datasets.imagefolder import DatasetError
from shared.datasets.synth import synthesize_dataset
from shared.schemas.events import DatasetAudited, decode_event, utc_now
from tests.utils.audits import COPIED, COPY, generated_dataset


def published(redis_client) -> list:
    return [decode_event(fields) for _id, fields in redis_client.xrange(names.EVENTS_STREAM)]


def test_an_audit_is_cached_and_published_under_the_datasets_fingerprint(settings, redis_client):
    generated_dataset(Path(settings.data_root) / "planted", per_class=4)

    audit = run_audit("planted", TrainerSettings())

    [event] = published(redis_client)
    assert isinstance(event, DatasetAudited) and event.audit == audit
    assert event.run_id == f"dataset:{audit.fingerprint}"
    assert audit.dataset == "planted" and any({COPY, COPIED} <= set(group.files) for group in audit.label_conflicts)
    assert load_audit(Path(settings.artifacts_root), audit.fingerprint) == audit


def test_a_dataset_linked_out_of_the_data_root_fails_and_says_why(settings, redis_client, tmp_path):
    synthesize_dataset(tmp_path / "outside", per_class=2, size=16, seed=1)
    linked = Path(settings.data_root) / "linked"
    synthesize_dataset(linked, per_class=2, size=16, seed=2)
    (linked / "Stolen").symlink_to(tmp_path / "outside" / "Brownspot", target_is_directory=True)
    asked = record_request(redis_client, "linked", utc_now())

    with pytest.raises(DatasetError, match="class folder 'linked/Stolen' is a link that leads outside"):
        run_audit("linked", TrainerSettings())

    request = open_request(redis_client, "linked", None)
    assert request is not None and request.requested_at == asked.requested_at
    assert request.error.startswith("DatasetError: class folder 'linked/Stolen' is a link that leads outside")
    assert str(tmp_path) not in request.error
    assert published(redis_client) == []


def test_a_missing_dataset_fails_without_naming_the_server_path(settings, redis_client):
    with pytest.raises(DatasetError):
        run_audit("gone", TrainerSettings())
    request = open_request(redis_client, "gone", None)
    assert (
        request is not None
        and request.error == "DatasetError: dataset 'gone' not found in the data root (PADDY_DATA_ROOT)"
    )
