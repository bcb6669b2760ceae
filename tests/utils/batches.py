"""Batches laid out on disk as POST /batches leaves them (a zip's images unpacked, its manifest),
for tests that run the predictors' side or show a batch without going through the API."""

import shutil
import uuid
from pathlib import Path

import redis

from shared.batches import (
    CSV_FILE,
    IMAGES_DIR,
    batch_dir,
    record_progress,
    write_atomically,
    write_manifest,
    write_part,
)
from shared.schemas.batches import BatchImage, BatchManifest, BatchPart, BatchProgress, BatchSource
from shared.schemas.events import utc_now


def unpacked_batch(artifacts_root: Path, run_id: str, images: dict[str, Path | bytes], chunk_images: int) -> str:
    """A zip batch of these images (name in the batch → a file to copy, or its bytes); its id."""
    batch_id = uuid.uuid4().hex[:12]
    folder = batch_dir(artifacts_root, batch_id)
    for name, source in images.items():
        target = folder / IMAGES_DIR / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            target.write_bytes(source)
        else:
            shutil.copyfile(source, target)
    manifest = BatchManifest(
        batch_id=batch_id,
        run_id=run_id,
        source=BatchSource(kind="zip", name="leaves.zip"),
        files=sorted(images),
        chunk_images=chunk_images,
        created_at=utc_now(),
    )
    write_manifest(folder, manifest)
    return batch_id


def finished_batch(
    artifacts_root: Path, client: redis.Redis, run_id: str, images: dict[str, bytes], class_names: list[str]
) -> str:
    """A batch whose predictors are done, as they leave it: the i-th image (by name) predicted as
    class i mod len(class_names) with probability 0.9, the others sharing the rest."""
    batch_id = unpacked_batch(artifacts_root, run_id, images, len(images))
    lines, rows = [",".join(["file", "class", *class_names, "error"])], []
    for i, file in enumerate(sorted(images)):
        predicted = i % len(class_names)
        probabilities = [0.9 if k == predicted else 0.1 / (len(class_names) - 1) for k in range(len(class_names))]
        rows.append(
            BatchImage(file=file, predicted_class=class_names[predicted], confidence=0.9, probabilities=probabilities)
        )
        lines.append(",".join([file, class_names[predicted], *map(str, probabilities), ""]))
    folder = batch_dir(artifacts_root, batch_id)
    write_part(folder, BatchPart(chunk=0, class_names=class_names, rows=rows))
    write_atomically(folder / CSV_FILE, "\n".join(lines) + "\n")
    record_progress(client, batch_id, BatchProgress(state="done", done=len(rows), total=len(rows), failed_images=0))
    return batch_id
