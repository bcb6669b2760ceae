"""POST /batches and its reads, in-process against a real redis-server and nx-27017 (no predictor:
the chunks themselves are tests/trainer/test_batch_job.py). Zips are refused before anything is
unpacked, with a 4xx naming the problem, and leave nothing behind."""

import random
import zipfile
from pathlib import Path

import pytest

from shared import names
from shared.batches import CSV_FILE, batch_dir, read_manifest, write_atomically
from tests.utils.api import clear_caches, detail, queued_tasks
from tests.utils.documents import stored_run
from tests.utils.zips import png, symlink_entry, with_lying_count, with_lying_sizes, zip_bomb, zip_of

MAX_FILES = 5
MAX_UPLOAD = 200_000
MAX_UNPACKED = 100_000


@pytest.fixture
def batches_env(client, db, monkeypatch):
    monkeypatch.setenv("PADDY_MAX_BATCH_FILES", str(MAX_FILES))
    monkeypatch.setenv("PADDY_MAX_BATCH_UPLOAD_BYTES", str(MAX_UPLOAD))
    monkeypatch.setenv("PADDY_MAX_BATCH_UNPACKED_BYTES", str(MAX_UNPACKED))
    monkeypatch.setenv("PADDY_BATCH_CHUNK_IMAGES", "2")
    clear_caches()
    stored_run(db, "done")
    return client


def post_zip(client, data: bytes, run_id: str = "done", name: str = "leaves.zip"):
    return client.post("/batches", data={"run_id": run_id}, files={"file": (name, data, "application/zip")})


def batches_root(settings) -> Path:
    return Path(settings.artifacts_root) / names.BATCHES_DIR


def left_behind(settings) -> list[Path]:
    root = batches_root(settings)
    return sorted(root.rglob("*")) if root.exists() else []


def test_a_zip_is_unpacked_and_its_first_chunk_queued(batches_env, settings, redis_client):
    data = zip_of(
        {
            "field-a/leaf1.png": png(),
            "field-a/leaf2.PNG": png((200, 200, 40)),
            "leaf3.png": png(),
            "notes.txt": b"plot 7",
            "__MACOSX/field-a/._leaf1.png": b"resource fork",
            "field-a/": b"",
        }
    )
    response = post_zip(batches_env, data)
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["images"] == 3 and created["skipped"] == {"notes.txt": "not a JPEG, PNG or WebP file"}
    batch_id = created["batch_id"]
    assert queued_tasks(redis_client, names.PREDICT_QUEUE) == [(names.BATCH_PREDICT_TASK, [batch_id, 0])]

    manifest = read_manifest(batch_dir(settings.artifacts_root, batch_id))
    assert manifest.files == ["field-a/leaf1.png", "field-a/leaf2.PNG", "leaf3.png"]
    assert (manifest.chunk_images, manifest.chunks, manifest.source.kind) == (2, 2, "zip")
    batch = batches_env.get(f"/batches/{batch_id}").json()
    assert (batch["state"], batch["done"], batch["total"], batch["run_id"]) == ("queued", 0, 3, "done")

    csv = batches_env.get(f"/batches/{batch_id}/predictions.csv")
    assert csv.status_code == 409 and "is queued (0 of 3 images done)" in detail(csv)
    gallery = batches_env.get(f"/batches/{batch_id}/predictions").json()
    assert (gallery["total"], gallery["data"]) == (0, [])
    thumb = batches_env.get(f"/batches/{batch_id}/images/field-a/leaf1.png", params={"size": 16})
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    for missing in ["notes.txt", "..%2Fbatch.json", "field-a/..%2F..%2Fbatch.json"]:
        assert batches_env.get(f"/batches/{batch_id}/images/{missing}").status_code == 404, missing
    assert batches_env.get("/batches/0123456789ab").status_code == 404


