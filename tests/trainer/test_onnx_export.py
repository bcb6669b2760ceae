"""ONNX exports of tiny real runs (CPU, 32 and 48 px, one epoch): every model family and an
ensemble, the parity check that lets them through or refuses them, the int8 copy, and the
predictions of the exported files (shared/onnx_model.py) against PyTorch's."""

import hashlib
import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from services.trainer.ensemble import EnsembleError, evaluate_ensemble
from services.trainer.lifecycle import Attempt
from services.trainer.local_run import LocalPublisher, train_locally
from services.trainer.onnx_export import OPSET, PARITY_TOLERANCE, export_run, read_report
from services.trainer.predict import predict_images
from services.trainer.settings import TrainerSettings
from shared import names
from shared.datasets.synth import synthesize_dataset
from shared.images import Geometry
from shared.onnx_model import OnnxClassifier, OnnxPredictionError
from shared.schemas.exports import ExportReport
from shared.schemas.jobs import EnsembleSpec, JobSpec

FAMILIES = ["custom_cnn", "resnet50", "vgg16", "mobilenet_v2"]
CLASSES = ["Bacterialblight", "Brownspot", "Leafsmut"]
ENSEMBLE = "ensemble"  # custom_cnn (32 px) and custom_cnn_48 voting with probabilities


def export_dir(settings: TrainerSettings, run_id: str) -> Path:
    return settings.artifacts_root / names.RUNS_DIR / run_id / names.EXPORT_DIR


def train(run_id: str, model_name: str, image_size: int, settings: TrainerSettings) -> None:
    # fp32 training (no bf16 autocast): PyTorch's predictions are then the fp32 ones an export matches.
    spec = JobSpec(
        model_name=model_name,
        dataset="tiny",
        epochs=1,
        batch_size=8,
        image_size=image_size,
        weights="none",
        split="random",
        mixed_precision=False,
    )
    train_locally(run_id, spec, settings)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> TrainerSettings:
    """A run of every family (named after it), custom_cnn_48, and their ensemble."""
    data_root, artifacts_root = tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("artifacts")
    synthesize_dataset(data_root / "tiny", per_class=8, size=48, seed=3)
    settings = TrainerSettings(data_root=data_root, artifacts_root=artifacts_root, device="cpu", heatmaps_per_run=0)
    for family in FAMILIES:
        train(family, family, 32, settings)
    train("custom_cnn_48", "custom_cnn", 48, settings)
    publisher = LocalPublisher(artifacts_root / "ensemble.jsonl", ENSEMBLE)
    evaluate_ensemble(
        EnsembleSpec(members=["custom_cnn", "custom_cnn_48"], voting="softmax"),
        settings,
        Attempt(ENSEMBLE, 1, "test", publisher),
    )
    return settings


@pytest.fixture(scope="module")
def exported(trained) -> dict[str, ExportReport]:
    """Every family and the ensemble exported; custom_cnn with its int8 copy."""
    return {run_id: export_run(run_id, trained, quantize=run_id == "custom_cnn") for run_id in [*FAMILIES, ENSEMBLE]}


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("new-images")
    synthesize_dataset(root, per_class=2, size=64, seed=11)
    return sorted(root.rglob("*.png"))


@pytest.mark.parametrize("run_id", [*FAMILIES, ENSEMBLE])
def test_every_family_and_an_ensemble_export_within_the_parity_tolerance(trained, exported, run_id):
    report = exported[run_id]
    assert report.status == "completed" and report.error is None
    assert report.parity is not None and report.parity.passed
    assert report.parity.max_abs_diff <= PARITY_TOLERANCE == report.parity.tolerance
    assert report.parity.images == len(split_test_files(trained, run_id)) > 0
    assert report.opset == OPSET and report.finished_at is not None
    assert set(report.versions) == {"torch", "onnx", "onnxruntime"}
    assert read_report(trained.artifacts_root / names.RUNS_DIR / run_id) == report
    folder = export_dir(trained, run_id)
    kept = {file.name: file for file in report.files}
    assert sorted(path.name for path in folder.iterdir()) == sorted([*kept, names.EXPORT_REPORT])
    for name, file in kept.items():
        content = (folder / name).read_bytes()
        assert (file.bytes, file.sha256) == (len(content), hashlib.sha256(content).hexdigest())
    model = onnx.load(folder / names.EXPORT_MODEL, load_external_data=False)
    assert {entry.domain: entry.version for entry in model.opset_import}[""] == OPSET
    for graph_input in model.graph.input:  # the batch axis is dynamic, the pixels uint8
        assert graph_input.type.tensor_type.elem_type == TensorProto.UINT8
        assert graph_input.type.tensor_type.shape.dim[0].dim_param


def test_the_card_in_the_file_says_how_to_feed_it(exported, trained):
    single = OnnxClassifier.load(export_dir(trained, "resnet50") / names.EXPORT_MODEL, threads=2)
    assert (single.run_id, single.class_names, single.geometries) == ("resnet50", CLASSES, [Geometry(32, 32)])
    assert single.card.kind == "run" and single.card.voting is None
    assert [item.name for item in single.card.preprocessing.inputs] == ["images"]
    both = OnnxClassifier.load(export_dir(trained, ENSEMBLE) / names.EXPORT_MODEL, threads=2)
    assert (both.card.kind, both.card.voting, both.card.members) == (
        "ensemble",
        "softmax",
        ["custom_cnn", "custom_cnn_48"],
    )
    assert [(item.name, item.geometry) for item in both.card.preprocessing.inputs] == [
        ("images_32x32_squash", Geometry(32, 32, "squash")),
        ("images_48x48_squash", Geometry(48, 48, "squash")),
    ]
    assert exported[ENSEMBLE].card == both.card
    preprocessing = both.card.preprocessing
    assert (preprocessing.interpolation, preprocessing.mean, preprocessing.std) == (
        "bilinear",
        0.5,
        0.5,
    )


