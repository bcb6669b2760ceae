"""Train / val / test splits that keep every copy of a photo on one side.

A dataset made of augmented copies (the Kaggle rice-leaf set is most likely 39 copies of each of
120 photos) split image by image puts copies of nearly every test photo into training, and its
test accuracy measures memory. So a split divides *groups* — the images that are one photo —
stratified by class and seeded, and no group crosses splits. Groups come, first found first, from
  1. `groups.csv` beside the class folders (columns `file,group`, file relative to that folder);
  2. a job's `group_pattern`: a regex whose named group `group` picks the group out of the path;
  3. the dataset audit's copy groups (exact and near copies, shared/schemas/datasets.py);
  4. else every image is its own group.
A file none of them names is a group of its own.

The split depends on the dataset, its groups and a `split_seed`, never on a run's training seed:
every run on a dataset is tested on the same images unless it asks for another split, so runs
compare image by image and vote together in ensembles. Its hash covers the groups too.

scikit-learn's StratifiedGroupKFold does the grouping; it is imported inside the functions that
use it, so that the API, which only reads splits' hashes, never loads it.
"""

import csv
import hashlib
import logging
import random
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.datasets.imagefolder import DatasetError, ImageFolderIndex
from shared.paths import is_inside
from shared.schemas.datasets import DatasetAudit
from shared.schemas.jobs import JobSpec
from shared.schemas.splits import GroupSource, SplitRecord

SPLIT_NAMES = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.6, 0.2, 0.2)
GROUPS_FILE = "groups.csv"
# The pattern's named group that says which group a path belongs to.
PATTERN_GROUP = "group"

Split = dict[str, list[int]]  # split name → positions in the index, sorted
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileGroups:
    """Every image's group, in the index's order, and where the groups came from."""

    source: GroupSource
    groups: list[str]

    @property
    def count(self) -> int:
        return len(set(self.groups))


@dataclass(frozen=True)
class DatasetSplit:
    """A run's split: positions per split name, each image's group (None for a random split,
    which ignores groups) and the record a run publishes about it."""

    positions: Split
    groups: list[str] | None
    record: SplitRecord


def relative_files(index: ImageFolderIndex) -> list[str]:
    """Each image's path relative to the class folders' parent, '/'-separated: how groups.csv,
    group patterns and audits name files."""
    return [path.relative_to(index.root).as_posix() for path in index.paths]


def groups_file(index: ImageFolderIndex) -> Path | None:
    path = index.root / GROUPS_FILE
    return path if path.is_file() else None


def needs_audit(index: ImageFolderIndex, group_pattern: str | None) -> bool:
    """Whether the dataset's groups come from its audit: no groups.csv and no pattern given."""
    return groups_file(index) is None and group_pattern is None


def file_groups(
    index: ImageFolderIndex, group_pattern: str | None = None, audit: DatasetAudit | None = None
) -> FileGroups:
    """Every image's group, from the first source there is (see the module's docstring).

    audit, when given, must be of these very files (its fingerprint is the index's).
    """
    files = relative_files(index)
    if (path := groups_file(index)) is not None:
        named = read_groups_file(path, index.root, set(files))
        return FileGroups("groups.csv", [named.get(file, file) for file in files])
    if group_pattern is not None:
        pattern = re.compile(group_pattern)
        return FileGroups("group_pattern", [_group_in(pattern, file) for file in files])
    if audit is not None:
        if audit.fingerprint != index.fingerprint():
            raise ValueError(
                f"the audit is of other files (fingerprint {audit.fingerprint}, the dataset's {index.fingerprint()})"
            )
        copies = audit.groups()
        return FileGroups("audit", [copies.get(file, file) for file in files])
    return FileGroups("images", files)


def _group_in(pattern: re.Pattern[str], file: str) -> str:
    match = pattern.search(file)
    group = match.group(PATTERN_GROUP) if match else None
    return f"{PATTERN_GROUP}:{group}" if group else file


