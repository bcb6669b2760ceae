"""Paths a client names never lead outside the data root (datasets) or the artifacts root
(checkpoints): no `..`, no absolute path elsewhere, no symlink out."""

import pytest

from shared import names
from shared.datasets.synth import synthesize_dataset
from tests.utils.api import detail, job
from tests.utils.documents import stored_run


@pytest.fixture
def outside(settings, tmp_path):
    """A valid dataset next to the data root, not in it."""
    path = tmp_path / "outside"
    synthesize_dataset(path, per_class=3, size=32, seed=0)
    return path


def test_dot_dot_is_refused(client, outside):
    response = client.post("/jobs", json=job(dataset="../outside"))
    assert response.status_code == 422 and "'..'" in detail(response)
    assert client.post("/jobs", json=job(dataset="leaves/../../outside")).status_code == 422


def test_an_absolute_path_outside_the_root_is_refused_and_inside_accepted(client, settings, outside):
    response = client.post("/jobs", json=job(dataset=str(outside)))
    assert response.status_code == 422 and "outside the data root" in detail(response)
    assert client.post("/jobs", json=job(dataset=str(settings.data_root / "leaves"))).status_code == 202


def test_a_symlink_out_of_the_root_is_refused_and_one_inside_accepted(client, settings, outside):
    (settings.data_root / "escape").symlink_to(outside, target_is_directory=True)
    response = client.post("/jobs", json=job(dataset="escape"))
    assert response.status_code == 422 and "outside the data root" in detail(response)
    (settings.data_root / "alias").symlink_to(settings.data_root / "leaves", target_is_directory=True)
    assert client.post("/jobs", json=job(dataset="alias")).status_code == 202


def test_dataset_errors_never_show_server_paths(client, settings):
    (settings.data_root / "one-class" / "only").mkdir(parents=True)
    for dataset in ("missing", "one-class"):
        response = client.post("/jobs", json=job(dataset=dataset))
        assert response.status_code == 422 and dataset in detail(response)
        assert str(settings.data_root) not in detail(response) and str(settings.data_root.resolve()) not in detail(
            response
        )


def write_checkpoint(settings, relative: str, content: bytes = b"weights") -> None:
    path = settings.artifacts_root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def test_the_best_checkpoint_is_served_from_the_recorded_path(client, db, settings):
    write_checkpoint(settings, "runs/r1/best-epoch-3.pt", b"recorded")
    stored_run(db, "r1", checkpoints={"best": {"epoch": 3, "path": "runs/r1/best-epoch-3.pt"}})
    response = client.get("/jobs/r1/checkpoint")
    assert response.status_code == 200 and response.content == b"recorded"
    assert response.headers["content-type"] == "application/octet-stream"
    assert 'filename="r1-best.pt"' in response.headers["content-disposition"]


def test_without_a_recorded_path_there_is_no_checkpoint(client, db, settings):
    write_checkpoint(settings, "runs/r2/best.pt", b"unrecorded")
    stored_run(db, "r2")
    response = client.get("/jobs/r2/checkpoint")
    assert response.status_code == 404 and detail(response) == "run r2 has no checkpoint"
    assert client.get("/jobs/nope/checkpoint").status_code == 404


@pytest.mark.parametrize("recorded", ["../outside.pt", "runs/../../outside.pt", "/etc/hostname", "runs/link/best.pt"])
def test_a_checkpoint_path_leading_out_of_the_artifacts_root_is_never_served(client, db, settings, tmp_path, recorded):
    (tmp_path / "outside.pt").write_bytes(b"secret")
    (settings.artifacts_root / "runs").mkdir(parents=True)
    (settings.artifacts_root / "runs" / "link").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "best.pt").write_bytes(b"secret")
    stored_run(db, "evil", checkpoints={"best": {"epoch": 1, "path": recorded}})
    response = client.get("/jobs/evil/checkpoint")
    assert response.status_code == 404 and b"secret" not in response.content
    assert db[names.STATUS].count_documents({"run_id": "evil"}) == 1