@pytest.mark.parametrize(
    ("entries", "words"),
    [
        ({"ok.png": png(), "../x.png": png()}, "zip entry '../x.png' leads out of the zip's folder"),
        ({"ok.png": png(), "a/../../x.png": png()}, "zip entry 'a/../../x.png' leads out"),
        ({"/etc/x.png": png()}, "zip entry '/etc/x.png' is an absolute path"),
        ({"C:/x.png": png()}, "zip entry 'C:/x.png' names a drive"),
        ({"a\\..\\x.png": png()}, "holds a backslash"),
        ({symlink_entry("link.png"): b"/etc/passwd"}, "zip entry 'link.png' is a symbolic link"),
        ({"a.png": png(), "./a.png": png()}, "zip entry './a.png' appears twice"),
    ],
)
def test_entries_that_would_lead_out_are_refused_by_name(batches_env, settings, tmp_path, entries, words):
    response = post_zip(batches_env, zip_of(entries))
    assert response.status_code == 422 and words in detail(response), response.text
    assert "nothing was unpacked" in detail(response)
    assert left_behind(settings) == []
    assert not (tmp_path / "x.png").exists() and not Path("/etc/x.png").exists()


def test_a_zip_bomb_is_refused_before_it_is_unpacked(batches_env, settings):
    bomb = zip_bomb(2_000_000)  # about 2 KB in the zip
    assert len(bomb) < 10_000
    response = post_zip(batches_env, bomb)
    assert response.status_code == 413 and "zip entry 'bomb.png' unpacks to 2000008 bytes from" in detail(response)
    assert "(PADDY_MAX_COMPRESSION_RATIO), a zip bomb" in detail(response)

    # Each entry far below the ratio (noise does not compress), all of them together past
    # PADDY_MAX_BATCH_UNPACKED_BYTES.
    noise = {f"{i}.png": random.Random(i).randbytes(30_000) for i in range(4)}
    response = post_zip(batches_env, zip_of(noise, zipfile.ZIP_STORED))
    assert response.status_code == 413
    assert f"the zip's images unpack to 120000 bytes; at most {MAX_UNPACKED}" in detail(response)
    assert left_behind(settings) == []


def test_sizes_that_lie_are_caught_while_unpacking(batches_env, settings):
    honest = zip_bomb(1_000_000)
    # Declares 100 bytes: within every limit, but the data holds far more. Only 100 bytes are
    # ever read, and the CRC shows the lie.
    response = post_zip(batches_env, with_lying_sizes(honest, 100))
    assert response.status_code == 422, response.text
    assert "zip entry 'bomb.png' cannot be unpacked" in detail(response) and "CRC" in detail(response)
    # Declares more than it holds: past the compression ratio, refused unread.
    response = post_zip(batches_env, with_lying_sizes(zip_of({"a.png": png()}), 5_000_000))
    assert response.status_code == 413 and "a zip bomb" in detail(response)
    assert left_behind(settings) == []


def test_too_many_files_are_refused(batches_env, settings):
    response = post_zip(batches_env, zip_of({f"{i}.png": png() for i in range(MAX_FILES + 1)}))
    assert response.status_code == 413
    assert "too many files: the zip holds 6 images; at most 5 (PADDY_MAX_BATCH_FILES)" in detail(response)
    # Four entries an image at most (folders, macOS metadata) before the directory is even read...
    notes = zip_of({f"{i}.txt": b"" for i in range(4 * MAX_FILES + 1)})
    response = post_zip(batches_env, notes)
    assert response.status_code == 413 and "the zip lists 21 entries" in detail(response)
    # ...and counted again once it is: an end record that claims one entry is caught.
    response = post_zip(batches_env, with_lying_count(notes, 1))
    assert response.status_code == 413 and "the zip lists 21 entries" in detail(response)
    assert left_behind(settings) == []


def test_too_large_an_upload_is_refused(batches_env, settings):
    noise = bytes(i * 31 % 256 for i in range(MAX_UPLOAD + 1000))
    response = post_zip(batches_env, zip_of({"big.png": noise}, zipfile.ZIP_STORED))
    assert response.status_code == 413
    assert f"the upload is larger than {MAX_UPLOAD} bytes (PADDY_MAX_BATCH_UPLOAD_BYTES)" in detail(response)
    assert left_behind(settings) == []


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"hello, not a zip", 415, "not a zip archive"),
        (zip_of({"notes.txt": b"hi"}), 422, "the zip holds no JPEG, PNG or WebP image"),
        (zip_of({"fake.png": b"GIF89a" + bytes(40)}), 422, "holds no JPEG, PNG or WebP image"),
    ],
)
def test_zips_without_images_are_refused(batches_env, data, code, words):
    response = post_zip(batches_env, data)
    assert response.status_code == code and words in detail(response), response.text