def read_groups_file(path: Path, root: Path, files: set[str]) -> dict[str, str]:
    """file → group from a groups.csv (header `file,group`); DatasetError when it cannot be one.

    Rows naming files the dataset does not hold are left out (and counted in the log): a file
    removed from the dataset need not be removed from its groups.csv.
    """
    if not is_inside(path, root):
        raise DatasetError(f"{GROUPS_FILE} is a link that leads outside the dataset")
    named: dict[str, str] = {}
    unknown = 0
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.DictReader(file)
            if not {"file", "group"} <= set(reader.fieldnames or ()):
                raise DatasetError(f"{GROUPS_FILE} needs a header with the columns file and group")
            for line, row in enumerate(reader, start=2):
                name, group = (row.get("file") or "").strip().replace("\\", "/"), (row.get("group") or "").strip()
                if not name or not group:
                    raise DatasetError(f"{GROUPS_FILE} line {line}: a file and a group are needed")
                if name not in files:
                    unknown += 1
                    continue
                if named.setdefault(name, f"csv:{group}") != f"csv:{group}":
                    raise DatasetError(f"{GROUPS_FILE} line {line}: {name!r} is given two groups")
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"{GROUPS_FILE} cannot be read: {error}") from None
    if unknown:
        log.warning("%s: %d rows name files the dataset does not hold; left out", GROUPS_FILE, unknown)
    return named


