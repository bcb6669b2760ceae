from collections import Counter
from pathlib import Path

import pytest

from shared.datasets.imagefolder import DatasetError, resolve_dataset, scan_image_folder
from tests.utils.image_folders import make_folder


def test_classes_are_sorted_folders_and_labels_follow(tmp_path):
    index = scan_image_folder(make_folder(tmp_path, {"Brownspot": 2, "Bacterialblight": 3}))
    assert index.class_names == ["Bacterialblight", "Brownspot"]
    assert Counter(index.labels) == {0: 3, 1: 2}


def test_kaggle_wrapper_folder_is_stepped_into(tmp_path):
    make_folder(tmp_path / "rice leaf diseases dataset", {"Leafsmut": 2, "Brownspot": 2})
    index = scan_image_folder(tmp_path)
    assert index.class_names == ["Brownspot", "Leafsmut"]
    assert index.root == tmp_path / "rice leaf diseases dataset"


def test_non_images_and_hidden_files_are_ignored(tmp_path):
    make_folder(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "a" / "notes.txt").write_text("x")
    (tmp_path / "a" / ".hidden.jpg").write_bytes(b"x")
    assert len(scan_image_folder(tmp_path).paths) == 4


@pytest.mark.parametrize(
    ("counts", "message"),
    [({"only": 3}, "1 class folder"), ({"a": 3, "b": 0}, "holds no images")],
)
def test_unusable_datasets_are_refused(tmp_path, counts, message):
    with pytest.raises(DatasetError, match=message):
        scan_image_folder(make_folder(tmp_path, counts))


def test_missing_dataset_names_the_path(tmp_path):
    with pytest.raises(DatasetError, match="nope"):
        resolve_dataset("nope", tmp_path)
    (tmp_path / "data").mkdir()
    assert resolve_dataset("data", tmp_path) == (tmp_path / "data").resolve()
    assert resolve_dataset(str(tmp_path / "data"), tmp_path) == (tmp_path / "data").resolve()


@pytest.fixture
def outside(tmp_path) -> Path:
    """Images next to the data root, not in it."""
    return make_folder(tmp_path / "outside", {"secret": 3})


@pytest.fixture
def data_root(tmp_path) -> Path:
    root = tmp_path / "data"
    make_folder(root / "good", {"a": 2, "b": 2})
    return root


@pytest.mark.parametrize(
    "dataset",
    [
        "../outside",
        "good/../../outside",
        "/etc",
        "{outside}",
        "escape",
        "escape/secret",
        "\x00",
        "good\x00",
        "",
    ],
)
def test_the_trainer_refuses_a_dataset_named_outside_the_root(data_root, outside, dataset):
    (data_root / "escape").symlink_to(outside, target_is_directory=True)
    given = dataset.format(outside=outside)
    with pytest.raises(DatasetError) as refused:
        resolve_dataset(given, data_root)
    told = str(refused.value).replace(given, "<given>") if given else str(refused.value)
    assert str(data_root) not in told and str(outside) not in told  # only what the caller wrote


def test_outside_is_told_before_missing_so_no_host_path_can_be_probed(data_root):
    for dataset in ("/etc/passwd", "/no/such/dir", "/etc/no-such-file"):
        with pytest.raises(DatasetError, match="outside the data root"):
            resolve_dataset(dataset, data_root)


def link_class_folder(root: Path, outside: Path) -> None:
    make_folder(root / "a", {"x": 2})
    (root / "b").symlink_to(outside / "secret", target_is_directory=True)


def link_image(root: Path, outside: Path) -> None:
    make_folder(root, {"a": 2, "b": 2})
    (root / "b" / "evil.jpg").symlink_to(outside / "secret" / "0.jpg")


def link_nested_folder(root: Path, outside: Path) -> None:
    make_folder(root, {"a": 2, "b": 2})
    (root / "b" / "deeper").symlink_to(outside, target_is_directory=True)


def link_wrapper(root: Path, outside: Path) -> None:
    root.mkdir()
    (root / "wrapper").symlink_to(outside, target_is_directory=True)


@pytest.mark.parametrize("arrange", [link_class_folder, link_image, link_nested_folder, link_wrapper])
def test_a_scan_refuses_a_link_out_of_the_data_root_at_any_depth(data_root, outside, arrange):
    arrange(data_root / "linked", outside)
    path = resolve_dataset("linked", data_root)
    with pytest.raises(DatasetError, match="is a link that leads outside the data root") as refused:
        scan_image_folder(path, within=data_root)
    assert str(data_root) not in str(refused.value) and "linked/" in str(refused.value)
    with pytest.raises(DatasetError, match="leads outside the dataset"):  # without a root: the dataset's own
        scan_image_folder(path)


def test_the_data_root_itself_with_a_link_to_etc_is_refused(data_root):
    (data_root / "etc").symlink_to("/etc", target_is_directory=True)
    with pytest.raises(DatasetError, match="'etc' is a link that leads outside the data root"):
        scan_image_folder(resolve_dataset(".", data_root), within=data_root)


def test_links_that_stay_inside_the_data_root_are_followed(data_root):
    make_folder(data_root / "shared", {"c": 2})
    make_folder(data_root / "mixed", {"a": 2, "b": 1})
    (data_root / "mixed" / "c").symlink_to(data_root / "shared" / "c", target_is_directory=True)
    (data_root / "mixed" / "b" / "alias.jpg").symlink_to(data_root / "good" / "a" / "0.jpg")
    (data_root / "alias").symlink_to(data_root / "mixed", target_is_directory=True)
    index = scan_image_folder(resolve_dataset("alias", data_root), within=data_root)
    assert index.class_names == ["a", "b", "c"] and Counter(index.labels) == {0: 2, 1: 2, 2: 2}


def test_fingerprint_changes_with_the_file_list(tmp_path):
    first = scan_image_folder(make_folder(tmp_path, {"a": 2, "b": 2})).fingerprint()
    assert scan_image_folder(tmp_path).fingerprint() == first
    (tmp_path / "b" / "extra.png").write_bytes(b"x")
    assert scan_image_folder(tmp_path).fingerprint() != first
