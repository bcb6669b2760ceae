"""The new job / sweep form: which inputs a model's defaults call for, and the body to post.

Plain functions over GET /models' `defaults`; no Streamlit. The API validates again (422).
"""

from collections.abc import Mapping
from typing import Any

# Set in the form's own inputs, not from a model's defaults.
FIXED_FIELDS = ("model_name", "dataset", "version")
# The fields a sweep can vary from the form, and how their values are typed.
SWEEP_FIELDS = {
    "learning_rate": float,
    "batch_size": int,
    "dropout": float,
    "weight_decay": float,
    "epochs": int,
    "image_size": int,
}
# Fields a person sets most; the rest sit under "more settings".
MAIN_FIELDS = ("epochs", "batch_size", "learning_rate", "dropout", "image_size", "patience", "feature_extraction")


def field_kind(name: str, default: Any) -> str:
    """How to ask for a field: 'bool', 'int', 'float', 'optional_float', 'choice' or 'text'."""
    if name == "augment":
        return "choice"
    if name == "dropout":
        return "optional_float"
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    return "text"


def form_fields(defaults: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """(name, kind, default) for every field the form asks for, main fields first."""
    names = [name for name in MAIN_FIELDS if name in defaults]
    names += [name for name in defaults if name not in names and name not in FIXED_FIELDS]
    return [(name, field_kind(name, defaults[name]), defaults[name]) for name in names]


def job_spec(
    model_name: str, dataset: str, values: Mapping[str, Any], defaults: Mapping[str, Any], version: str = ""
) -> dict[str, Any]:
    """The POST /jobs body: the fields that differ from the model's defaults, plus model and dataset.

    Raises ValueError naming the field when a value cannot be right.
    """
    if not model_name:
        raise ValueError("model: choose a model")
    if not dataset.strip():
        raise ValueError("dataset: name a dataset folder under the data root (e.g. demo-synth)")
    spec: dict[str, Any] = {"model_name": model_name, "dataset": dataset.strip()}
    for name, value in values.items():
        if name in ("epochs", "batch_size", "image_size", "patience") and (value is None or value < 1):
            raise ValueError(f"{name}: must be at least 1")
        if name == "learning_rate" and not (value and 0 < value <= 1):
            raise ValueError("learning_rate: must be above 0 and at most 1")
        if name == "dropout" and value is not None and not 0 <= value < 1:
            raise ValueError("dropout: must be at least 0 and below 1 (leave empty for none)")
        if value != defaults.get(name):
            spec[name] = value
    if version.strip():
        spec["version"] = version.strip()
    return spec


def parse_grid(texts: Mapping[str, str]) -> dict[str, list[Any]]:
    """A sweep grid from comma-separated values per field ('0.001, 0.0003'); empty fields are left out."""
    grid: dict[str, list[Any]] = {}
    for name, text in texts.items():
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not parts:
            continue
        kind = SWEEP_FIELDS[name]
        try:
            values = [None if name == "dropout" and part.lower() == "none" else kind(part) for part in parts]
        except ValueError:
            raise ValueError(
                f"{name}: {text!r} is not a comma-separated list of {'whole numbers' if kind is int else 'numbers'}"
            ) from None
        grid[name] = list(dict.fromkeys(values))
    return grid
