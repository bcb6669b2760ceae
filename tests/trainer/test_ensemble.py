"""Ensembles of tiny real runs (CPU, 32 and 48 px) against a real redis-server and nx-27017."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from services.recorder.consumer import Recorder
from services.recorder.settings import RecorderSettings
from services.trainer import checkpoints, ensemble
from services.trainer.data import load_split_data
from services.trainer.ensemble import ENSEMBLE_FILE, EnsembleError, run_ensemble
from services.trainer.lifecycle import StoppedRun
from services.trainer.local_run import train_locally
from services.trainer.models import build_model
from services.trainer.settings import TrainerSettings
from shared import names
from shared.datasets.audits import load_audit
from shared.datasets.imagefolder import scan_image_folder
from shared.datasets.splits import file_groups, split_dataset
from shared.datasets.synth import synthesize_dataset
from shared.schemas.events import decode_event
from shared.schemas.jobs import EnsembleSpec, JobSpec
from tests.utils.documents import TRAININGS_FIELDS as ORIGINAL_TRAININGS_FIELDS
from tests.utils.waiting import wait_for

# The original system's `trainings` fields and their types (DESIGN.md); dropout may be null.
TRAININGS_FIELDS = ORIGINAL_TRAININGS_FIELDS | {"dropout": (float, type(None))}


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    """Four completed runs: a (32 px, seed 42) and b (48 px, seed 7) share their dataset's split, as
    the demo's jobs of different seeds do; c has another split_seed, d other classes."""
    data_root, artifacts_root = tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("artifacts")
    synthesize_dataset(data_root / "tiny", per_class=10, size=48, seed=3)
    synthesize_dataset(data_root / "other", per_class=10, size=48, seed=4)
    (data_root / "other" / "Leafsmut").rename(data_root / "other" / "Blast")
    settings = TrainerSettings(data_root=data_root, artifacts_root=artifacts_root)
    common = {"model_name": "custom_cnn", "epochs": 2, "batch_size": 8, "image_size": 32}
    for run_id, overrides in {
        "a": {},
        "b": {"image_size": 48, "dropout": 0.2, "seed": 7},
        "c": {"split_seed": 7},
        "d": {"dataset": "other"},
    }.items():
        train_locally(run_id, JobSpec(**{**common, "dataset": "tiny", **overrides}), settings)
    return {"data": data_root, "artifacts": artifacts_root}


@pytest.fixture
def trainer_settings(settings, roots) -> TrainerSettings:
    """Redis from the test's settings; data and runs from the module's trained runs."""
    return TrainerSettings(data_root=roots["data"], artifacts_root=roots["artifacts"])


def published(redis_client) -> list:
    return [
        e for _id, fields in redis_client.xrange(names.EVENTS_STREAM) if (e := decode_event(fields)).type != "heartbeat"
    ]


