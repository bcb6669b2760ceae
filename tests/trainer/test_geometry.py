"""Input geometries end to end on whole-leaf strips: each resize mode and a non-square size is
trained, evaluated, predicted, voted in an ensemble and exported with the same preprocessing
(CPU, tiny runs)."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from services.trainer.ensemble import evaluate_ensemble
from services.trainer.lifecycle import Attempt
from services.trainer.local_run import EVENTS_FILE, LocalPublisher, train_locally
from services.trainer.onnx_export import export_run
from services.trainer.predict import predict_images
from services.trainer.settings import TrainerSettings
from shared.datasets.synth import synthesize_dataset
from shared.images import Geometry, decode_image
from shared.onnx_model import OnnxClassifier
from shared.schemas.jobs import EnsembleSpec, JobSpec

# run id → (image_size, resize, test-time augmentation)
RUNS = {
    "letterbox": ([32, 96], "letterbox", False),
    "crop": (32, "crop", True),
    "squash": ([40, 64], "squash", False),
}


def photo(width: int, height: int) -> Image.Image:
    """A white page with a dark green band across its middle third and a red dot at the centre."""
    pixels = np.full((height, width, 3), 255, np.uint8)
    pixels[height // 3 : 2 * height // 3] = (20, 100, 20)
    pixels[height // 2 - 1 : height // 2 + 1, width // 2 - 1 : width // 2 + 1] = (220, 0, 0)
    return Image.fromarray(pixels)


def as_png(image: Image.Image) -> io.BytesIO:
    stream = io.BytesIO()
    image.save(stream, format="PNG")
    stream.seek(0)
    return stream


def test_each_resize_mode_gives_the_geometry_it_names():
    strip = photo(300, 100)
    for mode in ("squash", "letterbox", "crop"):
        pixels = decode_image(as_png(strip), Geometry(32, 64, mode), 10**6)
        assert pixels.shape == (32, 64, 3) and pixels.dtype == np.uint8, mode
    # letterbox: the whole strip at 3:1 (64 × 21) centred, the rest white like the page's border
    boxed = decode_image(as_png(strip), Geometry(32, 64, "letterbox"), 10**6)
    assert (boxed[:5] == 255).all() and (boxed[-5:] == 255).all()
    assert boxed[16, 0].tolist() == pytest.approx([20, 100, 20], abs=25)  # the band reaches both ends
    # crop: scaled to cover 32 × 64 (96 × 32), the centre 64 columns kept: the band fills the middle
    cut = decode_image(as_png(strip), Geometry(32, 64, "crop"), 10**6)
    assert cut[16, 0].tolist() == pytest.approx([20, 100, 20], abs=25) and (cut[0] == 255).all()
    # squash: the band stretched to the middle third of 32 rows
    squashed = decode_image(as_png(strip), Geometry(32, 64, "squash"), 10**6)
    assert squashed[16, 32].tolist() != [255, 255, 255] and (squashed[2] == 255).all()


def test_a_tall_photo_letterboxed_is_padded_left_and_right():
    tall = decode_image(as_png(photo(50, 200)), Geometry(64, 64, "letterbox"), 10**6)
    assert (tall[:, :10] == 255).all() and (tall[:, -10:] == 255).all()  # 16 × 64 photo in the middle


def test_image_size_is_a_square_or_height_and_width():
    assert JobSpec(model_name="custom_cnn", dataset="x", image_size=[96, 320]).geometry == Geometry(96, 320)
    assert JobSpec(model_name="custom_cnn", dataset="x", image_size=64, resize="crop").geometry == Geometry(
        64, 64, "crop"
    )
    for bad in ([96], [96, 320, 3], [16, 320], [96, 5000], ["96", 320]):
        with pytest.raises(ValueError):
            JobSpec(model_name="custom_cnn", dataset="x", image_size=bad)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> TrainerSettings:
    data_root, artifacts_root = tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("artifacts")
    synthesize_dataset(data_root / "strips", per_class=8, size=32, seed=4, shape="strip")
    settings = TrainerSettings(data_root=data_root, artifacts_root=artifacts_root, device="cpu", heatmaps_per_run=2)
    for run_id, (image_size, resize, tta) in RUNS.items():
        spec = JobSpec(
            model_name="custom_cnn",
            dataset="strips",
            epochs=1,
            batch_size=8,
            image_size=image_size,
            resize=resize,
            tta=tta,
            augment="crops",
            mixed_precision=False,  # fp32 like the ONNX export, held to 1e-4 of it below
        )
        train_locally(run_id, spec, settings)
    publisher = LocalPublisher(artifacts_root / "both.jsonl", "both")
    members = EnsembleSpec(members=["letterbox", "crop"], voting="softmax")
    evaluate_ensemble(members, settings, Attempt("both", 1, "test", publisher))
    return settings


def events_of(settings: TrainerSettings, run_id: str) -> dict[str, dict]:
    log = settings.artifacts_root / ("both.jsonl" if run_id == "both" else f"runs/{run_id}/{EVENTS_FILE}")
    return {event["type"]: event for event in map(json.loads, log.read_text().splitlines())}


@pytest.mark.parametrize("run_id", [*RUNS, "both"])
def test_predictions_repeat_the_test_evaluation_image_for_image(trained, run_id):
    """The photos a run was tested on, predicted again: the same probabilities, so training,
    evaluation, prediction and ensembles decode every geometry alike."""
    kept = events_of(trained, run_id)["test_predictions"]["predictions"]
    files = [trained.data_root / "strips" / entry["file"] for entry in kept]
    predicted = predict_images(run_id, files, trained)
    for entry, prediction in zip(kept, predicted, strict=True):
        assert list(prediction.probabilities.values()) == pytest.approx(entry["probabilities"], abs=1e-3)


@pytest.mark.parametrize("run_id", list(RUNS))
def test_the_summary_keeps_the_geometry(trained, run_id):
    image_size, resize, tta = RUNS[run_id]
    summary = events_of(trained, run_id)["run_completed"]["summary"]
    assert summary["image_size"] == image_size
    assert (summary["spec"]["resize"], summary["spec"]["tta"]) == (resize, tta)


def test_an_overlay_comes_in_the_runs_geometry(trained):
    files = sorted((trained.data_root / "strips").rglob("*.png"))[:1]
    [prediction] = predict_images("letterbox", files, trained, heatmaps=True)
    with Image.open(io.BytesIO(prediction.heatmap)) as overlay:
        assert overlay.size == (96, 32)  # width × height


def test_an_ensemble_of_two_geometries_with_tta_exports_within_parity(trained):
    report = export_run("both", trained)
    assert report.status == "completed", report.error
    assert report.parity is not None and report.parity.passed and report.parity.max_abs_diff <= 1e-4
    model = OnnxClassifier.load(Path(trained.artifacts_root) / "runs" / "both" / "export" / "model.onnx", threads=1)
    assert sorted(model.geometries) == [Geometry(32, 32, "crop"), Geometry(32, 96, "letterbox")]
    files = sorted((trained.data_root / "strips").rglob("*.png"))[:3]
    onnx = model.predict(files)
    torch_predictions = predict_images("both", files, trained)
    for (name, probabilities), expected in zip(onnx, torch_predictions, strict=True):
        assert name == expected.class_name
        assert list(probabilities.values()) == pytest.approx(list(expected.probabilities.values()), abs=1e-4)
