"""The frozen-feature cache (services/trainer/feature_cache.py): its key, its file, and whole runs
that train a frozen backbone's head on cached features."""

import json
from pathlib import Path

import pytest
import torch

from services.trainer import checkpoints, feature_cache
from services.trainer.data import ImageTensors, SplitData, load_split_data
from services.trainer.engine import TrainSetup, batch_inputs, make_setup
from services.trainer.local_run import EVENTS_FILE, train_locally
from services.trainer.models import build_model, head_of
from services.trainer.predict import predict_images
from services.trainer.settings import TrainerSettings
from services.trainer.training import on_features
from shared.datasets.imagefolder import resolve_dataset, scan_image_folder
from shared.datasets.splits import split_dataset
from shared.datasets.synth import synthesize_dataset
from shared.schemas.jobs import DEFAULT_FEATURE_VIEWS, JobSpec

CPU = torch.device("cpu")
BASE = {
    "model_name": "mobilenet_v2",
    "dataset": "tiny",
    "weights": "none",
    "image_size": 32,
    "epochs": 2,
    "batch_size": 8,
    "split": "random",  # no dataset audit: these tests are about features, not groups
    "feature_views": 2,
}


def job(**fields) -> JobSpec:
    return JobSpec(**{**BASE, **fields})


@pytest.fixture
def settings(tmp_path) -> TrainerSettings:
    synthesize_dataset(tmp_path / "data" / "tiny", per_class=10, size=48, seed=3)
    return TrainerSettings(
        data_root=tmp_path / "data",
        artifacts_root=tmp_path / "artifacts",
        device="cpu",
        heatmaps_per_run=0,
        progress_every_batches=0,
    )


@pytest.fixture(autouse=True)
def no_features_in_memory():
    feature_cache.forget_all()
    yield
    feature_cache.forget_all()


@pytest.fixture
def computations(monkeypatch) -> list[str]:
    """The key of every feature set computed (not read from a file or memory)."""
    keys: list[str] = []
    compute = feature_cache.compute_features

    def counted(model, data, setup, views, key, should_stop=lambda: False):
        keys.append(key)
        return compute(model, data, setup, views, key, should_stop)

    monkeypatch.setattr(feature_cache, "compute_features", counted)
    return keys


def split_data(spec: JobSpec, settings: TrainerSettings) -> tuple[SplitData, str]:
    index = scan_image_folder(resolve_dataset(spec.dataset, settings.data_root), within=settings.data_root)
    split = split_dataset(spec, index, None)
    return load_split_data(index, split.positions, spec.geometry, settings.max_image_pixels), split.record.split_hash


def key_of(spec: JobSpec, settings: TrainerSettings) -> str:
    data, split_hash = split_data(spec, settings)
    return feature_cache.feature_key(spec, split_hash, data, make_setup(spec, CPU), settings.weights_root)


def cache_files(settings: TrainerSettings) -> list[Path]:
    return sorted((Path(settings.artifacts_root) / feature_cache.CACHE_DIR).glob("*.pt"))


def event_types(settings: TrainerSettings, run_id: str) -> list[str]:
    lines = (checkpoints.run_dir(settings.artifacts_root, run_id) / EVENTS_FILE).read_text().splitlines()
    return [json.loads(line)["type"] for line in lines]


@pytest.mark.parametrize(
    "head_setting",
    [{"learning_rate": 0.01}, {"dropout": 0.2}, {"dropout": None}, {"batch_size": 4}, {"epochs": 9}, {"patience": 2}],
)
def test_what_a_head_sweep_varies_keeps_the_key(settings, head_setting):
    assert key_of(job(**head_setting), settings) == key_of(job(), settings)


@pytest.mark.parametrize(
    "backbone_setting",
    [
        {"split_seed": 1},
        {"image_size": 48},
        {"feature_views": 3},
        {"augment": "flips"},
        {"seed": 7},  # random backbone weights are drawn from the seed
        {"channels_last": False},
    ],
)
def test_what_the_features_depend_on_changes_the_key(settings, backbone_setting):
    assert key_of(job(**backbone_setting), settings) != key_of(job(), settings)


