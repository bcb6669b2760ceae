"""The dashboard's tests: runs published as a trainer would publish them, and what AppTest
shows of a page."""

import base64
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import redis
from streamlit.testing.v1 import AppTest

from shared import names
from shared.schemas.events import (
    SEQ_PER_ATTEMPT,
    CheckpointSaved,
    EpochFinished,
    EpochProgress,
    EpochStarted,
    EvaluationFinished,
    RunCompleted,
    RunFailed,
    RunStarted,
    TestPredictions,
    TrainingSummary,
    encode_event,
)
from shared.schemas.splits import SplitRecord
from tests.utils.events import image_predictions

APP = Path(__file__).resolve().parents[2] / "services" / "dashboard" / "app.py"
CLASSES = ["Bacterialblight", "Brownspot", "Leafsmut"]
API_KEY = "dashboard-test-key"
# The stack's API: development mode accepts a test key; predictions without a trainer give up fast.
STACK_ENV = {
    "PADDY_API_KEY": API_KEY,
    "PADDY_ENVIRONMENT": "development",
    "PADDY_PREDICT_TIMEOUT_S": "2",
    # The recorded running run has no trainer behind it: the reaper must not mark it lost while
    # the session's tests run (the visibility timeout outlasts the heartbeat timeout: LivenessSettings).
    "PADDY_HEARTBEAT_TIMEOUT_S": "3600",
    "PADDY_VISIBILITY_TIMEOUT_S": "7200",
}
# The completed run's test split: 15 images per class, the stack's `tiny` dataset.
TEST_IMAGES = 45
TINY_PER_CLASS = 15
CONFUSION = [[14, 1, 0], [2, 12, 1], [0, 1, 14]]
PER_CLASS = {
    "Bacterialblight": {"precision": 14 / 16, "recall": 14 / 15, "f1": 0.9032, "support": 15},
    "Brownspot": {"precision": 12 / 14, "recall": 12 / 15, "f1": 0.8276, "support": 15},
    "Leafsmut": {"precision": 14 / 15, "recall": 14 / 15, "f1": 0.9333, "support": 15},
}


def tiny_file(i: int) -> str:
    """The i-th test image of the stack's `tiny` dataset (TINY_PER_CLASS of each class), as
    image_predictions orders them: class i mod 3."""
    return f"{CLASSES[i % 3]}/{i // 3 % TINY_PER_CLASS:04d}.png"


