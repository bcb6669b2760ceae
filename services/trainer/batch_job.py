"""One chunk of a batch prediction as the `paddy.predict_batch` task runs it (shared/batches.py
has the batch's files and progress).

A chunk is the manifest's next few images: classified with the run's model (cached in the
process, as for single predictions), written to the chunk's own part file, counted in the
progress; then the task queues the next chunk as a new message, behind any single prediction sent
meanwhile. The last chunk joins the parts into predictions.csv. An image that cannot be read
becomes a row with its error; a run that cannot predict fails the batch, saying why.
"""

import csv
import io
import logging
from collections.abc import Callable
from pathlib import Path

import redis

from services.trainer.predict import Prediction, PredictionError, load_predictor, predict_images
from services.trainer.settings import TrainerSettings
from shared.batches import (
    CSV_FILE,
    ImageRoot,
    advance_progress,
    batch_dir,
    chunk_queued,
    image_root,
    mark_chunk_queued,
    read_manifest,
    read_parts,
    record_progress,
    write_atomically,
    write_part,
)
from shared.paths import is_inside
from shared.schemas.batches import BatchImage, BatchManifest, BatchPart, BatchProgress

log = logging.getLogger(__name__)
# Decimals of each probability in the part files and the CSV.
DECIMALS = 6


def run_batch_chunk(batch_id: str, chunk: int, settings: TrainerSettings, send_chunk: Callable[[int], None]) -> int:
    """Classify one chunk and record it; send_chunk(next) queues the next one. Returns the images
    done so far. A chunk delivered again rewrites its own part and queues nothing twice; any
    error fails the batch, saying why (without server paths), and is raised again."""
    folder = batch_dir(settings.artifacts_root, batch_id)
    manifest = read_manifest(folder)
    if manifest is None or chunk >= manifest.chunks:
        log.warning("batch %s has no chunk %d in the artifacts root; nothing to do", batch_id, chunk)
        return 0
    timeout_s = settings.event_socket_timeout_s
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        return _run_chunk(manifest, chunk, folder, settings, client, send_chunk)
    except Exception as error:
        total, done_before = len(manifest.files), chunk * manifest.chunk_images
        message = _without_roots(str(error), settings)
        record_progress(client, batch_id, BatchProgress(state="failed", done=done_before, total=total, error=message))
        raise
    finally:
        client.close()


def _run_chunk(
    manifest: BatchManifest,
    chunk: int,
    folder: Path,
    settings: TrainerSettings,
    client: redis.Redis,
    send_chunk: Callable[[int], None],
) -> int:
    batch_id, total = manifest.batch_id, len(manifest.files)
    write_part(folder, predict_chunk(manifest, chunk, image_root(manifest, folder, settings.data_root), settings))
    if chunk + 1 == manifest.chunks:
        failed = write_csv(folder, manifest)
        record_progress(client, batch_id, BatchProgress(state="done", done=total, total=total, failed_images=failed))
        return total
    done = (chunk + 1) * manifest.chunk_images
    advance_progress(client, batch_id, done, total)
    # Sent before it is marked: a predictor that dies in between sends it twice (the same parts
    # are written again), never not at all.
    if not chunk_queued(client, batch_id, chunk + 1):
        send_chunk(chunk + 1)
        mark_chunk_queued(client, batch_id, chunk + 1)
    return done


def predict_chunk(manifest: BatchManifest, chunk: int, root: ImageRoot, settings: TrainerSettings) -> BatchPart:
    """The chunk's rows in file order; PredictionError when the run cannot predict at all."""
    class_names = load_predictor(manifest.run_id, settings).class_names
    rows: dict[str, BatchImage] = {}
    readable = []
    for file in manifest.chunk_files(chunk):
        if is_inside(root.path / file, root.within):
            readable.append(file)
        else:
            rows[file] = _failed(file, "a link that leads outside the batch's folder")
    rows |= _predict(manifest.run_id, readable, root.path, class_names, settings)
    return BatchPart(chunk=chunk, class_names=class_names, rows=[rows[file] for file in manifest.chunk_files(chunk)])


def _predict(
    run_id: str, files: list[str], root: Path, class_names: list[str], settings: TrainerSettings
) -> dict[str, BatchImage]:
    """One pass over the files; when one cannot be read, one file at a time, so that only the
    unreadable ones become error rows."""
    if not files:
        return {}
    try:
        predictions = predict_images(run_id, [root / file for file in files], settings)
    except PredictionError as error:
        if len(files) == 1:
            return {files[0]: _failed(files[0], str(error).replace(f"{root}/", ""))}
        rows: dict[str, BatchImage] = {}
        for file in files:
            rows |= _predict(run_id, [file], root, class_names, settings)
        return rows
    return {file: _row(file, prediction, class_names) for file, prediction in zip(files, predictions, strict=True)}


def _row(file: str, prediction: Prediction, class_names: list[str]) -> BatchImage:
    probabilities = [round(prediction.probabilities[name], DECIMALS) for name in class_names]
    return BatchImage(
        file=file,
        predicted_class=prediction.class_name,
        confidence=round(prediction.probabilities[prediction.class_name], DECIMALS),
        probabilities=probabilities,
    )


def _failed(file: str, error: str) -> BatchImage:
    return BatchImage(file=file, predicted_class=None, confidence=None, probabilities=None, error=error)


def write_csv(folder: Path, manifest: BatchManifest) -> int:
    """predictions.csv from every part, in file order: file, class, one probability column per
    class, error. Returns how many images could not be read. Raises OSError when a part is missing."""
    parts = read_parts(folder)
    rows = [row for part in parts for row in part.rows]
    if [row.file for row in rows] != manifest.files:
        raise OSError(f"the parts of batch {manifest.batch_id} do not cover its files: a chunk is missing")
    class_names = parts[0].class_names
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["file", "class", *class_names, "error"])
    for row in rows:  # an unreadable image: empty class and probabilities, and why
        probabilities = [str(p) for p in row.probabilities] if row.probabilities else [""] * len(class_names)
        writer.writerow([spreadsheet_safe(row.file), row.predicted_class, *probabilities, row.error])
    write_atomically(folder / CSV_FILE, out.getvalue())
    return sum(row.error is not None for row in rows)


def spreadsheet_safe(text: str) -> str:
    """A file name a spreadsheet shows as text: one starting with = + - @ would be read as a
    formula (CSV injection), so it gets a leading apostrophe, which spreadsheets hide."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


def _without_roots(message: str, settings: TrainerSettings) -> str:
    """The message as the API may show it: no server path of the artifacts or the data root."""
    for root, name in ((settings.artifacts_root, "<artifacts>"), (settings.data_root, "<data root>")):
        message = message.replace(str(Path(root).resolve()), name).replace(str(root), name)
    return message
