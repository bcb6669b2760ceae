"""GET /datasets, GET /datasets/{name}, POST /datasets/{name}/audit and thumbnails, in-process
against a real redis-server and nx-27017; audits stored by the recorder's own write path."""

import io
import os
from datetime import timedelta

import pytest
from PIL import Image

from services.recorder.writer import BatchWriter
from shared import names
from shared.audit_requests import audit_failed
from shared.datasets.synth import synthesize_dataset
from shared.schemas.datasets import DatasetAudit
from shared.schemas.events import utc_now
from tests.utils.api import clear_caches, detail, queued_tasks
from tests.utils.audits import T0, audit_of, audited

pytestmark = pytest.mark.integration


@pytest.fixture
def data_root(settings):
    return settings.data_root


def store_audit(db, data_root, dataset: str = "leaves", **fields) -> DatasetAudit:
    audit = audit_of(data_root / dataset, dataset, **fields)
    BatchWriter(db).write([audited(audit)])
    return audit


def test_the_datasets_under_the_data_root_are_listed_with_their_classes(client, data_root, tmp_path):
    synthesize_dataset(data_root / "more", per_class=2, size=16, seed=1)
    (data_root / "notes").mkdir()
    (data_root / "notes" / "readme.txt").write_text("not a dataset")
    (data_root / "one-class" / "Brownspot").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(data_root / "one-class" / "Brownspot" / "a.png")
    synthesize_dataset(tmp_path / "outside", per_class=2, size=16, seed=2)
    (data_root / "escape").symlink_to(tmp_path / "outside", target_is_directory=True)
    (data_root / "link-to-etc").symlink_to("/etc", target_is_directory=True)
    (data_root / ".hidden").mkdir()

    listing = client.get("/datasets").json()

    assert listing["count"] == 2
    leaves, more = listing["data"]
    assert (leaves["name"], more["name"]) == ("leaves", "more")
    assert leaves["classes"] == {"Bacterialblight": 3, "Brownspot": 3, "Leafsmut": 3} and leaves["images"] == 9
    assert more["classes"] == {"Bacterialblight": 2, "Brownspot": 2, "Leafsmut": 2}
    assert leaves["audit"] is None and leaves["audit_request"] is None and leaves["latest_audit"] is None
    assert len(leaves["fingerprint"]) == 16 and leaves["fingerprint"] != more["fingerprint"]


def test_a_stored_audit_shows_summed_up_in_the_list_and_whole_in_the_detail(client, db, data_root):
    audit = store_audit(db, data_root)

    [listed] = client.get("/datasets").json()["data"]
    assert listed["audit"] == {
        "audited_at": "2026-03-01T00:00:00Z",
        "fingerprint": audit.fingerprint,
        "images": 9,
        "unreadable": 0,
        "copy_groups": 2,
        "label_conflicts": 1,
        "shortcuts": 1,
    }
    assert listed["audit_outdated"] is False and listed["latest_audit"] is None
    shown = client.get("/datasets/leaves").json()
    assert DatasetAudit.model_validate(shown["latest_audit"]) == audit
    assert shown["audit"] == listed["audit"]

    # New files: the audit no longer describes the dataset.
    synthesize_dataset(data_root / "leaves", per_class=4, size=32, seed=0)
    assert client.get("/datasets/leaves").json()["audit_outdated"] is True


def test_an_audit_is_queued_once_while_it_waits(client, db, data_root, redis_client):
    first = client.post("/datasets/leaves/audit")
    assert first.status_code == 202 and first.json()["queued"] is True
    again = client.post("/datasets/leaves/audit")
    assert again.status_code == 202 and again.json() == {**first.json(), "queued": False}
    assert queued_tasks(redis_client, names.BACKGROUND_QUEUE) == [(names.AUDIT_TASK, ["leaves"])]
    assert client.get("/datasets/leaves").json()["audit_request"] == {
        "requested_at": first.json()["requested_at"],
        "error": None,
    }

    # The audit arrives: the request is answered, and a new one queues another audit.
    store_audit(db, data_root, audited_at=utc_now() + timedelta(seconds=1))
    assert client.get("/datasets/leaves").json()["audit_request"] is None
    assert client.post("/datasets/leaves/audit").json()["queued"] is True
    assert len(queued_tasks(redis_client, names.BACKGROUND_QUEUE)) == 2


def test_a_failed_audit_says_why_and_can_be_asked_again(client, redis_client):
    client.post("/datasets/leaves/audit")
    audit_failed(redis_client, "leaves", "DatasetError: class folder 'Brownspot' holds no images", utc_now())

    [listed] = client.get("/datasets").json()["data"]
    assert listed["audit_request"]["error"] == "DatasetError: class folder 'Brownspot' holds no images"
    assert client.post("/datasets/leaves/audit").json()["queued"] is True
    assert client.get("/datasets/leaves").json()["audit_request"]["error"] is None


def test_an_older_audit_does_not_answer_a_newer_request(client, db, data_root):
    client.post("/datasets/leaves/audit")
    store_audit(db, data_root, audited_at=T0)  # from before the request
    assert client.get("/datasets/leaves").json()["audit_request"]["error"] is None


