"""A dataset audit through the whole local stack: POST /datasets/{name}/audit, a Celery trainer
audits the folder and publishes the report, the recorder stores it, GET /datasets/{name} shows
it. The dataset is generated with two planted findings: one photo filed under two classes, and
each class photographed at its own size (tests/utils/audits.py)."""

from datetime import timedelta

import pytest

from shared.datasets.audits import load_audit
from shared.schemas.datasets import DatasetAudit
from tests.utils.audits import COPIED, COPY, generated_dataset
from tests.utils.stack import TRAINING_STACK, api_client, running_stack
from tests.utils.waiting import wait_for

pytestmark = pytest.mark.integration

# Properties a size shortcut shows in, whichever the audit names first.
SIZE_FEATURES = {"width", "height", "aspect_ratio", "file_bytes"}


def test_an_audit_asked_through_the_api_finds_the_planted_copy_and_shortcut(tmp_path):
    with running_stack(tmp_path, TRAINING_STACK, predictors=False) as stack, api_client(stack) as api:
        generated_dataset(tmp_path / "data" / "planted")
        listed = api.get("/datasets").json()["data"]
        assert [dataset["name"] for dataset in listed] == ["planted"] and listed[0]["audit"] is None

        queued = api.post("/datasets/planted/audit")
        assert queued.status_code == 202 and queued.json()["queued"] is True

        def stored() -> dict | None:
            dataset = api.get("/datasets/planted").json()
            assert not (dataset["audit_request"] or {}).get("error"), dataset["audit_request"]
            return dataset if dataset["latest_audit"] else None

        dataset = wait_for(stored, 240, "the audit of 'planted' to be stored")
        jobs = api.get("/jobs").json()

    audit = DatasetAudit.model_validate(dataset["latest_audit"])
    assert audit.dataset == "planted" and audit.fingerprint == dataset["fingerprint"]
    assert audit.images == 25 and dataset["audit_outdated"] is False and dataset["audit_request"] is None
    [conflict] = [group for group in audit.label_conflicts if COPY in group.files]
    assert COPIED in conflict.files and conflict.classes == ["Bacterialblight", "Brownspot"]
    assert dataset["audit"]["label_conflicts"] >= 1
    assert {shortcut.feature for shortcut in audit.shortcuts} & SIZE_FEATURES, audit.shortcuts
    assert dataset["audit"]["shortcuts"] == len(audit.shortcuts)
    # Cached beside the artifacts for training runs (MongoDB keeps its time to the millisecond);
    # no run was made of it.
    cached = load_audit(tmp_path / "artifacts", audit.fingerprint)
    assert cached is not None and cached.model_copy(update={"audited_at": audit.audited_at}) == audit
    assert abs(cached.audited_at - audit.audited_at) < timedelta(milliseconds=1)
    assert jobs["count"] == 0
