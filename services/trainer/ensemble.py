"""Soft-voting ensembles of completed training runs, evaluated on the split the members share.

An ensemble is recorded as a run of its own, with the same events as a training run (no
epochs), and leaves `ensemble.json` in its run directory so that predictions can use it. Like a
training run it can be cancelled (names.CANCEL_KEY): before it starts and between batches.
"""

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from services.trainer import checkpoints
from services.trainer.data import load_split_data, place
from services.trainer.device import environment, pick_device
from services.trainer.engine import TrainSetup, loss_and_accuracy, make_setup, predict_logits
from services.trainer.events import Publisher
from services.trainer.gradcam import Explained
from services.trainer.lifecycle import Attempt, Outcome, completed_run, run_attempt, stopped_run
from services.trainer.models import build_model
from services.trainer.run_heatmaps import save_test_heatmaps
from services.trainer.settings import TrainerSettings
from services.trainer.splitting import run_split
from services.trainer.summary import (
    RunSplit,
    evaluation_of,
    publish_evaluation,
    publish_run_started,
    publish_test_predictions,
    training_summary,
)
from shared.datasets.imagefolder import ImageFolderIndex, resolve_dataset, scan_image_folder
from shared.datasets.splits import SPLIT_NAMES, DatasetSplit
from shared.schemas.events import utc_now
from shared.schemas.jobs import EnsembleSpec, JobSpec

ENSEMBLE_FILE = "ensemble.json"
log = logging.getLogger(__name__)


class EnsembleError(ValueError):
    """Runs that cannot vote together; the message names the runs and what differs."""


@dataclass
class Member:
    """A completed training run, loaded from its best checkpoint, ready to predict."""

    run_id: str
    spec: JobSpec
    class_names: list[str]
    split_hash: str
    model: nn.Module
    setup: TrainSetup


def load_member(run_id: str, artifacts_root: Path, device: torch.device) -> Member:
    run_dir = checkpoints.run_dir(artifacts_root, run_id)
    path = run_dir / checkpoints.BEST
    if not path.is_file():
        if (run_dir / ENSEMBLE_FILE).is_file():
            raise EnsembleError(f"run {run_id} is an ensemble; members must be training runs")
        raise EnsembleError(f"run {run_id} has no checkpoint: is it completed?")
    checkpoint = checkpoints.load_checkpoint(path)
    spec = JobSpec.model_validate(checkpoint["spec"])
    # The checkpoint holds every weight: nothing pretrained to fetch first.
    model = build_model(spec.model_copy(update={"weights": "none"}), len(checkpoint["class_names"]))
    model.load_state_dict(checkpoint["model"])
    model = model.to(device).eval()
    if spec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return Member(run_id, spec, checkpoint["class_names"], checkpoint["split_hash"], model, make_setup(spec, device))


def check_compatible(members: list[Member]) -> None:
    """Members must predict the same classes and have been tested on the same images."""
    first = members[0]
    for other in members[1:]:
        if other.class_names != first.class_names:
            raise EnsembleError(
                f"runs {first.run_id} and {other.run_id} have different classes: "
                f"{first.class_names} vs {other.class_names}"
            )
        if other.split_hash != first.split_hash:
            raise EnsembleError(
                f"runs {first.run_id} and {other.run_id} were trained on different splits "
                f"(split hash {first.split_hash} vs {other.split_hash}: another dataset, split_seed, fold or groups)"
            )


def shared_split(
    first: Member, settings: TrainerSettings, publisher: Publisher
) -> tuple[ImageFolderIndex, DatasetSplit]:
    """The members' split, rebuilt from the first member's dataset and split settings (split,
    split_seed, group_pattern, fold), checked unchanged."""
    folder = resolve_dataset(first.spec.dataset, settings.data_root)
    index = scan_image_folder(folder, within=settings.data_root)
    split = run_split(first.spec, index, folder, settings, publisher)
    if split.record.split_hash != first.split_hash:
        raise EnsembleError(
            f"dataset {first.spec.dataset!r} or its groups changed since run {first.run_id} trained on it "
            f"(split hash {split.record.split_hash}, the run's {first.split_hash})"
        )
    return index, split


def combine_logits(logits: list[torch.Tensor], voting: str) -> torch.Tensor:
    """The ensemble's logits: the mean of the members' logits, or the log of their mean probability.

    Either way softmax gives the ensemble's probabilities and cross-entropy its loss.
    """
    stacked = torch.stack(logits)
    if voting == "logits":
        return stacked.mean(0)
    if voting == "softmax":
        probabilities = stacked.softmax(-1).mean(0)
        return probabilities.clamp_min(torch.finfo(probabilities.dtype).tiny).log()
    raise ValueError(f"unknown voting {voting!r}; choose logits or softmax")


@dataclass
class Votes:
    """What the members say about every image of each split (train, val, test)."""

    labels: dict[str, torch.Tensor]
    logits: list[dict[str, torch.Tensor]]  # one dict per member, in the members' order
    skipped_files: int
    test_positions: list[int] = field(default_factory=list)  # each test image's position in the index