def stratified_split(labels: list[int], seed: int, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> Split:
    """Indices per split, image by image, each class divided in the same proportions,
    reproducible for a seed: `split: "random"`. Copies of one photo may land on both sides.

    Every class puts at least one image in each split when it has three or more.
    """
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    split: Split = {name: [] for name in SPLIT_NAMES}
    for label in sorted(by_class):
        members = by_class[label]
        rng.shuffle(members)
        n = len(members)
        n_val = max(1, round(n * fractions[1])) if n >= 3 else 0
        n_test = max(1, round(n * fractions[2])) if n >= 3 else 0
        n_train = n - n_val - n_test
        split["train"] += members[:n_train]
        split["val"] += members[n_train : n_train + n_val]
        split["test"] += members[n_train + n_val :]
    for name in SPLIT_NAMES:
        split[name].sort()
    return split


def group_folds(labels: Sequence[int], groups: Sequence[str], folds: int, seed: int) -> list[list[int]]:
    """The positions of each of `folds` folds: every group in one fold, classes spread evenly,
    reproducible for a seed. DatasetError when there are fewer groups than folds."""
    if len(labels) != len(groups):
        raise ValueError(f"{len(labels)} labels and {len(groups)} groups do not line up")
    distinct = sorted(set(groups))
    if len(distinct) < folds:
        raise DatasetError(f"the dataset has {len(distinct)} group(s) of images; {folds} folds need at least {folds}")
    if all(count < folds for count in Counter(labels).values()):
        # Too few images of every class to stratify (scikit-learn refuses): whole groups dealt
        # out in a seeded order, so a tiny dataset still splits.
        random.Random(seed).shuffle(distinct)
        fold_of = {group: number % folds for number, group in enumerate(distinct)}
        return [[i for i, group in enumerate(groups) if fold_of[group] == fold] for fold in range(folds)]
    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # A class with fewer groups than folds is missing from some folds: expected, not news.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        return [sorted(test.tolist()) for _train, test in splitter.split(np.zeros(len(labels)), labels, groups)]


def grouped_split(
    labels: Sequence[int],
    groups: Sequence[str],
    split_seed: int,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
) -> Split:
    """Indices per split with every group in one split, stratified by class, reproducible for
    split_seed.

    Test is one of round(1 / test fraction) group folds of the whole, val one of
    round((1 - test) / val) group folds of the rest: 60/20/20 is exactly 5 and then 4 folds;
    other fractions are met as nearly as whole folds allow. Groups of very different sizes move
    the proportions too: a group is never cut to fit. DatasetError below 3 groups.
    """
    _train, val_fraction, test_fraction = fractions
    if not (0 < val_fraction <= 0.5 and 0 < test_fraction <= 0.5 and abs(sum(fractions) - 1) < 1e-9):
        raise ValueError(f"fractions {fractions} must be positive, sum to 1, val and test each at most 0.5")
    distinct = len(set(groups))
    if distinct < 3:
        raise DatasetError(f"the dataset has {distinct} group(s) of images; train, val and test need at least 3")
    everything = list(range(len(labels)))
    # A dataset of fewer groups than folds gets as many folds as it has groups.
    test = group_folds(labels, groups, min(distinct, max(2, round(1 / test_fraction))), split_seed)[0]
    rest = sorted(set(everything) - set(test))
    rest_groups = [groups[i] for i in rest]
    rest_folds = group_folds(
        [labels[i] for i in rest],
        rest_groups,
        min(len(set(rest_groups)), max(2, round((1 - test_fraction) / val_fraction))),
        split_seed,
    )
    val = sorted(rest[i] for i in rest_folds[0])
    train = sorted(set(rest) - set(val))
    return {"train": train, "val": val, "test": test}


def kfold_split(labels: Sequence[int], groups: Sequence[str] | None, folds: int, fold: int, split_seed: int) -> Split:
    """Fold `fold` of k-fold cross-validation over groups: test is that fold, val the next one
    (cyclically), train the rest. Over fold = 0 … folds-1 every image is tested exactly once.

    groups None: each image its own group (a random k-fold, image by image).
    """
    if not 0 <= fold < folds:
        raise ValueError(f"fold {fold} is not one of 0 … {folds - 1}")
    own = groups if groups is not None else [str(i) for i in range(len(labels))]
    parts = group_folds(labels, own, folds, split_seed)
    test, val = parts[fold], parts[(fold + 1) % folds]
    train = sorted(i for number, part in enumerate(parts) if number not in (fold, (fold + 1) % folds) for i in part)
    return {"train": train, "val": val, "test": test}


def split_fingerprint(index: ImageFolderIndex, split: Split, groups: Sequence[str] | None = None) -> str:
    """A hash of which file went to which split, and of each file's group when the split kept
    groups together: runs with equal hashes share their test set and its groups.

    Without groups (a random split) it is the hash Paddy has always given a split.
    """
    digest = hashlib.sha256()
    for name in SPLIT_NAMES:
        for position in split[name]:
            path = index.paths[position].relative_to(index.root)
            group = f"\t{groups[position]}" if groups is not None else ""
            digest.update(f"{name}\t{path}\t{index.labels[position]}{group}\n".encode())
    return digest.hexdigest()[:16]


def split_dataset(spec: JobSpec, index: ImageFolderIndex, groups: FileGroups | None) -> DatasetSplit:
    """The split a job asks for: its method, split_seed and fold, over the dataset's groups.

    groups: the dataset's (file_groups); needed for a grouped split, ignored by a random one.
    """
    folds, fold = spec.folds, spec.fold
    if folds is not None and fold is None:
        raise ValueError("a job with folds runs one child per fold: give it a fold (POST /jobs makes them)")
    if spec.split == "random":
        positions = (
            kfold_split(index.labels, None, folds, fold, spec.split_seed)
            if folds is not None and fold is not None
            else stratified_split(index.labels, spec.split_seed)
        )
        record = SplitRecord(
            method="random",
            split_seed=spec.split_seed,
            folds=folds,
            fold=fold,
            split_hash=split_fingerprint(index, positions),
        )
        return DatasetSplit(positions, None, record)
    if groups is None:
        raise ValueError("a grouped split needs the dataset's groups")
    positions = (
        kfold_split(index.labels, groups.groups, folds, fold, spec.split_seed)
        if folds is not None and fold is not None
        else grouped_split(index.labels, groups.groups, spec.split_seed)
    )
    record = SplitRecord(
        method="grouped",
        split_seed=spec.split_seed,
        group_source=groups.source,
        groups=groups.count,
        folds=folds,
        fold=fold,
        split_hash=split_fingerprint(index, positions, groups.groups),
    )
    return DatasetSplit(positions, groups.groups, record)
