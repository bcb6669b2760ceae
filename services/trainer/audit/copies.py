"""Copy groups: files with identical bytes, and files that are one photo transformed.

Exact copies are found by content hash. Near copies are searched among distinct contents
only: candidate pairs from the bag of visual words (candidates.py), checked one by one
(verify.py), the most similar first. Groups are the connected components of the checked
pairs, so a pair already joined through others is not checked again: 40 copies of a photo
need about 39 checks, not the 300 or so candidate pairs among them.
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Literal

from scipy.cluster.hierarchy import DisjointSet

from services.trainer.audit.candidates import NEIGHBOURS, Candidate, Similarities
from services.trainer.audit.features import ImageFeatures
from services.trainer.audit.reading import ImageRecord, read_dataset
from services.trainer.audit.verify import same_photo
from services.trainer.audit.work import DEFAULT_WORKERS, Progress, Workers, quiet
from shared.datasets.imagefolder import ImageFolderIndex
from shared.schemas.datasets import CopyGroup

CHECKS_AT_ONCE = 64  # candidate pairs checked between two looks at which are joined already
# When most images turned out to be copies, an image left alone is more likely a copy whose
# likeness the bag of words underrated than a photo of its own: it gets RESCUE_NEIGHBOURS
# candidates more. (In a set of mostly distinct photos that would cost much and find little.)
LONELY_SHARE = 0.5
RESCUE_NEIGHBOURS = 40


def find_copy_groups(
    index: ImageFolderIndex, progress: Progress | None = None, workers: int = DEFAULT_WORKERS
) -> list[CopyGroup]:
    """The copy groups of a scanned dataset (files relative to index.root)."""
    with Workers(workers) as pool:
        records = read_dataset(index, pool, progress or quiet)
        return group_copies(records, index.class_names, pool, progress or quiet)


def group_copies(
    records: Sequence[ImageRecord], class_names: Sequence[str], workers: Workers, progress: Progress
) -> list[CopyGroup]:
    """Exact and near copy groups, label conflicts first, then the largest."""
    by_content: dict[str, list[ImageRecord]] = defaultdict(list)
    for record in records:
        by_content[record.sha256].append(record)
    groups = [_group("exact", same, class_names) for same in by_content.values() if len(same) > 1]
    distinct = [(same[0].sha256, same[0].features) for same in by_content.values() if same[0].features is not None]
    for component in _near_components([features for _, features in distinct], workers, progress):
        if len(component) > 1:
            members = [record for position in component for record in by_content[distinct[position][0]]]
            groups.append(_group("near", members, class_names))
    return sorted(groups, key=lambda g: (not g.label_conflict, -len(g.files), g.kind, g.files[0]))


def _near_components(features: list[ImageFeatures], workers: Workers, progress: Progress) -> list[set[int]]:
    progress("indexing", 0, 1)
    similarities = Similarities(features, workers) if len(features) > 1 else None
    progress("indexing", 1, 1)
    joined = DisjointSet(range(len(features)))
    if similarities is None:
        return joined.subsets()
    candidates = similarities.nearest(range(len(features)), NEIGHBOURS)
    checked = {(c.first, c.second) for c in candidates}
    _check(candidates, features, joined, workers, lambda done: progress("matching", done, len(candidates)))
    lonely = [i for i in range(len(features)) if joined.subset_size(i) == 1]
    if len(lonely) <= LONELY_SHARE * len(features):
        more = [c for c in similarities.nearest(lonely, RESCUE_NEIGHBOURS) if (c.first, c.second) not in checked]
        _check(more, features, joined, workers, lambda done: progress("matching", len(candidates), len(candidates)))
    return joined.subsets()


def _check(
    candidates: list[Candidate],
    features: list[ImageFeatures],
    joined: DisjointSet,
    workers: Workers,
    report: Callable[[int], None],
) -> None:
    """Joins the candidate pairs that are one photo, skipping pairs joined already."""
    report(0)
    for start in range(0, len(candidates), CHECKS_AT_ONCE):
        batch = [c for c in candidates[start : start + CHECKS_AT_ONCE] if not joined.connected(c.first, c.second)]
        verdicts = workers.map(lambda c: same_photo(features[c.first], features[c.second], c.mirrored), batch)
        for candidate, same in zip(batch, verdicts, strict=True):
            if same:
                joined.merge(candidate.first, candidate.second)
        report(min(start + CHECKS_AT_ONCE, len(candidates)))


def _group(kind: Literal["exact", "near"], records: Sequence[ImageRecord], class_names: Sequence[str]) -> CopyGroup:
    return CopyGroup(
        kind=kind,
        files=sorted(r.file for r in records),
        classes=sorted({class_names[r.label] for r in records}),
    )
