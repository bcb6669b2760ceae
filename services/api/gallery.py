"""A run's test images as a gallery: each prediction with its confidence, filtered by true and
predicted class (a cell of the confusion matrix), sorted by how sure the run was.

A plant pathologist checking a model looks first at its confident mistakes: a wrong answer at
0.98 is a mislabelled photo or a shortcut, one at 0.40 a hard case. So the default order puts
the most confident first, and the confusion matrix's cells open here filtered to that cell.
"""

from typing import Any

from shared.schemas.jobs import GalleryImage, GallerySort


def gallery_image(entry: dict[str, Any], class_names: list[str]) -> GalleryImage:
    """A stored prediction (test_predictions' entry) with its confidence and whether it is right."""
    probabilities = entry["probabilities"]
    predicted = entry["predicted_class"]
    position = class_names.index(predicted) if predicted in class_names else None
    confidence = probabilities[position] if position is not None else max(probabilities, default=0.0)
    return GalleryImage(**entry, confidence=confidence, correct=predicted == entry["true_class"])


def gallery(
    kept: dict[str, Any],
    *,
    true_class: str | None = None,
    predicted_class: str | None = None,
    correct: bool | None = None,
    sort: GallerySort = "-confidence",
) -> list[GalleryImage]:
    """The kept predictions that match every filter given, in the order asked (ties by file)."""
    images = [gallery_image(entry, kept["class_names"]) for entry in kept["predictions"]]
    chosen = [
        image
        for image in images
        if (true_class is None or image.true_class == true_class)
        and (predicted_class is None or image.predicted_class == predicted_class)
        and (correct is None or image.correct == correct)
    ]
    chosen.sort(key=lambda image: image.file)
    if sort != "file":
        chosen.sort(key=lambda image: image.confidence, reverse=sort == "-confidence")
    return chosen
