"""Predictions of tiny real runs and of an ensemble of them (CPU, 32 and 48 px)."""

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from services.trainer.ensemble import evaluate_ensemble
from services.trainer.lifecycle import Attempt
from services.trainer.local_run import EVENTS_FILE, LocalPublisher, train_locally
from services.trainer.predict import PredictionError, _cached_predictor, predict_images
from services.trainer.settings import TrainerSettings
from shared import names
from shared.datasets.synth import synthesize_dataset
from shared.schemas.jobs import EnsembleSpec, JobSpec

CLASSES = ["Bacterialblight", "Brownspot", "Leafsmut"]


def train_runs(data_root: Path, artifacts_root: Path) -> TrainerSettings:
    """Runs a (32 px) and b (48 px), and the ensemble ab of both, voting with probabilities."""
    synthesize_dataset(data_root / "tiny", per_class=10, size=48, seed=3)
    settings = TrainerSettings(data_root=data_root, artifacts_root=artifacts_root, device="cpu")
    for run_id, image_size in [("a", 32), ("b", 48)]:
        spec = JobSpec(model_name="custom_cnn", dataset="tiny", epochs=1, batch_size=8, image_size=image_size)
        train_locally(run_id, spec, settings)
    publisher = LocalPublisher(artifacts_root / "ab.jsonl", "ab")
    evaluate_ensemble(EnsembleSpec(members=["a", "b"], voting="softmax"), settings, Attempt("ab", 1, "test", publisher))
    return settings


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> TrainerSettings:
    return train_runs(tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("new-images")
    synthesize_dataset(root, per_class=2, size=64, seed=11)
    return sorted(root.rglob("*.png"))


@pytest.mark.parametrize("run_id", ["a", "b", "ab"])
def test_every_image_gets_a_class_and_probabilities_summing_to_one(trained, images, run_id):
    sources = [*images[:3], *(path.read_bytes() for path in images[3:])]
    predictions = predict_images(run_id, sources, trained)
    assert len(predictions) == len(images)
    for prediction in predictions:
        assert list(prediction.probabilities) == CLASSES
        assert sum(prediction.probabilities.values()) == pytest.approx(1, abs=1e-5)
        assert all(0 <= p <= 1 for p in prediction.probabilities.values())
        assert prediction.class_name == max(prediction.probabilities, key=prediction.probabilities.get)


def test_a_softmax_ensemble_predicts_its_members_mean_probabilities(trained, images):
    member_a, member_b, ensemble = (predict_images(run_id, images, trained) for run_id in ("a", "b", "ab"))
    for a, b, both in zip(member_a, member_b, ensemble, strict=True):
        mean = {name: (a.probabilities[name] + b.probabilities[name]) / 2 for name in CLASSES}
        assert both.probabilities == pytest.approx(mean, abs=1e-6)


@pytest.mark.parametrize(("run_id", "size"), [("a", 32), ("b", 48), ("ab", 48)])
def test_a_prediction_can_show_where_the_run_looked(trained, images, run_id, size):
    plain, explained = (predict_images(run_id, images[:2], trained, heatmaps=wanted) for wanted in (False, True))
    assert [p.heatmap for p in plain] == [None, None]
    for with_map, without in zip(explained, plain, strict=True):
        assert with_map.probabilities == without.probabilities  # the map changes nothing else
        assert "heatmap" in with_map.as_dict() and "heatmap" not in without.as_dict()
        with Image.open(io.BytesIO(with_map.heatmap)) as overlay:
            assert overlay.format == "JPEG" and overlay.size == (size, size)  # an ensemble's: its largest member's


@pytest.mark.parametrize("run_id", ["a", "ab"])
def test_a_completed_run_keeps_overlays_of_its_mistakes_and_some_correct_images(trained, run_id):
    kept_dir = trained.artifacts_root / "runs" / run_id / names.HEATMAPS_DIR
    files = json.loads((kept_dir / names.HEATMAPS_INDEX).read_text())["files"]
    test_images = {e["file"] for e in kept_test_predictions(trained, run_id)}
    assert files and set(files) <= test_images
    assert len(files) == min(len(test_images), trained.heatmaps_per_run)
    for name in files.values():
        with Image.open(kept_dir / name) as overlay:
            assert overlay.format == "JPEG"


def kept_test_predictions(settings: TrainerSettings, run_id: str) -> list[dict]:
    """The test_predictions event of a run of train_runs (the ensemble's events are in ab.jsonl)."""
    log = settings.artifacts_root / ("ab.jsonl" if run_id == "ab" else f"runs/{run_id}/{EVENTS_FILE}")
    for line in log.read_text().splitlines():
        event = json.loads(line)
        if event["type"] == "test_predictions":
            return event["predictions"]
    raise AssertionError(f"run {run_id} published no test predictions")


def test_an_unreadable_image_is_refused_by_name(trained, images, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_text("not a png")
    with pytest.raises(PredictionError, match=f"cannot read image {broken}"):
        predict_images("a", [images[0], broken], trained)
    with pytest.raises(PredictionError, match=r"cannot read image 2 \(9 bytes\)"):
        predict_images("a", [images[0].read_bytes(), b"not a png"], trained)
    with pytest.raises(PredictionError, match="cannot read image .*missing.png"):
        predict_images("a", [tmp_path / "missing.png"], trained)


def test_a_run_without_checkpoint_is_refused(trained, images):
    with pytest.raises(PredictionError, match="run ghost has no checkpoint"):
        predict_images("ghost", images, trained)


def test_a_run_is_loaded_once_per_process(trained, images):
    _cached_predictor.cache_clear()
    for _ in range(3):
        predict_images("a", images[:1], trained)
    info = _cached_predictor.cache_info()
    assert (info.misses, info.hits) == (1, 2)
