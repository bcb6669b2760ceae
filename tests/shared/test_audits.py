"""The on-disk audit cache: one audit per dataset fingerprint, written whole or not at all."""

import os
from datetime import UTC, datetime

import pytest

from shared.datasets.audits import audit_path, load_audit, save_audit
from shared.schemas.datasets import CopyGroup, DatasetAudit


def an_audit(fingerprint: str = "0123456789abcdef", seconds: float = 1.5) -> DatasetAudit:
    return DatasetAudit(
        dataset="rice",
        fingerprint=fingerprint,
        audited_at=datetime(2026, 2, 1, tzinfo=UTC),
        seconds=seconds,
        images=4,
        class_profiles=[],
        copy_groups=[CopyGroup(kind="exact", files=["a/1.jpg", "b/1.jpg"], classes=["a", "b"])],
    )


def test_an_audit_is_cached_under_its_fingerprint_and_read_back_equal(tmp_path):
    audit = an_audit()
    path = save_audit(tmp_path, audit)
    assert path == tmp_path / "datasets" / audit.fingerprint / "audit.json" == audit_path(tmp_path, audit.fingerprint)
    assert load_audit(tmp_path, audit.fingerprint) == audit
    assert load_audit(tmp_path, "fedcba9876543210") is None  # other files: no audit
    assert sorted(p.name for p in path.parent.iterdir()) == ["audit.json"]  # no temporary file left


def test_a_newer_audit_replaces_the_cached_one(tmp_path):
    save_audit(tmp_path, an_audit(seconds=1.0))
    save_audit(tmp_path, an_audit(seconds=2.0))
    assert load_audit(tmp_path, "0123456789abcdef").seconds == 2.0


def test_a_failed_write_leaves_the_cached_audit_whole(tmp_path, monkeypatch):
    save_audit(tmp_path, an_audit(seconds=1.0))

    def no_rename(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="disk full"):
        save_audit(tmp_path, an_audit(seconds=2.0))
    assert load_audit(tmp_path, "0123456789abcdef").seconds == 1.0
    assert sorted(p.name for p in audit_path(tmp_path, "0123456789abcdef").parent.iterdir()) == ["audit.json"]


def test_an_unreadable_or_mismatched_cache_counts_as_none(tmp_path):
    path = audit_path(tmp_path, "0123456789abcdef")
    path.parent.mkdir(parents=True)
    path.write_text('{"dataset": "rice", "fingerp')  # cut short
    assert load_audit(tmp_path, "0123456789abcdef") is None
    path.write_text(an_audit(fingerprint="aaaaaaaaaaaaaaaa").model_dump_json())  # moved by hand
    assert load_audit(tmp_path, "0123456789abcdef") is None


@pytest.mark.parametrize("fingerprint", ["../../etc", "", "a/b"])
def test_a_fingerprint_is_never_a_path(tmp_path, fingerprint):
    with pytest.raises(ValueError, match="not a dataset fingerprint"):
        audit_path(tmp_path, fingerprint)