def collect_votes(
    members: list[Member],
    index: ImageFolderIndex,
    split: dict[str, list[int]],
    settings: TrainerSettings,
    batch_size: int,
    should_stop: Callable[[], bool] = lambda: False,
) -> Votes | None:
    """Each member's logits on every split, the images decoded once per input geometry.

    None when should_stop (asked after every batch) said to stop.
    """
    votes = Votes({}, [{} for _ in members], 0)
    for geometry in sorted({member.spec.geometry for member in members}):
        data = load_split_data(index, split, geometry, settings.max_image_pixels)
        labels = {name: getattr(data, name).labels for name in SPLIT_NAMES}
        if votes.labels and any(not torch.equal(votes.labels[n], labels[n]) for n in SPLIT_NAMES):
            raise EnsembleError(
                f"some images are unreadable at {geometry} only: the members would see different images"
            )
        votes.labels, votes.skipped_files, votes.test_positions = labels, data.skipped_files, data.test.positions
        for position, member in enumerate(members):
            if member.spec.geometry == geometry:
                for name in SPLIT_NAMES:
                    images = place(
                        getattr(data, name), member.setup.device, settings.images_on_gpu_fraction, settings.pin_memory
                    )
                    votes.logits[position][name] = predict_logits(
                        member.model, images, member.setup, batch_size, should_stop
                    )
                    if should_stop():
                        return None
    return votes


def write_manifest(run_dir: Path, spec: EnsembleSpec, class_names: list[str], split_hash: str) -> None:
    """`ensemble.json`: what a prediction needs to vote as this ensemble did."""
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"members": spec.members, "voting": spec.voting, "class_names": class_names, "split_hash": split_hash}
    partial = run_dir / f"{ENSEMBLE_FILE}.partial"
    partial.write_text(json.dumps(manifest, indent=2))
    os.replace(partial, run_dir / ENSEMBLE_FILE)


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / ENSEMBLE_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def run_ensemble(run_id: str, spec: EnsembleSpec, settings: TrainerSettings, worker: str) -> Outcome:
    """One attempt at evaluating spec as run run_id, publishing to Redis: the lifecycle around
    `evaluate_ensemble`."""
    return run_attempt(run_id, settings, worker, partial(evaluate_ensemble, spec, settings))


def evaluate_ensemble(spec: EnsembleSpec, settings: TrainerSettings, attempt: Attempt) -> Outcome:
    """The job itself: load and check the members, vote on every split, record the result.

    attempt.should_stop is asked after every batch; when it says so nothing more is written and
    run_cancelled is published. The manifest is written only while the attempt's lease holds.
    """
    start_time = utc_now()
    device = pick_device(settings.device)
    members = [load_member(member, settings.artifacts_root, device) for member in spec.members]
    check_compatible(members)
    first = members[0]
    index, dataset_split = shared_split(first, settings, attempt.publisher)
    positions = dataset_split.positions
    split = RunSplit(
        first.spec, index, positions, first.split_hash, first.class_names, dataset_split.groups, dataset_split.record
    )
    publish_run_started(attempt, spec, split, device)
    votes = collect_votes(members, index, positions, settings, spec.batch_size, attempt.should_stop)
    if votes is None:
        return stopped_run(attempt.publisher, attempt.run_id, 0, "while its members voted", attempt.stop_reason())
    combined = {name: combine_logits([m[name] for m in votes.logits], spec.voting) for name in SPLIT_NAMES}
    evaluation = evaluation_of(combined["test"], votes.labels["test"], first.class_names)
    publish_evaluation(attempt, evaluation)
    publish_test_predictions(attempt, split, combined["test"], votes.labels["test"], votes.test_positions)
    if not attempt.lease.confirm():
        raise RuntimeError(
            f"run {attempt.run_id}: Redis was unreachable for longer than the run's lease lives; "
            "another attempt may hold the run, so this one writes nothing"
        )
    run_dir = checkpoints.run_dir(settings.artifacts_root, attempt.run_id)
    write_manifest(run_dir, spec, first.class_names, first.split_hash)
    save_test_heatmaps(
        run_dir,
        [Explained.of(member) for member in members],
        index,
        votes.test_positions,
        votes.labels["test"].tolist(),
        combined["test"].argmax(1).tolist(),
        settings.heatmaps_per_run,
        settings.max_image_pixels,
    )
    _train_loss, train_accuracy = loss_and_accuracy(combined["train"], votes.labels["train"])
    val_loss, val_accuracy = loss_and_accuracy(combined["val"], votes.labels["val"])
    summary = training_summary(
        attempt,
        spec,
        split,
        evaluation,
        votes.skipped_files,
        start_time,
        {
            **environment(first.spec.seed, device),
            "member_geometries": {m.run_id: str(m.spec.geometry) for m in members},
        },
        train_accuracy=train_accuracy,
        val_accuracy=val_accuracy,
        best_val_loss=val_loss,
    )
    return completed_run(attempt, summary)
