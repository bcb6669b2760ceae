"""`paddy predict --run RUN DIR`: a folder's images classified as a batch through the API, as the
dashboard's Batch predict page does it: zipped, uploaded (POST /batches), followed with a progress
bar until the predictors are done, and the CSV fetched."""

import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx

from infra.api_calls import api_client, call_api
from shared.batches import BATCH_IMAGE_EXTENSIONS

# Seconds between two looks at the batch's progress.
POLL_S = 0.5
# Seconds the upload may take (a zip of up to PADDY_MAX_BATCH_UPLOAD_BYTES).
UPLOAD_TIMEOUT_S = 300.0


class BatchError(RuntimeError):
    """The API refused the batch, or the batch failed; the message says why."""


def zip_images(folder: Path, out: IO[bytes]) -> int:
    """The JPEG, PNG and WebP images below folder, stored as they are (they are compressed
    already) under their paths relative to it; other files and hidden ones are not sent.
    Returns how many images."""
    images = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            hidden = any(part.startswith(".") for part in relative.parts)
            if path.is_file() and not hidden and path.suffix.lower() in BATCH_IMAGE_EXTENSIONS:
                archive.write(path, relative.as_posix())
                images += 1
    return images


def predict_folder(
    api_url: str, api_key: str, run_id: str, folder: Path, on_progress: Callable[[dict[str, Any]], None]
) -> tuple[dict[str, Any], str]:
    """(the batch as GET /batches/{id} shows it at the end, its CSV); on_progress(batch) after
    each look at it. Raises BatchError saying what went wrong."""
    with api_client(api_url, api_key) as client:
        with tempfile.TemporaryFile() as archive:
            images = zip_images(folder, archive)
            if not images:
                raise BatchError(f"{folder} holds no JPEG, PNG or WebP image")
            archive.seek(0)
            upload = {"file": (f"{folder.resolve().name or 'images'}.zip", archive, "application/zip")}
            form = {"run_id": run_id}
            created = _answer(client, "POST", "/batches", data=form, files=upload, timeout=UPLOAD_TIMEOUT_S)
        while True:
            batch = _answer(client, "GET", f"/batches/{created['batch_id']}")
            on_progress(batch)
            if batch["state"] == "done":
                return batch, client.get(f"/batches/{batch['batch_id']}/predictions.csv").text
            if batch["state"] in ("failed", "expired"):
                raise BatchError(f"batch {batch['batch_id']} {batch['state']}: {batch['error']}")
            time.sleep(POLL_S)


def _answer(client: httpx.Client, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    return call_api(client, BatchError, "the API answered {code}: {detail}", method, path, **kwargs).json()