def test_the_seed_leaves_the_key_of_imagenet_weights(settings):
    assert key_of(job(weights="imagenet", seed=7), settings) == key_of(job(weights="imagenet"), settings)
    assert key_of(job(weights="imagenet"), settings) != key_of(job(), settings)


def test_other_pixels_under_the_same_file_names_change_the_key(settings, tmp_path):
    before = key_of(job(), settings)
    synthesize_dataset(Path(settings.data_root) / "tiny", per_class=10, size=48, seed=4)  # same names
    assert key_of(job(), settings) != before


@pytest.mark.parametrize("model_name", ["resnet50", "vgg16", "mobilenet_v2"])
def test_the_head_on_the_features_predicts_as_the_whole_model(settings, model_name):
    spec = job(model_name=model_name)
    data, _split_hash = split_data(spec, settings)
    model = build_model(spec, 3)
    head = head_of(model)
    setup = make_setup(spec, CPU)
    features = feature_cache.compute_features(model, data, setup, 2, "0" * 64)
    assert features is not None and head_of(model) is head  # the head is back
    assert features.train.shape[:2] == (len(data.train), 2)
    model.eval()
    for images, features_of_images in [(data.val, features.val), (data.test, features.test)]:
        assert len(features_of_images) == len(images)
        with torch.inference_mode(), setup.autocast():
            whole = model(batch_inputs(images.images, setup)).float()
            on_features = head(features_of_images).float()
        torch.testing.assert_close(on_features, whole, atol=1e-3, rtol=1e-3)
    assert not torch.equal(features.train[:, 0], features.train[:, 1])  # two augmented views


def test_views_are_drawn_from_the_key(settings):
    spec = job(augment="flips", feature_views=3)
    data, _split_hash = split_data(spec, settings)
    model, setup = build_model(spec, 3), make_setup(spec, CPU)
    first = feature_cache.compute_features(model, data, setup, 3, "1" * 64)
    again = feature_cache.compute_features(model, data, setup, 3, "1" * 64)
    other = feature_cache.compute_features(model, data, setup, 3, "2" * 64)
    assert first is not None and again is not None and other is not None
    assert torch.equal(first.train, again.train) and not torch.equal(first.train, other.train)


def test_a_stop_request_ends_the_computation(settings):
    spec = job()
    data, _split_hash = split_data(spec, settings)
    model = build_model(spec, 3)
    assert feature_cache.compute_features(model, data, make_setup(spec, CPU), 2, "0" * 64, lambda: True) is None


