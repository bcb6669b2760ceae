"""Batch predictions: the manifest POST /batches writes with a batch, its progress, and what the
API answers about it (shared/batches.py keeps the files and the progress)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

# expired: its progress left Redis (names.BATCH_TTL_S) before its CSV was written.
BatchState = Literal["queued", "running", "done", "failed", "expired"]
FINISHED_BATCH_STATES = frozenset({"done", "failed", "expired"})
# Files a batch left out, listed by name with the reason; past this many only counted.
MAX_SKIPPED_LISTED = 50


class BatchSource(BaseModel):
    kind: Literal["zip", "folder"]
    name: str = Field(description="zip: the uploaded file's name; folder: the folder, relative to the data root")


class BatchManifest(BaseModel):
    """`batch.json`: written once by the API before the first chunk is queued; the predictors
    take the files to classify, and how many a message, from it."""

    batch_id: str
    run_id: str
    source: BatchSource
    files: list[str] = Field(description="relative to the batch's image root, sorted: the CSV's row order")
    chunk_images: int = Field(ge=1, description="images classified per Celery message")
    skipped: dict[str, str] = Field(default_factory=dict, description="file → why it was left out")
    skipped_count: int = 0
    created_at: datetime

    @property
    def chunks(self) -> int:
        return -(-len(self.files) // self.chunk_images)

    def chunk_files(self, chunk: int) -> list[str]:
        return self.files[chunk * self.chunk_images : (chunk + 1) * self.chunk_images]


class BatchProgress(BaseModel):
    """A batch's progress as Redis keeps it (names.BATCH_KEY)."""

    state: BatchState
    done: int = Field(description="images classified (or found unreadable) so far")
    total: int
    failed_images: int | None = Field(None, description="images that could not be read; known once done")
    error: str | None = Field(None, description="why the batch failed")


class BatchCreated(BaseModel):
    batch_id: str
    run_id: str
    images: int = Field(description="images queued for classification")
    skipped: dict[str, str] = Field(description="files left out (not a JPEG, PNG or WebP) → why")
    skipped_count: int = Field(description="all files left out; `skipped` lists the first ones")


class BatchPublic(BatchProgress):
    """GET /batches/{batch_id}: a batch and how far it got."""

    batch_id: str
    run_id: str
    source: BatchSource
    created_at: datetime
    skipped: dict[str, str]
    skipped_count: int


class BatchImage(BaseModel):
    """One image of a batch as the gallery shows it; an unreadable one has `error` instead."""

    file: str = Field(description="as the zip or the folder names it; its thumbnail: GET /batches/{id}/images/{file}")
    predicted_class: str | None
    confidence: float | None = Field(description="the probability of the predicted class")
    probabilities: list[float] | None = Field(description="in `class_names` order, summing to 1")
    error: str | None = None


class BatchPredictionsPublic(BaseModel):
    """The images of a batch classified so far (GET /batches/{batch_id}/predictions), filtered and paged."""

    batch_id: str
    run_id: str
    state: BatchState
    class_names: list[str]
    total: int = Field(description="images classified so far")
    count: int = Field(description="images that match the filters (data holds one page of them)")
    data: list[BatchImage]


class BatchPart(BaseModel):
    """`parts/<chunk>.json`: one chunk's predictions, in the manifest's file order."""

    chunk: int
    class_names: list[str]
    rows: list[BatchImage]
