"""Splits: groups never cross them, classes keep their proportions, split_seed (not the training
seed) draws them, k-fold tests every image once; where groups come from; the split hash."""

import hashlib
import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.datasets.imagefolder import DatasetError, scan_image_folder
from shared.datasets.splits import (
    SPLIT_NAMES,
    FileGroups,
    file_groups,
    grouped_split,
    kfold_split,
    needs_audit,
    split_dataset,
    split_fingerprint,
    stratified_split,
)
from shared.schemas.datasets import CopyGroup, DatasetAudit
from shared.schemas.jobs import JobSpec
from tests.utils import image_folders


def make_folder(root: Path, counts: dict[str, int]) -> Path:
    """Files named like copies of photos: IMG_000_copy0.jpg, IMG_001_copy1.jpg, …"""
    return image_folders.make_folder(root, counts, name=lambda i: f"IMG_{i:03d}_copy{i % 3}.jpg")


def random_dataset(rng: random.Random) -> tuple[list[int], list[str]]:
    """Labels and groups: 2–4 classes, each with 8–30 groups of 1–12 copies (a few groups span
    two classes, as a mislabelled copy does)."""
    labels, groups = [], []
    for label in range(rng.randint(2, 4)):
        for number in range(rng.randint(8, 30)):
            for _copy in range(rng.randint(1, 12)):
                labels.append(label)
                groups.append(f"photo-{label}-{number}")
    for position in rng.sample(range(len(labels)), 3):
        labels[position] = (labels[position] + 1) % 2
    order = list(range(len(labels)))
    rng.shuffle(order)  # file order says nothing about groups
    return [labels[i] for i in order], [groups[i] for i in order]


def groups_of(split: dict[str, list[int]], groups: list[str]) -> dict[str, set[str]]:
    return {name: {groups[i] for i in split[name]} for name in SPLIT_NAMES}


@pytest.mark.parametrize("case", range(40))
def test_no_group_crosses_splits_and_every_image_is_in_one(case):
    labels, groups = random_dataset(random.Random(case))
    split = grouped_split(labels, groups, split_seed=case)

    assert sorted(split["train"] + split["val"] + split["test"]) == list(range(len(labels)))
    seen = groups_of(split, groups)
    assert not seen["train"] & seen["val"] and not seen["train"] & seen["test"] and not seen["val"] & seen["test"]
    assert all(split[name] for name in SPLIT_NAMES)


@pytest.mark.parametrize("case", range(10))
def test_classes_keep_their_proportions(case):
    rng = random.Random(100 + case)
    counts = [rng.randint(20, 200) for _ in range(3)]
    labels = [label for label, n in enumerate(counts) for _ in range(n)]
    groups = [f"photo-{i // 2}" for i in range(len(labels))]  # pairs of copies (a pair never spans classes here)
    split = grouped_split(labels, groups, split_seed=case)

    for name, fraction in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        per_class = Counter(labels[i] for i in split[name])
        for label, n in enumerate(counts):
            assert abs(per_class[label] - n * fraction) <= 4, (name, label, per_class[label], n)


def test_split_seed_draws_the_split_and_the_same_seed_gives_the_same():
    labels, groups = random_dataset(random.Random(7))
    split = grouped_split(labels, groups, split_seed=3)
    assert grouped_split(labels, groups, split_seed=3) == split
    assert grouped_split(labels, groups, split_seed=4) != split


@pytest.mark.parametrize(("case", "folds"), [(0, 2), (1, 3), (2, 5), (3, 10)])
def test_k_fold_tests_every_image_exactly_once_and_keeps_groups_whole(case, folds):
    labels, groups = random_dataset(random.Random(200 + case))
    tested: Counter[int] = Counter()
    for fold in range(folds):
        split = kfold_split(labels, groups, folds, fold, split_seed=case)
        assert sorted(split["train"] + split["val"] + split["test"]) == list(range(len(labels)))
        seen = groups_of(split, groups)
        assert not seen["train"] & seen["test"] and not seen["train"] & seen["val"]
        if folds > 2:
            assert not seen["val"] & seen["test"]
            # val is the next fold: the fold after tests val's images
            assert split["val"] == kfold_split(labels, groups, folds, (fold + 1) % folds, case)["test"]
        tested.update(split["test"])
    assert tested == Counter(range(len(labels)))


def test_fewer_groups_than_folds_is_a_dataset_error():
    with pytest.raises(DatasetError, match="2 group\\(s\\) of images; 3 folds need at least 3"):
        kfold_split([0, 0, 1, 1], ["a", "a", "b", "b"], folds=3, fold=0, split_seed=0)
    with pytest.raises(ValueError, match="fold 3 is not one of 0 … 2"):
        kfold_split([0, 1, 0, 1], ["a", "b", "c", "d"], folds=3, fold=3, split_seed=0)


