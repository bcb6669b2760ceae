"""A whole dataset audit: read every image once, then profile, group copies, look for shortcuts.

Phases reported to `progress(phase, done, total)`: "reading" (images), "indexing" (the bag of
visual words, 0 then 1), "matching" (candidate pairs), "shortcuts" (properties, 0 then 1).
"""

import time
from datetime import UTC, datetime
from pathlib import Path

from services.trainer.audit.copies import group_copies
from services.trainer.audit.profiles import class_profiles
from services.trainer.audit.reading import read_dataset
from services.trainer.audit.shortcuts import shortcut_warnings
from services.trainer.audit.work import DEFAULT_WORKERS, Progress, Workers, quiet
from shared.datasets.imagefolder import scan_image_folder
from shared.schemas.datasets import DatasetAudit


def audit_dataset(
    folder: Path, dataset: str, progress: Progress | None = None, workers: int = DEFAULT_WORKERS
) -> DatasetAudit:
    """The audit of the ImageFolder dataset in folder, named `dataset` as jobs name it.

    Files are named relative to the class folders' parent (a lone wrapper folder, as in the
    Kaggle download, is stepped into); raises DatasetError when folder is no dataset."""
    started = time.perf_counter()
    report = progress or quiet
    index = scan_image_folder(folder)
    with Workers(workers) as pool:
        records = read_dataset(index, pool, report)
        copy_groups = group_copies(records, index.class_names, pool, report)
    audit = DatasetAudit(
        dataset=dataset,
        fingerprint=index.fingerprint(),
        audited_at=datetime.now(UTC),
        seconds=0.0,
        images=len(records),
        class_profiles=class_profiles(records, index.class_names),
        unreadable=[r.file for r in records if not r.readable],
        copy_groups=copy_groups,
    )
    report("shortcuts", 0, 1)
    audit.shortcuts = shortcut_warnings(records, index.class_names, audit.groups())
    report("shortcuts", 1, 1)
    audit.seconds = round(time.perf_counter() - started, 3)
    return audit
