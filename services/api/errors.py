"""Every error as JSON {"detail": …}: 422s that name the field and its allowed values, 503 for a
store that is down, and a generic 500 with an error id (the traceback stays in the server log)."""

import logging
import math
import uuid
from typing import Annotated, Any, cast, get_args, get_origin

import redis
from fastapi import FastAPI, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, StringConstraints
from pydantic.fields import FieldInfo
from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError

from services.api.presenting import MAX_LIMIT, MAX_OFFSET
from shared.models import MODELS
from shared.schemas.fields import bounds, choices, value_type
from shared.schemas.jobs import (
    MAX_ENSEMBLE_MEMBERS,
    MAX_IMAGE_SIDE,
    MIN_IMAGE_SIDE,
    NO_CONTROL_CHARACTERS,
    RUN_ID_PATTERN,
    EnsembleSpec,
    JobSpec,
)

log = logging.getLogger("services.api")

# Error types whose message names one bound (or one value) only: we add the whole range.
BOUND_ERRORS = frozenset(
    {
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "literal_error",
        "int_parsing",
        "float_parsing",
        "int_type",
        "float_type",
        "bool_parsing",
        "bool_type",
        "int_from_float",
        "finite_number",
        "missing",
        "string_type",
        "string_too_short",
        "string_too_long",
        "string_pattern_mismatch",
        "too_short",
        "too_long",
        "list_type",
        "dict_type",
    }
)
# Patterns in words: a client reads the rule, not the regular expression.
PATTERN_WORDS = {
    NO_CONTROL_CHARACTERS: "without control characters",
    RUN_ID_PATTERN: "of letters, digits, '-' and '_'",
}
RUN_ID_WORDS = f"text {PATTERN_WORDS[RUN_ID_PATTERN]}, at most 64 characters"
# How much of a refused input a 422 echoes back.
ECHOED_CHARACTERS = 200


def text_rule(field: FieldInfo) -> str | None:
    """The rule of a constrained text field (`Annotated[str, StringConstraints]`, or that | None)
    in words."""
    constraints = [item for item in field.metadata if isinstance(item, StringConstraints)]
    annotation = value_type(field)
    if not constraints and get_origin(annotation) is Annotated:
        constraints = [item for item in get_args(annotation)[1:] if isinstance(item, StringConstraints)]
    if not constraints:
        return None
    rule = constraints[0]
    pattern = rule.pattern if isinstance(rule.pattern, str) else None
    words = [pattern and PATTERN_WORDS.get(pattern), rule.max_length and f"at most {rule.max_length} characters"]
    return "text " + ", ".join(word for word in words if word)


# Bounds in a 422's words.
BOUND_SYMBOLS = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}


def allowed_values(model: type[BaseModel]) -> dict[str, str]:
    """field → its allowed values in words, from the model's own constraints."""
    described: dict[str, str] = {}
    for name, field in model.model_fields.items():
        if field_bounds := bounds(field):
            kind = "a whole number" if field.annotation is int else "a number"
            described[name] = f"{kind} " + " and ".join(
                f"{BOUND_SYMBOLS[bound]} {value}" for bound, value in field_bounds.items()
            )
        elif field_choices := choices(field):
            described[name] = "one of " + ", ".join(repr(choice) for choice in field_choices)
        elif rule := text_rule(field):
            described[name] = rule
    return described


ALLOWED: dict[str, str] = {
    **allowed_values(EnsembleSpec),
    **allowed_values(JobSpec),
    "limit": f"a whole number ≥ 1 and ≤ {MAX_LIMIT}",
    "offset": f"a whole number ≥ 0 and ≤ {MAX_OFFSET}",
    "min_val_accuracy": "a number ≥ 0 and ≤ 1",
    "min_test_accuracy": "a number ≥ 0 and ≤ 1",
    "model_name": "one of " + ", ".join(repr(name) for name in sorted(MODELS)),
    "run_id": RUN_ID_WORDS,
    "sweep_id": RUN_ID_WORDS,
    "members": f"a list of 2 to {MAX_ENSEMBLE_MEMBERS} run ids, each {RUN_ID_WORDS}",
    "image_size": f"a whole number ≥ {MIN_IMAGE_SIDE} and ≤ {MAX_IMAGE_SIDE}, or [height, width]: two of them",
}


def _with_allowed(error: dict[str, Any]) -> dict[str, Any]:
    # The innermost named part of the location that has words: ['body', 'image_size',
    # 'constrained-int'] (one member of a union) is image_size's.
    allowed = next((ALLOWED[part] for part in reversed(error.get("loc", ())) if part in ALLOWED), None)
    if error.get("type") == "string_pattern_mismatch":
        pattern = str((error.get("ctx") or {}).get("pattern"))
        error = {**error, "msg": f"String should be {PATTERN_WORDS.get(pattern, f'matching {pattern!r}')}"}
    if error.get("type") in BOUND_ERRORS and allowed and "allowed" not in error.get("msg", ""):
        error = {**error, "msg": f"{error['msg']} (allowed: {allowed})"}
    # The input of a failed field is echoed back, cut short, but never the request's whole body
    # or context.
    error.pop("url", None)
    error.pop("ctx", None)
    if "input" in error:
        error["input"] = echoed(error["input"])
    return error


def echoed(value: Any) -> Any:
    """A refused input as a 422 may repeat it: JSON (no NaN or Infinity), at most a few hundred
    characters; anything longer or stranger as a shortened repr."""
    if value is None or (isinstance(value, bool | int) and abs(value) < 2**63):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, str) and len(value) <= ECHOED_CHARACTERS:
        return value
    text = value if isinstance(value, str) else repr(value)
    if isinstance(value, dict | list) and len(text) <= ECHOED_CHARACTERS and _plain(value):
        return value
    return text if len(text) <= ECHOED_CHARACTERS else text[:ECHOED_CHARACTERS] + "…"


def _plain(value: Any, depth: int = 0) -> bool:
    """Whether value holds only JSON a response can carry (finite numbers, shallow)."""
    if depth > 4:
        return False
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(item, depth + 1) for item in value)
    return echoed(value) is value


def field_error(field: str, message: str, *loc: str | int) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors, naming the field."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"loc": ["body", *(loc or (field,))], "msg": message, "type": "value_error"}],
    )


def query_error(parameter: str, message: str) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors, naming the query parameter."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT, [{"loc": ["query", parameter], "msg": message, "type": "value_error"}]
    )


async def validation_error(_request: Request, error: Exception) -> JSONResponse:
    # Installed for RequestValidationError alone; Starlette types every handler's error as Exception.
    detail = [_with_allowed(dict(item)) for item in cast(RequestValidationError, error).errors()]
    return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": jsonable_encoder(detail)})


async def store_unreachable(request: Request, error: Exception) -> JSONResponse:
    which = "Redis" if isinstance(error, redis.RedisError) else "MongoDB"
    log.error("%s %s: %s unreachable: %s", request.method, request.url.path, which, type(error).__name__)
    return JSONResponse(status_code=status.HTTP_503_SERVICE_UNAVAILABLE, content={"detail": f"{which} is unreachable"})


async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
    error_id = uuid.uuid4().hex[:12]
    log.exception("error %s in %s %s", error_id, request.method, request.url.path, exc_info=error)
    return JSONResponse(
        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
        content={"detail": f"internal error; the server log has the details under id {error_id}"},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
    for unreachable in (ConnectionFailure, ServerSelectionTimeoutError, redis.ConnectionError, redis.TimeoutError):
        app.add_exception_handler(unreachable, store_unreachable)
    app.add_exception_handler(Exception, unexpected_error)
