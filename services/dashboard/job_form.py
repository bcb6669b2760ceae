"""The new job / sweep form: which inputs a model's defaults call for, and the body to post.

Plain functions over GET /models' `defaults`; no Streamlit. What a field is, allows and means
comes from JobSpec itself; the API validates again (422).
"""

from collections.abc import Mapping
from typing import Any

from shared.images import parse_image_size
from shared.schemas import fields
from shared.schemas.jobs import MAX_IMAGE_SIDE, MIN_IMAGE_SIDE, JobSpec

SPEC_FIELDS = JobSpec.model_fields
# Set in the form's own inputs, not from a model's defaults.
FIXED_FIELDS = ("model_name", "dataset", "version")
# The fields a sweep can vary from the form.
SWEEP_FIELDS = ("learning_rate", "batch_size", "dropout", "weight_decay", "epochs", "image_size")
# Fields a person sets most; the rest sit under "more settings".
MAIN_FIELDS = ("epochs", "batch_size", "learning_rate", "dropout", "image_size", "patience", "feature_extraction")
# JobSpec's bounds as the form says them: "must be at least 1 and at most 1000".
BOUND_WORDS = {"ge": "at least", "gt": "above", "le": "at most", "lt": "below"}


def help_text(name: str) -> str | None:
    return SPEC_FIELDS[name].description


def choices(name: str) -> tuple[str, ...]:
    return fields.choices(SPEC_FIELDS[name])


def field_kind(name: str) -> str:
    """How to ask for a field: 'bool', 'int', 'float', 'optional_float', 'choice', 'size' (image_size:
    "128" or "96x320") or 'text'."""
    if name == "image_size":
        return "size"
    field = SPEC_FIELDS[name]
    kind = fields.value_type(field)
    if fields.choices(field):
        return "choice"
    if kind is bool:
        return "bool"
    if kind is int:
        return "int"
    if kind is float:
        return "optional_float" if fields.allows_none(field) else "float"
    return "text"


def form_fields(defaults: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """(name, kind, default) for every field the form asks for, main fields first."""
    names = [name for name in MAIN_FIELDS if name in defaults]
    names += [name for name in defaults if name not in names and name not in FIXED_FIELDS]
    return [(name, field_kind(name), defaults[name]) for name in names]


def number_type(name: str) -> type[int] | type[float]:
    return int if fields.value_type(SPEC_FIELDS[name]) is int else float


def input_range(name: str) -> tuple[Any, Any]:
    """The least and the most a number input offers, of the field's type (None: no limit).

    An open bound (gt, lt) is offered too, and refused by `job_spec` as JobSpec refuses it.
    """
    number = number_type(name)
    limits = fields.bounds(SPEC_FIELDS[name])
    low, high = limits.get("ge", limits.get("gt")), limits.get("le", limits.get("lt"))
    return (None if low is None else number(low)), (None if high is None else number(high))


def value_problem(name: str, value: Any) -> str | None:
    """Why JobSpec would refuse this value of a bounded field, in words; None when it would not."""
    field = SPEC_FIELDS[name]
    limits = fields.bounds(field)
    if not limits or (value is None and fields.allows_none(field)):
        return None
    if value is not None and fields.within_bounds(field, value):
        return None
    rule = " and ".join(f"{BOUND_WORDS[kind]} {bound}" for kind, bound in limits.items())
    return f"must be {rule}" + (" (leave empty for none)" if fields.allows_none(field) else "")


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
        if value == "" and fields.allows_none(SPEC_FIELDS[name]):
            value = None  # an optional text field left empty (group_pattern, image_size): the default
        elif field_kind(name) == "size":
            value = image_size(value)
        if problem := value_problem(name, value):
            raise ValueError(f"{name}: {problem}")
        if value != defaults.get(name):
            spec[name] = value
    if version.strip():
        spec["version"] = version.strip()
    return spec


def image_size(value: str | int | list[int]) -> int | list[int]:
    """The form's image_size ("128", "96x320") as JobSpec takes it; ValueError naming the field."""
    try:
        size = parse_image_size(value) if isinstance(value, str) else value
    except ValueError as error:
        raise ValueError(f"image_size: {error}") from None
    sides = [size] if isinstance(size, int) else size
    if not all(MIN_IMAGE_SIDE <= side <= MAX_IMAGE_SIDE for side in sides):
        raise ValueError(f"image_size: each side must be at least {MIN_IMAGE_SIDE} and at most {MAX_IMAGE_SIDE}")
    return size


def parse_grid(texts: Mapping[str, str]) -> dict[str, list[Any]]:
    """A sweep grid from comma-separated values per field ('0.001, 0.0003'); empty fields are left out.

    'none' stands for null where the field allows it (dropout).
    """
    grid: dict[str, list[Any]] = {}
    for name, text in texts.items():
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not parts:
            continue
        number, optional = number_type(name), fields.allows_none(SPEC_FIELDS[name])
        try:
            values = [None if optional and part.lower() == "none" else number(part) for part in parts]
        except ValueError:
            raise ValueError(
                f"{name}: {text!r} is not a comma-separated list of {'whole numbers' if number is int else 'numbers'}"
            ) from None
        grid[name] = list(dict.fromkeys(values))
    return grid
