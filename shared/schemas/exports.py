"""A run's ONNX export: the card written into the model file and the report written beside it.

The card (ModelCard) travels inside the model, as the ONNX file's metadata_props
(shared/onnx_model.py writes and reads them), so a model file alone is enough to predict: what its
inputs are, how a photo becomes them, which classes its output scores. The report (ExportReport,
`export.json` in the run's export folder, names.EXPORT_REPORT) says how the export went: the
parity check that let it through (or refused it), the files and their hashes, the int8 figures.
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.images import Geometry, ResizeMode

# The card's format, written into every export; a reader refuses a newer one.
EXPORT_FORMAT: Literal[1] = 1

ExportStatus = Literal["running", "completed", "refused", "failed"]


class ExportInput(BaseModel):
    """One input of the graph: a batch of photos decoded in one geometry (shared/images.py)."""

    name: str = Field(description="the graph input's name")
    height: int = Field(description="pixels")
    width: int = Field(description="pixels")
    resize: ResizeMode = Field(
        description="squash: the whole photo stretched to height × width; letterbox: scaled to fit, aspect kept, "
        "padded with the median colour of its border; crop: scaled to cover, aspect kept, the centre cut out"
    )

    @property
    def geometry(self) -> Geometry:
        return Geometry(self.height, self.width, self.resize)


class Preprocessing(BaseModel):
    """How a photo becomes an input, as training and evaluation decoded it (shared/images.py).

    A caller decodes and resizes; the normalisation is inside the graph, which takes the pixels
    as they are.
    """

    inputs: list[ExportInput] = Field(
        description="one per input geometry: a run has one, an ensemble one per geometry among its members"
    )
    interpolation: Literal["bilinear"] = Field("bilinear", description="Pillow's bilinear resampling")
    color: Literal["RGB"] = "RGB"
    dtype: Literal["uint8"] = Field("uint8", description="pixel values 0-255 as decoded")
    layout: Literal["NCHW"] = Field("NCHW", description="batch × channel × height × width; the batch is dynamic")
    mean: float = Field(0.5, description="inside the graph: (pixel / 255 - mean) / std, every channel")
    std: float = 0.5
    output: Literal["probabilities"] = Field(
        "probabilities", description="the graph's output: batch × classes, each row summing to 1"
    )


class ModelCard(BaseModel):
    """What a Paddy ONNX file says about itself (its metadata_props, one JSON value per field)."""

    format: Literal[1] = EXPORT_FORMAT
    run_id: str
    kind: Literal["run", "ensemble"]
    members: list[str] = Field(description="an ensemble's training runs; a run's: itself")
    voting: Literal["logits", "softmax"] | None = Field(description="how an ensemble's members vote; null for a run")
    class_names: list[str] = Field(description="the output's columns, in order")
    preprocessing: Preprocessing
    opset: int = Field(description="the ONNX opset of the default domain")


class ExportFile(BaseModel):
    name: str = Field(description="file name in the run's export folder")
    sha256: str
    bytes: int


class ParityCheck(BaseModel):
    """onnxruntime against PyTorch (fp32, no autocast) on every test image of the run."""

    images: int = Field(description="test images compared")
    max_abs_diff: float = Field(description="largest difference of any probability")
    tolerance: float = Field(description="the largest difference let through")
    passed: bool


class Int8Check(BaseModel):
    """The int8 model (dynamic quantisation of the weights) against the fp32 one, both in onnxruntime."""

    images: int = Field(description="test images classified")
    fp32_accuracy: float
    int8_accuracy: float
    accuracy_change: float = Field(description="int8_accuracy - fp32_accuracy")
    max_abs_diff: float = Field(description="largest difference of any probability, int8 vs fp32")


class ExportReport(BaseModel):
    """`export.json`: one export of a run, rewritten as it goes (running, then its outcome)."""

    run_id: str
    status: ExportStatus = Field(
        description="running; completed (the files are there); refused (the parity check failed: no "
        "model file is left); failed (error says why: no model file is left)"
    )
    card: ModelCard | None = Field(
        None, description="what the model file says about itself; null until the run is loaded"
    )
    exporter: str = Field(description="what wrote the graph")
    opset: int
    files: list[ExportFile] = Field(default_factory=list, description="the model files, once completed")
    parity: ParityCheck | None = Field(None, description="null until checked")
    int8: Int8Check | None = Field(None, description="null unless a quantised model was asked for and made")
    versions: dict[str, str] = Field(default_factory=dict, description="torch, onnx, onnxruntime")
    started_at: datetime
    finished_at: datetime | None = None
    error: str | None = Field(None, description="why the export failed or was refused")


class ExportRequest(BaseModel):
    """An export asked for through the API and not started yet (kept in Redis, services/api/exports.py)."""

    requested_at: datetime
    quantize: bool


class ExportAsk(BaseModel):
    """The body of POST /jobs/{id}/export."""

    model_config = ConfigDict(extra="forbid", strict=True)

    format: Literal["onnx"] = Field("onnx", description="the one format there is")
    quantize: bool = Field(False, description="also an int8 model (dynamic quantisation), with its accuracy change")


class ExportPublic(BaseModel):
    """GET /jobs/{id}/export/status: where the run's export stands."""

    run_id: str
    status: Literal["queued", "running", "completed", "refused", "failed"]
    requested_at: datetime | None = Field(None, description="when the export waiting for a trainer was asked for")
    report: ExportReport | None = Field(None, description="the trainer's report of its latest export")
