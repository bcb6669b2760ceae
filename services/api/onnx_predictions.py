"""The production model answers in the API's own process: its ONNX export in onnxruntime, no
Celery round trip, no torch (shared/onnx_model.py).

A run answers here when it holds its dataset's `production` alias (the registry) and its latest
export completed (services/api/exports.py); anything else (another run, a heatmap, an export not
made yet) goes to a predictor as before. Loaded models are kept per file and modification time,
so a new export of the run is loaded again.
"""

import threading
from collections import OrderedDict
from pathlib import Path

from services.api.exports import model_file
from shared.onnx_model import OnnxClassifier
from shared.store import Store

PRODUCTION = "production"
# Models kept loaded: one production model per dataset, and a few datasets.
CACHE_SIZE = 4


def production_export(store: Store, artifacts_root: Path, run_id: str) -> Path | None:
    """The run's ONNX model file when the run is in production and has one; None otherwise."""
    if PRODUCTION not in store.aliases_of(run_id):
        return None
    return model_file(artifacts_root, run_id)


class LoadedModels:
    """OnnxClassifiers by file, loaded once (a few at most), safe to share between threads:
    onnxruntime's sessions run concurrently."""

    def __init__(self, threads: int, max_pixels: int):
        self._threads = threads
        self._max_pixels = max_pixels
        self._lock = threading.Lock()
        self._loaded: OrderedDict[tuple[Path, int], OnnxClassifier] = OrderedDict()

    def get(self, path: Path) -> OnnxClassifier:
        key = (path, path.stat().st_mtime_ns)
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            model = OnnxClassifier.load(path, threads=self._threads, max_pixels=self._max_pixels)
            self._loaded[key] = model
            while len(self._loaded) > CACHE_SIZE:
                self._loaded.popitem(last=False)
            return model