def test_the_random_split_is_stratified_60_20_20_and_reproducible():
    labels = [0] * 100 + [1] * 50 + [2] * 10
    split = stratified_split(labels, seed=7)
    assert sorted(split["train"] + split["val"] + split["test"]) == list(range(160))
    for name, fraction in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        per_class = Counter(labels[i] for i in split[name])
        assert per_class == {0: 100 * fraction, 1: 50 * fraction, 2: 10 * fraction}
    assert stratified_split(labels, seed=7) == split
    assert stratified_split(labels, seed=8) != split


def test_copies_of_one_photo_leak_in_a_random_split_but_not_in_a_grouped_one():
    # 120 photos, 39 copies each: the Kaggle set's likely shape.
    labels = [photo % 3 for photo in range(120) for _ in range(39)]
    groups = [f"photo-{photo}" for photo in range(120) for _ in range(39)]

    def leak_rate(split: dict[str, list[int]]) -> float:
        trained = {groups[i] for i in split["train"]}
        return sum(groups[i] in trained for i in split["test"]) / len(split["test"])

    assert leak_rate(stratified_split(labels, seed=0)) > 0.99
    assert leak_rate(grouped_split(labels, groups, split_seed=0)) == 0


# --- where groups come from ---------------------------------------------------------------


def audit_with(index_root: Path, groups: list[list[str]]) -> DatasetAudit:
    index = scan_image_folder(index_root)
    return DatasetAudit(
        dataset="d",
        fingerprint=index.fingerprint(),
        audited_at=datetime(2026, 1, 1, tzinfo=UTC),
        seconds=0.1,
        images=len(index.paths),
        class_profiles=[],
        copy_groups=[
            CopyGroup(kind="near", files=files, classes=sorted({f.split("/")[0] for f in files})) for files in groups
        ],
    )


def test_groups_csv_beside_the_class_folders_comes_first(tmp_path):
    make_folder(tmp_path / "wrapper", {"a": 3, "b": 3})
    (tmp_path / "wrapper" / "groups.csv").write_text(
        "file,group\na/IMG_000_copy0.jpg,leaf-1\nb/IMG_001_copy1.jpg,leaf-1\na/IMG_002_copy2.jpg, leaf-2\nold/gone.jpg,x\n"
    )
    index = scan_image_folder(tmp_path)
    found = file_groups(index, group_pattern=r"(?P<group>IMG_\d+)", audit=audit_with(tmp_path, []))

    assert found.source == "groups.csv" and not needs_audit(index, None)
    by_file = dict(zip([p.relative_to(index.root).as_posix() for p in index.paths], found.groups, strict=True))
    assert by_file["a/IMG_000_copy0.jpg"] == by_file["b/IMG_001_copy1.jpg"] != by_file["a/IMG_002_copy2.jpg"]
    assert by_file["a/IMG_001_copy1.jpg"] == "a/IMG_001_copy1.jpg"  # a file it does not name: its own group
    assert found.count == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,label\na/IMG_000_copy0.jpg,x\n", "needs a header with the columns file and group"),
        ("file,group\na/IMG_000_copy0.jpg,\n", "line 2: a file and a group are needed"),
        ("file,group\na/IMG_000_copy0.jpg,x\na/IMG_000_copy0.jpg,y\n", "line 3: 'a/IMG_000_copy0.jpg' is given two"),
    ],
)
def test_a_groups_csv_that_cannot_be_read_is_a_dataset_error(tmp_path, text, message):
    make_folder(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "groups.csv").write_text(text)
    with pytest.raises(DatasetError, match=message):
        file_groups(scan_image_folder(tmp_path))


def test_a_groups_csv_linking_outside_the_dataset_is_refused(tmp_path):
    make_folder(tmp_path / "data", {"a": 2, "b": 2})
    (tmp_path / "elsewhere.csv").write_text("file,group\n")
    (tmp_path / "data" / "groups.csv").symlink_to(tmp_path / "elsewhere.csv")
    with pytest.raises(DatasetError, match="groups.csv is a link that leads outside the dataset"):
        file_groups(scan_image_folder(tmp_path / "data"))


def test_a_group_pattern_picks_groups_out_of_paths(tmp_path):
    make_folder(tmp_path, {"a": 3, "b": 2})
    index = scan_image_folder(tmp_path)
    found = file_groups(index, group_pattern=r"copy(?P<group>[01])")
    assert found.source == "group_pattern" and not needs_audit(index, "x")
    # copy0 and copy1 in either class form two groups; copy2 matches nothing: its own group
    assert found.groups == ["group:0", "group:1", "a/IMG_002_copy2.jpg", "group:0", "group:1"]


