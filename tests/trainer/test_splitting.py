"""A run's split on the trainer: one split per dataset whatever the training seed; the dataset
audited (once, then cached) when its copy groups decide the split; copies of a photo kept on
one side. Real audits and real (tiny) training runs, CPU."""

import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from services.trainer.local_run import EVENTS_FILE, train_locally
from services.trainer.settings import TrainerSettings
from services.trainer.splitting import run_split
from shared.datasets.audits import audit_path, load_audit
from shared.datasets.imagefolder import scan_image_folder
from shared.datasets.synth import CLASS_NAMES, draw_image, synthesize_dataset
from shared.schemas.jobs import JobSpec


class Recorded:
    """A Publisher that keeps what it is given (the trainer's events module is tested elsewhere)."""

    run_id = "split-test"

    def __init__(self):
        self.events: list[tuple[str, dict]] = []

    def publish(self, event_type: type, **fields) -> None:
        self.events.append((event_type.__name__, fields))

    def close(self) -> bool:
        return True


def copies_of_photos(folder: Path, photos_per_class: int, copies: int, seed: int) -> dict[str, int]:
    """Each photo saved `copies` times, flipped, rotated and cropped, under random names:
    file (relative to folder) → the photo it shows."""
    rng = random.Random(seed)
    source_of = {}
    for class_index, class_name in enumerate(CLASS_NAMES):
        (folder / class_name).mkdir(parents=True)
        for number in range(photos_per_class):
            photo = draw_image(np.random.default_rng([seed, class_index, number]), class_name, 128)
            for _ in range(copies):
                copy = photo.rotate(rng.choice([0, 90, 180, 270]))
                copy = ImageOps.mirror(copy) if rng.random() < 0.5 else copy
                margin = rng.randint(0, 12)
                copy = copy.crop((margin, margin, 128 - margin, 128 - margin)).resize((96, 96), Image.BILINEAR)
                name = f"{class_name}/{rng.getrandbits(48):012x}.jpg"
                copy.save(folder / name, quality=90)
                source_of[name] = class_index * photos_per_class + number
    return source_of


def test_copies_of_a_photo_stay_on_one_side_of_the_split(tmp_path):
    source_of = copies_of_photos(tmp_path / "data" / "copies", photos_per_class=5, copies=4, seed=1)
    settings = TrainerSettings(data_root=tmp_path / "data", artifacts_root=tmp_path / "artifacts")
    index = scan_image_folder(tmp_path / "data" / "copies")
    publisher = Recorded()

    split = run_split(
        JobSpec(model_name="custom_cnn", dataset="copies"), index, tmp_path / "data" / "copies", settings, publisher
    )

    sources = [source_of[path.relative_to(index.root).as_posix()] for path in index.paths]
    trained = {sources[i] for i in split.positions["train"]}
    leaked = [i for i in split.positions["test"] if sources[i] in trained]
    assert split.positions["test"] and len(leaked) <= 0.01 * len(split.positions["test"])
    assert split.record.group_source == "audit" and split.record.groups == 15
    # The audit the split needed is published and cached for the runs after this one.
    [(kind, fields)] = publisher.events
    assert kind == "DatasetAudited" and fields["audit"] == load_audit(settings.artifacts_root, index.fingerprint())
    again = Recorded()
    assert (
        run_split(JobSpec(model_name="custom_cnn", dataset="copies", seed=9), index, index.root, settings, again)
        == split
    )
    assert again.events == []


@pytest.mark.parametrize(
    ("spec_fields", "groups_csv"),
    [({"split": "random"}, False), ({"group_pattern": r"(?P<group>\d{4})"}, False), ({}, True)],
)
def test_no_audit_when_the_split_does_not_need_one(tmp_path, spec_fields, groups_csv):
    synthesize_dataset(tmp_path / "data" / "tiny", per_class=5, size=32, seed=0)
    if groups_csv:
        (tmp_path / "data" / "tiny" / "groups.csv").write_text("file,group\nLeafsmut/0000.png,a\nLeafsmut/0001.png,a\n")
    settings = TrainerSettings(data_root=tmp_path / "data", artifacts_root=tmp_path / "artifacts")
    index = scan_image_folder(tmp_path / "data" / "tiny")
    publisher = Recorded()

    split = run_split(
        JobSpec(model_name="custom_cnn", dataset="tiny", **spec_fields), index, index.root, settings, publisher
    )

    assert publisher.events == [] and not audit_path(settings.artifacts_root, index.fingerprint()).exists()
    assert split.record.method == spec_fields.get("split", "grouped")


def test_runs_with_different_seeds_share_their_datasets_split(tmp_path):
    synthesize_dataset(tmp_path / "data" / "tiny", per_class=10, size=32, seed=3)
    settings = TrainerSettings(data_root=tmp_path / "data", artifacts_root=tmp_path / "artifacts")
    common = {"model_name": "custom_cnn", "dataset": "tiny", "epochs": 1, "batch_size": 8, "image_size": 32}

    summaries = [train_locally(f"seed-{seed}", JobSpec(**common, seed=seed), settings) for seed in (1, 2)]

    first, second = summaries
    assert first.seed == 1 and second.seed == 2
    assert first.split_hash == second.split_hash and first.split == second.split
    assert first.split.method == "grouped" and first.split.group_source == "audit" and not first.may_leak
    # Only the first run had to audit the dataset; the second found the audit cached.
    audited = [
        [json.loads(line)["type"] for line in (settings.artifacts_root / "runs" / run / EVENTS_FILE).open()].count(
            "dataset_audited"
        )
        for run in ("seed-1", "seed-2")
    ]
    assert audited == [1, 0]
    other = train_locally("split-7", JobSpec(**common, seed=1, split_seed=7), settings)
    assert other.split_hash != first.split_hash
    leaky = train_locally("random", JobSpec(**common, split="random", split_seed=1), settings)
    assert leaky.may_leak and leaky.split.method == "random" and leaky.split.group_source is None