def test_an_image_with_too_many_pixels_is_refused_by_name(batches_env, monkeypatch):
    monkeypatch.setenv("PADDY_MAX_IMAGE_PIXELS", "1000")
    clear_caches()
    response = post_zip(batches_env, zip_of({"small.png": png(size=(10, 10)), "big.png": png(size=(40, 40))}))
    assert response.status_code == 413
    assert "zip entry 'big.png': the image has 40×40 = 1600 pixels; at most 1000" in detail(response)


def test_a_folder_of_the_data_root_is_listed_in_place(batches_env, settings, redis_client):
    response = batches_env.post("/batches", data={"run_id": "done", "folder": "leaves/Brownspot"})
    assert response.status_code == 202, response.text
    batch_id = response.json()["batch_id"]
    manifest = read_manifest(batch_dir(settings.artifacts_root, batch_id))
    assert manifest.source.model_dump() == {"kind": "folder", "name": "leaves/Brownspot"}
    assert manifest.files == ["0000.png", "0001.png", "0002.png"]
    assert not (batch_dir(settings.artifacts_root, batch_id) / "images").exists()  # nothing copied
    thumb = batches_env.get(f"/batches/{batch_id}/images/0001.png")
    assert thumb.status_code == 200

    response = batches_env.post("/batches", data={"run_id": "done", "folder": "leaves"})
    assert response.status_code == 413 and "holds more than 5 images" in detail(response)


def test_folders_outside_the_data_root_are_refused(batches_env, settings, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(png())
    data_root = Path(settings.data_root)
    (data_root / "escape").symlink_to(outside, target_is_directory=True)
    (data_root / "mixed").mkdir()
    (data_root / "mixed" / "ok.png").write_bytes(png())
    (data_root / "mixed" / "stolen.png").symlink_to(outside / "secret.png")
    for folder, code, words in [
        ("../..", 422, "must not contain '..'"),
        ("/etc", 422, "is outside the data root"),
        (str(outside), 422, "is outside the data root"),
        ("escape", 422, "is outside the data root"),
        ("mixed", 422, "'stolen.png' in folder 'mixed' is a link that leads outside the data root"),
        ("ghost", 404, "not found in the data root"),
        ("leaves/Brownspot/0000.png", 404, "is not a folder"),
    ]:
        response = batches_env.post("/batches", data={"run_id": "done", "folder": folder})
        assert response.status_code == code and words in detail(response), (folder, response.text)
        assert folder == str(outside) or str(outside) not in response.text
    assert left_behind(settings) == []


def test_a_batch_needs_a_completed_run_and_one_source(batches_env, db):
    stored_run(db, "training", status="in_progress")
    data = zip_of({"a.png": png()})
    assert post_zip(batches_env, data, run_id="ghost").status_code == 404
    response = post_zip(batches_env, data, run_id="training")
    assert response.status_code == 409 and "in_progress" in detail(response)
    for form, files in [
        ({"run_id": "done"}, None),
        ({"run_id": "done", "folder": "leaves"}, {"file": ("a.zip", data)}),
    ]:
        response = batches_env.post("/batches", data=form, files=files)
        assert response.status_code == 422 and "one of them" in detail(response)


def test_a_finished_batch_reads_as_done_after_its_progress_expired(batches_env, settings, redis_client):
    batch_id = post_zip(batches_env, zip_of({"a.png": png()})).json()["batch_id"]
    write_atomically(
        batch_dir(settings.artifacts_root, batch_id) / CSV_FILE, "file,class,A,B,error\na.png,A,1.0,0.0,\n"
    )
    redis_client.delete(names.BATCH_KEY.format(batch_id=batch_id))
    batch = batches_env.get(f"/batches/{batch_id}").json()
    assert (batch["state"], batch["done"], batch["total"], batch["failed_images"]) == ("done", 1, 1, 0)
    csv = batches_env.get(f"/batches/{batch_id}/predictions.csv")
    assert csv.status_code == 200 and csv.text.startswith("file,class,A,B,error")
