"""What a field allows, read from the model that declares it: help text, bounds, choices, type.

A job's facts are written once, in JobSpec (shared/schemas/jobs.py); the API's 422s, the
dashboard's form and `paddy train`'s options read them from here instead of copying them.
"""

import operator
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic.fields import FieldInfo

# The bounds pydantic's Field(ge=…, gt=…, le=…, lt=…) declares, and the test each one makes.
BOUND_TESTS = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt}


def bounds(field: FieldInfo) -> dict[str, float]:
    """The field's numeric bounds in declared order, e.g. {"ge": 1, "le": 1000}; {} without any."""
    return {
        kind: getattr(item, kind)
        for item in field.metadata
        for kind in BOUND_TESTS
        if getattr(item, kind, None) is not None
    }


def within_bounds(field: FieldInfo, value: float) -> bool:
    return all(BOUND_TESTS[kind](value, bound) for kind, bound in bounds(field).items())


def choices(field: FieldInfo) -> tuple[str, ...]:
    """The values of a Literal field in declared order; () for any other field."""
    return get_args(field.annotation) if get_origin(field.annotation) is Literal else ()


def allows_none(field: FieldInfo) -> bool:
    return _is_union(field.annotation) and NoneType in get_args(field.annotation)


def value_type(field: FieldInfo) -> Any:
    """The type of the field's values, None left aside: `float` for `float | None`."""
    if _is_union(field.annotation):
        kind = next(argument for argument in get_args(field.annotation) if argument is not NoneType)
    else:
        kind = field.annotation
    # Annotated[int, Field(...)] (a member of a union keeps its constraints so): int.
    return get_args(kind)[0] if get_origin(kind) is Annotated else kind


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, UnionType)