@pytest.mark.parametrize(
    ("method", "path", "code", "words"),
    [
        ("GET", "/datasets/no-such", 404, "dataset 'no-such' not found in the data root"),
        ("POST", "/datasets/no-such/audit", 404, "not found in the data root"),
        ("GET", "/datasets/%2E", 422, "must name one folder directly under the data root"),
        ("GET", "/datasets/%2E%2E", 422, "must name one folder"),
        ("POST", "/datasets/a%5Cb/audit", 422, "must name one folder"),
        ("GET", "/datasets/notes", 422, "has 0 class folder(s)"),
        ("GET", "/datasets/readme.txt", 404, "is not a folder in the data root"),
    ],
)
def test_what_is_no_dataset_is_refused(client, data_root, redis_client, method, path, code, words):
    (data_root / "notes").mkdir()
    (data_root / "readme.txt").write_text("-")
    response = client.request(method, path)
    assert response.status_code == code and words in detail(response), response.text
    assert queued_tasks(redis_client, names.BACKGROUND_QUEUE) == []


def jpeg_size(response) -> tuple[int, int]:
    assert response.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.format == "JPEG"
        return image.size


def test_a_thumbnail_is_a_small_jpeg_with_cache_headers(client, data_root):
    Image.new("RGB", (600, 300), "white").save(data_root / "leaves" / "Brownspot" / "wide.png")

    response = client.get("/datasets/leaves/images/Brownspot/wide.png")
    assert response.status_code == 200 and jpeg_size(response) == (160, 80)
    assert response.headers["cache-control"] == "private, max-age=3600"
    assert jpeg_size(client.get("/datasets/leaves/images/Brownspot/wide.png", params={"size": 40})) == (40, 20)

    unchanged = client.get(
        "/datasets/leaves/images/Brownspot/wide.png", headers={"If-None-Match": response.headers["etag"]}
    )
    assert unchanged.status_code == 304 and unchanged.content == b""
    Image.new("RGB", (300, 600), "white").save(data_root / "leaves" / "Brownspot" / "wide.png")
    os.utime(data_root / "leaves" / "Brownspot" / "wide.png", ns=(1, 1))
    changed = client.get(
        "/datasets/leaves/images/Brownspot/wide.png", headers={"If-None-Match": response.headers["etag"]}
    )
    assert changed.status_code == 200 and jpeg_size(changed) == (80, 160)


def test_a_dataset_in_a_wrapper_folder_names_its_images_from_the_class_folders(client, data_root, tmp_path):
    # As in the Kaggle download: one folder inside the dataset's, holding the class folders.
    synthesize_dataset(data_root / "kaggle" / "rice leaf diseases dataset", per_class=2, size=16, seed=3)
    assert client.get("/datasets/kaggle").json()["classes"] == {"Bacterialblight": 2, "Brownspot": 2, "Leafsmut": 2}
    assert jpeg_size(client.get("/datasets/kaggle/images/Brownspot/0001.png")) == (16, 16)
    # A wrapper that is a link out of the data root is refused like any other.
    synthesize_dataset(tmp_path / "outside" / "wrapped", per_class=2, size=16, seed=4)
    (data_root / "linked").mkdir()
    (data_root / "linked" / "wrapped").symlink_to(tmp_path / "outside" / "wrapped", target_is_directory=True)
    refused = client.get("/datasets/linked/images/Brownspot/0001.png")
    assert refused.status_code == 422 and "is a link that leads outside the data root" in detail(refused)


def test_an_image_turned_by_its_exif_orientation_is_shown_upright(client, data_root):
    image = Image.new("RGB", (200, 100), "white")
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to show
    image.save(data_root / "leaves" / "Leafsmut" / "turned.jpg", exif=exif)
    assert jpeg_size(client.get("/datasets/leaves/images/Leafsmut/turned.jpg")) == (80, 160)


def test_what_is_no_image_of_the_dataset_is_refused(client, data_root, tmp_path, monkeypatch):
    leaf = data_root / "leaves" / "Brownspot"
    (leaf / "notes.txt").write_text("-")
    (leaf / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    synthesize_dataset(tmp_path / "outside", per_class=1, size=16, seed=2)
    (leaf / "stolen.png").symlink_to(tmp_path / "outside" / "Brownspot" / "0000.png")
    Image.new("RGB", (100, 100)).save(leaf / "large.png")

    def refused(path: str, **params) -> tuple[int, str]:
        response = client.get(f"/datasets/leaves/images/{path}", params=params)
        return response.status_code, detail(response)

    assert refused("Brownspot/missing.png") == (404, "image path 'Brownspot/missing.png' not found in dataset 'leaves'")
    assert refused("Brownspot/notes.txt")[0] == 404
    assert refused("Brownspot") == (404, "image path 'Brownspot' is no image file in dataset 'leaves'")
    assert refused("Brownspot/broken.png") == (
        422,
        "image path 'Brownspot/broken.png': the file cannot be read as an image",
    )
    assert (
        refused("Brownspot/stolen.png")[0] == 422 and "outside dataset 'leaves'" in refused("Brownspot/stolen.png")[1]
    )
    assert refused("..%2F..%2Fetc%2Fpasswd")[0] == 422
    assert refused("%2Fetc%2Fpasswd") == (
        422,
        "image path '/etc/passwd' is outside dataset 'leaves' (absolute paths and links must stay inside it)",
    )
    assert refused("Brownspot/0000.png", size="0")[0] == 422
    monkeypatch.setenv("PADDY_MAX_IMAGE_PIXELS", "5000")
    clear_caches()
    assert refused("Brownspot/large.png") == (
        422,
        "image path 'Brownspot/large.png': the image has 100×100 pixels; at most 5000 (PADDY_MAX_IMAGE_PIXELS)",
    )