def test_a_training_batch_takes_one_view_of_each_image():
    setup = TrainSetup(CPU, channels_last=True, autocast_dtype=None, augment=lambda x, g: x, features=True)
    views = torch.arange(5 * 3).float().view(5, 3, 1).expand(5, 3, 4)  # image i, view v: 3i + v
    picked = batch_inputs(views, setup, torch.Generator().manual_seed(0))
    assert picked.shape == (5, 4)
    assert all(int(row[0]) // 3 == i and (row == row[0]).all() for i, row in enumerate(picked))
    assert torch.equal(batch_inputs(views[:, 0], setup), views[:, 0])  # validation: as they are


def test_runs_that_share_a_key_compute_the_features_once(settings, computations):
    train_locally("a", job(), settings)
    [file] = cache_files(settings)
    written = file.stat().st_mtime_ns

    feature_cache.forget_all()  # as a new worker process: only the file is left
    head_sweep = [{"learning_rate": 3e-3}, {"dropout": 0.2, "batch_size": 4}]
    for run_id, head_setting in zip(["b", "c"], head_sweep):  # b reads the file, c has them in memory
        assert train_locally(run_id, job(**head_setting), settings).epochs_run == 2
    assert len(computations) == 1 and cache_files(settings) == [file] and file.stat().st_mtime_ns == written

    for run_id, changed in zip("def", [{"split_seed": 1}, {"image_size": 48}, {"feature_views": 3}]):
        feature_cache.forget_all()
        train_locally(run_id, job(**changed), settings)
    assert len(set(computations)) == len(computations) == 4 and len(cache_files(settings)) == 4


@pytest.mark.parametrize("damage", ["truncated", "garbage", "another_key", "fewer_views"])
def test_a_damaged_cache_file_is_computed_again(settings, computations, damage):
    train_locally("a", job(), settings)
    [file] = cache_files(settings)
    if damage == "truncated":
        file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    elif damage == "garbage":
        file.write_bytes(b"not a torch file")
    else:
        stored = torch.load(file, weights_only=True)
        if damage == "another_key":
            stored["key"] = "0" * 64
        else:
            stored["train"] = stored["train"][:, :1]
        torch.save(stored, file)
    feature_cache.forget_all()

    train_locally("b", job(), settings)
    assert len(computations) == 2 and computations[0] == computations[1]
    data, split_hash = split_data(job(), settings)
    read = feature_cache.read_features(file, computations[0], data.sizes(), 2)
    assert read is not None and read.train.shape[:2] == (len(data.train), 2)


def test_a_cached_run_completes_and_its_checkpoint_predicts_as_the_run_did(settings):
    summary = train_locally("a", job(epochs=3), settings)
    plain = train_locally("plain", job(epochs=3, feature_views=0), settings)
    assert summary.epochs_run == 3 and summary.best_epoch >= 1 and 0 <= summary.test_accuracy <= 1
    # Every event as without the cache (only how many epochs were also the best may differ).
    assert [t for t in event_types(settings, "a") if t != "checkpoint_saved"] == [
        t for t in event_types(settings, "plain") if t != "checkpoint_saved"
    ]
    assert plain.split_hash == summary.split_hash

    run_dir = checkpoints.run_dir(settings.artifacts_root, "a")
    lines = (run_dir / EVENTS_FILE).read_text().splitlines()
    [predicted] = [json.loads(line) for line in lines if json.loads(line)["type"] == "test_predictions"]
    assert len(predicted["predictions"]) == len(split_data(job(), settings)[0].test)
    best = checkpoints.load_checkpoint(run_dir / checkpoints.BEST)
    assert best["epoch"] >= 1 and JobSpec(**best["spec"]).feature_views == 2
    sources = [Path(settings.data_root) / "tiny" / p["file"] for p in predicted["predictions"]]
    for prediction, again in zip(predicted["predictions"], predict_images("a", sources, settings)):
        assert list(again.probabilities.values()) == pytest.approx(prediction["probabilities"], abs=2e-3)


def test_feature_views_need_a_frozen_backbone():
    with pytest.raises(ValueError, match="feature_views"):
        JobSpec(model_name="custom_cnn", dataset="tiny", feature_views=4)
    with pytest.raises(ValueError, match="needs a frozen backbone"):
        job(trainable_layers=1)
    with pytest.raises(ValueError, match="use 1"):
        job(augment="none")
    assert job(augment="none", feature_views=1).feature_views == 1


def test_a_frozen_backbone_caches_four_views_by_default():
    def views(**fields) -> int | None:
        return JobSpec(**{"model_name": "mobilenet_v2", "dataset": "tiny", **fields}).feature_views

    assert views() == views(model_name="resnet50") == views(model_name="vgg16") == DEFAULT_FEATURE_VIEWS == 4
    assert views(augment="none") == 1  # one image, one view
    # A backbone that trains, or none to freeze: nothing to cache.
    assert views(feature_extraction=False) == views(trainable_layers=1) == views(model_name="custom_cnn") == 0
    assert views(feature_views=0) == 0  # asked for without the cache


def test_features_replace_the_images(settings):
    data, _split_hash = split_data(job(), settings)
    features = feature_cache.Features(
        "k", torch.zeros(len(data.train), 2, 8), torch.zeros(len(data.val), 8), torch.ones(len(data.test), 8)
    )
    on = on_features(data, features)
    assert isinstance(on.train, ImageTensors) and on.train.images.shape == (len(data.train), 2, 8)
    assert torch.equal(on.val.labels, data.val.labels) and torch.equal(on.test.labels, data.test.labels)
    assert on.test.images.shape == (len(data.test), 8) and on.test.positions == data.test.positions