def utc(moment: datetime) -> datetime:
    """MongoDB keeps milliseconds: a time with more would not round-trip."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def epoch_metrics(epoch: int) -> dict[str, float]:
    """Plausible curves: losses fall and accuracies rise with the epoch."""
    return {
        "train_loss": 1.2 / epoch,
        "val_loss": 1.3 / epoch,
        "train_acc": 1 - 0.4 / epoch,
        "val_acc": 1 - 0.5 / epoch,
        "epoch_time_sec": 12.5,
    }


@dataclass
class RunPublisher:
    """Publishes one run's events as a trainer would: attempt 1, seq growing per event."""

    client: redis.Redis
    model_name: str = "custom_cnn"
    version: str = "v1"
    epochs: int = 5
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    seq: int = SEQ_PER_ATTEMPT
    started_at: datetime | None = None
    # Spec fields other than the defaults below, e.g. a sweep's learning rate.
    spec: dict = field(default_factory=dict)
    # Runs with equal split hashes were tested on the same images (and pair in GET /compare).
    split_hash: str = "split-tiny"

    def publish(self, event_type, at: datetime | None = None, **fields) -> None:
        self.seq += 1
        event = event_type(run_id=self.run_id, seq=self.seq, time=utc(at or datetime.now(UTC)), **fields)
        self.client.xadd(names.EVENTS_STREAM, encode_event(event))

    def start(self, at: datetime | None = None) -> "RunPublisher":
        self.started_at = utc(at or datetime.now(UTC))
        spec = {
            "model_name": self.model_name,
            "dataset": "tiny",
            "epochs": self.epochs,
            "patience": 10,
            "batch_size": 32,
            "learning_rate": 0.001,
            "dropout": 0.5,
            "image_size": 64,
            "version": self.version,
            **self.spec,
        }
        self.publish(
            RunStarted,
            at=self.started_at,
            spec=spec,
            attempt=1,
            worker="trainer-1@test",
            device="cpu",
            epochs_planned=self.epochs,
            class_names=CLASSES,
            split_sizes={"train": 210, "val": 45, "test": TEST_IMAGES},
            split=self.split_record(),
        )
        return self

    def split_record(self) -> SplitRecord:
        """How a trainer of today records the split: grouped unless spec asks for random."""
        method = self.spec.get("split", "grouped")
        return SplitRecord(
            method=method,
            split_seed=self.spec.get("split_seed", 0),
            group_source="images" if method == "grouped" else None,
            groups=300 if method == "grouped" else None,
            folds=self.spec.get("folds"),
            fold=self.spec.get("fold"),
            split_hash=self.split_hash,
        )

    def epoch(self, epoch: int, finish: bool = True) -> "RunPublisher":
        self.publish(EpochStarted, epoch=epoch)
        if finish:
            self.publish(EpochFinished, epoch=epoch, **epoch_metrics(epoch))
        return self

    def progress(self, epoch: int, batch: int, batches: int, images_per_sec: float = 250.0) -> "RunPublisher":
        self.publish(
            EpochProgress,
            epoch=epoch,
            batch=batch,
            batches=batches,
            running_loss=0.5,
            running_acc=0.8,
            images_per_sec=images_per_sec,
        )
        return self

    def checkpoint(self, epoch: int) -> "RunPublisher":
        self.publish(CheckpointSaved, epoch=epoch, kind="best", path=f"{self.run_id}/best.pt")
        return self

    def fail(self, error_type: str, message: str) -> "RunPublisher":
        self.publish(RunFailed, error_type=error_type, message=message, traceback_tail="...")
        return self

    def predictions(self, right: Sequence[bool]) -> "RunPublisher":
        """test_predictions: image i (of class i mod 3) predicted right where right[i] says."""
        self.publish(
            TestPredictions,
            split_hash=self.split_hash,
            class_names=CLASSES,
            predictions=image_predictions(right, CLASSES, [tiny_file(i) for i in range(len(right))]),
        )
        return self

    def complete(
        self, epochs_run: int, test_accuracy: float = 0.87, right: Sequence[bool] | None = None
    ) -> "RunPublisher":
        """A finished run, evaluated and its test predictions kept, as a trainer ends one; its
        curves end where epoch_metrics(epochs_run) puts them.

        right: which test images it got right (its accuracy then sets test_accuracy); by default
        the first round(test_accuracy × 45) of them.
        """
        if right is None:
            correct = round(test_accuracy * TEST_IMAGES)
            right = [True] * correct + [False] * (TEST_IMAGES - correct)
        else:
            test_accuracy = sum(right) / len(right)
        self.publish(EvaluationFinished, accuracy=test_accuracy, loss=0.41, f1_macro=0.888, images=len(right))
        self.predictions(right)
        last = epoch_metrics(epochs_run)
        summary = TrainingSummary(
            run_id=self.run_id,
            model_name=self.model_name,
            version=self.version,
            num_classes=3,
            dropout=0.5,
            feature_extraction=False,
            batch_size=32,
            learning_rate=self.spec.get("learning_rate", 0.001),
            early_stopped=epochs_run < self.epochs,
            epochs_run=epochs_run,
            train_accuracy=last["train_acc"],
            val_accuracy=last["val_acc"],
            test_accuracy=test_accuracy,
            best_val_loss=last["val_loss"],
            duration_minutes=1.5,
            start_time=self.started_at,
            end_time=utc(datetime.now(UTC)),
            test_loss=0.41,
            class_names=CLASSES,
            dataset="tiny",
            image_size=64,
            seed=42,
            test_f1_macro=0.888,
            confusion_matrix=CONFUSION,
            per_class=PER_CLASS,
            best_epoch=epochs_run,
            split_hash=self.split_hash,
        )
        self.publish(RunCompleted, summary=summary)
        return self


def wait_until_shown(api: httpx.Client, check: Callable[[httpx.Client], bool], timeout_s: float = 20) -> None:
    """Until the recorder has stored what was published and the API shows it."""
    deadline = time.monotonic() + timeout_s
    while not check(api):
        if time.monotonic() > deadline:
            raise AssertionError(f"the API did not show the published events within {timeout_s} s")
        time.sleep(0.1)


def statuses(api: httpx.Client) -> dict[str, str]:
    return {run["run_id"]: run["status"] for run in api.get("/jobs", params={"limit": 500}).json()["data"]}


def page(path: str, query_params: dict[str, str] | None = None) -> AppTest:
    """One page of the dashboard, through app.py's navigation, run once without an exception."""
    app = AppTest.from_file(str(APP), default_timeout=30)
    app.switch_page(path)
    for name, value in (query_params or {}).items():
        app.query_params[name] = value
    app.run()
    assert not app.exception, app.exception
    return app


def plotly_figures(app: AppTest) -> dict[str, dict]:
    """The page's Plotly figures by title, as the browser receives them."""
    figures = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
    return {figure["layout"]["title"]["text"]: figure for figure in figures}


def trace_values(array) -> list:
    """A trace's x or y: plotly sends numeric arrays as base64 {"dtype", "bdata"}."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def axis_titles(figure: dict) -> tuple[str, str]:
    layout = figure["layout"]
    return layout["xaxis"]["title"]["text"], layout["yaxis"]["title"]["text"]


def table_with(app: AppTest, column: str, without: str | None = None) -> pd.DataFrame:
    """The page's first table that has this column, and not the other (AppTest does not expose a
    table's key)."""
    for table in app.dataframe:
        frame = table.value
        if column in frame.columns and without not in frame.columns:
            return frame
    raise AssertionError(f"no table with a {column!r} column; tables: {[list(t.value.columns) for t in app.dataframe]}")


def links(app: AppTest) -> dict[str, str]:
    """The page's links to other pages: label → query string."""
    return {link.proto.label: link.proto.query_string for link in app.get("page_link")}
