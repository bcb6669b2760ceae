"""A completed run — a training run or an ensemble — exported to ONNX, checked against PyTorch.

The graph takes the photos as shared/images.py decodes them (uint8 N×3×H×W, one input per image
size: an ensemble whose members differ in size has several) and answers the probabilities of
every class: the normalisation of engine.prepare_inputs (without augmentation) and an ensemble's
vote (ensemble.combine_logits, then softmax) are inside it. The card (shared/schemas/exports.py)
is written into the file's metadata, so the file alone is enough to predict (shared/onnx_model.py).

Written with torch.onnx.export's dynamo exporter (torch.export, then onnxscript) at opset OPSET,
the batch axis dynamic. Before a model file is kept, onnxruntime's probabilities on every test
image of the run must be within PARITY_TOLERANCE of PyTorch's (fp32, no autocast), else the
export is refused and no model file is left. With quantize, an int8 copy (onnxruntime's dynamic
quantisation of the weights) is made too, with its accuracy change on the test split.

Everything is written in the run's export folder (names.EXPORT_DIR): model files to a temporary
name, renamed once checked; `export.json` (ExportReport) rewritten as the export goes.
"""

import hashlib
import logging
import os
import uuid
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from services.trainer import checkpoints
from services.trainer.data import ImageTensors, decode_positions
from services.trainer.engine import predict_logits, tta_logits
from services.trainer.ensemble import (
    EnsembleError,
    Member,
    check_compatible,
    combine_logits,
    load_member,
    read_manifest,
    shared_split,
)
from services.trainer.settings import TrainerSettings
from shared import names
from shared.images import Geometry
from shared.onnx_model import OnnxClassifier, card_metadata
from shared.schemas.events import utc_now
from shared.schemas.exports import (
    ExportFile,
    ExportInput,
    ExportReport,
    Int8Check,
    ModelCard,
    ParityCheck,
    Preprocessing,
)

# Opset 18: the one torch's ONNX function library is written in, so the exporter needs no
# version conversion (its default, 20, is converted from 18); onnxruntime runs it since 1.14.
OPSET = 18
# Largest difference of any probability, onnxruntime vs PyTorch in fp32, that an export may have.
PARITY_TOLERANCE = 1e-4
EXPORTER = f"torch.onnx.export (dynamo), torch {torch.__version__}"
# As engine.prepare_inputs: pixels / 255, then (x - MEAN) / STD.
MEAN, STD = 0.5, 0.5
# Images per PyTorch forward pass in the parity check.
BATCH_SIZE = 32

log = logging.getLogger(__name__)


@dataclass
class LoadedRun:
    """What an export needs of a run: its members on the CPU and how they vote."""

    card: ModelCard
    members: list[Member]


class ProbabilityGraph(nn.Module):
    """uint8 photos in (one batch per input geometry, in the card's input order), probabilities
    out; members with test-time augmentation average over their views inside the graph."""

    def __init__(self, members: list[Member], voting: str | None, geometries: list[Geometry]):
        super().__init__()
        self.models = nn.ModuleList(member.model for member in members)
        self.slots = [geometries.index(member.spec.geometry) for member in members]
        self.tta = [member.spec.tta for member in members]
        self.voting = voting

    def forward(self, *images: torch.Tensor) -> torch.Tensor:
        logits = []
        for model, slot, tta in zip(self.models, self.slots, self.tta, strict=True):
            inputs = images[slot].float().div(255).sub(MEAN).div(STD)
            logits.append(tta_logits(model, inputs) if tta else model(inputs))
        combined = logits[0] if self.voting is None else combine_logits(logits, self.voting)
        return combined.softmax(1)


