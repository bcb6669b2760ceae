"""Dataset audits for the tests: reports as an audit of a real folder would read, their
`dataset_audited` events, and a generated dataset with the findings an audit must report."""

import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from shared.datasets.imagefolder import scan_image_folder
from shared.datasets.synth import CLASS_NAMES, draw_image
from shared.schemas.datasets import ClassProfile, CopyGroup, DatasetAudit, ShortcutWarning, Spread
from shared.schemas.events import DatasetAudited

T0 = datetime(2026, 3, 1, tzinfo=UTC)
# A shortcut generated_dataset plants: each class photographed at its own size.
SIDES = dict(zip(CLASS_NAMES, (120, 64, 88), strict=True))
# The image generated_dataset copies into another class: one photo, two labels.
COPIED = f"{CLASS_NAMES[1]}/0001.png"
COPY = f"{CLASS_NAMES[0]}/copied-from-brownspot.png"


def spread(value: float) -> Spread:
    return Spread(min=value, median=value, max=value)


def audit_of(
    folder: Path, dataset: str, audited_at: datetime = T0, copy_groups: list[CopyGroup] | None = None
) -> DatasetAudit:
    """A report on the dataset in folder (its real file list and fingerprint): every image
    32 px square; copy groups as given, else the first image of the first class filed again
    under the second (a label conflict) and the second class's first two images near copies;
    one shortcut warning."""
    index = scan_image_folder(folder)
    files = [path.relative_to(index.root).as_posix() for path in index.paths]
    by_class = {
        name: [f for f, label in zip(files, index.labels, strict=True) if label == i]
        for i, name in enumerate(index.class_names)
    }
    first, second = index.class_names[:2]
    if copy_groups is None:
        copy_groups = [
            CopyGroup(kind="near", files=sorted(by_class[second][:2]), classes=[second]),
            CopyGroup(kind="exact", files=sorted([by_class[first][0], by_class[second][0]]), classes=[first, second]),
        ]
    counts = Counter(index.labels)
    return DatasetAudit(
        dataset=dataset,
        fingerprint=index.fingerprint(),
        audited_at=audited_at,
        seconds=0.5,
        images=len(files),
        class_profiles=[
            ClassProfile(
                name=name,
                images=counts[label],
                width=spread(32),
                height=spread(32),
                aspect_ratio=spread(1.0),
                file_bytes=spread(2000),
                formats={"PNG": counts[label]},
            )
            for label, name in enumerate(index.class_names)
        ],
        unreadable=[],
        copy_groups=copy_groups,
        shortcuts=[
            ShortcutWarning(
                feature="file_bytes",
                accuracy=0.95,
                chance=0.34,
                message="file size alone predicts the class: 95 % against 34 % by chance",
            )
        ],
    )


def audited(audit: DatasetAudit, run_id: str | None = None, seq: int = 1) -> DatasetAudited:
    """The event the audit task publishes for this report."""
    return DatasetAudited(run_id=run_id or f"dataset:{audit.fingerprint}", seq=seq, audit=audit, time=audit.audited_at)


def generated_dataset(folder: Path, per_class: int = 8, seed: int = 0) -> Path:
    """Synthetic leaves with two findings planted: every class at its own image size (SIDES: a
    size shortcut) and one image filed under a second class (COPY, a byte copy of COPIED)."""
    for class_index, class_name in enumerate(CLASS_NAMES):
        (folder / class_name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = draw_image(np.random.default_rng([seed, class_index, i]), class_name, SIDES[class_name])
            image.save(folder / class_name / f"{i:04d}.png", compress_level=1)
    shutil.copyfile(folder / COPIED, folder / COPY)
    return folder
