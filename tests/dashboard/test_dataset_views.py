"""The pure helpers that turn the API's datasets and audits into the Datasets page and the New
job page's picker."""

import pytest

from services.dashboard import dataset_views
from services.dashboard.dataset_views import Notice

SUMMARY = {
    "audited_at": "2026-03-01T09:30:00Z",
    "fingerprint": "f",
    "images": 300,
    "unreadable": 0,
    "copy_groups": 0,
    "label_conflicts": 0,
    "shortcuts": 0,
}


def dataset(audit: dict | None = None, **fields) -> dict:
    return {
        "name": "leaves",
        "images": 300,
        "classes": {"Bacterialblight": 100, "Brownspot": 100, "Leafsmut": 100},
        "fingerprint": "f",
        "audit": audit,
        "audit_outdated": False,
        "audit_request": None,
        "latest_audit": None,
        **fields,
    }


@pytest.mark.parametrize(
    ("shown", "label"),
    [
        (None, "leaves — 3 classes, 300 images · not audited"),
        (SUMMARY, "leaves — 3 classes, 300 images"),
        (
            {**SUMMARY, "label_conflicts": 2, "shortcuts": 1},
            "leaves — 3 classes, 300 images · ⚠️ 2 label conflicts, 1 shortcut",
        ),
        ({**SUMMARY, "shortcuts": 3}, "leaves — 3 classes, 300 images · ⚠️ 3 shortcuts"),
    ],
)
def test_a_picker_option_says_what_the_audit_found(shown, label):
    assert dataset_views.option_label(dataset(shown), "leaves") == label


def test_a_path_typed_by_hand_is_shown_as_typed():
    assert dataset_views.option_label(None, "collections/kaggle") == "collections/kaggle"


def test_a_dataset_never_audited_says_so_and_nothing_else():
    assert [notice.kind for notice in dataset_views.notices(dataset())] == ["info"]
    assert dataset_views.notices(dataset())[0].text.startswith("Not audited yet")


def test_the_notices_come_worst_first():
    audit = {**SUMMARY, "copy_groups": 5, "label_conflicts": 2, "shortcuts": 1, "unreadable": 1}
    whole = {"shortcuts": [{"message": "width alone predicts the class: 98 % against 33 % by chance"}]}
    failed = {"requested_at": "2026-03-02T10:00:00Z", "error": "OSError: disk full"}
    shown = dataset_views.notices(dataset(audit, latest_audit=whole, audit_request=failed, audit_outdated=True))
    assert shown == [
        Notice("warning", "The last audit failed: OSError: disk full"),
        Notice(
            "warning", "Label conflicts in 2 copy groups: one photo filed under two classes, at least one label wrong."
        ),
        Notice("warning", "Shortcut: width alone predicts the class: 98 % against 33 % by chance"),
        Notice("warning", "1 file could not be decoded as an image."),
        Notice("warning", "The files changed since the latest audit (2026-03-01 09:30 UTC): audit again."),
        Notice(
            "info", "3 groups of copies of one photo within a class: a grouped split keeps each group in one split."
        ),
    ]


def test_without_the_whole_audit_shortcuts_are_counted_and_a_queued_audit_is_noted():
    queued = {"requested_at": "2026-03-02T10:00:00Z", "error": None}
    shown = dataset_views.notices(dataset({**SUMMARY, "shortcuts": 2}, audit_request=queued))
    assert [notice.text for notice in shown] == [
        "An audit was queued at 2026-03-02 10:00 UTC; it is not stored yet.",
        "2 shortcut warnings: a trivial property of the files (size, shape, format…) predicts the class.",
    ]


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        ({}, "not audited"),
        ({"audit": SUMMARY}, "✅ audited"),
        ({"audit": SUMMARY, "audit_outdated": True}, "⚠️ outdated"),
        ({"audit_request": {"requested_at": "2026-03-02T10:00:00Z", "error": None}}, "⏳ audit queued"),
        (
            {"audit": SUMMARY, "audit_request": {"requested_at": "2026-03-02T10:00:00Z", "error": "x"}},
            "❌ audit failed",
        ),
    ],
)
def test_the_audit_state_of_a_dataset(fields, state):
    assert dataset_views.audit_state(dataset(**fields)) == state


def test_label_conflicts_come_first_then_the_largest_groups():
    groups = [
        {"kind": "near", "files": ["a/1", "a/2", "a/3"], "classes": ["a"]},
        {"kind": "exact", "files": ["a/4", "b/1"], "classes": ["a", "b"]},
        {"kind": "near", "files": ["b/2", "b/3", "b/4", "b/5"], "classes": ["b"]},
    ]
    ordered = dataset_views.ordered_groups({"copy_groups": groups})
    assert [len(group["files"]) for group in ordered] == [2, 4, 3]
    assert dataset_views.group_title(ordered[0]) == "⚠️ label conflict · 2 files · identical files · a, b"
    assert dataset_views.group_title(ordered[1]) == "4 files · one photo, transformed · b"


def test_the_class_table_gives_each_classes_sizes_and_shapes():
    def spread(low, middle, high):
        return {"min": low, "median": middle, "max": high}

    profile = {
        "name": "Brownspot",
        "images": 40,
        "width": spread(224, 3081, 3081),
        "height": spread(224, 897, 897),
        "aspect_ratio": spread(1.0, 3.43, 3.43),
        "file_bytes": spread(10_000, 512_000, 900_000),
        "formats": {"PNG": 10, "JPEG": 30},
    }
    [row] = dataset_views.class_table({"class_profiles": [profile]}).to_dict("records")
    assert row == {
        "class": "Brownspot",
        "images": 40,
        "width": 3081,
        "width_range": "224–3081",
        "height": 897,
        "height_range": "224–897",
        "aspect_ratio": 3.43,
        "aspect_ratio_range": "1.00–3.43",
        "kilobytes": 512.0,
        "formats": "JPEG 30, PNG 10",
    }
