from collections import Counter
from pathlib import Path

import pytest

from shared.datasets.imagefolder import DatasetError, resolve_dataset, scan_image_folder, stratified_split


def make_folder(root: Path, counts: dict[str, int]) -> Path:
    for class_name, count in counts.items():
        (root / class_name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (root / class_name / f"{i}.jpg").write_bytes(b"not decoded here")
    return root


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
    assert resolve_dataset("data", tmp_path) == tmp_path / "data"
    assert resolve_dataset(str(tmp_path / "data"), tmp_path / "elsewhere") == tmp_path / "data"


def test_split_is_stratified_60_20_20_and_reproducible():
    labels = [0] * 100 + [1] * 50 + [2] * 10
    split = stratified_split(labels, seed=7)
    assert sorted(split["train"] + split["val"] + split["test"]) == list(range(160))
    for name, fraction in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        per_class = Counter(labels[i] for i in split[name])
        assert per_class == {0: 100 * fraction, 1: 50 * fraction, 2: 10 * fraction}
    assert stratified_split(labels, seed=7) == split
    assert stratified_split(labels, seed=8) != split


def test_fingerprint_changes_with_the_file_list(tmp_path):
    first = scan_image_folder(make_folder(tmp_path, {"a": 2, "b": 2})).fingerprint()
    assert scan_image_folder(tmp_path).fingerprint() == first
    (tmp_path / "b" / "extra.png").write_bytes(b"x")
    assert scan_image_folder(tmp_path).fingerprint() != first
