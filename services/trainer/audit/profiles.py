"""Per-class profiles: how many images, how large, what shape, what file size and format."""

from collections import Counter
from collections.abc import Sequence

import numpy as np

from services.trainer.audit.reading import ImageRecord
from shared.schemas.datasets import ClassProfile, Spread


def class_profiles(records: Sequence[ImageRecord], class_names: Sequence[str]) -> list[ClassProfile]:
    """One profile per class, in label order, over its readable images."""
    profiles = []
    for label, name in enumerate(class_names):
        readable = [r for r in records if r.label == label and r.readable]
        profiles.append(
            ClassProfile(
                name=name,
                images=len(readable),
                width=_spread([r.width for r in readable]),
                height=_spread([r.height for r in readable]),
                aspect_ratio=_spread([r.aspect_ratio for r in readable]),
                file_bytes=_spread([r.file_bytes for r in readable]),
                formats=dict(sorted(Counter(r.format for r in readable).items())),
            )
        )
    return profiles


def _spread(values: Sequence[float]) -> Spread:
    if not values:
        return Spread(min=0, median=0, max=0)
    return Spread(min=float(min(values)), median=float(np.median(values)), max=float(max(values)))
