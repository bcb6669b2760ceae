"""What the Batch predict page shows of a batch; plain functions, no Streamlit."""

from typing import Any

from shared.schemas.batches import FINISHED_BATCH_STATES

Batch = dict[str, Any]
# Files left out that a note names; the rest it counts.
SKIPPED_NAMED = 5


def is_active(batch: Batch) -> bool:
    return batch["state"] not in FINISHED_BATCH_STATES


def progress(batch: Batch) -> tuple[float, str]:
    """The bar's fraction and its text: 'Classifying: 120 of 500 images'."""
    done, total = batch["done"], batch["total"]
    if batch["state"] == "queued":
        return 0.0, f"Queued: {total} images wait for a predictor"
    return (done / total if total else 1.0), f"Classifying: {done} of {total} images"


def outcome(batch: Batch) -> str:
    """'145 images classified by run 3f9a1c0b2d4e, 2 of them unreadable (their rows say why).'"""
    text = f"{batch['total']} images classified by run {batch['run_id']}"
    if batch.get("failed_images"):
        text += f", {batch['failed_images']} of them unreadable (their rows in the CSV say why)"
    return text + "."


def skipped_note(batch: Batch) -> str | None:
    """'2 files left out, not a JPEG, PNG or WebP file: notes.txt, plan.pdf', or None."""
    skipped, count = batch.get("skipped") or {}, batch.get("skipped_count", 0)
    if not count:
        return None
    named = [f"{file} ({why})" for file, why in list(skipped.items())[:SKIPPED_NAMED]]
    more = f" and {count - len(named)} more" if count > len(named) else ""
    return f"{count} file{'s' if count > 1 else ''} left out: {', '.join(named)}{more}."


def image_caption(image: dict[str, Any]) -> str:
    """'Brownspot · 97%', or '⚠️ cannot read image …' for an image that could not be read."""
    if image.get("error"):
        return f"⚠️ {image['error']}"
    return f"{image['predicted_class']} · {image['confidence']:.0%}"
