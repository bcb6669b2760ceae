"""Shortcut warnings: a trivial property of the files that predicts the class on its own.

A model learns whatever separates the classes most easily. When one class was photographed
whole and the others as small crops, image size alone tells them apart, and a model may learn
that instead of the disease; so may it learn a white sheet behind one class's leaves, one
class saved as PNG, or one camera's EXIF orientation. Each property is tested on its own with
a small decision tree under cross-validation (scikit-learn), copies of one photo kept in one
fold; it is reported when its accuracy is far above chance and could hardly be luck.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
from sklearn.tree import DecisionTreeClassifier

from services.trainer.audit.reading import ImageRecord
from shared.schemas.datasets import ShortcutWarning

FOLDS = 5
# Reported when accuracy ≥ chance + LIFT × (1 − chance): a quarter of the way from chance to
# perfect (for 3 balanced classes, 0.50 against 0.33) ...
LIFT = 0.25
# ... and a binomial test over the independent photos (copy groups count once) rejects chance.
P_VALUE = 0.001


@dataclass(frozen=True)
class Property:
    label: str
    values: Callable[[ImageRecord], tuple[float, ...]]
    describe: Callable[[np.ndarray], str]  # one class's values, in a few words


def _range(unit: str = "", digits: int = 0) -> Callable[[np.ndarray], str]:
    def describe(values: np.ndarray) -> str:
        low, mid, high = (f"{v:.{digits}f}" for v in (values.min(), np.median(values), values.max()))
        return f"median {mid}{unit} ({low}–{high})"

    return describe


def _colour(values: np.ndarray) -> str:
    red, green, blue = (int(round(v)) for v in np.median(values, axis=0))
    return f"median #{red:02x}{green:02x}{blue:02x}"


def _shares(names: dict[int, str]) -> Callable[[np.ndarray], str]:
    def describe(values: np.ndarray) -> str:
        codes, counts = np.unique(values[:, 0].astype(int), return_counts=True)
        order = np.argsort(-counts)
        return ", ".join(f"{names.get(int(codes[i]), codes[i])} {counts[i] / len(values):.0%}" for i in order[:3])

    return describe


def _properties(records: Sequence[ImageRecord]) -> dict[str, Property]:
    formats = sorted({r.format for r in records})
    return {
        "width": Property("image width", lambda r: (r.width,), _range(" px")),
        "height": Property("image height", lambda r: (r.height,), _range(" px")),
        "aspect_ratio": Property("aspect ratio (width / height)", lambda r: (r.aspect_ratio,), _range(digits=2)),
        "file_bytes": Property("file size", lambda r: (r.file_bytes,), _range(" bytes")),
        "format": Property("file format", lambda r: (formats.index(r.format),), _shares(dict(enumerate(formats)))),
        "exif_orientation": Property(
            "EXIF orientation", lambda r: (r.exif_orientation,), _shares({i: f"orientation {i}" for i in range(9)})
        ),
        "border_colour": Property("border colour", lambda r: r.border_colour, _colour),
    }


def shortcut_warnings(
    records: Sequence[ImageRecord], class_names: Sequence[str], groups: dict[str, str], seed: int = 0
) -> list[ShortcutWarning]:
    """Warnings for the properties that predict the class, the most predictive first.

    groups: file → copy group (DatasetAudit.groups()); a file in none is its own photo."""
    readable = [r for r in records if r.readable]
    labels = np.array([r.label for r in readable])
    present, counts = np.unique(labels, return_counts=True)
    folds = min(FOLDS, int(counts.min())) if len(present) > 1 else 0
    if folds < 2:
        return []
    photo_of = [groups.get(r.file, r.file) for r in readable]
    photos = len(set(photo_of))
    chance = counts.max() / len(labels)
    warnings = []
    for feature, prop in _properties(readable).items():
        values = np.array([prop.values(r) for r in readable], dtype=np.float64)
        if np.ptp(values, axis=0).max() == 0:  # the same for every image: predicts nothing
            continue
        tree = DecisionTreeClassifier(max_depth=max(3, math.ceil(math.log2(len(present))) + 1), random_state=seed)
        cv = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
        predicted = cross_val_predict(tree, values, labels, groups=photo_of, cv=cv)
        accuracy = float((predicted == labels).mean())
        luck = binomtest(round(accuracy * photos), photos, chance, alternative="greater").pvalue
        if accuracy >= chance + LIFT * (1 - chance) and luck < P_VALUE:
            per_class = "; ".join(
                f"{class_names[label]}: {prop.describe(values[labels == label])}" for label in present
            )
            warnings.append(
                ShortcutWarning(
                    feature=feature,
                    accuracy=round(accuracy, 4),
                    chance=round(float(chance), 4),
                    message=(
                        f"{prop.label} alone predicts the class: {accuracy:.0%} right under {folds}-fold "
                        f"cross-validation, against {chance:.0%} by always answering the largest class. "
                        f"{per_class}."
                    ),
                )
            )
    return sorted(warnings, key=lambda w: -w.accuracy)
