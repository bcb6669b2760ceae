"""Every error as JSON {"detail": …}: 422s that name the field and its allowed values, 503 for a
store that is down, and a generic 500 with an error id (the traceback stays in the server log)."""

import logging
import uuid
from typing import Any, get_args

import redis
from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError

from services.api.runs import MAX_LIMIT, MAX_OFFSET
from shared.models import MODELS
from shared.schemas.jobs import EnsembleSpec, JobSpec

log = logging.getLogger("services.api")

# Error types whose message names one bound (or one value) only: we add the whole range.
BOUND_ERRORS = frozenset({
    "greater_than", "greater_than_equal", "less_than", "less_than_equal", "literal_error",
    "int_parsing", "float_parsing", "int_type", "float_type", "bool_parsing", "bool_type",
    "int_from_float", "finite_number", "missing",
})


def allowed_values(model: type[BaseModel]) -> dict[str, str]:
    """field → its allowed values in words, from the model's own constraints."""
    described: dict[str, str] = {}
    for name, field in model.model_fields.items():
        bounds = []
        for item in field.metadata:
            for attribute, word in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
                if getattr(item, attribute, None) is not None:
                    bounds.append(f"{word} {getattr(item, attribute)}")
        if bounds:
            kind = "a whole number" if field.annotation is int else "a number"
            described[name] = f"{kind} {' and '.join(bounds)}"
        elif get_args(field.annotation) and all(isinstance(a, str) for a in get_args(field.annotation)):
            described[name] = "one of " + ", ".join(repr(a) for a in get_args(field.annotation))
    return described


ALLOWED: dict[str, str] = {
    **allowed_values(EnsembleSpec), **allowed_values(JobSpec),
    "limit": f"a whole number ≥ 1 and ≤ {MAX_LIMIT}", "offset": f"a whole number ≥ 0 and ≤ {MAX_OFFSET}",
    "min_val_accuracy": "a number ≥ 0 and ≤ 1", "min_test_accuracy": "a number ≥ 0 and ≤ 1",
    "model_name": "one of " + ", ".join(repr(name) for name in sorted(MODELS)),
}


def _with_allowed(error: dict[str, Any]) -> dict[str, Any]:
    field = next((str(part) for part in reversed(error.get("loc", ())) if isinstance(part, str)), None)
    allowed = ALLOWED.get(field or "")
    if error.get("type") in BOUND_ERRORS and allowed and "allowed" not in error.get("msg", ""):
        error = {**error, "msg": f"{error['msg']} (allowed: {allowed})"}
    # The input of a failed field is echoed back, but never the request's whole body or context.
    error.pop("url", None)
    error.pop("ctx", None)
    return error


async def validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
    detail = [_with_allowed(dict(item)) for item in error.errors()]
    return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": jsonable_encoder(detail)})


async def store_unreachable(request: Request, error: Exception) -> JSONResponse:
    which = "Redis" if isinstance(error, redis.RedisError) else "MongoDB"
    log.error("%s %s: %s unreachable: %s", request.method, request.url.path, which, type(error).__name__)
    return JSONResponse(status_code=status.HTTP_503_SERVICE_UNAVAILABLE, content={"detail": f"{which} is unreachable"})


async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
    error_id = uuid.uuid4().hex[:12]
    log.exception("error %s in %s %s", error_id, request.method, request.url.path, exc_info=error)
    return JSONResponse(status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
                        content={"detail": f"internal error; the server log has the details under id {error_id}"})


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
    for unreachable in (ConnectionFailure, ServerSelectionTimeoutError, redis.ConnectionError, redis.TimeoutError):
        app.add_exception_handler(unreachable, store_unreachable)
    app.add_exception_handler(Exception, unexpected_error)