def export_run(
    run_id: str, settings: TrainerSettings, quantize: bool = False, tolerance: float = PARITY_TOLERANCE
) -> ExportReport:
    """Export run_id into its export folder and return the report (also in export.json there).

    A refused export (parity over tolerance) is a report, not an error; anything else that goes
    wrong is recorded as `failed` in the report and raised. Either way no model file is left.
    """
    run_dir = checkpoints.run_dir(settings.artifacts_root, run_id)
    if not run_dir.is_dir():
        raise ValueError(f"run {run_id} has no directory in {settings.artifacts_root}: is it completed?")
    folder = run_dir / names.EXPORT_DIR
    folder.mkdir(exist_ok=True)
    report = ExportReport(
        run_id=run_id,
        status="running",
        exporter=EXPORTER,
        opset=OPSET,
        versions=_versions(),
        started_at=utc_now(),
    )
    # A new export replaces the last one: the report never lists files that are not this export's.
    _remove_models(folder)
    write_report(folder, report)
    written: list[Path] = []
    try:
        loaded = load_run(run_id, settings)
        report.card = loaded.card
        write_report(folder, report)
        test, labels = test_images(loaded, settings)
        fp32 = _temporary(folder, names.EXPORT_MODEL, written)
        write_onnx(loaded, fp32)
        classifier = OnnxClassifier.load(fp32, threads=torch.get_num_threads())
        onnx_probabilities = classifier.probabilities(test)
        difference = float(np.abs(onnx_probabilities - torch_probabilities(loaded, test)).max())
        report.parity = ParityCheck(
            images=len(labels), max_abs_diff=difference, tolerance=tolerance, passed=difference <= tolerance
        )
        if not report.parity.passed:
            report.status = "refused"
            report.error = (
                f"onnxruntime differs from PyTorch by {difference:.3g} on the test images (tolerance {tolerance:g})"
            )
            return _finish(folder, report)
        kept = {names.EXPORT_MODEL: fp32}
        if quantize:
            int8 = _temporary(folder, names.EXPORT_INT8_MODEL, written)
            report.int8 = quantize_model(fp32, int8, test, labels, onnx_probabilities)
            kept[names.EXPORT_INT8_MODEL] = int8
        for name, path in kept.items():
            os.replace(path, folder / name)
        report.files = [file_entry(folder / name) for name in kept]
        report.status = "completed"
        return _finish(folder, report)
    except Exception as error:
        report.status, report.error = "failed", f"{type(error).__name__}: {error}"
        _finish(folder, report)
        raise
    finally:
        for path in written:
            path.unlink(missing_ok=True)


def load_run(run_id: str, settings: TrainerSettings) -> LoadedRun:
    """The run's members on the CPU (a training run is its own one member) and its card."""
    cpu = torch.device("cpu")
    manifest = read_manifest(checkpoints.run_dir(settings.artifacts_root, run_id))
    if manifest is None:
        members = [load_member(run_id, settings.artifacts_root, cpu)]
        voting, class_names = None, members[0].class_names
    else:
        members = [load_member(member, settings.artifacts_root, cpu) for member in manifest["members"]]
        check_compatible(members)
        voting, class_names = manifest["voting"], manifest["class_names"]
    for member in members:
        member.model = member.model.to(memory_format=torch.contiguous_format).eval()
        for module in member.model.modules():
            # In-place activations make torch.export's decompositions slow (mobilenet_v2's export
            # takes twice as long); computed out of place, the results are the same.
            if getattr(module, "inplace", False) is True:
                module.inplace = False
        member.setup = replace(member.setup, autocast_dtype=None, channels_last=False)  # fp32, as exported
    geometries = sorted({member.spec.geometry for member in members})
    inputs = [
        ExportInput(
            name="images" if len(geometries) == 1 else f"images_{g.height}x{g.width}_{g.resize}",
            height=g.height,
            width=g.width,
            resize=g.resize,
        )
        for g in geometries
    ]
    card = ModelCard(
        run_id=run_id,
        kind="run" if manifest is None else "ensemble",
        members=[member.run_id for member in members],
        voting=voting,
        class_names=class_names,
        preprocessing=Preprocessing(inputs=inputs, mean=MEAN, std=STD),
        opset=OPSET,
    )
    return LoadedRun(card, members)


def test_images(loaded: LoadedRun, settings: TrainerSettings) -> tuple[dict[Geometry, np.ndarray], np.ndarray]:
    """The run's test split decoded in each of its input geometries (uint8 N×3×H×W), and the labels."""
    index, split = shared_split(loaded.members[0], settings, _NoEvents(loaded.card.run_id))
    positions = split.positions["test"]
    decoded: dict[Geometry, ImageTensors] = {}
    for item in loaded.card.preprocessing.inputs:
        decoded[item.geometry], _skipped = decode_positions(index, positions, item.geometry, settings.max_image_pixels)
    first = next(iter(decoded.values()))
    if any(data.positions != first.positions for data in decoded.values()):
        raise EnsembleError(
            "some test images are unreadable in one input geometry only: the members would see different images"
        )
    if len(first) == 0:
        raise EnsembleError(f"run {loaded.card.run_id}: no readable images in its test split")
    return {geometry: data.images.numpy() for geometry, data in decoded.items()}, first.labels.numpy()


