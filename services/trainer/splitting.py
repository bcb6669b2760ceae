"""A run's split, on its trainer: the dataset's groups, then the split its job asks for
(shared/datasets/splits.py).

When the groups are the dataset audit's copy groups (no groups.csv, no group_pattern) and no
audit of these very files is cached, the trainer audits the dataset itself before it splits:
a split that does not know the copies of a photo would leak them. The audit is cached for every
later run (shared/datasets/audits.py) and published as a dataset_audited event, so the API shows
it as it shows one made by the `paddy.audit` task.
"""

import logging
from pathlib import Path

from services.trainer.events import Publisher
from services.trainer.settings import TrainerSettings
from shared.datasets.audits import load_audit, save_audit
from shared.datasets.imagefolder import ImageFolderIndex
from shared.datasets.splits import DatasetSplit, FileGroups, file_groups, needs_audit, split_dataset
from shared.schemas.datasets import DatasetAudit
from shared.schemas.events import DatasetAudited
from shared.schemas.jobs import JobSpec

log = logging.getLogger(__name__)


def run_split(
    spec: JobSpec, index: ImageFolderIndex, folder: Path, settings: TrainerSettings, publisher: Publisher
) -> DatasetSplit:
    """The split spec asks for over index (the scan of folder, spec's dataset). A random split
    needs no groups; a grouped one may audit the dataset first (see the module's docstring)."""
    groups = dataset_groups(spec, index, folder, settings, publisher) if spec.split == "grouped" else None
    return split_dataset(spec, index, groups)


def dataset_groups(
    spec: JobSpec, index: ImageFolderIndex, folder: Path, settings: TrainerSettings, publisher: Publisher
) -> FileGroups:
    """Every image's group: from groups.csv or spec's group_pattern, else from the dataset's audit."""
    audit = None
    if needs_audit(index, spec.group_pattern):
        audit = load_audit(settings.artifacts_root, index.fingerprint())
        if audit is None:
            audit = audit_now(spec.dataset, folder, settings, publisher)
    return file_groups(index, spec.group_pattern, audit)


def audit_now(dataset: str, folder: Path, settings: TrainerSettings, publisher: Publisher) -> DatasetAudit:
    """Audit the dataset in folder, cache the audit and publish it."""
    # Imported here: OpenCV and scikit-learn's matching load only in a worker that audits.
    from services.trainer.audit import audit_dataset

    log.info("run %s: auditing dataset %r to find copies of one photo before splitting it", publisher.run_id, dataset)
    audit = audit_dataset(folder, dataset)
    save_audit(settings.artifacts_root, audit)
    publisher.publish(DatasetAudited, audit=audit)
    log.info(
        "run %s: dataset %r audited in %.1f s: %d copy groups",
        publisher.run_id,
        dataset,
        audit.seconds,
        len(audit.copy_groups),
    )
    return audit