@pytest.mark.parametrize("run_id", ["custom_cnn", "mobilenet_v2", ENSEMBLE])
def test_onnx_predictions_are_pytorch_s(exported, trained, images, run_id):
    classifier = OnnxClassifier.load(export_dir(trained, run_id) / names.EXPORT_MODEL, threads=2)
    sources = [*images[:3], *(path.read_bytes() for path in images[3:])]
    expected = predict_images(run_id, sources, trained)
    for batch in (sources, sources[:1]):  # any batch size
        answers = classifier.predict(batch)
        assert [class_name for class_name, _ in answers] == [p.class_name for p in expected[: len(batch)]]
        for (_, probabilities), prediction in zip(answers, expected, strict=False):
            assert list(probabilities) == CLASSES
            assert probabilities == pytest.approx(prediction.probabilities, abs=1e-4)


def test_int8_copy_reports_its_accuracy_change(exported, trained):
    report = exported["custom_cnn"]
    assert [file.name for file in report.files] == [names.EXPORT_MODEL, names.EXPORT_INT8_MODEL]
    int8 = report.int8
    assert int8 is not None and int8.images == report.parity.images
    assert 0 <= int8.fp32_accuracy <= 1 and 0 <= int8.int8_accuracy <= 1
    assert int8.accuracy_change == pytest.approx(int8.int8_accuracy - int8.fp32_accuracy)
    quantized = OnnxClassifier.load(export_dir(trained, "custom_cnn") / names.EXPORT_INT8_MODEL, threads=2)
    assert quantized.card == exported["custom_cnn"].card
    assert all(exported[run_id].int8 is None for run_id in [*FAMILIES[1:], ENSEMBLE])  # only when asked


def test_a_failed_parity_check_refuses_the_export_and_keeps_no_model(trained):
    report = export_run("custom_cnn_48", trained, quantize=True, tolerance=-1.0)
    assert report.status == "refused" and report.files == [] and report.int8 is None
    assert report.parity is not None and not report.parity.passed and report.parity.max_abs_diff >= 0
    assert "differs from PyTorch" in report.error
    folder = export_dir(trained, "custom_cnn_48")
    assert [path.name for path in folder.iterdir()] == [names.EXPORT_REPORT]  # no model, no temporary file
    assert json.loads((folder / names.EXPORT_REPORT).read_text())["status"] == "refused"


def test_an_export_that_fails_says_why(trained):
    (trained.artifacts_root / names.RUNS_DIR / "ghost").mkdir(parents=True)
    with pytest.raises(EnsembleError, match="run ghost has no checkpoint"):
        export_run("ghost", trained)
    report = read_report(trained.artifacts_root / names.RUNS_DIR / "ghost")
    assert report is not None and report.status == "failed" and "no checkpoint" in report.error
    assert [path.name for path in export_dir(trained, "ghost").iterdir()] == [names.EXPORT_REPORT]
    with pytest.raises(ValueError, match="run nowhere has no directory"):
        export_run("nowhere", trained)


def test_what_is_not_a_paddy_export_or_an_image_is_refused_by_name(exported, trained, images, tmp_path):
    plain = helper.make_model(
        helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])],
            "plain",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    onnx.save(plain, tmp_path / "plain.onnx")
    with pytest.raises(OnnxPredictionError, match="plain.onnx is not a Paddy export"):
        OnnxClassifier.load(tmp_path / "plain.onnx")
    (tmp_path / "text.onnx").write_text("not a model")
    with pytest.raises(OnnxPredictionError, match="text.onnx is not an ONNX model"):
        OnnxClassifier.load(tmp_path / "text.onnx")
    with pytest.raises(OnnxPredictionError, match="no model file at"):
        OnnxClassifier.load(tmp_path / "missing.onnx")
    classifier = OnnxClassifier.load(export_dir(trained, "custom_cnn") / names.EXPORT_MODEL, threads=2)
    broken = tmp_path / "broken.png"
    broken.write_text("not a png")
    with pytest.raises(OnnxPredictionError, match=f"cannot read image {broken}"):
        classifier.predict([images[0], broken])
    with pytest.raises(OnnxPredictionError, match=r"cannot read image 2 \(9 bytes\)"):
        classifier.predict([images[0].read_bytes(), b"not a png"])


def split_test_files(settings: TrainerSettings, run_id: str) -> list[str]:
    """The run's test images, from its test_predictions event (an ensemble's: its members')."""
    log = settings.artifacts_root / names.RUNS_DIR / ("custom_cnn" if run_id == ENSEMBLE else run_id) / "events.jsonl"
    for line in log.read_text().splitlines():
        event = json.loads(line)
        if event["type"] == "test_predictions":
            return [entry["file"] for entry in event["predictions"]]
    raise AssertionError(f"run {run_id} published no test predictions")