def torch_probabilities(loaded: LoadedRun, test: dict[Geometry, np.ndarray]) -> np.ndarray:
    """PyTorch's probabilities as services/trainer/predict.py computes them, in fp32."""
    logits = []
    for member in loaded.members:
        pixels = torch.from_numpy(test[member.spec.geometry])
        data = ImageTensors(pixels, torch.zeros(len(pixels), dtype=torch.int64))
        logits.append(predict_logits(member.model, data, member.setup, BATCH_SIZE))
    combined = logits[0] if loaded.card.voting is None else combine_logits(logits, loaded.card.voting)
    return combined.double().softmax(1).numpy()


def write_onnx(loaded: LoadedRun, path: Path) -> None:
    """The run's ProbabilityGraph as one ONNX file (no external data) with the card in its metadata."""
    inputs = loaded.card.preprocessing.inputs
    geometries = [item.geometry for item in inputs]
    graph = ProbabilityGraph(loaded.members, loaded.card.voting, geometries).eval()
    # Two photos: torch.export would take a batch of 1 for a constant.
    example = tuple(torch.zeros(2, 3, g.height, g.width, dtype=torch.uint8) for g in geometries)
    batch = torch.export.Dim("batch")
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals
        program = torch.onnx.export(
            graph,
            example,
            input_names=[item.name for item in inputs],
            output_names=["probabilities"],
            opset_version=OPSET,
            dynamo=True,
            dynamic_shapes=(tuple({0: batch} for _ in geometries),),
            external_data=False,
            verbose=False,
        )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    program.model.metadata_props.update(card_metadata(loaded.card))
    program.save(str(path), external_data=False)


def quantize_model(
    fp32: Path, int8: Path, test: dict[Geometry, np.ndarray], labels: np.ndarray, fp32_probabilities: np.ndarray
) -> Int8Check:
    """int8 weights (onnxruntime's dynamic quantisation) into int8, and how it does on the test split."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # int8 weights, uint8 activations quantised on the fly: onnxruntime's default for dynamic quantisation.
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    int8_probabilities = OnnxClassifier.load(int8, threads=torch.get_num_threads()).probabilities(test)
    fp32_accuracy = float((fp32_probabilities.argmax(1) == labels).mean())
    int8_accuracy = float((int8_probabilities.argmax(1) == labels).mean())
    return Int8Check(
        images=len(labels),
        fp32_accuracy=fp32_accuracy,
        int8_accuracy=int8_accuracy,
        accuracy_change=int8_accuracy - fp32_accuracy,
        max_abs_diff=float(np.abs(int8_probabilities - fp32_probabilities).max()),
    )


def read_report(run_dir: Path) -> ExportReport | None:
    path = run_dir / names.EXPORT_DIR / names.EXPORT_REPORT
    return ExportReport.model_validate_json(path.read_text()) if path.is_file() else None


def write_report(folder: Path, report: ExportReport) -> None:
    partial = folder / f"{names.EXPORT_REPORT}.{uuid.uuid4().hex}.partial"
    partial.write_text(report.model_dump_json(indent=2))
    os.replace(partial, folder / names.EXPORT_REPORT)


def file_entry(path: Path) -> ExportFile:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return ExportFile(name=path.name, sha256=digest.hexdigest(), bytes=path.stat().st_size)


def _finish(folder: Path, report: ExportReport) -> ExportReport:
    if report.status != "completed":
        _remove_models(folder)
    report.finished_at = utc_now()
    write_report(folder, report)
    log.info("export of run %s: %s%s", report.run_id, report.status, f" ({report.error})" if report.error else "")
    return report


def _remove_models(folder: Path) -> None:
    for name in (names.EXPORT_MODEL, names.EXPORT_INT8_MODEL):
        (folder / name).unlink(missing_ok=True)


def _temporary(folder: Path, name: str, written: list[Path]) -> Path:
    """A unique temporary name for a file to be renamed to name (two exports never share one)."""
    path = folder / f"{name}.{uuid.uuid4().hex}.partial"
    written.append(path)
    return path


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


class _NoEvents:
    """The Publisher shared_split asks for: an export is no run attempt and publishes nothing. (A
    dataset audited to rebuild a grouped split is still cached for every later run.)"""

    def __init__(self, run_id: str):
        self.run_id = run_id

    def publish(self, event_type: type, **fields) -> None:
        log.debug("export of run %s: %s not published", self.run_id, event_type.__name__)

    def close(self) -> bool:
        return True