def hand_logits(run_id: str, roots: dict[str, Path], split_name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A member's logits and the labels, without the trainer's prediction code."""
    checkpoint = torch.load(checkpoints.run_dir(roots["artifacts"], run_id) / checkpoints.BEST, weights_only=False)
    spec = JobSpec.model_validate(checkpoint["spec"])
    model = build_model(spec, len(checkpoint["class_names"]))
    model.load_state_dict(checkpoint["model"])
    index = scan_image_folder(roots["data"] / spec.dataset)
    # The dataset's split: its groups from the audit the first run cached, its split_seed.
    groups = file_groups(index, spec.group_pattern, load_audit(roots["artifacts"], index.fingerprint()))
    split = split_dataset(spec, index, groups)
    assert split.record.split_hash == checkpoint["split_hash"]
    data = load_split_data(index, split.positions, spec.geometry, 10**8)
    images = getattr(data, split_name).images.float() / 255 * 2 - 1
    with torch.no_grad():
        return model.eval()(images), getattr(data, split_name).labels


@pytest.mark.parametrize(
    ("members", "message"),
    [
        (["a", "c"], "runs a and c were trained on different splits"),
        (["a", "d"], "runs a and d have different classes"),
        (["a", "ghost"], "run ghost has no checkpoint: is it completed?"),
    ],
)
def test_mismatched_members_are_refused_and_the_run_fails(trainer_settings, redis_client, members, message):
    with pytest.raises(EnsembleError, match=message):
        run_ensemble("ens-bad", EnsembleSpec(members=members), trainer_settings, worker="test")
    [failed] = published(redis_client)
    assert failed.type == "run_failed" and failed.error_type == "EnsembleError" and message in failed.message


def test_a_changed_dataset_is_refused(trainer_settings, redis_client, roots, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(roots["data"], changed)
    next((changed / "tiny" / "Brownspot").iterdir()).unlink()
    with pytest.raises(EnsembleError, match="dataset 'tiny' or its groups changed since run a trained on it"):
        run_ensemble(
            "ens-changed",
            EnsembleSpec(members=["a", "b"]),
            trainer_settings.model_copy(update={"data_root": changed}),
            worker="test",
        )


def test_a_spec_needs_two_distinct_members():
    with pytest.raises(ValidationError, match="at least 2"):
        EnsembleSpec(members=["a"])
    with pytest.raises(ValidationError, match="repeated: \\['a'\\]"):
        EnsembleSpec(members=["a", "b", "a"])


@pytest.mark.parametrize("voting", ["logits", "softmax"])
def test_the_ensemble_scores_what_its_averaged_members_score(trainer_settings, redis_client, roots, voting):
    summary = run_ensemble(
        f"ens-{voting}", EnsembleSpec(members=["a", "b"], voting=voting), trainer_settings, worker="test"
    )
    for split_name, accuracy, loss in [
        ("test", summary.test_accuracy, summary.test_loss),
        ("val", summary.val_accuracy, summary.best_val_loss),
    ]:
        (logits_a, labels), (logits_b, labels_b) = (hand_logits(r, roots, split_name) for r in ("a", "b"))
        assert torch.equal(labels, labels_b)
        if voting == "logits":
            combined = (logits_a + logits_b) / 2
            expected_loss = torch.nn.functional.cross_entropy(combined, labels).item()
        else:
            combined = (logits_a.softmax(1) + logits_b.softmax(1)) / 2
            expected_loss = torch.nn.functional.nll_loss(combined.log(), labels).item()
        assert accuracy == pytest.approx((combined.argmax(1) == labels).float().mean().item())
        assert loss == pytest.approx(expected_loss, rel=1e-4)
    manifest = json.loads((checkpoints.run_dir(roots["artifacts"], f"ens-{voting}") / ENSEMBLE_FILE).read_text())
    assert manifest == {
        "members": ["a", "b"],
        "voting": voting,
        "class_names": summary.class_names,
        "split_hash": summary.split_hash,
    }


def test_the_ensemble_is_recorded_like_a_training_run(trainer_settings, redis_client, db):
    summary = run_ensemble("ens-rec", EnsembleSpec(members=["a", "b"], version="v2"), trainer_settings, worker="test")
    started, evaluated, predicted, completed = published(redis_client)
    assert started.type == "run_started" and started.spec["model_name"] == "ensemble"
    assert started.epochs_planned == 0 and started.class_names == ["Bacterialblight", "Brownspot", "Leafsmut"]
    # The members' split, as the first member recorded it: grouped by the dataset's audit.
    assert started.split.method == "grouped" and started.split.group_source == "audit"
    assert started.split.split_hash == summary.split_hash and summary.split == started.split and not summary.may_leak
    assert evaluated.type == "evaluation_finished" and evaluated.images == 6
    assert (evaluated.accuracy, evaluated.loss, evaluated.f1_macro) == (
        summary.test_accuracy,
        summary.test_loss,
        summary.test_f1_macro,
    )
    assert predicted.type == "test_predictions" and predicted.split_hash == summary.split_hash
    assert len(predicted.predictions) == 6
    right = sum(p.predicted_class == p.true_class for p in predicted.predictions)
    assert right / 6 == pytest.approx(summary.test_accuracy)
    assert completed.type == "run_completed" and completed.summary == summary
    assert summary.model_name == "ensemble" and summary.members == ["a", "b"] and summary.image_size == 32
    assert sum(map(sum, summary.confusion_matrix)) == 6 and set(summary.per_class) == set(summary.class_names)

    recorder = Recorder(redis_client, db, RecorderSettings(consumer_name="test", block_ms=100))
    recorder.ensure_group()
    while entries := recorder._read(">"):
        recorder.process(entries)
    trainings = db[names.TRAININGS].find_one({"run_id": "ens-rec"})
    for field, kind in TRAININGS_FIELDS.items():
        assert isinstance(trainings[field], kind), (field, trainings[field])
    assert trainings["members"] == ["a", "b"] and trainings["version"] == "v2" and trainings["epochs_run"] == 0
    status = db[names.STATUS].find_one({"run_id": "ens-rec"})
    assert status["status"] == "completed" and status["model_name"] == "ensemble"
    kept = db[names.TEST_PREDICTIONS].find_one({"_id": "ens-rec"})
    assert kept["split_hash"] == summary.split_hash
    assert kept["predictions"] == [p.model_dump() for p in predicted.predictions]


def test_an_ensemble_cancelled_before_it_starts_is_skipped(trainer_settings, redis_client, roots):
    redis_client.set(names.CANCEL_KEY.format(run_id="ens-skip"), 1)
    result = run_ensemble("ens-skip", EnsembleSpec(members=["a", "b"]), trainer_settings, worker="test")
    assert result == StoppedRun("ens-skip", epochs_run=0)
    assert [e.type for e in published(redis_client)] == ["run_cancelled"]
    assert not (checkpoints.run_dir(roots["artifacts"], "ens-skip") / ENSEMBLE_FILE).exists()


def test_an_ensemble_cancelled_while_voting_stops_after_the_batch(trainer_settings, redis_client, roots, monkeypatch):
    """The flag is set during the first forward pass: the members stop after that one batch."""
    real_predict, batches_run = ensemble.predict_logits, []

    def predict_while_cancelled(model, data, setup, batch_size, should_stop):
        if not batches_run:
            redis_client.set(names.CANCEL_KEY.format(run_id="ens-stop"), 1)
            wait_for(should_stop, 10, "the cancel flag to be seen")  # CancelFlag polls every 0.5 s
        logits = real_predict(model, data, setup, batch_size, should_stop)
        batches_run.append(len(logits) / batch_size)
        return logits

    monkeypatch.setattr(ensemble, "predict_logits", predict_while_cancelled)
    result = run_ensemble("ens-stop", EnsembleSpec(members=["a", "b"], batch_size=2), trainer_settings, worker="test")
    assert result == StoppedRun("ens-stop", epochs_run=0)
    assert batches_run == [1]  # one batch of the first member's first split (18 images), nothing after
    assert [e.type for e in published(redis_client)] == ["run_started", "run_cancelled"]
    assert not (checkpoints.run_dir(roots["artifacts"], "ens-stop") / ENSEMBLE_FILE).exists()