def test_the_audits_copy_groups_come_next_and_other_images_stand_alone(tmp_path):
    make_folder(tmp_path, {"a": 3, "b": 2})
    index = scan_image_folder(tmp_path)
    assert needs_audit(index, None)
    found = file_groups(index, audit=audit_with(tmp_path, [["a/IMG_000_copy0.jpg", "b/IMG_001_copy1.jpg"]]))
    assert found.source == "audit" and found.count == 4
    assert found.groups[0] == found.groups[4] == "copies-of:a/IMG_000_copy0.jpg"
    assert file_groups(index) == FileGroups("images", [p.relative_to(tmp_path).as_posix() for p in index.paths])


def test_an_audit_of_other_files_is_refused(tmp_path):
    make_folder(tmp_path, {"a": 3, "b": 2})
    audit = audit_with(tmp_path, [])
    (tmp_path / "b" / "new.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match="the audit is of other files"):
        file_groups(scan_image_folder(tmp_path), audit=audit)


# --- the split a job asks for, and its hash -------------------------------------------------


def spec(**fields) -> JobSpec:
    return JobSpec(model_name="custom_cnn", dataset="d", **fields)


def test_runs_with_different_training_seeds_share_the_datasets_split(tmp_path):
    make_folder(tmp_path, {"a": 20, "b": 20})
    index = scan_image_folder(tmp_path)
    groups = file_groups(index, group_pattern=r"(?P<group>\d)_copy")  # 4 images a group

    first, second = (split_dataset(spec(seed=seed), index, groups) for seed in (1, 2))
    assert first.positions == second.positions and first.record.split_hash == second.record.split_hash
    other = split_dataset(spec(seed=1, split_seed=5), index, groups)
    assert other.record.split_hash != first.record.split_hash
    assert first.record.model_dump() == {
        "method": "grouped",
        "split_seed": 0,
        "group_source": "group_pattern",
        "groups": 10,
        "folds": None,
        "fold": None,
        "split_hash": first.record.split_hash,
    }
    assert not first.record.may_leak


def test_a_random_split_ignores_groups_and_may_leak(tmp_path):
    make_folder(tmp_path, {"a": 10, "b": 10})
    index = scan_image_folder(tmp_path)
    split = split_dataset(spec(split="random", split_seed=42), index, None)
    assert split.positions == stratified_split(index.labels, 42) and split.groups is None
    assert split.record.method == "random" and split.record.group_source is None and split.record.may_leak


def test_a_fold_of_a_study_is_its_own_split(tmp_path):
    make_folder(tmp_path, {"a": 10, "b": 10})
    index = scan_image_folder(tmp_path)
    groups = file_groups(index)
    folds = [split_dataset(spec(folds=5, fold=fold), index, groups) for fold in range(5)]
    assert len({f.record.split_hash for f in folds}) == 5
    assert sorted(i for f in folds for i in f.positions["test"]) == list(range(20))
    assert folds[2].record.folds == 5 and folds[2].record.fold == 2
    with pytest.raises(ValueError, match="give it a fold"):
        split_dataset(spec(folds=5), index, groups)


def test_the_hash_covers_the_groups_and_a_random_split_keeps_the_old_hash(tmp_path):
    make_folder(tmp_path, {"a": 5, "b": 5})
    index = scan_image_folder(tmp_path)
    split = stratified_split(index.labels, 0)
    digest = hashlib.sha256()
    for name in SPLIT_NAMES:
        for i in split[name]:
            digest.update(f"{name}\t{index.paths[i].relative_to(tmp_path)}\t{index.labels[i]}\n".encode())
    assert split_fingerprint(index, split) == digest.hexdigest()[:16]  # runs recorded before groups

    alone = [str(i) for i in range(10)]
    paired = [str(i // 2) for i in range(10)]
    assert (
        len(
            {
                split_fingerprint(index, split),
                split_fingerprint(index, split, alone),
                split_fingerprint(index, split, paired),
            }
        )
        == 3
    )


@pytest.mark.parametrize("labels", [[0, 0, 1, 1, 1], [0, 1, 1, 0, 1, 0, 1, 0]])
def test_a_tiny_dataset_still_splits_with_groups_whole(labels):
    groups = [f"g{i // 2}" if i < 4 else f"own{i}" for i in range(len(labels))]
    split = grouped_split(labels, groups, split_seed=3)
    assert sorted(split["train"] + split["val"] + split["test"]) == list(range(len(labels)))
    assert all(split[name] for name in SPLIT_NAMES)
    seen = groups_of(split, groups)
    assert not seen["train"] & seen["test"] and not seen["train"] & seen["val"] and not seen["val"] & seen["test"]
    assert grouped_split(labels, groups, split_seed=3) == split


def test_fewer_than_three_groups_cannot_be_split():
    with pytest.raises(DatasetError, match="2 group\\(s\\) of images; train, val and test need at least 3"):
        grouped_split([0, 0, 1, 1], ["a", "a", "b", "b"], split_seed=0)
